"""SSD / RefineDet box coding: offsets of a box from an anchor scaled by the prior variances.

encode: t_xy = (c_box - c_anchor) / (v0 * wh_anchor), t_wh = log(wh_box / wh_anchor) / v1.
The numpy :class:`BoxCoder` serves the data side and inference; ``ms_*`` are the same maths as
MindSpore ops for the loss (graph mode, any leading batch dimensions).
"""
import math

import mindspore as ms
import numpy as np
from mindspore import ops

from common.metrics.detection_voc import box_iou  # noqa: F401  (one IoU for the whole project)

# As torchvision's BoxCoder: cap exp() of the size offsets so an untrained head cannot make
# inf boxes (boxes up to 62.5x the anchor size are still exact).
MAX_LOG_RATIO = math.log(1000.0 / 16)


def xyxy_to_cxcywh(boxes):
    boxes = np.asarray(boxes)
    return np.concatenate([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], -1)


def cxcywh_to_xyxy(boxes):
    boxes = np.asarray(boxes)
    return np.concatenate([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], -1)


class BoxCoder:
    """Encode x1,y1,x2,y2 boxes as offsets from (cx, cy, w, h) anchors, and decode them back.

    Shapes broadcast over leading dimensions (``(..., A, 4)`` with anchors ``(A, 4)``).
    """

    def __init__(self, variances=(0.1, 0.2)):
        if len(variances) != 2 or min(variances) <= 0:
            raise ValueError(f"variances {variances} must be two positive numbers (centre, size)")
        self.variances = tuple(float(v) for v in variances)

    @staticmethod
    def _dtype(*arrays):
        return np.result_type(*arrays, np.float32)

    def encode(self, boxes_xyxy, anchors_cxcywh):
        dtype = self._dtype(boxes_xyxy, anchors_cxcywh)
        boxes = xyxy_to_cxcywh(np.asarray(boxes_xyxy, dtype))
        anchors = np.asarray(anchors_cxcywh, dtype)
        v0, v1 = self.variances
        with np.errstate(divide="ignore"):  # zero-size boxes give -inf, as log(0) should
            txy = (boxes[..., :2] - anchors[..., :2]) / (v0 * anchors[..., 2:])
            twh = np.log(boxes[..., 2:] / anchors[..., 2:]) / v1
        return np.concatenate([txy, twh], -1).astype(dtype)

    def decode(self, deltas, anchors_cxcywh):
        """Offsets -> x1,y1,x2,y2 boxes (not clipped)."""
        dtype = self._dtype(deltas, anchors_cxcywh)
        deltas = np.asarray(deltas, dtype)
        anchors = np.asarray(anchors_cxcywh, dtype)
        v0, v1 = self.variances
        cxy = anchors[..., :2] + deltas[..., :2] * v0 * anchors[..., 2:]
        wh = anchors[..., 2:] * np.exp(np.minimum(deltas[..., 2:] * v1, MAX_LOG_RATIO))
        return cxcywh_to_xyxy(np.concatenate([cxy, wh], -1)).astype(dtype)


# ---- MindSpore versions for the loss (graph mode friendly) ----

def ms_xyxy_to_cxcywh(boxes):
    return ops.concat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], -1)


def ms_cxcywh_to_xyxy(boxes):
    return ops.concat([boxes[..., :2] - boxes[..., 2:] / 2, boxes[..., :2] + boxes[..., 2:] / 2], -1)


def ms_encode(boxes_xyxy, anchors_cxcywh, variances=(0.1, 0.2), min_size=1e-12):
    """As :meth:`BoxCoder.encode`; box and anchor sizes are floored at ``min_size`` so that
    degenerate boxes (padding) give finite values the caller can mask out (no 0 * inf = NaN)."""
    boxes = ms_xyxy_to_cxcywh(boxes_xyxy)
    anchor_wh = ops.maximum(anchors_cxcywh[..., 2:], min_size)
    txy = (boxes[..., :2] - anchors_cxcywh[..., :2]) / (variances[0] * anchor_wh)
    twh = ops.log(ops.maximum(boxes[..., 2:], min_size) / anchor_wh) / variances[1]
    return ops.concat([txy, twh], -1)


def ms_decode(deltas, anchors_cxcywh, variances=(0.1, 0.2)):
    """As :meth:`BoxCoder.decode` -> x1,y1,x2,y2."""
    cxy = anchors_cxcywh[..., :2] + deltas[..., :2] * variances[0] * anchors_cxcywh[..., 2:]
    wh = anchors_cxcywh[..., 2:] * ops.exp(ops.minimum(deltas[..., 2:] * variances[1], MAX_LOG_RATIO))
    return ops.concat([cxy - wh / 2, cxy + wh / 2], -1)


def ms_box_iou(a, b, eps=1e-12):
    """IoU of x1,y1,x2,y2 boxes ``a`` (..., N, 4) with ``b`` (..., K, 4) -> (..., N, K)."""
    a, b = a.expand_dims(-2), b.expand_dims(-3)
    iw = ops.relu(ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0]))
    ih = ops.relu(ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1]))
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / ops.maximum(area_a + area_b - inter, ms.Tensor(eps, ms.float32))

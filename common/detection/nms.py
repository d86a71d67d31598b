"""Greedy non-maximum suppression (numpy), torchvision semantics.

Boxes are visited by decreasing score (equal scores in input order); a box is dropped when its
IoU with an already kept box is > ``iou_threshold``. Returns kept indices by decreasing score.
"""
import numpy as np

from .box_coder import box_iou


def nms(boxes, scores, iou_threshold, block=256):
    """Kept indices. IoUs are computed ``block`` score-ordered rows at a time (against all later
    boxes), so memory stays at block x N and the Python loop does one vector op per kept box."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"nms: {len(boxes)} boxes but {len(scores)} scores")
    order = np.argsort(-scores, kind="stable")
    ordered = boxes[order]
    suppressed = np.zeros(len(order), bool)
    keep = []
    for start in range(0, len(order), block):
        # Only boxes not yet suppressed by earlier blocks matter, as rows and as columns.
        rows = start + np.flatnonzero(~suppressed[start:start + block])
        cols = start + np.flatnonzero(~suppressed[start:])
        with np.errstate(invalid="ignore"):  # 0 / 0 for two empty boxes: NaN, never > threshold
            over = box_iou(ordered[rows], ordered[cols]) > iou_threshold
        for i, row in zip(rows, over):
            if not suppressed[i]:
                keep.append(i)
                suppressed[cols[row]] = True
    return order[np.asarray(keep, np.int64)]


def batched_nms(boxes, scores, labels, iou_threshold):
    """NMS within each label separately; kept indices by decreasing score (ties in input order)."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    keep = [np.flatnonzero(labels == c)[nms(boxes[labels == c], scores[labels == c], iou_threshold)]
            for c in np.unique(labels)]
    keep = np.concatenate(keep) if keep else np.zeros(0, np.int64)
    keep.sort()  # input order first, so the stable sort below breaks score ties by index
    return keep[np.argsort(-scores[keep], kind="stable")]

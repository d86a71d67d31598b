"""RefineDet detections from the four head outputs (numpy), as the authors' detection output.

ARM offsets refine the anchors, ODM offsets are decoded on the refined anchors; class scores of
anchors the ARM calls background with probability > ``neg_filter`` are zeroed; per class:
score > ``score_threshold``, the ``pre_nms_top_k`` best, NMS; then the ``keep_top_k`` best over
all classes. Boxes are clipped to the input and scaled to the original image: the network input
is the image resized to a fixed square without keeping the aspect ratio (Caffe's WARP).
"""
import numpy as np

from .box_coder import BoxCoder, xyxy_to_cxcywh
from .nms import batched_nms


def softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


class RefineDetPostProcess:
    """``__call__(arm_loc, arm_conf, odm_loc, odm_conf, image_sizes)``: one image ((A, k) arrays,
    ``image_sizes`` = (height, width)) -> ``(boxes (K, 4) x1,y1,x2,y2 pixels, scores (K,), labels
    (K,) in 1..C-1)``; a batch ((B, A, k) arrays, B sizes) -> a list of such tuples. Confidences
    are logits."""

    def __init__(self, anchors, variances=(0.1, 0.2), num_classes=21, score_threshold=0.01,
                 pre_nms_top_k=1000, nms_threshold=0.45, keep_top_k=500, neg_filter=0.99):
        self.anchors = np.asarray(anchors, np.float32).reshape(-1, 4)
        self.coder = BoxCoder(variances)
        self.num_classes = num_classes
        self.score_threshold, self.pre_nms_top_k = score_threshold, pre_nms_top_k
        self.nms_threshold, self.keep_top_k, self.neg_filter = nms_threshold, keep_top_k, neg_filter

    def decode_boxes(self, arm_loc, odm_loc):
        """Normalised x1,y1,x2,y2 boxes of one image: ODM offsets on the ARM-refined anchors."""
        refined = xyxy_to_cxcywh(self.coder.decode(arm_loc, self.anchors))
        return self.coder.decode(odm_loc, refined)

    def scores(self, arm_conf, odm_conf):
        """(A, C) class probabilities with filtered anchors zeroed."""
        probs = softmax(odm_conf)
        probs[softmax(arm_conf)[:, 0] > self.neg_filter] = 0.0
        return probs

    def _single(self, arm_loc, arm_conf, odm_loc, odm_conf, image_size):
        num_anchors = len(self.anchors)
        shapes = {"arm_loc": (np.shape(arm_loc), 4), "arm_conf": (np.shape(arm_conf), 2),
                  "odm_loc": (np.shape(odm_loc), 4), "odm_conf": (np.shape(odm_conf), self.num_classes)}
        for name, (shape, k) in shapes.items():
            if tuple(shape) != (num_anchors, k):
                raise ValueError(f"{name} has shape {tuple(shape)}, expected ({num_anchors}, {k})")
        boxes = self.decode_boxes(arm_loc, odm_loc)
        probs = self.scores(arm_conf, odm_conf)
        cand_box, cand_score, cand_label = [], [], []
        for c in range(1, self.num_classes):
            idx = np.flatnonzero(probs[:, c] > self.score_threshold)
            idx = idx[np.argsort(-probs[idx, c], kind="stable")[:self.pre_nms_top_k]]
            cand_box.append(boxes[idx])
            cand_score.append(probs[idx, c])
            cand_label.append(np.full(len(idx), c, np.int64))
        boxes, scores = np.concatenate(cand_box), np.concatenate(cand_score)
        labels = np.concatenate(cand_label)
        keep = batched_nms(boxes, scores, labels, self.nms_threshold)[:self.keep_top_k]
        height, width = image_size
        out = np.clip(boxes[keep], 0.0, 1.0) * np.array([width, height, width, height], np.float64)
        return out.astype(np.float32), scores[keep].astype(np.float32), labels[keep]

    def __call__(self, arm_loc, arm_conf, odm_loc, odm_conf, image_sizes):
        arrays = [np.asarray(a) for a in (arm_loc, arm_conf, odm_loc, odm_conf)]
        if arrays[0].ndim == 2:
            return self._single(*arrays, tuple(image_sizes))
        sizes = np.asarray(image_sizes).reshape(-1, 2)
        if len(sizes) != len(arrays[0]):
            raise ValueError(f"{len(sizes)} image sizes for a batch of {len(arrays[0])}")
        return [self._single(*(a[i] for a in arrays), tuple(sizes[i])) for i in range(len(sizes))]

"""SSD / RefineDet matching of anchors to ground truth (numpy, one image).

Each anchor takes the ground truth it overlaps most when that IoU >= ``threshold``; before that,
the best anchor of every ground truth is forced onto it (a later ground truth wins an anchor that
is best for two, as the authors' loop does), so no object goes unmatched. Ground truth that
touches no anchor at all (IoU 0, e.g. a degenerate box) is not forced, as in Caffe's matcher.
"""
import numpy as np

from .box_coder import box_iou


def match(gt_boxes_xyxy, anchors_xyxy, threshold=0.5, gt_mask=None):
    """(A,) int64: index of the ground truth each anchor is matched to, -1 for background.

    ``gt_mask`` (M,) marks real boxes (1) and padding (0); padding never matches.
    """
    gt = np.asarray(gt_boxes_xyxy, np.float64).reshape(-1, 4)
    num_anchors = len(np.asarray(anchors_xyxy).reshape(-1, 4))
    valid = np.ones(len(gt), bool) if gt_mask is None else np.asarray(gt_mask).reshape(-1) > 0.5
    if len(valid) != len(gt):
        raise ValueError(f"gt_mask has {len(valid)} entries for {len(gt)} boxes")
    result = np.full(num_anchors, -1, np.int64)
    if not valid.any() or num_anchors == 0:
        return result
    real = np.flatnonzero(valid)
    iou = box_iou(gt[real], anchors_xyxy)  # (G, A)
    best_gt = iou.argmax(0)
    overlap = iou.max(0)
    for g, anchor in enumerate(iou.argmax(1)):
        if iou[g, anchor] > 0:
            best_gt[anchor], overlap[anchor] = g, 2.0
    keep = overlap >= threshold
    result[keep] = real[best_gt[keep]]
    return result

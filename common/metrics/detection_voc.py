"""PASCAL VOC detection AP: VOC07 11-point and VOC2010+ all-point interpolation, per class.

Matching follows the official devkit (``VOCevaldet.m``): detections in descending score order
are matched to the ground-truth box of their class with the highest IoU when that IoU is
>= the threshold; a hit on an already matched box is a false positive, a hit on a "difficult" box
counts as neither, and difficult boxes are left out of the recall denominator. ``plus_one``
selects the devkit's pixel-inclusive areas (``x2 - x1 + 1``).

Matching only ever looks at one image, so :meth:`VOCDetectionMetric.update` decides each
detection's true/false positive at once and keeps just (score, flag) pairs.
"""
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.metrics._cli import MetricInputError, pair_by_stem

# Exactly 0.0, 0.1, ..., 1.0; np.arange(0, 1.1, 0.1) has 0.30000000000000004 and so misses a recall
# of exactly 0.3.
ELEVEN_RECALLS = np.arange(11) / 10


def box_iou(a, b, plus_one=False):
    """(len(a), len(b)) IoU of boxes given as x1, y1, x2, y2."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    one = 1.0 if plus_one else 0.0
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + one
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + one
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def match_image(det_boxes, det_scores, gt_boxes, gt_difficult, iou_threshold, plus_one=False):
    """(scores, is_true_positive) of one image and class, with hits on difficult boxes dropped."""
    order = np.argsort(-np.asarray(det_scores, np.float64), kind="stable")
    scores = np.asarray(det_scores, np.float64)[order]
    if len(gt_boxes) == 0:
        return scores, np.zeros(len(scores), bool)
    iou = box_iou(np.asarray(det_boxes).reshape(-1, 4)[order], gt_boxes, plus_one)
    used = np.zeros(len(gt_boxes), bool)
    keep = np.ones(len(scores), bool)
    tp = np.zeros(len(scores), bool)
    for i, row in enumerate(iou):
        j = int(np.argmax(row))
        if row[j] < iou_threshold:
            continue
        if gt_difficult[j]:
            keep[i] = False
        elif not used[j]:
            tp[i] = used[j] = True
    return scores[keep], tp[keep]


def ap_eleven_point(recall, precision):
    """VOC2007: mean over recall levels 0, 0.1, ..., 1 of the best precision at recall >= level."""
    return float(np.mean([precision[recall >= r].max(initial=0.0) for r in ELEVEN_RECALLS]))


def ap_all_point(recall, precision):
    """VOC2010+: area under the precision envelope (precision made non-increasing in recall)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


class VOCDetectionMetric:
    """Streaming per-class VOC AP. Labels may be any hashable (class index or name)."""

    def __init__(self, iou_threshold=0.5, plus_one=False):
        self.iou_threshold = iou_threshold
        self.plus_one = plus_one
        self._scores = defaultdict(list)
        self._tp = defaultdict(list)
        self._num_gt = defaultdict(int)
        self.num_images = 0

    def update(self, boxes, scores, labels, gt_boxes, gt_labels, gt_difficult=None):
        """One image: detections (N, 4) x1y1x2y2 with scores (N,) and labels (N,); ground truth
        (M, 4) with labels (M,) and optional difficult flags (M,)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        # object arrays compare elementwise whatever the label type (an empty float array would not)
        labels = np.asarray(labels, dtype=object).reshape(-1)
        gt_labels = np.asarray(gt_labels, dtype=object).reshape(-1)
        difficult = (np.zeros(len(gt_boxes), bool) if gt_difficult is None
                     else np.asarray(gt_difficult, bool))
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f"{len(boxes)} boxes, {len(scores)} scores and {len(labels)} labels "
                             "differ in number")
        if not len(gt_boxes) == len(gt_labels) == len(difficult):
            raise ValueError(f"{len(gt_boxes)} ground-truth boxes, {len(gt_labels)} labels and "
                             f"{len(difficult)} difficult flags differ in number")
        for cls in set(labels.tolist()) | set(gt_labels.tolist()):
            d, g = labels == cls, gt_labels == cls
            self._num_gt[cls] += int(np.count_nonzero(g & ~difficult))
            s, tp = match_image(boxes[d], scores[d], gt_boxes[g], difficult[g], self.iou_threshold,
                                self.plus_one)
            self._scores[cls].extend(s.tolist())
            self._tp[cls].extend(tp.tolist())
        self.num_images += 1

    def class_curve(self, cls):
        """(recall, precision) of one class over detections in descending score order."""
        order = np.argsort(-np.asarray(self._scores[cls], np.float64), kind="stable")
        tp = np.asarray(self._tp[cls], bool)[order]
        ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
        return ctp / max(self._num_gt[cls], 1), ctp / np.maximum(ctp + cfp, 1)

    def result(self):
        """Per-class AP (NaN for a class without non-difficult ground truth, left out of the
        means) and the means over classes."""
        if self.num_images == 0:
            raise MetricInputError("no images were given to the VOC detection metric")
        per_class = {}
        for cls in sorted(set(self._num_gt) | set(self._scores), key=str):
            recall, precision = self.class_curve(cls)
            has_gt = self._num_gt[cls] > 0
            per_class[str(cls)] = {
                "ap_11point": ap_eleven_point(recall, precision) if has_gt else float("nan"),
                "ap_all_point": ap_all_point(recall, precision) if has_gt else float("nan"),
                "num_gt": self._num_gt[cls],
                "num_det": len(self._scores[cls]),
            }

        def mean(key):
            values = [v[key] for v in per_class.values() if v["num_gt"] > 0]
            return float(np.mean(values)) if values else float("nan")
        return {"map_11point": mean("ap_11point"), "map_all_point": mean("ap_all_point"),
                "per_class": per_class, "iou_threshold": self.iou_threshold,
                "plus_one": self.plus_one, "num_images": self.num_images}


def _read_box_lines(path, with_score):
    """Padilla's layout: ``class x y w h`` (ground truth) or ``class conf x y w h`` per line,
    absolute pixels, top-left corner plus size; returns labels, scores, x1y1x2y2 boxes."""
    labels, scores, boxes = [], [], []
    n_fields = 6 if with_score else 5
    for line_no, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != n_fields:
            layout = "class conf x y w h" if with_score else "class x y w h"
            raise MetricInputError(f"{path}:{line_no}: expected {n_fields} fields ({layout}), got {line!r}")
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError:
            raise MetricInputError(f"{path}:{line_no}: non-numeric value in {line!r}") from None
        if with_score:
            scores.append(values.pop(0))
        x, y, w, h = values
        labels.append(fields[0])
        boxes.append((x, y, x + w, y + h))
    return labels, scores, np.asarray(boxes, np.float64).reshape(-1, 4)


def evaluate_txt_folders(gt_dir, det_dir, iou_threshold=0.5, plus_one=False):
    """Score a folder of per-image detection .txt files against a folder of ground-truth .txt."""
    metric = VOCDetectionMetric(iou_threshold, plus_one)
    pairs = pair_by_stem(det_dir, gt_dir, pred_what="detection", suffixes=(".txt",))
    for _, det_path, gt_path in tqdm(pairs, desc="VOC AP", unit="img"):
        gt_labels, _, gt_boxes = _read_box_lines(gt_path, with_score=False)
        labels, scores, boxes = _read_box_lines(det_path, with_score=True)
        metric.update(boxes, scores, labels, gt_boxes, gt_labels)
    return metric

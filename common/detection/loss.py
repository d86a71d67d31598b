"""RefineDet's two-step multibox loss (MindSpore, static shapes, graph mode).

ARM: binary objectness against the default anchors. ODM: classes against the ARM-refined anchors
(ARM offsets decoded on the anchors, gradient stopped), where anchors the ARM calls background
with probability > ``neg_filter_threshold`` are ignored. Each part: Smooth L1 on positives plus
softmax cross-entropy on positives and the hardest ``neg_pos_ratio`` x as many negatives per
image, divided by the batch's number of positives (at least 1), as the authors' loss.
Matching happens inside the loss on the padded ground truth because the ODM targets depend on
the ARM's predictions.
"""
import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from .box_coder import cxcywh_to_xyxy, ms_box_iou, ms_decode, ms_encode, ms_xyxy_to_cxcywh


def match_anchors(iou, valid, threshold):
    """SSD matching on a batch: ``iou`` (B, M, A), ``valid`` (B, M) bool -> (index (B, A) int32,
    positive (B, A) bool). The best anchor of every real ground truth is forced (if it overlaps
    at all; a later ground truth wins a shared anchor), then IoU >= ``threshold``. Padding never
    matches. ``index`` is 0 where not positive, so it can be used to gather."""
    batch, num_gt, num_anchors = iou.shape
    iou = ops.where(valid.expand_dims(-1), iou, ops.zeros_like(iou))
    best_anchor_iou, best_anchor = ops.max(iou, axis=2)  # (B, M)
    forceable = ops.logical_and(valid, best_anchor_iou > 0)
    # Scatter each forceable gt id onto its best anchor; max = the later gt wins, -1 = none.
    gt_ids = ops.arange(num_gt, dtype=ms.int32).reshape(1, -1).broadcast_to((batch, num_gt))
    updates = ops.where(forceable, gt_ids, ops.full_like(gt_ids, -1)).reshape(-1)
    image_ids = ops.arange(batch, dtype=ms.int32).reshape(-1, 1).broadcast_to((batch, num_gt))
    where = ops.stack([image_ids, best_anchor.astype(ms.int32)], -1).reshape(-1, 2)
    forced_gt = ops.tensor_scatter_max(ops.full((batch, num_anchors), -1, dtype=ms.int32), where, updates)
    best_iou, best_gt = ops.max(iou, axis=1)  # (B, A)
    is_forced = forced_gt >= 0
    index = ops.where(is_forced, forced_gt, best_gt.astype(ms.int32))
    positive = ops.logical_or(is_forced, best_iou >= threshold)
    return ops.where(positive, index, ops.zeros_like(index)), positive


def softmax_cross_entropy(logits, labels):
    """Per-anchor CE: (B, A, C) logits, (B, A) int labels -> (B, A)."""
    one_hot = ops.one_hot(labels, logits.shape[-1], Tensor(1.0, ms.float32), Tensor(0.0, ms.float32))
    return ops.logsumexp(logits, -1) - (logits * one_hot).sum(-1)


def hard_negative_mask(loss, positive, candidate, neg_pos_ratio):
    """Per image the ``neg_pos_ratio * num_positive`` candidates with the largest ``loss`` (all of
    them if fewer), by ranking (sort, then sort the order). An image without positives gets none."""
    score = ops.stop_gradient(ops.where(candidate, loss, ops.full_like(loss, -1.0)))  # CE >= 0
    order = ops.argsort(score, axis=-1, descending=True)
    rank = ops.argsort(order.astype(ms.float32), axis=-1)
    num_neg = ops.minimum(positive.astype(ms.int32).sum(-1) * neg_pos_ratio, candidate.astype(ms.int32).sum(-1))
    return ops.logical_and(rank < num_neg.expand_dims(-1), candidate)


def _smooth_l1_sum(pred, target, positive):
    loss = ops.smooth_l1_loss(pred, target, beta=1.0, reduction="none").sum(-1)
    return (loss * positive.astype(ms.float32)).sum()


class RefineDetLoss(nn.Cell):
    """``construct(outputs, gt_boxes, gt_labels, gt_mask)`` -> ``(total, parts)``.

    ``outputs`` = (arm_loc (B, A, 4), arm_conf (B, A, 2) logits, odm_loc (B, A, 4), odm_conf
    (B, A, C) logits); ``gt_boxes`` (B, M, 4) normalised x1,y1,x2,y2, ``gt_labels`` (B, M) int32 in
    1..C-1, ``gt_mask`` (B, M) 1 for real boxes. ``anchors`` (A, 4) are the (cx, cy, w, h) default
    boxes. ``total`` = sum of the four normalised parts.
    """

    part_names = ("arm_loc", "arm_conf", "odm_loc", "odm_conf")

    def __init__(self, num_classes, anchors, variances=(0.1, 0.2), overlap=0.5, neg_pos_ratio=3,
                 neg_filter_threshold=0.99):
        super().__init__()
        anchors = np.asarray(anchors, np.float32)
        if anchors.ndim != 2 or anchors.shape[1] != 4:
            raise ValueError(f"anchors must be (A, 4) cx,cy,w,h, got shape {anchors.shape}")
        if num_classes < 2:
            raise ValueError(f"num_classes {num_classes} must count the background too (>= 2)")
        self.num_classes = num_classes
        self.num_anchors = len(anchors)
        self.anchors = Tensor(anchors)
        self.anchors_xyxy = Tensor(cxcywh_to_xyxy(anchors).astype(np.float32))
        self.variances = tuple(float(v) for v in variances)
        self.overlap = float(overlap)
        self.neg_pos_ratio = int(neg_pos_ratio)
        self.neg_filter_threshold = float(neg_filter_threshold)

    def masks(self, outputs, gt_boxes, gt_labels, gt_mask):
        """Targets and sample masks: (arm_index, arm_pos, arm_cand, odm_index, odm_pos, odm_cand,
        odm_labels, refined_cxcywh). ``*_cand`` are the negatives hard mining may pick from."""
        arm_loc, arm_conf = outputs[0], outputs[1]
        valid = gt_mask > 0.5
        arm_index, arm_pos = match_anchors(ms_box_iou(gt_boxes, self.anchors_xyxy), valid, self.overlap)
        arm_cand = ops.logical_not(arm_pos)

        refined = ops.stop_gradient(ms_decode(arm_loc.astype(ms.float32), self.anchors, self.variances))
        odm_index, odm_pos = match_anchors(ms_box_iou(gt_boxes, refined), valid, self.overlap)
        background = ops.stop_gradient(ops.softmax(arm_conf.astype(ms.float32), -1)[..., 0])
        kept = background <= self.neg_filter_threshold
        odm_pos = ops.logical_and(odm_pos, kept)
        odm_cand = ops.logical_and(kept, ops.logical_not(odm_pos))
        labels = ops.gather(gt_labels.astype(ms.int32), odm_index, 1, batch_dims=1)
        odm_labels = ops.where(odm_pos, labels, ops.zeros_like(labels))
        return (arm_index, arm_pos, arm_cand, odm_index, odm_pos, odm_cand, odm_labels,
                ms_xyxy_to_cxcywh(refined))

    def _part(self, loc, conf, loc_target, labels, positive, candidate):
        ce = softmax_cross_entropy(conf, labels)
        negative = hard_negative_mask(ce, positive, candidate, self.neg_pos_ratio)
        sampled = ops.logical_or(positive, negative).astype(ms.float32)
        num_pos = ops.maximum(positive.astype(ms.float32).sum(), 1.0)
        return _smooth_l1_sum(loc, loc_target, positive) / num_pos, (ce * sampled).sum() / num_pos

    def construct(self, outputs, gt_boxes, gt_labels, gt_mask):
        arm_loc, arm_conf = outputs[0].astype(ms.float32), outputs[1].astype(ms.float32)
        odm_loc, odm_conf = outputs[2].astype(ms.float32), outputs[3].astype(ms.float32)
        if arm_loc.shape[1] != self.num_anchors or odm_conf.shape[2] != self.num_classes:
            raise ValueError(f"RefineDetLoss: outputs have {arm_loc.shape[1]} anchors and {odm_conf.shape[2]} "
                             f"classes, expected {self.num_anchors} anchors and {self.num_classes} classes")
        gt_boxes = gt_boxes.astype(ms.float32)
        arm_index, arm_pos, arm_cand, odm_index, odm_pos, odm_cand, odm_labels, refined = self.masks(
            (arm_loc, arm_conf), gt_boxes, gt_labels, gt_mask)

        arm_boxes = ops.gather(gt_boxes, arm_index, 1, batch_dims=1)
        arm_target = ms_encode(arm_boxes, self.anchors, self.variances)
        arm_l, arm_c = self._part(arm_loc, arm_conf, arm_target, arm_pos.astype(ms.int32), arm_pos, arm_cand)

        odm_boxes = ops.gather(gt_boxes, odm_index, 1, batch_dims=1)
        odm_target = ms_encode(odm_boxes, refined, self.variances)
        odm_l, odm_c = self._part(odm_loc, odm_conf, odm_target, odm_labels, odm_pos, odm_cand)
        return arm_l + arm_c + odm_l + odm_c, (arm_l, arm_c, odm_l, odm_c)

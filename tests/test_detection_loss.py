"""RefineDetLoss against an independent numpy reference (explicit loops, float64), graph mode
against PyNative, hard negative mining counts, negative anchor filtering and gradients."""
import math

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from common.detection import AnchorGenerator, RefineDetLoss

VAR = (0.1, 0.2)


# ---------------------------------------------------------------- numpy reference

def ref_iou(box, other):
    """Float32 like the implementation: a small box inside several same-size anchors has
    mathematically equal IoUs with them, and only the same rounding breaks the tie the same way."""
    box, other = np.asarray(box, np.float32), np.asarray(other, np.float32)
    zero = np.float32(0)
    iw = max(zero, min(box[2], other[2]) - max(box[0], other[0]))
    ih = max(zero, min(box[3], other[3]) - max(box[1], other[1]))
    inter = iw * ih
    union = (box[2] - box[0]) * (box[3] - box[1]) + (other[2] - other[0]) * (other[3] - other[1]) - inter
    return inter / union if union > 0 else zero


def ref_match(gts, priors_xyxy, threshold):
    """SSD matching by loops: per prior its best gt; then each gt's best prior forced (in gt order)."""
    num = len(priors_xyxy)
    overlaps = np.array([[ref_iou(g, p) for p in priors_xyxy] for g in gts]).reshape(len(gts), num)
    assigned, best = np.full(num, -1), np.full(num, -1.0)
    for p in range(num):
        for g in range(len(gts)):
            if overlaps[g, p] > best[p]:
                best[p], assigned[p] = overlaps[g, p], g
    for g in range(len(gts)):
        p = int(np.argmax(overlaps[g]))
        if overlaps[g, p] > 0:
            best[p], assigned[p] = 2.0, g
    return np.where(best >= threshold, assigned, -1)


def ref_encode(box, prior):
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    w, h = box[2] - box[0], box[3] - box[1]
    return np.array([(cx - prior[0]) / (VAR[0] * prior[2]), (cy - prior[1]) / (VAR[0] * prior[3]),
                     math.log(w / prior[2]) / VAR[1], math.log(h / prior[3]) / VAR[1]])


def ref_decode(delta, prior):
    cx, cy = prior[0] + delta[0] * VAR[0] * prior[2], prior[1] + delta[1] * VAR[0] * prior[3]
    w, h = prior[2] * math.exp(delta[2] * VAR[1]), prior[3] * math.exp(delta[3] * VAR[1])
    return np.array([cx, cy, w, h])


def to_xyxy(b):
    return np.array([b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2])


def ce(logits, label):
    m = logits.max()
    return m + math.log(np.exp(logits - m).sum()) - logits[label]


def smooth_l1(d):
    d = abs(d)
    return 0.5 * d * d if d < 1 else d - 0.5


def ref_part(loc, conf, priors, gts, labels, ignored, ratio=3):
    """(loc sum, conf sum, positives, negatives) of one image for one head."""
    priors_xyxy = [to_xyxy(np.asarray(p, np.float32)) for p in priors]
    assigned = ref_match(gts, priors_xyxy, 0.5) if len(gts) else np.full(len(priors), -1)
    loc_sum, pos, negatives = 0.0, [], []
    for a, g in enumerate(assigned):
        if ignored[a]:
            continue
        if g >= 0:
            pos.append(a)
            loc_sum += sum(smooth_l1(p - t) for p, t in zip(loc[a], ref_encode(gts[g], priors[a])))
        else:
            negatives.append((ce(conf[a], 0), a))
    negatives.sort(key=lambda pair: -pair[0])
    chosen = [a for _, a in negatives[:ratio * len(pos)]]
    conf_sum = sum(ce(conf[a], labels[assigned[a]]) for a in pos) + sum(ce(conf[a], 0) for a in chosen)
    return loc_sum, conf_sum, len(pos), len(chosen)


def reference_loss(outputs, anchors, gt_boxes, gt_labels, gt_mask, threshold=0.99):
    arm_loc, arm_conf, odm_loc, odm_conf = (np.asarray(o, np.float64) for o in outputs)
    sums = np.zeros(4)
    counts = np.zeros(4, int)  # arm pos, arm neg, odm pos, odm neg
    for i in range(len(arm_loc)):
        real = gt_mask[i] > 0.5
        gts, labels = gt_boxes[i][real].astype(np.float64), gt_labels[i][real]
        l, c, p, n = ref_part(arm_loc[i], arm_conf[i], anchors, gts, np.ones(len(gts), int),
                              np.zeros(len(anchors), bool))
        sums[:2] += l, c
        counts[:2] += p, n
        refined = [ref_decode(d, a) for d, a in zip(arm_loc[i], anchors)]
        bg = [math.exp(-ce(logit, 0)) for logit in arm_conf[i]]
        ignored = np.array([b > threshold for b in bg])
        l, c, p, n = ref_part(odm_loc[i], odm_conf[i], refined, gts, labels, ignored)
        sums[2:] += l, c
        counts[2:] += p, n
    parts = [sums[0] / max(counts[0], 1), sums[1] / max(counts[0], 1),
             sums[2] / max(counts[2], 1), sums[3] / max(counts[2], 1)]
    return sum(parts), parts, counts


# ---------------------------------------------------------------- inputs

def make_batch(seed, anchors, num_classes=5, batch=3, max_boxes=8, boxes_per_image=(3, 0, 5)):
    rng = np.random.default_rng(seed)
    a = len(anchors)
    outputs = [rng.normal(size=(batch, a, 4)).astype(np.float32),
               (rng.normal(size=(batch, a, 2)) * 3).astype(np.float32),  # some bg prob > 0.99
               rng.normal(size=(batch, a, 4)).astype(np.float32),
               rng.normal(size=(batch, a, num_classes)).astype(np.float32)]
    xy = rng.uniform(0, 0.7, (batch, max_boxes, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.03, 0.3, xy.shape)], -1).astype(np.float32)
    labels = rng.integers(1, num_classes, (batch, max_boxes)).astype(np.int32)
    mask = np.zeros((batch, max_boxes), np.float32)
    for i, n in enumerate(boxes_per_image):
        mask[i, :n] = 1
    boxes[mask == 0] = 0.0  # padding as the engine's batcher writes it
    labels[mask == 0] = 0
    return outputs, boxes, labels, mask


def run(loss, outputs, boxes, labels, mask):
    total, parts = loss(tuple(Tensor(o) for o in outputs), Tensor(boxes), Tensor(labels), Tensor(mask))
    return float(total), [float(p) for p in parts]


@pytest.fixture(scope="module")
def anchors():
    return AnchorGenerator().generate(160)  # 20x20, 10x10, 5x5, 3x3 levels: 1,602 anchors


# ---------------------------------------------------------------- tests

def test_part_names_follow_the_contract():
    assert RefineDetLoss.part_names == ("arm_loc", "arm_conf", "odm_loc", "odm_conf")


def test_outputs_for_other_anchors_are_refused(pynative, anchors):
    outputs, boxes, labels, mask = make_batch(0, anchors[:-3], batch=1, boxes_per_image=(1,))
    with pytest.raises(ValueError, match="1599 anchors and 5 classes, expected 1602 anchors"):
        run(RefineDetLoss(5, anchors), outputs, boxes, labels, mask)


def test_loss_equals_numpy_reference(pynative, anchors):
    outputs, boxes, labels, mask = make_batch(0, anchors, batch=4, boxes_per_image=(3, 0, 5, 8))
    total, parts = run(RefineDetLoss(5, anchors), outputs, boxes, labels, mask)
    ref_total, ref_parts, counts = reference_loss(outputs, anchors, boxes, labels, mask)
    # The case exercises every branch: positives, 3:1 mining, ignored ODM anchors.
    assert counts[0] > 0 and counts[1] == 3 * counts[0] and counts[2] > 0 and 0 < counts[3] <= 3 * counts[2]
    np.testing.assert_allclose(parts, ref_parts, rtol=2e-5)
    assert total == pytest.approx(ref_total, rel=2e-5)


def test_negative_filtering_removes_an_anchor_with_bg_prob_0995(pynative):
    """Each image has one ground truth equal to anchor 0; the ARM's background probability at
    anchor 0 decides whether the ODM sees that positive (0.985, image 0) or ignores it (0.995,
    image 1: neither positive nor negative, and with no positive no negatives are mined)."""
    anchors = np.array([[0.2, 0.2, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2], [0.5, 0.5, 0.1, 0.1],
                        [0.2, 0.8, 0.1, 0.1], [0.8, 0.2, 0.1, 0.1]], np.float32)
    boxes = np.array([[[0.1, 0.1, 0.3, 0.3], [0, 0, 0, 0]]] * 2, np.float32)
    labels, mask = np.array([[2, 0]] * 2, np.int32), np.array([[1, 0]] * 2, np.float32)
    loss = RefineDetLoss(3, anchors)
    arm_loc = np.zeros((2, 5, 4), np.float32)
    arm_conf = np.log(np.array([[[bg, 1 - bg]] + [[0.5, 0.5]] * 4 for bg in (0.985, 0.995)], np.float32))
    odm_conf = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    outputs = (arm_loc, arm_conf, arm_loc + 0.3, odm_conf)
    masks = loss.masks(tuple(Tensor(o) for o in outputs), Tensor(boxes), Tensor(labels), Tensor(mask))
    arm_pos, odm_pos, odm_cand = masks[1].asnumpy(), masks[4].asnumpy(), masks[5].asnumpy()
    assert arm_pos.tolist() == [[True, False, False, False, False]] * 2  # the ARM is not filtered
    assert odm_pos.tolist() == [[True, False, False, False, False], [False] * 5]
    assert odm_cand.tolist() == [[False, True, True, True, True], [False, True, True, True, True]]
    parts = run(loss, outputs, boxes, labels, mask)[1]
    ref_parts, counts = reference_loss(outputs, anchors, boxes, labels, mask)[1:]
    assert counts.tolist() == [2, 6, 1, 3]
    np.testing.assert_allclose(parts, ref_parts, rtol=1e-5, atol=1e-6)
    # Same inputs without the filter (threshold 1): image 1's anchor 0 is a positive again.
    unfiltered = RefineDetLoss(3, anchors, neg_filter_threshold=1.0)
    ref_unfiltered, counts = reference_loss(outputs, anchors, boxes, labels, mask, threshold=1.0)[1:]
    assert counts.tolist() == [2, 6, 2, 6]
    np.testing.assert_allclose(run(unfiltered, outputs, boxes, labels, mask)[1], ref_unfiltered, rtol=1e-5,
                               atol=1e-6)
    assert ref_unfiltered[3] != pytest.approx(ref_parts[3])


def conf_gradient_rows(loss, outputs, boxes, labels, mask):
    """Anchors per image whose ARM / ODM confidences get a gradient from the conf parts: the
    positives plus the mined negatives that contribute."""
    def f(arm_conf, odm_conf):
        outs = (Tensor(outputs[0]), arm_conf, Tensor(outputs[2]), odm_conf)
        parts = loss(outs, Tensor(boxes), Tensor(labels), Tensor(mask))[1]
        return parts[1] + parts[3]

    grads = ms.grad(f, grad_position=(0, 1))(Tensor(outputs[1]), Tensor(outputs[3]))
    return [(np.abs(g.asnumpy()).sum(-1) > 0).sum(-1) for g in grads]


def test_hard_negative_mining_keeps_three_negatives_per_positive(pynative, anchors):
    outputs, boxes, labels, mask = make_batch(2, anchors)
    loss = RefineDetLoss(5, anchors)
    masks = loss.masks(tuple(Tensor(o) for o in outputs), Tensor(boxes), Tensor(labels), Tensor(mask))
    arm_pos = masks[1].asnumpy().sum(-1)
    odm_pos, odm_cand = masks[4].asnumpy().sum(-1), masks[5].asnumpy().sum(-1)
    assert arm_pos[1] == 0 and (arm_pos[[0, 2]] > 0).all()
    arm_rows, odm_rows = conf_gradient_rows(loss, outputs, boxes, labels, mask)
    # ARM: plenty of candidates, so exactly 4x positives contribute; the empty image none.
    np.testing.assert_array_equal(arm_rows, 4 * arm_pos)
    np.testing.assert_array_equal(odm_rows, odm_pos + np.minimum(3 * odm_pos, odm_cand))


def test_graph_mode_equals_pynative_and_gradients_are_finite(anchors):
    outputs, boxes, labels, mask = make_batch(3, anchors, batch=2, boxes_per_image=(4, 0))
    loss = RefineDetLoss(5, anchors)

    def f(a, b, c, d, gt, lab, m):
        return loss((a, b, c, d), gt, lab, m)

    grad_fn = ms.value_and_grad(f, grad_position=(0, 1, 2, 3), has_aux=True)

    @ms.jit
    def graph_step(*args):
        return grad_fn(*args)

    args = [Tensor(o) for o in outputs] + [Tensor(boxes), Tensor(labels), Tensor(mask)]
    ms.set_device("CPU")
    old = ms.get_context("mode")
    try:
        ms.set_context(mode=ms.PYNATIVE_MODE)
        (eager_total, eager_parts), eager_grads = grad_fn(*args)
        ms.set_context(mode=ms.GRAPH_MODE)
        (graph_total, graph_parts), graph_grads = graph_step(*args)
    finally:
        ms.set_context(mode=old)
    assert float(eager_total) > 0
    assert float(graph_total) == pytest.approx(float(eager_total), rel=1e-6)
    np.testing.assert_allclose([float(p) for p in graph_parts], [float(p) for p in eager_parts], rtol=1e-6)
    for g_graph, g_eager in zip(graph_grads, eager_grads):
        assert np.isfinite(g_graph.asnumpy()).all()
        np.testing.assert_allclose(g_graph.asnumpy(), g_eager.asnumpy(), rtol=1e-5, atol=1e-8)
    # The empty image (index 1) gets no gradient at all: no positives, hence no negatives.
    assert all(np.abs(g.asnumpy()[1]).max() == 0 for g in eager_grads)


def test_all_images_empty_gives_zero_loss_and_finite_gradients(pynative, anchors):
    """No real boxes, apart from one zero-width box that overlaps nothing (so matches nothing):
    zero loss and zero, finite gradients, no NaN from 0 / 0 or log(0)."""
    outputs, boxes, labels, mask = make_batch(4, anchors, batch=2, boxes_per_image=(1, 0))
    boxes[0, 0] = [0.3, 0.3, 0.3, 0.5]
    loss = RefineDetLoss(5, anchors)

    def f(*outs):
        return loss(outs, Tensor(boxes), Tensor(labels), Tensor(mask))[0]

    total, grads = ms.value_and_grad(f, grad_position=(0, 1, 2, 3))(*(Tensor(o) for o in outputs))
    assert float(total) == 0.0
    assert all(np.isfinite(g.asnumpy()).all() and not g.asnumpy().any() for g in grads)


def test_odm_loss_does_not_backpropagate_into_the_arm(pynative, anchors):
    """Refined anchors and the filter are computed with the gradient stopped: the ODM parts have
    no gradient w.r.t. arm_loc / arm_conf (their values depend on them, as the reference test
    shows), while they do w.r.t. odm_loc / odm_conf."""
    outputs, boxes, labels, mask = make_batch(5, anchors, batch=2, boxes_per_image=(5, 2))
    loss = RefineDetLoss(5, anchors)

    def odm(*outs):
        parts = loss(outs, Tensor(boxes), Tensor(labels), Tensor(mask))[1]
        return parts[2] + parts[3]

    grads = ms.grad(odm, grad_position=(0, 1, 2, 3))(*(Tensor(o) for o in outputs))
    assert not grads[0].asnumpy().any() and not grads[1].asnumpy().any()
    assert np.abs(grads[2].asnumpy()).sum() > 0 and np.abs(grads[3].asnumpy()).sum() > 0

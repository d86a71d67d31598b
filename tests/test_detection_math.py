"""Detection maths of common/detection against hand-written values and independent references:
anchors, box coding, IoU, matching, NMS and RefineDet post-processing."""
import math

import numpy as np
import pytest
from mindspore import Tensor

from common.detection import (
    AnchorGenerator,
    BoxCoder,
    RefineDetPostProcess,
    batched_nms,
    box_iou,
    cxcywh_to_xyxy,
    match,
    nms,
)
from common.detection.box_coder import ms_box_iou, ms_decode, ms_encode
from common.detection.loss import match_anchors

S2 = math.sqrt(2)


# ---------------------------------------------------------------- anchors

def test_anchor_counts_and_written_out_boxes():
    gen = AnchorGenerator()
    assert gen.num_anchors_per_location() == 3
    a320, a512 = gen.generate(320), gen.generate(512)
    assert a320.shape == (6375, 4) and a320.dtype == np.float32
    assert a512.shape == (16320, 4)
    assert gen.feature_map_sizes(320) == [(40, 40), (20, 20), (10, 10), (5, 5)]
    assert gen.feature_map_sizes(512) == [(64, 64), (32, 32), (16, 16), (8, 8)]
    expected_first = [[0.0125, 0.0125, 0.1, 0.1],                 # 1:1 at row 0, col 0
                      [0.0125, 0.0125, 0.1 * S2, 0.1 / S2],       # 2:1
                      [0.0125, 0.0125, 0.1 / S2, 0.1 * S2],       # 1:2
                      [0.0375, 0.0125, 0.1, 0.1]]                 # col 1 of row 0 comes next
    np.testing.assert_allclose(a320[:4], expected_first, rtol=1e-6)
    # Level 2 (20x20, size 64) starts after 40*40*3 boxes.
    np.testing.assert_allclose(a320[4800], [0.025, 0.025, 0.2, 0.2], rtol=1e-6)
    # Last location of level 4: the 1:2 box 256/320 * (1/sqrt2, sqrt2) = (0.565685, 1.131) with
    # its height clipped to 1 (the authors' PriorBox gives this order; checked against it).
    np.testing.assert_allclose(a320[-1], [0.9, 0.9, 0.565685, 1.0], rtol=1e-6)
    np.testing.assert_allclose(a320[-2], [0.9, 0.9, 1.0, 0.565685], rtol=1e-6)
    # Clipping happens in (cx, cy, w, h) form and only cuts the size-256 boxes' long sides.
    assert a320.min() >= 0 and a320.max() == 1.0
    assert int((a320 == 1.0).sum()) == 50


def test_anchors_non_square_input_follow_width_and_height():
    gen = AnchorGenerator()
    anchors = gen.generate((160, 320))  # height 160, width 320
    assert gen.feature_map_sizes((160, 320)) == [(20, 40), (10, 20), (5, 10), (3, 5)]
    assert len(anchors) == 3 * (20 * 40 + 10 * 20 + 5 * 10 + 3 * 5)
    # cx = 4 / 320, cy = 4 / 160, w = 32 / 320, h = 32 / 160
    np.testing.assert_allclose(anchors[0], [0.0125, 0.025, 0.1, 0.2], rtol=1e-6)
    # second location of the first row moves along x by 8 px
    np.testing.assert_allclose(anchors[3], [0.0375, 0.025, 0.1, 0.2], rtol=1e-6)


@pytest.mark.parametrize("size", [(100, 70), (75, 133)])
def test_feature_map_sizes_equal_the_vgg16_backbone(pynative, size):
    """The rounding rule reproduces what RefineDet's VGG-16 (pool3 ceil mode) and its first
    extra layer (3x3 / 2 / pad 1) really output for sizes that are not multiples of 64."""
    from common.backbones.vgg import VGG16
    from common.layers import conv2d

    net = VGG16(out_indices=(0, 1, 2))
    extra = conv2d(1024, 8, 3, stride=2, padding=1)
    x = Tensor(np.zeros((1, 3, *size), np.float32))
    feats = net(x)
    shapes = [tuple(f.shape[2:]) for f in feats] + [tuple(extra(feats[-1]).shape[2:])]
    assert shapes == AnchorGenerator().feature_map_sizes(size)


# ---------------------------------------------------------------- box coding and IoU

def test_box_coder_round_trip_and_hand_values():
    coder = BoxCoder((0.1, 0.2))
    anchors = np.array([[0.5, 0.5, 0.2, 0.4], [0.1, 0.2, 0.1, 0.1]], np.float32)
    # Box equal to its anchor -> zeros; box shifted by half the anchor width and twice as tall.
    boxes = np.array([[0.4, 0.3, 0.6, 0.7], [0.1, 0.1, 0.2, 0.3]], np.float32)
    expected = [[0, 0, 0, 0], [0.5 / 0.1, 0.0, 0.0, math.log(2) / 0.2]]
    np.testing.assert_allclose(coder.encode(boxes, anchors), expected, atol=1e-5)
    rng = np.random.default_rng(0)
    anchors = AnchorGenerator().generate(320)
    xy = rng.uniform(0, 0.8, (len(anchors), 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.01, 0.5, xy.shape)], 1).astype(np.float32)
    back = coder.decode(coder.encode(boxes, anchors), anchors)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, boxes, rtol=0, atol=2e-6)


def test_box_iou_hand_cases():
    a = [[0, 0, 2, 2]]
    b = [[0, 0, 2, 2], [1, 0, 3, 2], [3, 3, 4, 4], [0, 0, 1, 1], [2, 0, 4, 2]]
    # identical, half shifted (2 / 6), disjoint, contained (1 / 4), touching edge
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 1 / 3, 0.0, 0.25, 0.0]])


def test_mindspore_box_ops_equal_numpy(pynative):
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 0.7, (2, 6, 2))
    gt = np.concatenate([xy, xy + rng.uniform(0.05, 0.3, xy.shape)], -1).astype(np.float32)
    anchors = AnchorGenerator().generate(320)[::50]
    coder = BoxCoder()
    iou = ms_box_iou(Tensor(gt), Tensor(cxcywh_to_xyxy(anchors).astype(np.float32))).asnumpy()
    np.testing.assert_allclose(iou, np.stack([box_iou(g, cxcywh_to_xyxy(anchors)) for g in gt]), atol=1e-6)
    boxes = gt[:, :1].repeat(len(anchors), 1)
    enc = ms_encode(Tensor(boxes), Tensor(anchors)).asnumpy()
    np.testing.assert_allclose(enc, coder.encode(boxes, anchors), rtol=1e-5, atol=1e-5)
    deltas = rng.normal(size=(2, len(anchors), 4)).astype(np.float32)
    np.testing.assert_allclose(ms_decode(Tensor(deltas), Tensor(anchors)).asnumpy(),
                               coder.decode(deltas, anchors), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- matching

# Four anchors (x1, y1, x2, y2): a0 and a1 overlap gt0, a2 is gt1's only (weak) overlap, a3 far.
ANCHORS = np.array([[0.0, 0.0, 0.4, 0.4], [0.1, 0.0, 0.5, 0.4], [0.6, 0.6, 1.0, 1.0],
                    [0.0, 0.8, 0.1, 0.9]], np.float32)
GT = np.array([[0.05, 0.0, 0.45, 0.4],     # IoU 0.6 with a0 and a1 (both >= 0.5)
               [0.8, 0.8, 1.0, 1.0]], np.float32)  # IoU 0.25 with a2: only by forcing


def test_match_forced_best_anchor_beats_threshold():
    assert box_iou(GT[1:], ANCHORS[2:3])[0, 0] == pytest.approx(0.25)
    np.testing.assert_array_equal(match(GT, ANCHORS, 0.5), [0, 0, 1, -1])
    # With only the weak box, its best anchor is still forced although 0.25 < 0.5.
    np.testing.assert_array_equal(match(GT[1:], ANCHORS, 0.5), [-1, -1, 0, -1])


def test_match_later_ground_truth_wins_a_shared_best_anchor():
    gt = np.array([[0.0, 0.0, 0.4, 0.4], [0.0, 0.0, 0.38, 0.4]], np.float32)  # both best at a0
    np.testing.assert_array_equal(match(gt, ANCHORS, 0.5), [1, 0, -1, -1])


def test_match_padding_never_matches():
    # The padding row is identical to a3 (IoU 1) and to a zero box; neither may match.
    gt = np.concatenate([GT, ANCHORS[3:4], np.zeros((1, 4), np.float32)])
    mask = np.array([1, 1, 0, 0], np.float32)
    np.testing.assert_array_equal(match(gt, ANCHORS, 0.5, gt_mask=mask), [0, 0, 1, -1])
    np.testing.assert_array_equal(match(gt[2:], ANCHORS, 0.5, gt_mask=mask[2:]), [-1, -1, -1, -1])


def test_mindspore_matching_equals_numpy_on_hand_cases(pynative):
    gt = np.stack([np.concatenate([GT, ANCHORS[3:4], np.zeros((1, 4), np.float32)]),
                   np.concatenate([ANCHORS[3:4], np.zeros((3, 4), np.float32)])])
    mask = np.array([[1, 1, 0, 0], [0, 0, 0, 0]], np.float32)
    iou = ms_box_iou(Tensor(gt), Tensor(ANCHORS))
    index, positive = match_anchors(iou, Tensor(mask) > 0.5, 0.5)
    result = np.where(positive.asnumpy(), index.asnumpy(), -1)
    np.testing.assert_array_equal(result, [[0, 0, 1, -1], [-1, -1, -1, -1]])


# ---------------------------------------------------------------- NMS

def brute_force_nms(boxes, scores, threshold):
    """Different algorithm: the full suppression matrix, kept set found as a fixed point
    (box i is kept iff no kept box earlier in score order overlaps it by > threshold)."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    iou = box_iou(boxes, boxes)
    rank = np.empty(len(order), int)
    rank[order] = np.arange(len(order))
    earlier = rank[None, :] < rank[:, None]  # earlier[i, j]: j before i
    suppress = (iou > threshold) & earlier
    keep = np.ones(len(scores), bool)
    for _ in range(len(scores) + 1):
        new = ~(suppress & keep[None, :]).any(1)
        if (new == keep).all():
            break
        keep = new
    return [i for i in order if keep[i]]


def random_boxes(rng, n, scale=100.0):
    xy = rng.uniform(0, scale, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(1, scale / 3, (n, 2))], 1)


@pytest.mark.parametrize("seed", range(5))
def test_nms_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 200)
    scores = rng.uniform(size=200)
    scores[::7] = 0.5  # ties, broken by input order
    for threshold in (0.3, 0.45, 0.7):
        keep = nms(boxes, scores, threshold)
        expected = brute_force_nms(boxes, scores, threshold)
        assert keep.tolist() == expected
        assert 0 < len(keep) < 200
        assert nms(boxes, scores, threshold, block=16).tolist() == expected  # across row blocks


def test_nms_hand_case_and_batched_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float64)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # box 3 (0.95) suppresses box 0 (IoU 1) and box 1 (IoU 9/11); box 2 is far away
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    labels = np.array([1, 1, 2, 2])
    # per class: class 1 keeps 0 (suppresses 1); class 2 keeps 3 and 2; ordered by score
    assert batched_nms(boxes, scores, labels, 0.5).tolist() == [3, 0, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


@pytest.mark.parametrize("seed", range(3))
def test_batched_nms_equals_per_class_brute_force(seed):
    rng = np.random.default_rng(10 + seed)
    boxes, scores = random_boxes(rng, 150), rng.uniform(size=150)
    labels = rng.integers(1, 4, 150)
    expected = []
    for c in (1, 2, 3):
        idx = np.flatnonzero(labels == c)
        expected += [idx[i] for i in brute_force_nms(boxes[idx], scores[idx], 0.45)]
    expected.sort(key=lambda i: -scores[i])
    assert batched_nms(boxes, scores, labels, 0.45).tolist() == expected


# ---------------------------------------------------------------- post-processing

def logits_for(probs):
    return np.log(np.asarray(probs, np.float64)).astype(np.float32)


def test_postprocess_hand_case_in_original_pixels():
    # Three anchors (cx, cy, w, h); zero offsets keep them, one ODM offset moves anchor 1 right.
    anchors = np.array([[0.25, 0.25, 0.2, 0.2], [0.5, 0.5, 0.4, 0.2], [0.75, 0.75, 0.2, 0.2]], np.float32)
    arm_loc = np.zeros((3, 4), np.float32)
    arm_loc[2] = [0.0, 0.0, math.log(1.5) / 0.2, 0.0]  # ARM widens anchor 2 by 1.5x
    odm_loc = np.zeros((3, 4), np.float32)
    odm_loc[1] = [0.25 / 0.1, 0.0, 0.0, 0.0]  # centre moves by 0.25 * w = 0.1
    arm_conf = logits_for([[0.2, 0.8], [0.5, 0.5], [0.3, 0.7]])
    odm_conf = logits_for([[0.1, 0.8, 0.1], [0.3, 0.1, 0.6], [0.5, 0.005, 0.495]])
    post = RefineDetPostProcess(anchors, (0.1, 0.2), num_classes=3)
    boxes, scores, labels = post(arm_loc, arm_conf, odm_loc, odm_conf, (200, 400))  # h, w
    # Normalised boxes: a0 (0.15, 0.15, 0.35, 0.35); a1 moved (0.4, 0.4, 0.8, 0.6);
    # a2 widened (0.6, 0.65, 0.9, 0.85). Scaled by (w, h) = (400, 200).
    # No pair of boxes overlaps, so NMS keeps all; a2's class-1 score 0.005 is under 0.01.
    expected = {(1, 0.8): [60, 30, 140, 70], (2, 0.6): [160, 80, 320, 120],
                (2, 0.495): [240, 130, 360, 170], (1, 0.1): [160, 80, 320, 120],
                (2, 0.1): [60, 30, 140, 70]}
    got = {(int(lab), round(float(s), 4)): b.tolist() for b, s, lab in zip(boxes, scores, labels)}
    assert len(got) == len(boxes) == 5 and set(got) == set(expected)
    for key, box in expected.items():
        np.testing.assert_allclose(got[key], box, atol=1e-3)
    assert scores.tolist() == sorted(scores.tolist(), reverse=True)


def test_postprocess_filters_anchors_the_arm_calls_background():
    anchors = np.array([[0.3, 0.3, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2]], np.float32)
    zeros = np.zeros((2, 4), np.float32)
    odm_conf = logits_for([[0.1, 0.9], [0.1, 0.9]])
    post = RefineDetPostProcess(anchors, num_classes=2)
    kept = post(zeros, logits_for([[0.985, 0.015], [0.995, 0.005]]), zeros, odm_conf, (100, 100))
    np.testing.assert_allclose(kept[0], [[20, 20, 40, 40]], atol=1e-4)  # anchor 1 dropped
    # Batch input returns one result per image, with each image's own size.
    batch = post(np.stack([zeros, zeros]), logits_for([[[0.5, 0.5]] * 2] * 2), np.stack([zeros, zeros]),
                 np.stack([odm_conf, odm_conf]), [(100, 100), (10, 50)])
    assert len(batch) == 2
    np.testing.assert_allclose(batch[1][0], [[10, 2, 20, 4], [30, 6, 40, 8]], atol=1e-4)


def test_postprocess_clips_to_the_image_and_keeps_top_k():
    rng = np.random.default_rng(3)
    anchors = AnchorGenerator().generate(320)
    a = len(anchors)
    post = RefineDetPostProcess(anchors, num_classes=4, keep_top_k=50)
    boxes, scores, labels = post(rng.normal(size=(a, 4)) * 3, rng.normal(size=(a, 2)),
                                 rng.normal(size=(a, 4)) * 3, rng.normal(size=(a, 4)) * 3, (240, 500))
    assert len(boxes) == 50 and set(labels.tolist()) <= {1, 2, 3}
    assert boxes[:, [0, 2]].min() >= 0 and boxes[:, [0, 2]].max() <= 500
    assert boxes[:, [1, 3]].min() >= 0 and boxes[:, [1, 3]].max() <= 240
    assert (np.diff(scores) <= 0).all()


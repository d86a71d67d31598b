"""Segmentation metrics: Hugging Face evaluate's mean_iou example, hand-computed cases, real VOC
palette PNGs and the command line."""
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from common.metrics import MetricInputError, SegmentationMetric, segmentation


def test_hf_evaluate_docstring_example(fixtures):
    case = json.loads((fixtures / "hf_evaluate_mean_iou" / "mean_iou_docstring_example.json").read_text())
    # reduce_labels=False there: labels are used as they are, 255 ignored
    metric = SegmentationMetric(case["num_labels"], ignore_index=case["ignore_index"])
    for pred, ref in zip(case["predictions"], case["references"]):
        metric.update(np.array(pred), np.array(ref))
    result, expected = metric.result(), case["expected"]
    assert result["miou"] == pytest.approx(expected["mean_iou"], abs=1e-12)
    assert result["mean_acc"] == pytest.approx(expected["mean_accuracy"], abs=1e-12)
    assert result["pixel_acc"] == pytest.approx(expected["overall_accuracy"], abs=1e-12)
    np.testing.assert_allclose(result["per_class_iou"], expected["per_category_iou"], atol=1e-12)
    np.testing.assert_allclose(result["per_class_acc"], expected["per_category_accuracy_approx"], atol=1e-8)


def test_two_class_confusion_by_hand():
    gt = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 1], [1, 1]])
    # confusion (rows gt, cols pred) = [[1, 1], [0, 2]]
    metric = SegmentationMetric(2)
    metric.update(pred, gt)
    np.testing.assert_array_equal(metric.confusion, [[1, 1], [0, 2]])
    result = metric.result()
    assert result["per_class_iou"] == pytest.approx([1 / 2, 2 / 3])  # 1/(2+1-1), 2/(2+3-2)
    assert result["miou"] == pytest.approx(7 / 12)
    assert result["pixel_acc"] == pytest.approx(3 / 4)
    assert result["mean_acc"] == pytest.approx((1 / 2 + 1) / 2)


def test_ignore_and_absent_classes():
    gt = np.array([[0, 0, 255], [2, 2, 255]])
    pred = np.array([[0, 3, 1], [2, 0, 7]])  # under the 255 pixels anything goes, even 7
    metric = SegmentationMetric(4)
    metric.update(pred, gt)
    result = metric.result()
    iou = result["per_class_iou"]
    # class 0: hit 1, gt 2, pred 2 -> 1/3; class 1 nowhere (its pixel is ignored) -> NaN;
    # class 2: hit 1, gt 2, pred 1 -> 1/2; class 3 only predicted -> 0 and counted in the mean
    assert iou[0] == pytest.approx(1 / 3) and math.isnan(iou[1])
    assert iou[2] == pytest.approx(1 / 2) and iou[3] == 0.0
    assert result["miou"] == pytest.approx((1 / 3 + 1 / 2 + 0) / 3)
    assert result["pixel_acc"] == pytest.approx(2 / 4)
    assert math.isnan(result["per_class_acc"][3])  # never in the ground truth
    assert result["mean_acc"] == pytest.approx((1 / 2 + 1 / 2) / 2)


def test_streaming_equals_one_batch():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, (6, 16, 16))
    gt[gt == 4] = 255
    pred = rng.integers(0, 4, (6, 16, 16))
    whole, streamed = SegmentationMetric(4), SegmentationMetric(4)
    whole.update(pred, gt)
    for p, g in zip(pred, gt):
        streamed.update(p, g)
    np.testing.assert_array_equal(whole.confusion, streamed.confusion)
    assert whole.confusion.sum() == np.count_nonzero(gt != 255)
    assert whole.num_images == streamed.num_images == 6


def test_out_of_range_labels_are_errors():
    metric = SegmentationMetric(3)
    with pytest.raises(ValueError, match="prediction has class 5"):
        metric.update(np.array([[5, 0]]), np.array([[1, 0]]))
    with pytest.raises(ValueError, match="ground truth has class 9"):
        metric.update(np.array([[1, 0]]), np.array([[9, 0]]))
    with pytest.raises(ValueError, match="shape"):
        metric.update(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(MetricInputError):
        metric.result()


def _set_based_iou(preds, gts, num_classes, ignore=255):
    """Oracle without a confusion matrix: per class, |pred & gt| / |pred | gt| over valid pixels."""
    pred = np.concatenate([p.ravel() for p in preds])
    gt = np.concatenate([g.ravel() for g in gts])
    valid = gt != ignore
    iou = []
    for c in range(num_classes):
        inter = np.count_nonzero((pred == c) & (gt == c) & valid)
        union = np.count_nonzero(((pred == c) | (gt == c)) & valid)
        iou.append(inter / union if union else None)
    return iou, np.count_nonzero((pred == gt) & valid) / np.count_nonzero(valid)


def test_cli_on_voc_palette_pngs(fixtures, tmp_path):
    gt_dir = fixtures / "openagi_datum_voc" / "seg" / "voc" / "SegmentationClass"
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    preds, gts = [], []
    for path in sorted(gt_dir.glob("*.png")):
        with Image.open(path) as img:
            assert img.mode == "P"  # palette PNG: indices must be read, not colours
            gt = np.array(img)
        pred = gt.copy()
        pred[pred == 255] = 0
        pred[:, : pred.shape[1] // 3] = 15  # a wrong band: class 15 over a third of the image
        Image.fromarray(pred.astype(np.uint8), mode="L").save(pred_dir / path.name)
        preds.append(pred)
        gts.append(gt)
    out = tmp_path / "seg.json"
    proc = subprocess.run([sys.executable, "-m", "common.metrics.segmentation", "--pred", str(pred_dir),
                           "--gt", str(gt_dir), "--num-classes", "21", "--json", str(out)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    expected_iou, expected_acc = _set_based_iou(preds, gts, 21)
    assert {"miou", "per_class_iou", "pixel_acc", "mean_acc"} <= set(result)
    assert [i for i, v in enumerate(result["per_class_iou"]) if v is not None] == [0, 1, 15]
    np.testing.assert_allclose([v for v in result["per_class_iou"] if v is not None],
                               [v for v in expected_iou if v is not None], atol=1e-12)
    assert result["miou"] == pytest.approx(np.mean([v for v in expected_iou if v is not None]))
    assert result["pixel_acc"] == pytest.approx(expected_acc)
    assert 0 < result["miou"] < 1


def _save(path, array, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).convert(mode).save(path)


def test_cli_errors(tmp_path):
    label = np.zeros((4, 6), np.uint8)
    _save(tmp_path / "gt" / "a.png", label, "L")
    _save(tmp_path / "pred" / "a.png", np.zeros((4, 6, 3), np.uint8), "RGB")
    args = ["--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--num-classes", "3"]
    with pytest.raises(MetricInputError, match=r"pred.a\.png: expected a class-index image .* got mode RGB"):
        segmentation.main(args)
    _save(tmp_path / "pred" / "a.png", np.zeros((5, 6)), "L")
    with pytest.raises(MetricInputError, match=r"size mismatch: prediction .*a\.png is 6x5"):
        segmentation.main(args)
    _save(tmp_path / "pred" / "a.png", np.full((4, 6), 7), "L")
    with pytest.raises(MetricInputError, match=r"a\.png.*prediction has class 7"):
        segmentation.main(args)
    _save(tmp_path / "gt" / "b.png", label, "L")
    proc = subprocess.run([sys.executable, "-m", "common.metrics.segmentation", *args], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "error: no prediction file" in proc.stderr and str(tmp_path / "gt" / "b.png") in proc.stderr

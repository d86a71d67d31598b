"""Detection metrics: COCO stats against the cocoapi/faster_coco_eval fixture, every-image
evaluation, VOC AP against Padilla's figures and hand-computed cases, command lines."""
import contextlib
import io
import json
import re
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest

from common.metrics import CocoDetectionMetric, MetricInputError, VOCDetectionMetric, detection
from common.metrics.detection_voc import ap_all_point, ap_eleven_point, box_iou, evaluate_txt_folders


@pytest.fixture(scope="module")
def coco(fixtures):
    expected_file = fixtures / "faster_coco_eval" / "expected_cocoeval_stats_val2014_100.json"
    expected = json.loads(expected_file.read_text())
    return {
        "gt": fixtures / "faster_coco_eval" / expected["gt"],
        "bbox": fixtures / "cocoapi" / "instances_val2014_fakebbox100_results.json",
        "segm": fixtures / "cocoapi" / "instances_val2014_fakesegm100_results.json",
        "expected": expected,
    }


def test_cli_coco_bbox_stats(coco, tmp_path):
    out = tmp_path / "coco.json"
    proc = subprocess.run([sys.executable, "-m", "common.metrics.detection", "--gt", str(coco["gt"]),
                           "--dets", str(coco["bbox"]), "--json", str(out)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "AP50" in proc.stdout
    result = json.loads(out.read_text())
    assert len(result["stats"]) == 12
    np.testing.assert_allclose(result["stats"], coco["expected"]["bbox"], rtol=0, atol=1e-12)
    assert result["num_images"] == 100


def test_coco_segm_stats(coco):
    results = json.loads(coco["segm"].read_text())
    stats = detection.coco_evaluate(coco["gt"], results, iou_type="segm")["stats"]
    np.testing.assert_allclose(stats, coco["expected"]["segm"], rtol=0, atol=1e-12)


def test_streaming_metric_reproduces_fixture(coco):
    gt = json.loads(coco["gt"].read_text())
    cat_ids = sorted(c["id"] for c in gt["categories"])
    by_image = defaultdict(list)
    for det in json.loads(coco["bbox"].read_text()):
        by_image[det["image_id"]].append(det)
    metric = CocoDetectionMetric(gt)  # label i -> i-th category id
    for image_id, dets in by_image.items():
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in dets)]
        labels = [cat_ids.index(d["category_id"]) for d in dets]
        metric.update(image_id, boxes, [d["score"] for d in dets], labels)
    result = metric.result()
    np.testing.assert_allclose(result["stats"], coco["expected"]["bbox"], rtol=0, atol=1e-9)
    assert result["images_updated"] == len(by_image)


def _pycocotools_stats(gt_dict, results, img_ids):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        evaluator = COCOeval(coco_gt, coco_gt.loadRes([dict(r) for r in results]), "bbox")
        evaluator.params.imgIds = img_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return list(evaluator.stats)


def test_images_without_annotations_count(coco):
    """False positives on an unannotated image lower AP; restricting imgIds to annotated images
    (the old port) would hide them and reproduce the fixture's higher AP."""
    gt = json.loads(coco["gt"].read_text())
    gt["images"].append(dict(gt["images"][0], id=999999, file_name="empty.jpg"))
    results = json.loads(coco["bbox"].read_text())
    results += [{"image_id": 999999, "category_id": 1, "bbox": [10, 10, 50, 80], "score": 0.99}] * 3
    ours = detection.coco_evaluate(gt, results)
    annotated = sorted({a["image_id"] for a in gt["annotations"]})
    restricted = _pycocotools_stats(gt, results, annotated)
    np.testing.assert_allclose(restricted, coco["expected"]["bbox"], atol=1e-12)
    assert ours["num_images"] == 101
    assert ours["stats"][0] < restricted[0]
    np.testing.assert_allclose(ours["stats"], _pycocotools_stats(gt, results, sorted(annotated + [999999])),
                               atol=1e-12)


def test_no_detections_scores_zero(coco):
    metric = CocoDetectionMetric(coco["gt"])
    result = metric.result()
    assert result["stats"][0] == 0.0 and result["stats"][8] == 0.0 and result["num_detections"] == 0


def test_coco_input_errors(coco, tmp_path):
    metric = CocoDetectionMetric(coco["gt"])
    with pytest.raises(ValueError, match="image id 123 is not in the COCO ground truth"):
        metric.update(123, [[0, 0, 1, 1]], [0.5], [0])
    image_id = metric.coco_gt.getImgIds()[0]
    with pytest.raises(ValueError, match=r"labels \[80\] have no COCO category id"):
        metric.update(image_id, [[0, 0, 1, 1]], [0.5], [80])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"image_id": 424242, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}]))
    proc = subprocess.run([sys.executable, "-m", "common.metrics.detection", "--gt", str(coco["gt"]),
                           "--dets", str(bad)], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "error:" in proc.stderr and "424242" in proc.stderr and str(bad) in proc.stderr
    with pytest.raises(MetricInputError, match="COCO ground-truth file not found: .*missing.json"):
        detection.main(["--gt", str(tmp_path / "missing.json"), "--dets", str(bad)])


@pytest.fixture(scope="module")
def padilla(fixtures):
    root = fixtures / "padilla_od_metrics"
    return root, json.loads((root / "expected.json").read_text())


def test_padilla_figures(padilla):
    root, expected = padilla
    metric = evaluate_txt_folders(root / "groundtruths", root / "detections", expected["iou_threshold"],
                                  plus_one=True)
    person = metric.result()["per_class"][expected["class"]]
    assert person["num_gt"] == expected["num_gt"] and person["num_det"] == expected["num_det"]
    assert person["ap_all_point"] == pytest.approx(expected["all_point_AP"], abs=5e-7)
    assert person["ap_11point"] == pytest.approx(expected["eleven_point_AP"], abs=5e-7)
    recall, precision = metric.class_curve(expected["class"])
    np.testing.assert_allclose(precision, expected["precision_results_txt"], atol=0.005)
    np.testing.assert_allclose(recall, expected["recall_results_txt"], atol=0.005)


@pytest.mark.parametrize("threshold,plus_one,all_point,eleven", [
    (0.3, False, 0.225397, None),  # without +1 areas (expected.json "checked_here")
    (0.5, True, 0.022222, 0.030303),
])
def test_padilla_other_settings(padilla, threshold, plus_one, all_point, eleven):
    root, _ = padilla
    result = evaluate_txt_folders(root / "groundtruths", root / "detections", threshold, plus_one).result()
    assert result["map_all_point"] == pytest.approx(all_point, abs=5e-7)
    if eleven is not None:
        assert result["map_11point"] == pytest.approx(eleven, abs=5e-7)


def test_cli_voc_format(padilla, tmp_path):
    root, expected = padilla
    out = tmp_path / "voc.json"
    proc = subprocess.run([sys.executable, "-m", "common.metrics.detection", "--format", "voc",
                           "--gt", str(root / "groundtruths"), "--dets", str(root / "detections"),
                           "--iou-threshold", "0.3", "--plus-one", "--json", str(out)], check=False,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    assert result["map_all_point"] == pytest.approx(expected["all_point_AP"], abs=5e-7)
    assert result["map_11point"] == pytest.approx(expected["eleven_point_AP"], abs=5e-7)


def test_voc_txt_errors(tmp_path):
    (tmp_path / "gt").mkdir()
    (tmp_path / "det").mkdir()
    (tmp_path / "gt" / "img1.txt").write_text("cat 0 0 10 10\n")
    (tmp_path / "det" / "img1.txt").write_text("cat 0.9 0 0 10\n")
    with pytest.raises(MetricInputError, match=r"det.img1\.txt:1: expected 6 fields"):
        evaluate_txt_folders(tmp_path / "gt", tmp_path / "det")
    (tmp_path / "det" / "img1.txt").write_text("cat 0.9 0 0 10 10\n")
    (tmp_path / "gt" / "img2.txt").write_text("")
    with pytest.raises(MetricInputError, match=r"no detection file .* for ground-truth .*img2\.txt"):
        evaluate_txt_folders(tmp_path / "gt", tmp_path / "det")


def test_box_iou_plus_one_by_hand():
    a, b = [[0, 0, 9, 9]], [[5, 0, 14, 9]]
    assert box_iou(a, b, plus_one=True)[0, 0] == pytest.approx(50 / 150)  # 5x10 of two 10x10
    assert box_iou(a, b)[0, 0] == pytest.approx(36 / (81 + 81 - 36))  # 4x9 of two 9x9


def test_iou_equal_to_threshold_matches():
    # IoU exactly 0.5 (100 / 200): the devkit's "ovmax >= minoverlap" makes it a true positive
    metric = VOCDetectionMetric(iou_threshold=0.5)
    metric.update([[0, 0, 10, 20]], [0.9], [0], [[0, 0, 10, 10]], [0])
    assert metric.result()["per_class"]["0"]["ap_all_point"] == 1.0


def test_difficult_boxes_are_ignored():
    gt_boxes = [[0, 0, 10, 10], [50, 50, 60, 60]]
    dets = [[50, 50, 60, 60], [100, 100, 110, 110], [0, 0, 10, 10]]  # on difficult, on nothing, on A
    metric = VOCDetectionMetric(iou_threshold=0.5)
    metric.update(dets, [0.9, 0.8, 0.7], [1, 1, 1], gt_boxes, [1, 1], gt_difficult=[False, True])
    # the hit on the difficult box vanishes: FP then TP with one positive -> precision [0, 1/2]
    recall, precision = metric.class_curve(1)
    np.testing.assert_allclose(recall, [0, 1])
    np.testing.assert_allclose(precision, [0, 0.5])
    result = metric.result()["per_class"]["1"]
    assert result["num_gt"] == 1 and result["num_det"] == 2
    assert result["ap_all_point"] == pytest.approx(0.5)
    assert result["ap_11point"] == pytest.approx(0.5)


def test_duplicate_detection_is_false_positive():
    metric = VOCDetectionMetric()
    metric.update([[0, 0, 10, 10], [1, 0, 10, 10]], [0.6, 0.9], ["a", "a"], [[0, 0, 10, 10]], ["a"])
    recall, precision = metric.class_curve("a")
    np.testing.assert_allclose(precision, [1, 0.5])  # the higher score matches first
    np.testing.assert_allclose(recall, [1, 1])


def test_ap_interpolations_by_hand():
    # 10 positives, first three detections correct, then misses: recall reaches exactly 0.3
    tp = np.array([1, 1, 1, 0, 0], bool)
    recall, precision = np.cumsum(tp) / 10, np.cumsum(tp) / np.arange(1, 6)
    assert ap_eleven_point(recall, precision) == pytest.approx(4 / 11)  # levels 0, .1, .2, .3
    assert ap_all_point(recall, precision) == pytest.approx(0.3)
    # precision rises after a miss: the envelope takes the later, higher value
    recall, precision = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    assert ap_all_point(recall, precision) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert ap_eleven_point(recall, precision) == pytest.approx((6 * 1 + 5 * 2 / 3) / 11)


def test_class_without_ground_truth_is_left_out_of_map():
    metric = VOCDetectionMetric()
    metric.update([[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], [0, 1], [[0, 0, 10, 10]], [0])
    result = metric.result()
    assert np.isnan(result["per_class"]["1"]["ap_all_point"])
    assert result["map_all_point"] == pytest.approx(1.0)


TINY_GT = {"images": [{"id": 1, "width": 40, "height": 30}],
           "categories": [{"id": 3, "name": "car"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [5, 5, 10, 10], "area": 100,
                            "iscrowd": 0}]}
GOOD = {"image_id": 1, "category_id": 3, "bbox": [5, 5, 10, 10], "score": 0.9}


@pytest.mark.parametrize("field, value, message", [
    ("bbox", [5, 5, 10], "bbox must be 4 finite numbers"),
    ("bbox", [5, 5, float("nan"), 10], "bbox must be 4 finite numbers"),
    ("bbox", [5, 5, float("inf"), 10], "bbox must be 4 finite numbers"),
    ("bbox", [5, "5", 10, 10], "bbox must be 4 finite numbers"),
    ("bbox", [True, 5, 10, 10], "bbox must be 4 finite numbers"),
    ("bbox", None, "bbox must be 4 finite numbers"),
    ("bbox", "5 5 10 10", "bbox must be 4 finite numbers"),
    ("score", "0.9", "score must be a finite number, got '0.9'"),
    ("score", None, "score must be a finite number, got None"),
    ("score", float("nan"), "score must be a finite number, got nan"),
    ("score", [0.9], "score must be a finite number"),
])
def test_coco_results_with_bad_values_name_the_result(field, value, message):
    results = [dict(GOOD), dict(GOOD), dict(GOOD, **{field: value})]
    with pytest.raises(MetricInputError, match=rf"dets\.json: result 2 \(image 1\): {re.escape(message)}"):
        detection.coco_evaluate(TINY_GT, results, source="dets.json")


def test_coco_results_good_values_still_score():
    results = [dict(GOOD), dict(GOOD, bbox=(20, 10, 5.5, 4), score=np.float32(0.3)), dict(GOOD, score=1)]
    result = detection.coco_evaluate(TINY_GT, results)
    assert result["AP50"] == pytest.approx(1.0) and result["num_detections"] == 3


def test_streaming_metric_rejects_nan_boxes_with_the_index():
    metric = CocoDetectionMetric(TINY_GT, label_to_category=[3])
    metric.update(1, [[5, 5, 15, 15], [0, 0, np.nan, 4]], [0.9, 0.5], [0, 0])
    with pytest.raises(MetricInputError, match=r"result 1 \(image 1\): bbox must be 4 finite numbers"):
        metric.result()


def test_cli_rejects_nan_in_the_results_file(tmp_path):
    (tmp_path / "gt.json").write_text(json.dumps(TINY_GT))
    dets = '[{"image_id": 1, "category_id": 3, "bbox": [1, 2, NaN, 4], "score": 0.5}]'
    (tmp_path / "dets.json").write_text(dets)
    proc = subprocess.run([sys.executable, "-m", "common.metrics.detection", "--gt",
                           str(tmp_path / "gt.json"), "--dets", str(tmp_path / "dets.json")], check=False,
                          capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    assert "result 0 (image 1): bbox must be 4 finite numbers" in proc.stderr
    assert "Traceback" not in proc.stderr

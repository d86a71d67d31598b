"""The detection task (common/tasks/detection.py) with RefineDet's hooks: data paths on real
fixtures, preprocessing, decoding to original-image pixels, streamed scoring over every image,
pictures, and export parity of the raw heads and of the detections."""
import json

import numpy as np
import pytest

from common.config import load_config
from common.data.errors import DatasetError
from common.tasks.detection import build_test_source, draw_detections, score_detections
from models import get_spec
from models.refinedet.src.data import preprocess
from models.refinedet.src.spec import anchors_for, decode

SPEC = get_spec("refinedet320_vgg16")


def _cfg(*overrides):
    return load_config(SPEC.defaults, None, list(overrides))


# ---------------------------------------------------------------- real fixtures through test.*

def test_real_coco_image_loads_with_its_annotated_boxes(fixtures):
    root = fixtures / "hf_optimum_graphcore_coco"
    cfg = _cfg("test.format=coco", f"test.root={root}", f"test.ann_file={root / 'instances_39769.json'}")
    source = build_test_source(cfg.test)
    assert len(source) == 1
    sample = source[0]
    assert sample["image"].shape == (480, 640, 3) and sample["image_id"] == 39769
    # instances_39769.json: bbox [x, y, w, h] -> x1, y1, x2, y2
    expected = np.array([[332.89, 79.57, 332.89 + 38.65, 79.57 + 106.31],
                         [41.88, 74.2, 41.88 + 133.15, 74.2 + 45.1],
                         [1.08, 0.0, 1.08 + 638.56, 473.53],
                         [1.07, 1.18, 1.07 + 638.93, 1.18 + 477.85],
                         [17.5, 54.38, 17.5 + 301.25, 54.38 + 415.0],
                         [347.5, 25.63, 347.5 + 292.5, 25.63 + 343.75]])
    order = np.lexsort(sample["boxes"].T[::-1])
    np.testing.assert_allclose(sample["boxes"][order], expected[np.lexsort(expected.T[::-1])], atol=1e-3)
    # COCO ids 17 (cat), 63 (couch), 65 (bed), 75 (remote) -> labels 1..80 (ids 12, 26, 29, 30, 45, 66, 68,
    # 69, 71 do not exist: 63 - 5 = 58, 65 - 5 = 60, 75 - 9 = 66)
    assert sorted(sample["labels"].tolist()) == [16, 16, 58, 60, 66, 66]
    assert source.class_names[15] == "cat" and source.class_names[65] == "remote"


def test_real_voc_xml_fixtures_load_with_their_boxes(fixtures):
    root = fixtures / "openagi_datum_voc/det/voc"
    cfg = _cfg("test.format=voc", f"test.root={root}", "test.ann_file=train")
    source = build_test_source(cfg.test)
    assert source.ids == ["2007_000027", "2007_000032"]
    sample = source[1]
    # 2007_000032.xml: aeroplane 104,78,375,183 / 133,88,197,123; person 195,180,213,229 / 26,189,44,238
    # VOC pixels are 1-based inclusive: x1 = xmin - 1, x2 = xmax
    np.testing.assert_array_equal(sample["boxes"], [[103, 77, 375, 183], [132, 87, 197, 123],
                                                    [194, 179, 213, 229], [25, 188, 44, 238]])
    assert sample["labels"].tolist() == [1, 1, 15, 15]  # aeroplane, person in VOC order
    assert not sample["difficult"].any()


def test_unknown_test_format_is_named():
    with pytest.raises(ValueError, match="test.format"):
        build_test_source(_cfg("test.format=yolo").test)
    with pytest.raises(DatasetError):
        build_test_source(_cfg("test.root=/nonexistent").test)


# ---------------------------------------------------------------- pre- and post-processing

def test_preprocess_is_caffe_bgr_mean_subtraction_for_vgg_and_imagenet_for_resnet():
    image = np.empty((10, 20, 3), np.uint8)
    image[:] = (10, 20, 30)  # RGB
    cfg = _cfg()
    x = SPEC.hooks["preprocess"](image, (8, 16), cfg)
    assert x.shape == (1, 3, 8, 16) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], [30 - 104, 20 - 117, 10 - 123])  # B, G, R minus Caffe mean
    x = SPEC.hooks["preprocess"](image, (8, 16), _cfg("model.name=refinedet320_resnet101"))
    np.testing.assert_allclose(x[0, :, 0, 0], [(10 / 255 - 0.485) / 0.229, (20 / 255 - 0.456) / 0.224,
                                               (30 / 255 - 0.406) / 0.225], rtol=1e-5)
    np.testing.assert_allclose(preprocess(image, (8, 16), "caffe"), SPEC.hooks["preprocess"](image, (8, 16), cfg))


def _heads(num_anchors, num_classes, hot=(), label=1):
    """Raw heads where only the anchors ``hot`` are confident objects of ``label``; zero offsets."""
    arm_conf = np.tile([[5.0, -5.0]], (num_anchors, 1))        # background
    odm_conf = np.zeros((num_anchors, num_classes))
    odm_conf[:, 0] = 10.0
    for i in hot:
        arm_conf[i] = (-5.0, 5.0)
        odm_conf[i] = 0.0
        odm_conf[i, label] = 12.0
    zeros = np.zeros((num_anchors, 4))
    return [a[None].astype(np.float32) for a in (zeros, arm_conf, zeros, odm_conf)]


def test_decode_gives_boxes_in_original_image_pixels():
    cfg = _cfg("test.size=64", "model.num_classes=3")
    anchors = anchors_for(64)
    assert anchors.shape == (3 * (8 * 8 + 4 * 4 + 2 * 2 + 1), 4)
    # anchor 0: centre (4/64, 4/64), side 32/64 -> x1y1x2y2 (-0.1875, -0.1875, 0.3125, 0.3125), clipped
    # anchor 3 * 9 = 27: row 1, col 1 of level 0, centre 12/64, 1:1 -> (-0.0625, ..., 0.4375)
    boxes, scores, labels = decode(_heads(len(anchors), 3, hot=(0, 27), label=2), (100, 200), cfg)
    assert labels.tolist() == [2, 2]
    assert np.all(scores > 0.99)
    np.testing.assert_allclose(np.sort(boxes, 0), [[0, 0, 62.5, 31.25], [0, 0, 87.5, 43.75]], atol=1e-3)


def test_decode_filters_anchors_the_arm_calls_background():
    cfg = _cfg("test.size=64", "model.num_classes=3")
    heads = _heads(len(anchors_for(64)), 3, hot=(0,), label=1)
    heads[1][0, 0] = (5.0, -5.0)  # ARM: background with probability > 0.99, ODM still confident
    boxes, _, _ = decode(heads, (64, 64), cfg)
    assert len(boxes) == 0


def test_decode_refuses_heads_of_another_input_size():
    cfg = _cfg("test.size=64", "model.num_classes=3")
    with pytest.raises(ValueError, match="test.size"):
        decode(_heads(len(anchors_for(128)), 3), (64, 64), cfg)


# ---------------------------------------------------------------- scoring

class _Source:
    """A reader-shaped split: three images, the last one without objects."""

    class_names = ("a", "b")

    def __init__(self):
        self.items = [([[10, 10, 50, 60]], [1]), ([[5, 5, 30, 30], [40, 40, 90, 80]], [2, 1]), ([], [])]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        boxes, labels = self.items[i]
        return {"image": np.zeros((100, 120, 3), np.uint8), "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
                "labels": np.asarray(labels, np.int32), "difficult": np.zeros(len(labels), bool),
                "iscrowd": np.zeros(len(labels), bool), "image_id": np.int64(i + 1),
                "orig_size": np.array([100, 120], np.int32)}


def _perfect(source, extra_on_empty=False):
    for i in range(len(source)):
        s = source[i]
        boxes, scores, labels = s["boxes"], np.full(len(s["labels"]), 0.9), s["labels"]
        if extra_on_empty and len(labels) == 0:
            boxes, scores, labels = np.array([[0, 0, 40, 40]], np.float32), np.array([0.99]), np.array([1])
        yield s, (boxes, scores, labels)


def test_scoring_counts_every_image_and_streams_detections_to_json(tmp_path):
    source = _Source()
    path = tmp_path / "dets.json"
    result = score_detections(_perfect(source), source, 3, path)
    assert result["AP"] == pytest.approx(1.0) and result["AP50"] == pytest.approx(1.0)
    assert result["num_images"] == 3 and result["images_scored"] == 3
    records = json.loads(path.read_text())
    assert len(records) == 3 and {r["image_id"] for r in records} == {1, 2}
    assert records[0]["bbox"] == [10.0, 10.0, 40.0, 50.0]  # x, y, w, h
    # a false positive on the image without objects, ranked first, must cost AP: that image is scored
    worse = score_detections(_perfect(source, extra_on_empty=True), source, 3, path)
    assert worse["AP50"] < 0.9


def test_scoring_leaves_no_partial_detection_file_when_an_image_fails(tmp_path):
    source = _Source()

    def items():
        yield from list(_perfect(source))[:1]
        s = source[1]
        yield s, (np.full((1, 4), np.nan), np.ones(1), np.ones(1, np.int64))

    with pytest.raises(ValueError, match="NaN"):
        score_detections(items(), source, 3, tmp_path / "dets.json")
    assert list(tmp_path.iterdir()) == []


def test_voc_split_also_gets_voc07_and_voc12_map(fixtures, tmp_path):
    root = fixtures / "openagi_datum_voc/det/voc"
    source = build_test_source(_cfg("test.format=voc", f"test.root={root}", "test.ann_file=train").test)

    def halves():  # each image: its boxes found at score 1, plus one miss-placed box per class
        for i in range(len(source)):
            s = source[i]
            far = np.array([[0, 0, 5, 5]] * len(s["labels"]), np.float32)
            yield s, (np.concatenate([s["boxes"], far]), np.r_[np.ones(len(s["labels"])),
                                                               np.full(len(s["labels"]), 0.5)],
                      np.r_[s["labels"], s["labels"]])

    result = score_detections(halves(), source, 21, tmp_path / "d.json")
    # every true box ranks above every false one: precision 1 up to recall 1
    assert result["voc07_map"] == pytest.approx(1.0) and result["voc12_map"] == pytest.approx(1.0)
    assert result["AP50"] == pytest.approx(1.0)


def test_pictures_show_labelled_boxes_above_the_threshold():
    image = np.full((60, 80, 3), 255, np.uint8)
    out = draw_detections(image, np.array([[10, 20, 50, 55], [5, 5, 70, 50]]), np.array([0.9, 0.1]),
                          np.array([1, 2]), ["cat", "dog"], 0.3)
    assert out.shape == image.shape and np.array_equal(image, np.full_like(image, 255))  # input untouched
    assert (out[40, 10] != 255).any() and (out[40, 50] != 255).any()   # left and right edges drawn
    assert (out[30, 30] == 255).all()                                   # inside stays
    assert (out[40, 70] == 255).all()                                   # the 0.1 box is not drawn


# ---------------------------------------------------------------- export parity

@pytest.mark.slow  # about 1 minute: VGG-16 export and ONNX Runtime
@pytest.mark.usefixtures("pynative")
def test_onnx_raw_heads_match_and_detections_are_identical(tmp_path):
    import mindspore as ms

    from common.export import export_model, onnx_session, run_onnx
    from common.runner.predictors import network_predictor

    ms.set_seed(0)
    cfg = _cfg("test.size=128", "model.num_classes=5", "test.score_threshold=0.05")
    net = SPEC.build_net(cfg)
    net.set_train(False)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (90, 110, 3), dtype=np.uint8)
    x = SPEC.hooks["preprocess"](image, (128, 128), cfg)
    path = export_model(net, x, "ONNX", tmp_path / "rd128").path
    ms_out = network_predictor(net)(x)
    onnx_out = run_onnx(onnx_session(path), x)
    assert [o.shape for o in onnx_out] == [(1, 1020, 4), (1, 1020, 2), (1, 1020, 4), (1, 1020, 5)]
    for a, b in zip(ms_out, onnx_out):
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)
    ms_dets, onnx_dets = decode(ms_out, image.shape[:2], cfg), decode(onnx_out, image.shape[:2], cfg)
    assert len(ms_dets[0]) > 0
    np.testing.assert_array_equal(onnx_dets[2], ms_dets[2])
    np.testing.assert_allclose(onnx_dets[0], ms_dets[0], atol=1e-3)
    np.testing.assert_allclose(onnx_dets[1], ms_dets[1], atol=1e-5)


def test_coco_labels_map_back_to_category_ids_and_max_images_limits_the_ground_truth(tmp_path):
    import subprocess
    import sys

    from common.data.detection import CocoDetection
    from common.paths import REPO_ROOT

    # 12 classes: category ids 1..10, 12, 13 (the synthetic set skips every 11th id, as COCO has gaps)
    subprocess.run([sys.executable, "-m", "common.data.synthetic", "--format", "coco", "--out", str(tmp_path / "c"),
                    "--num", "1", "--num-val", "12", "--size", "48", "--num-classes", "12"], cwd=REPO_ROOT,
                   check=True, capture_output=True)
    source = CocoDetection(tmp_path / "c/val2017", tmp_path / "c/annotations/instances_val2017.json")
    doc = json.loads((tmp_path / "c/annotations/instances_val2017.json").read_text())
    assert {a["category_id"] for a in doc["annotations"]} & {12, 13}, "pick a seed that uses the shifted ids"
    result = score_detections(_perfect(source), source, 13, tmp_path / "all.json")
    assert result["AP"] == pytest.approx(1.0) and result["num_images"] == 12
    records = json.loads((tmp_path / "all.json").read_text())
    assert sorted(r["category_id"] for r in records) == sorted(a["category_id"] for a in doc["annotations"])
    first = list(_perfect(source))[:4]
    limited = score_detections(iter(first), source, 13, tmp_path / "four.json")
    assert limited["num_images"] == 4 and limited["AP"] == pytest.approx(1.0)


def test_evaluation_during_training_scores_data_val_as_eval_scores_test(tmp_path, pynative):
    import subprocess
    import sys

    from common.paths import REPO_ROOT
    from common.runner.predictors import network_predictor
    from common.tasks.detection import TASK

    data = tmp_path / "coco"
    subprocess.run([sys.executable, "-m", "common.data.synthetic", "--format", "coco", "--out", str(data), "--num", "1",
                    "--num-val", "3", "--size", "64", "--num-classes", "3", "--seed", "0"], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    val = [f"data.val_root={data / 'val2017'}", f"data.val_ann_file={data / 'annotations/instances_val2017.json'}"]
    test = [f"test.root={data / 'val2017'}", f"test.ann_file={data / 'annotations/instances_val2017.json'}"]
    cfg = _cfg("model.num_classes=4", "test.size=64", "test.score_threshold=0.0", f"output_dir={tmp_path / 'run'}",
               *val, *test)
    assert TASK.training_evaluator(SPEC, _cfg()) is None              # no data.val_root: no evaluation
    net = SPEC.build_net(cfg)
    net.set_train(False)
    during = TASK.training_evaluator(SPEC, cfg)(net)
    final = TASK.evaluate(SPEC, cfg, network_predictor(SPEC.deploy(net, cfg)), "eval")
    assert during["num_images"] == final["num_images"] == 3
    for key in ("AP", "AP50", "AR_100"):
        assert during[key] == pytest.approx(final[key], abs=1e-9), key
    assert (tmp_path / "run/detections_val.json").is_file()

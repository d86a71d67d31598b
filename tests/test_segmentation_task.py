"""The segmentation task (common/tasks/segmentation.py): padding, logit upsampling and cropping,
flip / scale averaging, the ignore label, and one scoring path for eval, the 310 flow and predict.

A fake network (4x4 mean pooling + a fixed linear map, with a horizontal ramp so that it is not
mirror-symmetric) stands in for RefineNet, so these tests need no MindSpore graph; the expected
values come from torch's bilinear interpolation and hand-written numpy.
"""
import json
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from common.config import Config, ConfigError
from common.data.image_io import voc_palette
from common.data.voc_seg import VOCSegDataset
from common.paths import REPO_ROOT
from common.tasks import segmentation as seg

torch = pytest.importorskip("torch")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
C = 4


def fake_net(batch):
    """(1, 3, H, W) -> [(1, C, ceil(H/4), ceil(W/4))] logits."""
    x = batch[0]
    h, w = math.ceil(x.shape[1] / 4), math.ceil(x.shape[2] / 4)
    xp = np.pad(x, ((0, 0), (0, 4 * h - x.shape[1]), (0, 4 * w - x.shape[2])), mode="edge")
    pooled = xp.reshape(3, h, 4, w, 4).mean(axis=(2, 4))
    weights = np.array([[1.0, -0.5, 0.2], [-0.3, 1.2, 0.1], [0.4, 0.3, -1.1], [0.0, 0.2, 0.2]], np.float32)
    ramp = np.linspace(0.0, 1.5, w, dtype=np.float32)[None, None, :] * np.arange(C)[:, None, None]
    return [(np.einsum("kc,chw->khw", weights, pooled) + ramp)[None].astype(np.float32)]


def reference_probs(image, size, flip=False):
    """Independent single pass: normalise, pad with 0, torch bilinear upsampling to the padded
    input (align_corners=False), crop, softmax."""
    img = image[:, ::-1] if flip else image
    h, w = img.shape[:2]
    x = np.zeros((3, size, size), np.float32)
    x[:, :h, :w] = ((img.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)
    logits = torch.from_numpy(fake_net(x[None])[0])
    up = torch.nn.functional.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)
    p = torch.softmax(up[0, :, :h, :w], dim=0).numpy()
    return p[:, :, ::-1] if flip else p


def _image(h=37, w=45, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _cfg(root, out, **test):
    base = {"root": str(root), "list": None, "size": 64, "flip": False, "scales": [1.0], "pred_dir": None,
            "max_images": None}
    base.update(test)
    return Config({"model": Config({"num_classes": C}), "output_dir": str(out), "test": Config(base),
                   "data": Config({"val_root": None, "val_list": None})})


def test_prepare_pads_bottom_right_with_the_mean_colour_and_flips_before_padding():
    image = _image()
    x, content = seg.prepare(image, (64, 64))
    assert x.shape == (1, 3, 64, 64) and x.dtype == np.float32 and content == (37, 45)
    expected = ((image / 255.0 - MEAN) / STD).transpose(2, 0, 1)
    np.testing.assert_allclose(x[0, :, :37, :45], expected, atol=1e-5)
    assert not x[0, :, 37:].any() and not x[0, :, :, 45:].any()
    xf, _ = seg.prepare(image, (64, 64), flip=True)
    np.testing.assert_allclose(xf[0, :, :37, :45], expected[:, :, ::-1], atol=1e-5)
    assert not xf[0, :, :, 45:].any()


def test_an_image_larger_than_the_input_is_shrunk_keeping_its_aspect():
    assert seg.pass_geometry((200, 100), (64, 64)) == ((64, 32), (64, 64))
    assert seg.pass_geometry((30, 40), (64, 64), scale=1.5) == ((45, 60), (96, 96))


def test_logits_are_upsampled_to_the_padded_input_then_cropped():
    image = _image()
    x, content = seg.prepare(image, (64, 64))
    probs = seg.logits_to_probs(fake_net(x)[0][0], x.shape[2:], content, image.shape[:2])
    assert probs.shape == (C, 37, 45)
    np.testing.assert_allclose(probs, reference_probs(image, 64), atol=1e-5)


def test_flip_averaged_eval_equals_the_mean_of_the_two_passes():
    image = _image(seed=3)
    averaged = seg.predict_probs(fake_net, image, (64, 64), [(1.0, False), (1.0, True)])
    expected = 0.5 * (reference_probs(image, 64) + reference_probs(image, 64, flip=True))
    np.testing.assert_allclose(averaged, expected, atol=1e-5)
    single = seg.predict_probs(fake_net, image, (64, 64))
    assert np.abs(single - averaged).max() > 1e-3  # the fake network is not mirror-symmetric


def test_multi_scale_pass_is_resized_back_to_the_image():
    import cv2

    image = _image(24, 32)
    probs = seg.predict_probs(fake_net, image, (32, 32), [(2.0, False)])
    # by hand: the image at 48x64 in a 64x64 input, logits up to 64x64, crop, down to 24x32
    big = cv2.resize(image, (64, 48), interpolation=cv2.INTER_LINEAR)
    x = np.zeros((3, 64, 64), np.float32)
    x[:, :48] = ((big / 255.0 - MEAN) / STD).transpose(2, 0, 1)
    logits = torch.from_numpy(fake_net(x[None])[0])
    up = torch.nn.functional.interpolate(logits, size=(64, 64), mode="bilinear", align_corners=False)
    back = torch.nn.functional.interpolate(up[:, :, :48, :64], size=(24, 32), mode="bilinear",
                                           align_corners=False)
    np.testing.assert_allclose(probs, torch.softmax(back[0], dim=0).numpy(), atol=1e-5)


def test_passes_follow_flip_and_scales():
    cfg = _cfg(".", ".", flip=True, scales=[0.5, 1.0])
    assert seg.passes(cfg) == [(0.5, False), (0.5, True), (1.0, False), (1.0, True)]
    with pytest.raises(ConfigError, match="positive"):
        seg.passes(_cfg(".", ".", scales=[0.0]))


def test_ignore_label_is_excluded_from_the_metric():
    gt = np.array([[0, 1, 255], [2, 255, 3]], np.uint8)
    right_except_ignored = np.array([[0, 1, 3], [2, 0, 3]], np.uint8)
    result = seg.score_labels([("a", right_except_ignored, gt)], C)
    assert result["miou"] == 1.0 and result["pixel_acc"] == 1.0
    wrong = np.array([[0, 1, 3], [2, 0, 0]], np.uint8)  # one labelled pixel wrong: 3 -> 0
    result = seg.score_labels([("a", wrong, gt)], C)
    assert result["per_class_iou"] == pytest.approx([0.5, 1.0, 1.0, 0.0])
    assert result["per_class_iou_named"]["background"] == 0.5
    assert result["class_names"] == ["background", "aeroplane", "bicycle", "bird"]


@pytest.fixture(scope="module")
def synthetic_voc(tmp_path_factory):
    out = tmp_path_factory.mktemp("voc")
    subprocess.run([sys.executable, "-m", "common.data.synthetic", "--format", "voc", "--num", "2", "--num-val",
                    "3", "--size", "40", "--num-classes", "3", "--out", str(out)], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    return out / "VOCdevkit" / "VOC2012"


def test_eval_writes_palette_pngs_and_the_310_flow_gives_the_same_scores(synthetic_voc, tmp_path):
    cfg = _cfg(synthetic_voc, tmp_path / "run", flip=True)
    result = seg.TASK.evaluate(None, cfg, fake_net, "eval")
    saved = json.loads((tmp_path / "run" / "eval_results.json").read_text())
    assert saved["miou"] == pytest.approx(result["miou"]) and len(saved["per_class_iou"]) == C
    pngs = sorted((tmp_path / "run" / "pred").glob("*.png"))
    assert [p.stem for p in pngs] == ["2012_v00000", "2012_v00001", "2012_v00002"]
    with Image.open(pngs[0]) as img:
        assert img.mode == "P" and img.size == (VOCSegDataset(synthetic_voc, synthetic_voc / "ImageSets"
                                                              / "Segmentation" / "val.txt")[0]["image"].shape[1::-1])
        assert np.array(img.getpalette()[:9]).tolist() == voc_palette()[:3].reshape(-1).tolist()

    # 310: one input per image and pass, the app's outputs (here the fake network) re-scored
    data_dir = tmp_path / "app_in"
    assert seg.TASK.write_inputs(None, cfg, data_dir) == 3
    from common.infer310 import iter_tensors

    outputs = {name: fake_net(arrays[0]) for name, arrays in iter_tensors(data_dir)}
    assert len(outputs) == 6 and "2012_v00000__flip" in outputs
    app = seg.TASK.score_outputs(None, cfg, outputs, data_dir, "310")
    assert app["per_class_iou"] == pytest.approx(result["per_class_iou"], nan_ok=True)
    assert (tmp_path / "run" / "eval_results_310.json").is_file()
    del outputs["2012_v00001__flip"]
    with pytest.raises(Exception, match="2012_v00001__flip"):
        seg.TASK.score_outputs(None, cfg, outputs, data_dir, "310")


def test_310_flow_refuses_multi_scale(synthetic_voc, tmp_path):
    with pytest.raises(ConfigError, match="test.scales"):
        seg.TASK.write_inputs(None, _cfg(synthetic_voc, tmp_path, scales=[0.5, 1.0]), tmp_path / "in")


def test_predict_writes_palette_labels_and_an_overlay(synthetic_voc, tmp_path):
    from common.tasks.base import list_input_images

    cfg = _cfg(synthetic_voc, tmp_path)
    files = list_input_images(synthetic_voc / "JPEGImages")[:2]
    written, skipped = seg.TASK.predict_files(None, cfg, fake_net, files, tmp_path / "out",
                                              SimpleNamespace(no_overlay=False))
    assert not skipped and len(written) == 2
    name = files[0][1]
    with Image.open(tmp_path / "out" / f"{name}.png") as img:
        labels = np.array(img)
        assert img.mode == "P"
    image = np.array(Image.open(files[0][0]).convert("RGB"))
    expected = seg.to_labels(reference_probs(image, 64))
    assert labels.shape == image.shape[:2] and (labels == expected).mean() > 0.999
    with Image.open(tmp_path / "out" / f"{name}_overlay.jpg") as img:
        assert img.size == (2 * image.shape[1], image.shape[0])


def test_overlay_colours_the_classes_and_leaves_background():
    image = np.full((2, 2, 3), 100, np.uint8)
    labels = np.array([[0, 1], [2, 255]], np.uint8)
    out = seg.overlay(image, labels)
    right = out[:, 2:]
    assert right[0, 0].tolist() == [100, 100, 100] and right[1, 1].tolist() == [100, 100, 100]
    assert right[0, 1].tolist() == [114, 50, 50]  # VOC colour of class 1 is (128, 0, 0)


def test_the_real_voc_samples_score_perfectly_against_themselves(fixtures):
    root = fixtures / "openagi_datum_voc" / "seg" / "voc"
    source = VOCSegDataset(root, root / "train.txt")
    items = [(s["name"], np.where(s["mask"] == 255, 0, s["mask"]), s["mask"]) for s in source]
    result = seg.score_labels(items, 21)
    assert result["miou"] == 1.0 and result["num_images"] == 2
    assert result["per_class_iou_named"]["person"] == 1.0 and result["per_class_iou_named"]["aeroplane"] == 1.0

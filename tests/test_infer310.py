"""The C++ inference app (ascend310_infer/), its data helpers (common/infer310.py) and launcher.

Fast tests: the .bin/manifest writer and reader, the launcher's argument checks, and the app's
error exits when a built app is already there. The slow test runs the whole route for real with
MindSpore Lite on this CPU: MindSpore net -> ONNX -> Lite converter -> cmake build -> launcher ->
infer_app -> outputs compared with MindSpore's own.
"""
import subprocess

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from common import infer310
from common.backbones.resnet import Bottleneck
from common.export import export_model
from common.infer310 import Infer310Error, InputWriter, read_manifest, read_outputs, write_inputs
from common.layers import MaxPool2d, conv2d, global_avg_pool, resize_bilinear
from common.paths import REPO_ROOT

LAUNCHER = REPO_ROOT / "scripts" / "run_infer_310.sh"
APP = infer310.app_path("lite")


# ---------------------------------------------------------------- writer / reader

def test_write_read_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1, 3, 4, 5))            # float64: cast to float32 on writing
    b = rng.standard_normal((2, 3)).astype(np.float32)
    with InputWriter(tmp_path) as w:
        w.add("img_0001", a, b)
        w.add("img-2.x", b)
    lines = [ln for ln in (tmp_path / "manifest.txt").read_text().splitlines() if not ln.startswith("#")]
    assert lines == ["img_0001 img_0001_0.bin:float32:1x3x4x5 img_0001_1.bin:float32:2x3",
                     "img-2.x img-2.x_0.bin:float32:2x3"]
    # raw little-endian float32, C order, nothing else in the file
    assert (tmp_path / "img_0001_0.bin").read_bytes() == a.astype(np.float32).tobytes()
    assert (tmp_path / "img_0001_0.bin").stat().st_size == 60 * 4
    got = read_outputs(tmp_path)  # the same format serves inputs and outputs
    assert list(got) == ["img_0001", "img-2.x"]
    np.testing.assert_array_equal(got["img_0001"][0], a.astype(np.float32))
    np.testing.assert_array_equal(got["img_0001"][1], b)
    assert got["img_0001"][0].dtype == np.float32


def test_write_inputs_keeps_dtypes_when_asked(tmp_path):
    ints = np.arange(6, dtype=np.int32).reshape(2, 3)
    write_inputs(tmp_path, {"s": (ints, np.float32(2.5))}, dtype=None)
    ((name, entries),) = read_manifest(tmp_path)
    assert name == "s"
    assert [e.format() for e in entries] == ["s_0.bin:int32:2x3", "s_1.bin:float32:scalar"]
    got = read_outputs(tmp_path)["s"]
    np.testing.assert_array_equal(got[0], ints)
    assert got[1].shape == () and got[1] == np.float32(2.5)


@pytest.mark.parametrize("line, message", [
    ("s s_0.bin:float32:1x3x4x4", "bytes, but"),             # file holds 1x3x4x5
    ("s s_0.bin:float64:1x3x4x5", "unknown dtype 'float64'"),
    ("s s_0.bin:float32:1x3x-4", "bad dims"),
    ("s s_0.bin", "bad entry"),
    ("s", "lists no tensor file"),
    ("s missing.bin:float32:1x3x4x5", "missing"),
])
def test_reader_names_the_fault(tmp_path, line, message):
    np.zeros((1, 3, 4, 5), np.float32).tofile(tmp_path / "s_0.bin")
    (tmp_path / "manifest.txt").write_text("# header\n" + line + "\n")
    with pytest.raises(Infer310Error, match=message):
        read_outputs(tmp_path)


def test_writer_rejects_bad_names(tmp_path):
    w = InputWriter(tmp_path)
    with pytest.raises(Infer310Error, match="letters, digits"):
        w.add("two words", np.zeros(2))
    w.add("a", np.zeros(2))
    with pytest.raises(Infer310Error, match="twice"):
        w.add("a", np.zeros(2))
    with pytest.raises(Infer310Error, match="dtype complex"):
        InputWriter(tmp_path, dtype=None).add("c", np.zeros(2, np.complex64))


# ---------------------------------------------------------------- launcher arguments

@pytest.mark.parametrize("args, message", [
    ([], "usage"),
    (["nope.mindir", "data"], "model file not found: nope.mindir"),
    (["MODEL", "data", "0", "gpu"], "unknown BACKEND 'gpu'"),
    (["MODEL", "data", "x"], "DEVICE_ID must be a number"),
    (["MODEL", "DATA_MISSING", "0", "lite_cpu"], "manifest.txt not found"),
])
def test_launcher_rejects_bad_arguments(tmp_path, args, message):
    (tmp_path / "m.mindir").write_bytes(b"x")
    args = [str(tmp_path / "m.mindir") if a == "MODEL" else a for a in args]
    args = [str(tmp_path / "none") if a == "DATA_MISSING" else a for a in args]
    proc = subprocess.run(["bash", str(LAUNCHER)] + args, check=False, capture_output=True, text=True,
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr


# ---------------------------------------------------------------- the app's error exits

def _app_or_skip():
    if subprocess.run([str(APP), "--help"], check=False, capture_output=True).returncode != 0:
        pytest.skip(f"{APP} exists but does not start (MindSpore Lite libraries gone?)")
    return APP


@pytest.mark.slow
@pytest.mark.parametrize("case, code, message", [
    ("no_args", 2, "--model_path is required"),
    ("unknown_flag", 2, "unknown argument '--bogus'"),
    ("bad_threads", 2, "--threads needs a non-negative integer"),
    ("bad_backend", 2, "--backend gpu is not available"),
    ("missing_model", 4, "model file not found"),
    ("no_manifest", 3, "manifest.txt: cannot open"),
    ("short_bin", 3, "holds 100 bytes but the manifest says float32 1x3x8x8 = 768 bytes"),
    ("bad_dtype", 3, "unknown dtype 'float64'"),
])
def test_app_argument_and_data_errors(tmp_path, case, code, message, lite_app):
    app = _app_or_skip()
    model = tmp_path / "m.mindir"
    model.write_bytes(b"not a model")  # data checks come before the model is built
    data = tmp_path / "in"
    write_inputs(data, {"a": np.zeros((1, 3, 8, 8)), "b": np.zeros((1, 3, 8, 8))})
    base = ["--model_path", str(model), "--input_dir", str(data), "--output_dir", str(tmp_path / "out"),
            "--time_dir", str(tmp_path / "t")]
    argv = {
        "no_args": [],
        "unknown_flag": base + ["--bogus", "1"],
        "bad_threads": base + ["--threads", "two"],
        "bad_backend": base + ["--backend", "gpu"],
        "missing_model": ["--model_path", str(tmp_path / "none.mindir")] + base[2:],
        "no_manifest": base[:2] + ["--input_dir", str(tmp_path)] + base[4:],
        "short_bin": base,
        "bad_dtype": base,
    }[case]
    if case == "short_bin":
        (data / "b_0.bin").write_bytes(b"\0" * 100)
    if case == "bad_dtype":
        text = (data / "manifest.txt").read_text()
        (data / "manifest.txt").write_text(text.replace("a_0.bin:float32", "a_0.bin:float64"))
    proc = subprocess.run([str(app)] + argv, check=False, capture_output=True, text=True)
    assert proc.returncode == code, proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "out" / "manifest.txt").exists()


@pytest.mark.slow
def test_app_rejects_a_file_that_is_no_model(tmp_path, lite_app):
    app = _app_or_skip()
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07garbage")
    write_inputs(tmp_path / "in", {"a": np.zeros((1, 3, 8, 8))})
    proc = infer310.run_app(tmp_path / "m.onnx", tmp_path / "in", tmp_path / "out", app=app,
                            time_dir=tmp_path / "t")
    assert proc.returncode == 4
    assert "building" in proc.stderr and "failed" in proc.stderr


# ---------------------------------------------------------------- the whole route, for real

class TinySegCls(nn.Cell):
    """Stem conv + BN + ReLU, padded max pool, a ResNet bottleneck and two heads: a sigmoid map
    upsampled to input size by the matmul bilinear resize, and pooled logits."""

    def __init__(self):
        super().__init__()
        self.stem = nn.SequentialCell([conv2d(3, 16, 3, stride=2, padding=1, has_bias=False),
                                       nn.BatchNorm2d(16), nn.ReLU()])
        self.pool = MaxPool2d(3, 2, 1)
        self.block = Bottleneck(16, 8, downsample=True)
        self.side = conv2d(32, 1, 1)
        self.fc = nn.Dense(32, 5)

    def construct(self, x):
        y = self.block(self.pool(self.stem(x)))
        side = ops.sigmoid(resize_bilinear(self.side(y), (x.shape[2], x.shape[3])))
        return side, self.fc(global_avg_pool(y, keepdim=False))


@pytest.mark.slow
def test_lite_app_matches_mindspore(tmp_path, lite_app, run_infer_310):
    env = infer310.lite_env(install=True)  # already set up by the lite_app fixture

    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    rng = np.random.default_rng(0)
    net = TinySegCls()
    for p in net.get_parameters():  # random BN statistics too, so BN is no identity
        values = rng.standard_normal(p.shape).astype(np.float32) * 0.5
        if "moving_variance" in p.name:
            values = np.abs(values) + 0.5
        p.set_data(ms.Tensor(values))
    net.set_train(False)

    onnx = export_model(net, rng.random((1, 3, 48, 48), dtype=np.float32), "ONNX", tmp_path / "tiny.onnx")
    assert onnx.dynamic_batch, "the tiny net should export with a dynamic batch axis"
    model = infer310.convert_onnx_to_lite(onnx.path, tmp_path / "tiny_lite", env=env)
    assert model.name == "tiny_lite.mindir" and model.is_file()

    samples = {"s0": rng.random((1, 3, 48, 48), dtype=np.float32),
               "s1": rng.standard_normal((1, 3, 48, 48)).astype(np.float32),
               "s2": rng.random((2, 3, 48, 48), dtype=np.float32)}  # another batch: the app resizes
    write_inputs(tmp_path / "data", samples)

    app = infer310.build_app("lite")
    assert app.is_file()
    postprocess = ("python -c \"import sys; from common.infer310 import read_outputs; "
                   "o = read_outputs(sys.argv[1]); print('postprocess saw', len(o), 'samples')\" $RESULT_DIR")
    run_infer_310(model, tmp_path / "data", tmp_path, postprocess=postprocess, timeout=900)
    assert "postprocess saw 3 samples" in (tmp_path / "acc.log").read_text()
    timing = (tmp_path / "time_Result" / "test_perform_static.txt").read_text()
    assert timing.startswith("NN inference cost average time:") and "infer_count 3" in timing

    got = read_outputs(tmp_path / "result_Files")
    assert list(got) == list(samples)
    worst = 0.0
    for name, x in samples.items():
        want = [t.asnumpy() for t in net(ms.Tensor(x))]
        assert [g.shape for g in got[name]] == [w.shape for w in want]
        for g, w in zip(got[name], want):
            worst = max(worst, float(np.max(np.abs(g - w))))
            np.testing.assert_allclose(g, w, atol=1e-4, rtol=0)
    print(f"max |infer_app (Lite) - MindSpore| = {worst:.3g}; {timing.splitlines()[0]}")


def test_app_outputs_are_read_when_looked_up_not_all_at_once(tmp_path, monkeypatch):
    from common import infer310

    with infer310.InputWriter(tmp_path) as writer:
        for i in range(3):
            writer.add(f"s{i}", np.full((2, 3), i, np.float32), np.arange(4, dtype=np.float32))
    reads = []
    original = infer310.read_tensor
    monkeypatch.setattr(infer310, "read_tensor", lambda folder, entry: reads.append(entry.file) or original(folder, entry))
    outputs = infer310.read_outputs(tmp_path)
    assert len(outputs) == 3 and list(outputs) == ["s0", "s1", "s2"] and reads == []
    np.testing.assert_array_equal(outputs["s1"][0], np.full((2, 3), 1, np.float32))
    assert reads == ["s1_0.bin", "s1_1.bin"]
    assert dict(outputs)["s2"][1].tolist() == [0, 1, 2, 3]

"""export_model: ONNX (with graph fix-ups, dynamic batch), MINDIR, AIR refusal on CPU, parity
failures that leave no file, and the ONNX Runtime helpers."""
import mindspore as ms
import numpy as np
import onnx
import pytest
from mindspore import Tensor, nn, ops

from common import layers as L
from common.export import ExportError, export_model, fix_onnx_graph, onnx_session, run_onnx

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module", autouse=True)
def _cpu():
    ms.set_device("CPU")


class Decoder(nn.Cell):
    """Small encoder-decoder: conv with different H/W padding, BN, export-safe pool, deconv x2."""

    def __init__(self):
        super().__init__()
        self.conv = L.conv2d(3, 8, 3, padding=(1, 2), has_bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.pool = L.MaxPool2d(3, 2, 1)
        self.up = L.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1)
        self.head = L.conv2d(4, 2, 1)

    def construct(self, x):
        y = self.up(self.pool(ops.relu(self.bn(self.conv(x)))))
        return self.head(y), L.global_avg_pool(y, keepdim=False)


def _net():
    net = Decoder()
    net.bn.moving_mean.set_data(Tensor(RNG.standard_normal(8).astype(np.float32)))
    net.bn.moving_variance.set_data(Tensor(RNG.uniform(0.5, 2, 8).astype(np.float32)))
    net.set_train(False)
    return net


def _out(net, x):
    return [o.asnumpy() for o in net(Tensor(x))]


def test_onnx_conv_transpose_fixup_and_parity(tmp_path, capsys):
    net = _net()
    x = RNG.standard_normal((2, 3, 10, 12)).astype(np.float32)

    # MindSpore 2.10 writes ConvTranspose.output_shape = (N, C, ...) and MindSpore-ordered pads
    raw = tmp_path / "raw.onnx"
    ms.onnx.export(net, Tensor(x), file_name=str(raw), input_names=["x"])
    raw_nodes = onnx.load(str(raw)).graph.node
    assert any(a.name == "output_shape"
               for n in raw_nodes if n.op_type == "ConvTranspose" for a in n.attribute)

    result = export_model(net, x, "ONNX", tmp_path / "decoder.onnx")
    assert result.path == tmp_path / "decoder.onnx" and result.dynamic_batch
    assert len(result.diffs) == 2 and result.max_diff < 1e-5
    assert "max |diff| per output" in capsys.readouterr().out
    model = onnx.load(str(result.path))
    onnx.checker.check_model(model)
    deconv = [n for n in model.graph.node if n.op_type == "ConvTranspose"]
    assert deconv and not any(a.name == "output_shape" for a in deconv[0].attribute)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decoder.onnx", "raw.onnx"]  # no temp files

    # independent check with ONNX Runtime, at the export batch and at another one
    session = onnx_session(result.path, threads=1)
    assert session.get_session_options().intra_op_num_threads == 1
    for batch in (2, 3):
        xb = RNG.standard_normal((batch, 3, 10, 12)).astype(np.float32)
        for got, want in zip(session.run(None, {"x": xb}), _out(net, xb)):
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_fix_onnx_graph_reorders_pads(tmp_path):
    net = _net()
    x = RNG.standard_normal((1, 3, 10, 12)).astype(np.float32)
    raw = tmp_path / "raw.onnx"
    ms.onnx.export(net, Tensor(x), file_name=str(raw), input_names=["x"])
    model = onnx.load(str(raw))
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert list(next(a for a in conv.attribute if a.name == "pads").ints) == [1, 1, 2, 2]  # MindSpore order
    fixes = fix_onnx_graph(model)
    assert list(next(a for a in conv.attribute if a.name == "pads").ints) == [1, 2, 1, 2]  # ONNX order
    assert any("pads" in f for f in fixes) and any("output_shape" in f for f in fixes)


def test_mindir_export_and_reload(tmp_path):
    net = _net()
    x = RNG.standard_normal((2, 3, 10, 12)).astype(np.float32)
    result = export_model(net, Tensor(x), "mindir", tmp_path / "decoder")  # suffix added
    assert result.path == tmp_path / "decoder.mindir" and result.path.is_file()
    assert result.max_diff < 1e-6
    graph = nn.GraphCell(ms.load(str(result.path)))
    for got, want in zip(graph(Tensor(x)), _out(net, x)):
        np.testing.assert_allclose(got.asnumpy(), want, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["decoder.mindir"]


def test_air_on_cpu_raises_before_writing(tmp_path):
    with pytest.raises(ExportError) as err:
        export_model(_net(), np.zeros((1, 3, 8, 8), np.float32), "AIR", tmp_path / "net.air")
    assert str(err.value) == ("AIR export needs the Ascend backend (device is CPU); "
                              "export MINDIR or ONNX instead")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["ONNX", "MINDIR"])
def test_parity_failure_removes_file(tmp_path, fmt):
    # an impossible tolerance forces the failure path; nothing may stay behind
    with pytest.raises(ExportError, match="differs from the network"):
        export_model(_net(), RNG.standard_normal((1, 3, 8, 8)).astype(np.float32), fmt,
                     tmp_path / "bad", atol=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_and_input_names(tmp_path):
    with pytest.raises(ExportError, match="unknown export format"):
        export_model(_net(), np.zeros((1, 3, 8, 8), np.float32), "TFLITE", tmp_path / "x")
    with pytest.raises(ExportError, match="input names"):
        export_model(_net(), np.zeros((1, 3, 8, 8), np.float32), "ONNX", tmp_path / "x",
                     input_names=["a", "b"])


class BatchBaked(nn.Cell):
    """Reshape with the traced batch size baked in: cannot take another batch size."""

    def construct(self, x):
        return ops.reshape(x * 2, (2, -1))


def test_dynamic_batch_falls_back_to_fixed(tmp_path):
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    result = export_model(BatchBaked(), x, "ONNX", tmp_path / "baked.onnx")
    assert not result.dynamic_batch
    dim = onnx.load(str(result.path)).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_value == 2
    np.testing.assert_allclose(run_onnx(onnx_session(result.path), x)[0], (x * 2).reshape(2, -1))


class TwoInputs(nn.Cell):
    def construct(self, a, b):
        return a * 3 + b, ops.mean(b, 1)


@pytest.mark.parametrize("dynamic", [True, False])
def test_run_onnx_batching(tmp_path, dynamic):
    a = RNG.standard_normal((2, 5)).astype(np.float32)
    b = RNG.standard_normal((2, 5)).astype(np.float32)
    result = export_model(TwoInputs(), (a, b), "ONNX", tmp_path / "two.onnx", dynamic_batch=dynamic)
    assert result.dynamic_batch == dynamic
    session = onnx_session(result.path)
    assert [i.name for i in session.get_inputs()] == ["x0", "x1"]
    a5 = RNG.standard_normal((5, 5)).astype(np.float32)
    b5 = RNG.standard_normal((5, 5)).astype(np.float32)
    # a fixed-batch model is fed chunks of 2, the last padded and trimmed
    out = run_onnx(session, [a5, b5], batch_size=2 if dynamic else None)
    np.testing.assert_allclose(out[0], a5 * 3 + b5, atol=1e-6)
    np.testing.assert_allclose(out[1], b5.mean(1), atol=1e-6)
    out = run_onnx(session, {"x0": a5, "x1": b5}, batch_size=2)
    np.testing.assert_allclose(out[0], a5 * 3 + b5, atol=1e-6)

"""U-2-Net network: the authors' parameter names, shapes and counts, outputs, gradients, training."""
import ast

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

import models
from common.checkpoint import named_parameters, torch_to_mindspore_names
from common.layers import MaxPool2dCeil
from models.u2net.src.u2net import RSU, build_u2net

# Trainable parameters of the authors' U2NET / U2NETP (model/u2net.py), counted in PyTorch.
PARAMS = {"u2net": 44_009_869, "u2netp": 1_131_181}
TABLES = {"u2net": "U2NET_state_dict_keys.tsv", "u2netp": "U2NETP_state_dict_keys.tsv"}
RNG = np.random.default_rng(0)


pytestmark = pytest.mark.usefixtures("pynative")


def _read_table(path):
    """{key: shape} from a reference table: key <tab> (shape) <tab> numel."""
    rows = {}
    for line in path.read_text().splitlines():
        key, shape, numel = line.split("\t")
        shape = tuple(ast.literal_eval(shape))
        assert int(np.prod(shape)) == int(numel), line
        rows[key] = shape
    return rows


@pytest.mark.parametrize("variant", ["u2net", "u2netp"])
def test_parameter_count(variant):
    net = models.create_model(variant)
    assert sum(int(p.size) for p in net.trainable_params()) == PARAMS[variant]


@pytest.mark.parametrize("variant", ["u2net", "u2netp"])
def test_names_and_shapes_equal_authors_table(variant, reference_keys):
    table = _read_table(reference_keys / TABLES[variant])
    trainable = sum(int(np.prod(s)) for k, s in table.items()
                    if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert trainable == PARAMS[variant]
    want = {k: v.shape for k, v in torch_to_mindspore_names(
        {k: np.broadcast_to(np.float32(0), s) for k, s in table.items()}).items()}
    net = build_u2net(variant)
    got = {k: tuple(p.shape) for k, p in named_parameters(net).items()}
    assert got == want

    def modules(keys):
        return list(dict.fromkeys(k.rsplit(".", 1)[0] for k in keys))

    assert modules(got) == modules(want)  # the authors' definition order (the ONNX converter relies on it)


def test_registry_and_builder_arguments():
    assert {"u2net", "u2netp"} <= set(models.list_models())
    net = models.create_model("u2netp", in_channels=4, out_channels=2)
    assert tuple(net.stage1.rebnconvin.conv_s1.weight.shape) == (64, 4, 3, 3)
    assert tuple(net.outconv.weight.shape) == (2, 12, 1, 1)
    with pytest.raises(ValueError, match="variant"):
        build_u2net("u2netx")


def test_ceil_pool_equals_pytorch_ceil_mode():
    """2x2/2 pooling in ceil mode, written out: the last window of an odd size holds one row."""
    x = RNG.standard_normal((1, 2, 5, 7)).astype(np.float32) - 3.0  # negative: padding must not win
    got = MaxPool2dCeil(2, 2)(ms.Tensor(x)).asnumpy()
    want = np.full((1, 2, 3, 4), -np.inf, np.float32)
    for i in range(3):
        for j in range(4):
            want[:, :, i, j] = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max(axis=(2, 3))
    np.testing.assert_array_equal(got, want)


def test_rsu_dilations_and_pooling():
    """RSU7: dilation 2 only at the deepest level; RSU4F: 1, 2, 4, 8 and back, no pooling."""
    rsu7 = RSU(7, 3, 16, 64)
    assert [getattr(rsu7, f"rebnconv{i}").conv_s1.dilation for i in range(1, 8)] == [(1, 1)] * 6 + [(2, 2)]
    assert rsu7.pooled == (True,) * 5 + (False, False)
    net = build_u2net("u2netp")
    f = net.stage5
    assert [getattr(f, n).conv_s1.dilation[0] for n in
            ["rebnconv1", "rebnconv2", "rebnconv3", "rebnconv4", "rebnconv3d", "rebnconv2d", "rebnconv1d"]] \
        == [1, 2, 4, 8, 4, 2, 1]
    assert not any(f.pooled)
    x = ms.Tensor(RNG.standard_normal((1, 3, 37, 23)).astype(np.float32))
    assert rsu7(x).shape == (1, 64, 37, 23)


@pytest.mark.parametrize("size", [(320, 320), (100, 150)])
def test_u2netp_outputs(size):
    net = build_u2net("u2netp")
    net.set_train(False)
    x = ms.Tensor(RNG.standard_normal((1, 3) + size).astype(np.float32))
    out = net(x)
    assert len(out) == 7
    for o in out:
        o = o.asnumpy()
        assert o.shape == (1, 1) + size
        assert np.isfinite(o).all() and o.min() >= 0.0 and o.max() <= 1.0
    # The fused map d0 is the sigmoid of the 1x1 conv over the six side logits.
    logits = build_u2net("u2netp", return_logits=True)
    ms.load_param_into_net(logits, {k: ms.Parameter(p.asnumpy(), name=k)
                                    for k, p in named_parameters(net).items()})
    logits.set_train(False)
    lo = [o.asnumpy() for o in logits(x)]
    np.testing.assert_allclose(1 / (1 + np.exp(-lo[0])), out[0].asnumpy(), atol=1e-5)
    w = net.outconv.weight.asnumpy().reshape(6)
    fused = np.tensordot(w, np.concatenate(lo[1:], axis=1)[0], axes=1) + net.outconv.bias.asnumpy()[0]
    np.testing.assert_allclose(fused, lo[0][0, 0], atol=1e-4)


def test_u2netp_exports_to_onnx(tmp_path):
    """Odd sizes exercise the ceil-mode pools and the matmul upsampling in the exported graph."""
    from common.export import export_model

    net = build_u2net("u2netp")
    x = RNG.standard_normal((1, 3, 100, 150)).astype(np.float32)
    result = export_model(net, x, "ONNX", tmp_path / "u2netp.onnx", atol=1e-4)
    assert result.path.is_file() and len(result.diffs) == 7 and max(result.diffs) <= 1e-4


@pytest.mark.slow
def test_u2net_outputs_320():
    net = build_u2net("u2net")
    net.set_train(False)
    out = net(ms.Tensor(RNG.standard_normal((1, 3, 320, 320)).astype(np.float32)))
    assert [tuple(o.shape) for o in out] == [(1, 1, 320, 320)] * 7


def _bce_with_logits(x, y):
    return ops.mean(ops.relu(x) - x * y + ops.log(1 + ops.exp(-ops.abs(x))))


def _fused_loss(net, x, y):
    loss = 0
    for o in net(x):
        loss = loss + _bce_with_logits(o, y)
    return loss


def _batch(size=64):
    x = RNG.standard_normal((2, 3, size, size)).astype(np.float32)
    yy, xx = np.mgrid[:size, :size]
    y = ((yy - size / 2) ** 2 + (xx - size / 3) ** 2 < (size / 4) ** 2).astype(np.float32)
    return ms.Tensor(x), ms.Tensor(np.broadcast_to(y, (2, 1, size, size)).copy())


def test_every_parameter_gets_a_gradient():
    # Eval mode: with batch statistics a conv bias right before BatchNorm has zero gradient by
    # construction (the mean is subtracted), which would hide nothing but fail the check.
    net = build_u2net("u2netp", return_logits=True)
    net.set_train(False)
    x, y = _batch()
    params = net.trainable_params()
    grads = ms.grad(lambda a, b: _fused_loss(net, a, b), grad_position=None, weights=params)(x, y)
    zero = [p.name for p, g in zip(params, grads) if not np.abs(g.asnumpy()).max() > 0]
    assert not zero, f"parameters without gradient: {zero}"
    assert len(grads) == len(params) == 462  # 112 REBNCONV x 4 + 6 sides x 2 + outconv x 2


@pytest.mark.parametrize("seed", [0])
def test_adam_step_lowers_loss(seed):
    ms.set_seed(seed)
    net = build_u2net("u2netp", return_logits=True)
    net.set_train(True)
    x, y = _batch()
    opt = nn.Adam(net.trainable_params(), learning_rate=1e-3)
    step = ms.value_and_grad(lambda a, b: _fused_loss(net, a, b), None, opt.parameters)
    losses = []
    for _ in range(4):
        loss, grads = step(x, y)
        opt(grads)
        losses.append(float(loss.asnumpy()))
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0], losses

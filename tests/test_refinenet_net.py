"""RefineNet-101: DrSleep's parameter names, shapes and counts, the blocks against numpy, output
size, dropout placement, frozen BatchNorm, the loss, one training step, weight converters, export.
"""

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from common.checkpoint import CheckpointError, load_weights, named_parameters, state_dict
from models import create_model, list_models
from models.refinenet.src import CRPBlock, RCUBlock
from models.refinenet.src.convert import (
    DECODER_PREFIXES,
    KEY_MAPS,
    authors_to_ours,
    detect_layout,
    load_imagenet_backbone,
    old_port_to_ours,
    ours_to_authors,
)
from models.refinenet.src.loss import RefineNetLoss
from tests import reference_tables

# Trainable parameters of DrSleep's rf101(21), counted in PyTorch; its ResNet-101 part
# (conv1, bn1, layer1..4) alone.
PARAMS, BACKBONE_PARAMS = 118_052_437, 42_500_160
TABLE = "rf101_voc21_state_dict_keys.tsv"
BN_FIELDS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
             "running_var": "moving_variance"}
BACKBONE = ("conv1.", "bn1.", "layer")
RNG = np.random.default_rng(0)

pytestmark = pytest.mark.usefixtures("pynative")


@pytest.fixture(scope="module")
def built():
    """One default refinenet101 (dropout 0.5, frozen BN) for the module, building one takes
    seconds, with a copy of its initial weights."""
    ms.set_seed(0)
    model = create_model("refinenet101", num_classes=21)
    return model, state_dict(model)


@pytest.fixture
def net(built):
    return built[0]


class _Identity(nn.Cell):
    def construct(self, x):
        return x


@pytest.fixture
def quiet_net(built):
    """The module's net at its initial weights, without dropout and with its residual branches
    scaled down (bn3.gamma = 0.2), so that random weights under frozen (identity) BatchNorm give
    bounded activations."""
    net, initial = built
    load_weights(net, initial)
    saved = net.dropout
    net.dropout = _Identity()
    damp_residuals(net)
    yield net
    net.dropout = saved
    net.set_train(False)


def damp_residuals(model, gamma=0.2):
    for name, param in named_parameters(model).items():
        if name.endswith("bn3.gamma"):
            param.set_data(Tensor(np.full(param.shape, gamma, np.float32)))


def read_table(reference_keys):
    return reference_tables.read_table(reference_keys / TABLE)


def bn_renamed(rows):
    return reference_tables.bn_renamed(rows)


def tagged_state(rows, offset=0.0):
    """{name: array} with one distinct small constant per tensor (cheap for 118M values, and a
    tensor landing under the wrong name shows), positive variances, int64 counters."""
    out = {}
    for i, (name, shape) in enumerate(rows):
        if name.endswith("num_batches_tracked"):
            out[name] = np.array(77, np.int64)
        else:
            tag = 1e-3 * (i + 1) + offset
            out[name] = np.full(shape, 1.0 + tag if name.endswith(("running_var", "moving_variance")) else tag,
                                np.float32)
    return out


# ---------------------------------------------------------------- structure

def test_registered_and_parameter_counts(net):
    assert "refinenet101" in list_models()
    trainable = net.trainable_params()
    assert sum(int(p.size) for p in trainable) == PARAMS
    names = {id(p): n for n, p in named_parameters(net).items()}
    assert sum(int(p.size) for p in trainable if names[id(p)].startswith(BACKBONE)) == BACKBONE_PARAMS


def test_names_and_shapes_equal_drsleep_table(net, reference_keys):
    ours = {name: tuple(p.shape) for name, p in named_parameters(net).items()}
    theirs = bn_renamed(read_table(reference_keys))
    assert ours == dict(theirs)

    def modules(names):  # in order of definition (BatchNorm orders its own fields differently)
        return list(dict.fromkeys(n.rsplit(".", 1)[0] for n in names))

    assert modules(ours) == modules(n for n, _ in theirs)


def test_output_at_quarter_size_odd_and_non_square(net):
    net.set_train(False)
    for h, w in ((65, 97), (64, 40)):
        out = net(Tensor(RNG.standard_normal((1, 3, h, w)).astype(np.float32)))
        assert out.shape == (1, 21, -(-h // 4), -(-w // 4))


class _Recorder(nn.Cell):
    """Wraps a cell and records the shape of every input it sees (PyNative only)."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell
        self.shapes = []

    def construct(self, x):
        self.shapes.append(tuple(x.shape))
        return self.cell(x)


def test_dropout_and_decoder_relus_where_drsleep_has_them(net):
    """Dropout on C5, C4 and before the classifier; the top-level ReLU after the stem, after
    adapt_stage1_b (the extra one) and after each sum with a coarser path."""
    dropout, relu = net.dropout, net.relu
    assert dropout.p == 0.5
    net.dropout, net.relu = _Recorder(dropout), _Recorder(relu)
    try:
        net.set_train(False)
        net(Tensor(RNG.standard_normal((1, 3, 64, 96)).astype(np.float32)))
        assert net.dropout.shapes == [(1, 2048, 2, 3), (1, 1024, 4, 6), (1, 256, 16, 24)]
        assert net.relu.shapes == [(1, 64, 32, 48), (1, 512, 2, 3), (1, 256, 4, 6), (1, 256, 8, 12),
                                   (1, 256, 16, 24)]
    finally:
        net.dropout, net.relu = dropout, relu


def _conv3x3_np(x, w, b=None):
    n, _, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((n, w.shape[0], h, wd), np.float64)
    for i in range(3):
        for j in range(3):
            out += np.einsum("nchw,oc->nohw", xp[:, :, i:i + h, j:j + wd], w[:, :, i, j])
    return out if b is None else out + b.reshape(1, -1, 1, 1)


def _maxpool5_np(x, pad_value):
    h, w = x.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=pad_value)
    return np.max([xp[:, :, i:i + h, j:j + w] for i in range(5) for j in range(5)], axis=0)


def _set_random(cell, rng, scale=0.3):
    for _, param in cell.parameters_and_names():
        param.set_data(Tensor((rng.standard_normal(param.shape) * scale).astype(np.float32)))


def test_rcu_block_against_numpy():
    rng = np.random.default_rng(1)
    block = RCUBlock(4, 2)
    _set_random(block, rng)
    names = [n for n, _ in block.parameters_and_names()]
    assert names == ["1_conv.weight", "1_conv.bias", "1_conv_relu_varout_dimred.weight",
                     "2_conv.weight", "2_conv.bias", "2_conv_relu_varout_dimred.weight"]
    p = {n: q.asnumpy() for n, q in block.parameters_and_names()}
    x = rng.standard_normal((2, 4, 5, 7)).astype(np.float32)
    ref = x.astype(np.float64)
    for i in (1, 2):  # the shortcut carries the unit's input from before its ReLU
        y = _conv3x3_np(np.maximum(ref, 0), p[f"{i}_conv.weight"], p[f"{i}_conv.bias"])
        ref = ref + _conv3x3_np(np.maximum(y, 0), p[f"{i}_conv_relu_varout_dimred.weight"])
    got = block(Tensor(x)).asnumpy()
    assert got.shape == (2, 4, 5, 7)
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)


def test_crp_pads_with_minus_infinity():
    rng = np.random.default_rng(2)
    block = CRPBlock(4, 4)
    _set_random(block, rng)
    weights = [block.parameters_dict()[k].asnumpy() for k in sorted(block.parameters_dict())]
    assert sorted(n for n, _ in block.parameters_and_names()) == [f"{i}_outvar_dimred.weight"
                                                                 for i in range(1, 5)]
    x = (-np.abs(rng.standard_normal((1, 4, 6, 9))) - 1.0).astype(np.float32)  # negative only

    def ref(pad_value):
        top, acc = x.astype(np.float64), x.astype(np.float64)
        for w in weights:
            top = _conv3x3_np(_maxpool5_np(top, pad_value), w)
            acc = acc + top
        return acc

    got = block(Tensor(x)).asnumpy()
    assert got.shape == x.shape
    want, zero_padded = ref(-np.inf), ref(0.0)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    spread = want.max() - want.min()
    assert np.abs(got - zero_padded).max() > 0.05 * spread  # zero padding would be visibly wrong


# ---------------------------------------------------------------- BatchNorm and training

def test_frozen_batchnorm_keeps_statistics_but_trains_affine(quiet_net):
    bns = [c for _, c in quiet_net.cells_and_names() if isinstance(c, nn.BatchNorm2d)]
    assert len(bns) == 104 and all(bn.gamma.requires_grad and bn.beta.requires_grad for bn in bns)
    x = Tensor(RNG.standard_normal((2, 3, 32, 32)).astype(np.float32))
    stats = bns[5].moving_mean.asnumpy().copy()
    quiet_net.set_train(False)
    ref = quiet_net(x).asnumpy()
    quiet_net.set_train(True)
    got = quiet_net(x).asnumpy()
    quiet_net.set_train(False)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6 * np.abs(ref).max())
    np.testing.assert_array_equal(bns[5].moving_mean.asnumpy(), stats)


def test_one_momentum_step_lowers_the_loss(quiet_net):
    x = Tensor(RNG.standard_normal((1, 3, 32, 32)).astype(np.float32))
    labels = np.full((1, 32, 32), 7, np.int32)
    labels[:, :5] = 255
    labels = Tensor(labels)
    loss_fn = RefineNetLoss()
    params = quiet_net.trainable_params()
    opt = nn.Momentum(params, learning_rate=0.01, momentum=0.9)

    def forward(x, y):
        return loss_fn(quiet_net(x), y)

    step = ms.value_and_grad(forward, None, opt.parameters)
    gamma = quiet_net.layer3[4].bn2.gamma.asnumpy().copy()
    mean = quiet_net.layer3[4].bn2.moving_mean.asnumpy().copy()
    quiet_net.set_train(True)
    before, grads = step(x, labels)
    opt(grads)
    after = forward(x, labels)
    quiet_net.set_train(False)
    before, after = float(before.asnumpy()), float(after.asnumpy())
    assert np.isfinite(before) and after < before - 0.01, (before, after)
    assert not np.array_equal(quiet_net.layer3[4].bn2.gamma.asnumpy(), gamma)  # affine trained
    np.testing.assert_array_equal(quiet_net.layer3[4].bn2.moving_mean.asnumpy(), mean)  # frozen


# ---------------------------------------------------------------- loss

def _upsample_np(x, size):
    """Bilinear, align_corners=False (half-pixel, source clamped at 0), written out for the test."""
    def weights(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        m = np.zeros((n_out, n_in))
        m[np.arange(n_out), i0] += 1 - (src - i0)
        m[np.arange(n_out), i1] += src - i0
        return m

    return np.einsum("Hh,nchw,Ww->ncHW", weights(x.shape[2], size[0]), x, weights(x.shape[3], size[1]))


def _ce_np(logits, labels, ignore=255):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    valid = labels != ignore
    picked = np.take_along_axis(logp, np.where(valid, labels, 0)[:, None], axis=1)[:, 0]
    return -(picked * valid).sum() / valid.sum()


@pytest.mark.parametrize("graph", [False, True], ids=["pynative", "graph"])
def test_loss_upsamples_logits_and_matches_numpy(graph):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((2, 5, 7, 9)).astype(np.float32) * 3
    labels = rng.integers(0, 5, (2, 27, 35)).astype(np.int32)
    labels[0, :4] = 255
    labels[1, :, -3:] = 255
    ms.set_context(mode=ms.GRAPH_MODE if graph else ms.PYNATIVE_MODE)
    got = float(RefineNetLoss()(Tensor(logits), Tensor(labels)).asnumpy())
    want = _ce_np(_upsample_np(logits.astype(np.float64), (27, 35)), labels)
    assert abs(got - want) < 1e-5 * max(1.0, abs(want))


def test_loss_ignores_label_255():
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((1, 4, 6, 8)).astype(np.float32)
    labels = rng.integers(0, 4, (1, 6, 8)).astype(np.int32)
    labels[0, 2:4, 1:6] = 255
    loss = RefineNetLoss()
    base = float(loss(Tensor(logits), Tensor(labels)).asnumpy())
    assert abs(base - _ce_np(logits.astype(np.float64), labels)) < 1e-5
    changed = logits.copy()
    changed[0, :, 2:4, 1:6] += rng.standard_normal((4, 2, 5)).astype(np.float32) * 10
    assert float(loss(Tensor(changed), Tensor(labels)).asnumpy()) == pytest.approx(base, abs=1e-6)
    changed[0, 0, 0, 0] += 5.0  # a scored pixel does move it (one class: softmax is shift-invariant)
    assert abs(float(loss(Tensor(changed), Tensor(labels)).asnumpy()) - base) > 1e-3
    ignored = Tensor(np.full((1, 6, 8), 255, np.int32))
    assert float(loss(Tensor(logits), ignored).asnumpy()) == 0.0


# ---------------------------------------------------------------- weight converters

def test_authors_state_dict_round_trip(net, reference_keys):
    state = tagged_state(read_table(reference_keys))
    wrapped = {f"segmenter.module.{k}": v for k, v in state.items()}  # light-weight-refinenet save
    assert detect_layout(state) == detect_layout(wrapped) == "authors"
    report = load_weights(net, wrapped, strict=True, key_map=KEY_MAPS["authors"])
    assert report.ok and len(report.loaded) == len(bn_renamed(read_table(reference_keys)))
    ours = state_dict(net)
    for (name, _), (theirs, _) in zip(bn_renamed(read_table(reference_keys)),
                                      [r for r in read_table(reference_keys)
                                       if not r[0].endswith("num_batches_tracked")]):
        np.testing.assert_array_equal(ours[name], state[theirs])
    back = ours_to_authors(ours)
    assert set(back) == {k for k in state if not k.endswith("num_batches_tracked")}
    assert all(np.array_equal(back[k], state[k]) for k in back)
    assert authors_to_ours(back).keys() == ours.keys()


def _old_port_name(name):
    """Our name -> the old MindSpore port's (CellList of Sequential(ReLU, conv, ReLU, conv) per RCU
    unit, CellList of convs per CRP), written out independently of the converter."""
    parts = name.split(".")
    if len(parts) == 4 and parts[1] == "0" and "_" in parts[2] and parts[2][0].isdigit():
        index, kind = parts[2].split("_", 1)
        unit = int(index) - 1
        if kind == "outvar_dimred":
            return f"{parts[0]}.0.layers.{unit}.{parts[3]}"
        conv = {"conv": 1, "conv_relu_varout_dimred": 3}[kind]
        return f"{parts[0]}.0.layers.{unit}.{conv}.{parts[3]}"
    return name


def test_old_port_layout_loads_with_nothing_missing(net, reference_keys):
    ours = tagged_state(bn_renamed(read_table(reference_keys)), offset=0.5)
    old = {f"network.{_old_port_name(k)}": v for k, v in ours.items()}
    assert "network.adapt_stage1_b.0.layers.1.3.weight" in old
    assert "network.mflow_conv_g4_pool.0.layers.3.weight" in old
    old.update({f"moments.{k}": np.zeros_like(v) for k, v in list(old.items())[:5]})
    old.update(learning_rate=np.array(0.001, np.float32), global_step=np.array([10], np.int32))
    assert detect_layout(old) == "old_port"
    report = load_weights(net, old, strict=True, key_map=old_port_to_ours)
    assert report.ok and not report.missing and not report.unexpected
    got = state_dict(net)
    for name in ("adapt_stage1_b.0.2_conv_relu_varout_dimred.weight", "mflow_conv_g2_b.0.3_conv.bias",
                 "mflow_conv_g4_pool.0.4_outvar_dimred.weight", "layer4.0.downsample.1.moving_variance"):
        np.testing.assert_array_equal(got[name], ours[name])
    assert detect_layout(ours) == "mindspore" and old_port_to_ours(ours).keys() == ours.keys()


def _backbone_rows(reference_keys):
    return [(n, s) for n, s in bn_renamed(read_table(reference_keys)) if n.startswith(BACKBONE)]


def test_imagenet_mindspore_zoo_backbone_loads_projection_shortcuts(net, reference_keys):
    ours = tagged_state(_backbone_rows(reference_keys), offset=0.25)
    zoo = {k.replace(".downsample.", ".down_sample_layer."): v for k, v in ours.items()}
    zoo.update({"end_point.weight": np.zeros((1001, 2048), np.float32),
                "end_point.bias": np.zeros((1001,), np.float32),
                "moments.conv1.weight": np.zeros((64, 3, 7, 7), np.float32)})
    shortcuts = [k for k in ours if ".0.downsample." in k]
    assert len(shortcuts) == 4 * 5  # conv weight + 4 BN tensors in layer1..4
    # the old port's way: a plain non-strict load leaves the four shortcuts at their init
    naive = load_weights(net, zoo, strict=False)
    assert sorted(k for k in naive.missing if k.startswith(BACKBONE)) == sorted(shortcuts)

    assert detect_layout(zoo) == "imagenet_mindspore"
    report = load_imagenet_backbone(net, zoo)
    assert report.ok and sorted(report.loaded) == sorted(ours)  # every backbone tensor, no decoder
    assert not any(k.startswith(DECODER_PREFIXES) for k in report.loaded)
    got = state_dict(net)
    for name in shortcuts:
        np.testing.assert_array_equal(got[name], ours[name])


def test_imagenet_torchvision_backbone_loads(net, reference_keys):
    tv = tagged_state([r for r in read_table(reference_keys) if r[0].startswith(BACKBONE)], offset=0.75)
    tv.update({"fc.weight": np.zeros((1000, 2048), np.float32), "fc.bias": np.zeros((1000,), np.float32)})
    assert detect_layout(tv) == "imagenet_torch"
    report = load_imagenet_backbone(net, tv)
    assert report.ok and len(report.loaded) == len(_backbone_rows(reference_keys))
    np.testing.assert_array_equal(net.layer2[0].downsample[1].moving_variance.asnumpy(),
                                  tv["layer2.0.downsample.1.running_var"])
    broken = {k: v for k, v in tv.items() if ".downsample." not in k}
    with pytest.raises(CheckpointError, match="downsample"):
        load_imagenet_backbone(net, broken)


# ---------------------------------------------------------------- slow: export, unfrozen BN

def _export_parity(model, size, tmp_path, formats):
    """Export at ``size`` and run the files ourselves: |file - network| <= 1e-4 x max|network|.
    (One reference forward for every format; export_model's own check would redo it.)"""
    from common.export import export_model, onnx_session

    model.set_train(False)
    x = RNG.standard_normal((1, 3) + size).astype(np.float32)
    ref = model(Tensor(x)).asnumpy()
    assert ref.shape == (1, 21, -(-size[0] // 4), -(-size[1] // 4))
    span = float(np.abs(ref).max())
    assert np.isfinite(span) and span > 0
    for fmt in formats:
        path = export_model(model, x, fmt, tmp_path / "rf101", check=False, dynamic_batch=False).path
        if fmt == "ONNX":
            session = onnx_session(path)
            got = session.run(None, {session.get_inputs()[0].name: x})[0]
        else:
            got = nn.GraphCell(ms.load(str(path)))(Tensor(x)).asnumpy()
        assert got.shape == ref.shape and np.abs(got - ref).max() <= 1e-4 * span, fmt
        path.unlink()  # 470 MB each


@pytest.mark.slow
def test_exports_onnx_and_mindir_small_non_square(quiet_net, tmp_path):
    _export_parity(quiet_net, (65, 97), tmp_path, ("ONNX", "MINDIR"))


@pytest.mark.extended
@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["ONNX", "MINDIR"])
def test_exports_513(quiet_net, tmp_path, fmt):
    _export_parity(quiet_net, (513, 513), tmp_path, (fmt,))


@pytest.mark.slow
def test_unfrozen_batchnorm_uses_batch_statistics():
    model = create_model("refinenet101", frozen_bn=False, dropout=0.0)
    assert sum(int(p.size) for p in model.trainable_params()) == PARAMS
    damp_residuals(model)
    x = Tensor(RNG.standard_normal((2, 3, 32, 32)).astype(np.float32))
    model.set_train(False)
    ref = model(x).asnumpy()
    mean = model.bn1.moving_mean.asnumpy().copy()
    model.set_train(True)
    got = model(x).asnumpy()
    model.set_train(False)
    assert np.abs(got - ref).max() > 1e-3 * np.abs(ref).max()
    assert not np.array_equal(model.bn1.moving_mean.asnumpy(), mean)

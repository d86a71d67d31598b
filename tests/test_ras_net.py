"""RAS (v1, ResNet-50): parameter counts and names against the authors' table, the reverse-attention
wiring, initialisation, export parity, the BCE + IoU loss, one training step and the key maps."""

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

import models
import models.ras  # registers "ras" even before it is listed in models._MODEL_PACKAGES
from common.checkpoint import load_weights, named_parameters, save_checkpoint, state_dict
from models.ras.src.convert import (
    HEAD_PREFIXES,
    KEY_MAPS,
    authors_to_ours,
    detect_layout,
    old_port_to_ours,
    to_ours,
    torchvision_backbone_to_ours,
)
from models.ras.src.loss import RASLoss
from models.ras.src.ras import ReverseAttention, build_ras
from tests import reference_tables

# Trainable parameters of the authors' RAS v1 (ShuhanChen/RAS-pytorch v1/RAS.py), counted in PyTorch.
PARAMS, BACKBONE_PARAMS = 24_697_989, 23_508_032
BN_AFFINE = 53_120  # gamma + beta of ResNet-50's 53 BatchNorms (26,560 channels)
TABLE = "RAS_v1_state_dict_keys.tsv"
BN_FIELDS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
             "running_var": "moving_variance"}
RNG = np.random.default_rng(0)

pytestmark = pytest.mark.usefixtures("pynative")


@pytest.fixture(scope="module")
def built():
    """(network, its initial state dict), built once: building costs seconds. Tests may change the
    weights (loading, training); only the initialisation test reads the initial values."""
    ms.set_seed(0)
    net = build_ras()
    return net, state_dict(net)


@pytest.fixture
def net(built):
    return built[0]


@pytest.fixture
def fresh_net(built):
    """The shared network reset to its initial (authors') weights."""
    net, initial = built
    load_weights(net, initial)
    return net


@pytest.fixture
def scaled_net(net):
    """The shared network with fan-in-scaled random weights and BN statistics, so that outputs
    span a few units (the authors' N(0, 0.01) init gives maps of ~0.05, too small to compare)."""
    rng = np.random.default_rng(5)
    for name, param in named_parameters(net).items():
        shape = tuple(param.shape)
        if name.endswith(".weight"):
            value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
        elif name.endswith((".bias", ".beta", ".moving_mean")):
            value = rng.uniform(-0.3, 0.3, shape)
        else:  # gamma, moving_variance
            value = rng.uniform(0.5, 1.5, shape)
        param.set_data(ms.Tensor(value.astype(np.float32)))
    return net


def read_table(reference_keys):
    return reference_tables.read_table(reference_keys / TABLE)


def mindspore_names(rows):
    return reference_tables.bn_renamed(rows)


def random_state(rows, seed):
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in rows:
        if name.endswith("num_batches_tracked"):
            state[name] = np.array(7, np.int64)
        else:
            state[name] = rng.standard_normal(shape).astype(np.float32)
            if name.endswith(("running_var", "moving_variance")):
                state[name] = np.abs(state[name]) + 0.1
    return state


def old_port_name(ours):
    """Our name -> the old MindSpore port's (research/cv/ras BoneModel), written out by hand."""
    parts = ours.split(".")
    if parts[0] == "resnet" and len(parts) > 3 and parts[3] == "downsample":
        parts[3] = "down_sample_layer"
    elif parts[0] == "mscm" and parts[1] in ("convert", "score"):
        parts[1] = {"convert": "conv", "score": "conv_end"}[parts[1]]
    elif parts[0].startswith("ra") and parts[1] == "convs":
        parts[1] = "conv"
    return ".".join(parts)


def _tensor(*shape, scale=1.0):
    return ms.Tensor((RNG.standard_normal(shape) * scale).astype(np.float32))


# ------------------------------------------------------------------ structure

def test_parameter_count_total_and_backbone(net):
    assert sum(int(p.size) for p in net.trainable_params()) == PARAMS
    assert sum(int(p.size) for p in net.resnet.trainable_params()) == BACKBONE_PARAMS


def test_registry_and_builder_arguments():
    assert "ras" in models.list_models()
    net = models.create_model("ras", in_channels=4, frozen_bn=True)
    assert tuple(named_parameters(net)["resnet.conv1.weight"].shape) == (64, 4, 7, 7)
    # one more input channel in conv1 (64 x 7 x 7), BatchNorm affine parameters frozen
    assert sum(int(p.size) for p in net.trainable_params()) == PARAMS + 64 * 49 - BN_AFFINE


def test_names_and_shapes_equal_authors_table(net, reference_keys):
    rows = read_table(reference_keys)
    trainable = sum(int(np.prod(s)) for n, s in rows
                    if not n.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert trainable == PARAMS
    want = mindspore_names(rows)
    got = [(n, tuple(p.shape)) for n, p in named_parameters(net).items()]
    assert dict(got) == dict(want)
    assert len(got) == len(want) == 325

    def modules(pairs):  # MindSpore lists a BN's statistics first: compare module order
        return list(dict.fromkeys(n.rsplit(".", 1)[0] for n, _ in pairs))

    assert modules(got) == modules(want)


def test_initialisation_as_authors(built):
    """Every conv N(0, 0.01), the backbone's too; conv biases PyTorch's U(+-1/sqrt(fan_in)); BN 1/0."""
    params = built[1]
    for name in ("resnet.conv1.weight", "resnet.layer3.0.conv2.weight", "mscm.convert.weight",
                 "mscm.branch4.0.weight", "ra2.convs.0.weight"):
        w = params[name]
        assert abs(w.std() - 0.01) < 0.0005 and abs(w.mean()) < 0.0005, (name, w.std(), w.mean())
    for name, fan_in in (("mscm.convert.bias", 2048), ("mscm.branch4.0.bias", 64 * 49),
                         ("ra1.convert.bias", 64)):
        b, bound = params[name], 1 / np.sqrt(fan_in)
        assert np.abs(b).max() <= bound and np.abs(b).max() > 0.5 * bound, name
    np.testing.assert_array_equal(params["resnet.layer2.1.bn2.gamma"], 1.0)
    np.testing.assert_array_equal(params["resnet.layer2.1.bn2.beta"], 0.0)


# ------------------------------------------------------------------ forward

def _resize_align_corners(a, size):
    """Bilinear resize of (B, C, H, W) with align_corners=True: output pixel i samples source
    position i * (n_in - 1) / (n_out - 1), blending its two neighbours."""
    def axis(n_in, n_out):
        src = np.arange(n_out) * ((n_in - 1) / (n_out - 1))
        lo = np.clip(np.floor(src).astype(int), 0, max(n_in - 2, 0))
        return lo, np.minimum(lo + 1, n_in - 1), src - lo

    y0, y1, fy = axis(a.shape[2], size[0])
    x0, x1, fx = axis(a.shape[3], size[1])
    a = a.astype(np.float64)
    rows = a[:, :, y0] * (1 - fy)[:, None] + a[:, :, y1] * fy[:, None]
    return (rows[:, :, :, x0] * (1 - fx) + rows[:, :, :, x1] * fx).astype(np.float32)


def test_outputs_wiring_finest_first(scaled_net):
    """MSCM on C5, ra4 on C4 ... ra1 on C1, each fed the coarser logits resized (align_corners)
    to its level; five maps at the input size, finest (ra1) first."""
    net = scaled_net
    net.set_train(False)
    size = (72, 104)
    x = _tensor(2, 3, *size)
    out = [o.asnumpy() for o in net(x)]
    assert [o.shape for o in out] == [(2, 1) + size] * 5
    feats = [f.asnumpy() for f in net.resnet(x)]
    assert [f.shape[1] for f in feats] == [64, 256, 512, 1024, 2048]
    assert feats[0].shape[2:] == tuple((s + 1) // 2 for s in size)  # C1 before the max-pool
    y = net.mscm(ms.Tensor(feats[4])).asnumpy()
    want = [_resize_align_corners(y, size)]
    for block, feat in ((net.ra4, feats[3]), (net.ra3, feats[2]), (net.ra2, feats[1]), (net.ra1, feats[0])):
        y = block(ms.Tensor(feat), ms.Tensor(_resize_align_corners(y, feat.shape[2:]))).asnumpy()
        want.insert(0, _resize_align_corners(y, size))
    for k, (got, exp) in enumerate(zip(out, want), start=1):
        np.testing.assert_allclose(got, exp, atol=1e-5, err_msg=f"score{k}")
    assert not np.allclose(out[0], out[4], atol=1e-4)  # the refinements do change the map


def test_reverse_attention_block():
    block = ReverseAttention(32, 16)
    for _, cell in block.cells_and_names():  # larger weights than the init so effects are visible
        if isinstance(cell, nn.Conv2d):
            cell.weight.set_data(_tensor(*cell.weight.shape, scale=0.3))
            cell.bias.set_data(_tensor(*cell.bias.shape, scale=0.3))
    xa, xb = _tensor(2, 32, 9, 11), _tensor(2, 32, 9, 11)
    # Very positive y: weight sigmoid(-y) ~ 1e-17, features ~0, the residual is the bias path alone.
    y = ms.Tensor(np.full((2, 1, 9, 11), 40.0, np.float32) + RNG.random((2, 1, 9, 11)).astype(np.float32))
    bias_path = block.convs(ms.Tensor(np.zeros((2, 16, 9, 11), np.float32))).asnumpy()
    assert np.abs(bias_path).max() > 0.1
    for x in (xa, xb):
        np.testing.assert_allclose((block(x, y) - y).asnumpy(), bias_path, atol=2e-5)
    # Very negative y: weight ~1, the residual is convs(convert(x)) and depends on x.
    y = ms.Tensor(np.full((2, 1, 9, 11), -40.0, np.float32))
    full = [(block(x, y) - y).asnumpy() for x in (xa, xb)]
    np.testing.assert_allclose(full[0], block.convs(block.convert(xa)).asnumpy(), atol=2e-5)
    assert np.abs(full[0] - full[1]).max() > 0.1
    # In between: features weighted per pixel by 1 - sigmoid(y), broadcast over channels.
    yv = RNG.standard_normal((2, 1, 9, 11)).astype(np.float32) * 2
    weighted = block.convert(xa).asnumpy() * (1 - 1 / (1 + np.exp(-yv)))
    want = yv + block.convs(ms.Tensor(weighted.astype(np.float32))).asnumpy()
    np.testing.assert_allclose(block(xa, ms.Tensor(yv)).asnumpy(), want, rtol=1e-5, atol=1e-4)


def _export_check(net, tmp_path, size, fmt):
    from common.export import export_model

    x = RNG.standard_normal((1, 3) + size).astype(np.float32)
    net.set_train(False)
    spread = min(float(o.asnumpy().max() - o.asnumpy().min()) for o in net(ms.Tensor(x)))
    assert spread > 0.5  # outputs large enough for 1e-4 to be a real test
    result = export_model(net, x, fmt, tmp_path / f"ras_{size[0]}x{size[1]}", atol=1e-4, rtol=0.0)
    assert result.path.is_file() and len(result.diffs) == 5
    assert max(result.diffs) <= 1e-4, result.diffs


@pytest.mark.parametrize("fmt", ["ONNX", "MINDIR"])
def test_export_parity_non_square(scaled_net, tmp_path, fmt):
    _export_check(scaled_net, tmp_path, (64, 96), fmt)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["ONNX", "MINDIR"])
def test_export_parity_352(scaled_net, tmp_path, fmt):
    _export_check(scaled_net, tmp_path, (352, 352), fmt)


# ------------------------------------------------------------------ loss and training

def _np_loss(outputs, mask, smooth=1.0, divide=True):
    """The authors' bce_iou_loss per output, summed and divided by the batch size, in numpy."""
    parts = []
    for z in outputs:
        z, g = z.astype(np.float64), mask.astype(np.float64)
        bce = np.mean(np.maximum(z, 0) - z * g + np.log1p(np.exp(-np.abs(z))))
        p = 1 / (1 + np.exp(-z))
        inter, union = (p * g).sum(axis=(2, 3)), (p + g).sum(axis=(2, 3))
        iou = np.mean(1 - (inter + smooth) / (union - inter + smooth))
        parts.append((bce + iou) / (mask.shape[0] if divide else 1))
    return sum(parts), parts


@pytest.mark.parametrize("divide", [True, False])
def test_loss_parts_sum_to_total_and_match_numpy(divide):
    outputs = [RNG.standard_normal((3, 1, 20, 28)).astype(np.float32) * 3 for _ in range(5)]
    mask = (RNG.random((3, 1, 20, 28)) > 0.6).astype(np.float32)
    mask[1] *= 0.6  # soft masks too
    loss = RASLoss(divide_by_batch=divide)
    total, parts = loss(tuple(ms.Tensor(o) for o in outputs), ms.Tensor(mask))
    assert len(parts) == len(RASLoss.part_names) == 5
    parts = [float(p.asnumpy()) for p in parts]
    assert float(total.asnumpy()) == pytest.approx(sum(parts), rel=1e-6)
    want_total, want_parts = _np_loss(outputs, mask, divide=divide)
    np.testing.assert_allclose(parts, want_parts, rtol=1e-5)
    assert float(total.asnumpy()) == pytest.approx(want_total, rel=1e-5)


def test_loss_hand_values():
    """Zero logits (p = 0.5), n of N pixels salient: BCE = log 2, IoU loss 1 - (n/2 + 1)/(N/2 + n/2 + 1);
    confident correct logits: loss ~ 0."""
    mask = np.zeros((2, 1, 4, 5), np.float32)
    mask[:, :, :2, :3] = 1  # n = 6 of N = 20
    zeros = tuple(ms.Tensor(np.zeros_like(mask)) for _ in range(5))
    _, parts = RASLoss()(zeros, ms.Tensor(mask))
    per_output = (np.log(2) + 1 - 4 / 14) / 2
    np.testing.assert_allclose([float(p.asnumpy()) for p in parts], [per_output] * 5, rtol=1e-6)
    confident = tuple(ms.Tensor(np.where(mask > 0, 30.0, -30.0).astype(np.float32)) for _ in range(5))
    assert float(RASLoss()(confident, ms.Tensor(mask))[0].asnumpy()) < 1e-6


def test_adam_step_lowers_loss(fresh_net):
    """One Adam step on a 2-image batch at 64x64 lowers the loss on that batch; outputs at input size."""
    net = fresh_net
    net.set_train(True)
    size = 64
    x = _tensor(2, 3, size, size)
    yy, xx = np.mgrid[:size, :size]
    disk = ((yy - size / 2) ** 2 + (xx - size / 3) ** 2 < (size / 4) ** 2).astype(np.float32)
    mask = ms.Tensor(np.broadcast_to(disk, (2, 1, size, size)).copy())
    loss_fn = RASLoss()
    opt = nn.Adam(net.trainable_params(), learning_rate=1e-3)

    def forward(inp, target):
        outputs = net(inp)
        return loss_fn(outputs, target)[0], outputs

    before, grads = ms.value_and_grad(forward, None, opt.parameters, has_aux=True)(x, mask)
    before, outputs = before
    assert [tuple(o.shape) for o in outputs] == [(2, 1, size, size)] * 5
    opt(grads)
    after = float(forward(x, mask)[0].asnumpy())
    assert np.isfinite(after) and after < float(before.asnumpy()) - 0.01, (float(before.asnumpy()), after)


# ------------------------------------------------------------------ key maps

def test_authors_round_trip(net, reference_keys):
    """Authors' names (DataParallel ``module.``) -> ours -> loaded -> back to the authors' names."""
    rows = read_table(reference_keys)
    state = random_state(rows, seed=1)
    wrapped = {f"module.{k}": v for k, v in state.items()}
    assert detect_layout(wrapped) == "authors"
    report = load_weights(net, wrapped, key_map=authors_to_ours)
    assert report.ok and len(report.loaded) == 325
    ours = state_dict(net)
    back = {}
    bn = {n.rsplit(".", 1)[0] for n, _ in rows if n.endswith(".running_mean")}
    inverse = {v: k for k, v in BN_FIELDS.items()}
    for name, value in ours.items():
        module, leaf = name.rsplit(".", 1)
        back[f"{module}.{inverse[leaf]}" if module in bn else name] = value
    expected = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert set(back) == set(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    assert detect_layout(ours) == "ours"
    assert set(to_ours({"network." + k: v for k, v in ours.items()})) == set(ours)


def test_old_port_checkpoint_loads_completely(net, reference_keys, tmp_path):
    """A checkpoint as the old port's TrainOneStep saved it: ``network.`` + its names + Adam state."""
    ours = mindspore_names(read_table(reference_keys))
    values = random_state(ours, seed=2)
    ckpt = {}
    for name, _ in ours:
        old = "network." + old_port_name(name)
        ckpt[old] = values[name]
        if not name.endswith(("moving_mean", "moving_variance")):  # Adam state (small stand-ins)
            ckpt["moment1." + old] = np.zeros(1, np.float32)
            ckpt["moment2." + old] = np.zeros(1, np.float32)
    ckpt.update(beta1_power=np.array(0.9, np.float32), beta2_power=np.array(0.999, np.float32),
                learning_rate=np.array(5e-5, np.float32), global_step=np.array([1050], np.int32))
    assert "network.mscm.conv_end.weight" in ckpt and "network.ra3.conv.6.bias" in ckpt
    assert "network.resnet.layer1.0.down_sample_layer.1.moving_mean" in ckpt
    path = save_checkpoint(ckpt, tmp_path / "ras_oldport.ckpt")
    assert detect_layout(ckpt) == "oldport"
    assert KEY_MAPS["oldport"] is old_port_to_ours
    report = load_weights(net, path, key_map=old_port_to_ours)
    assert report.ok and not report.missing and len(report.loaded) == 325
    assert len(report.ignored_state) == 4 + 2 * (325 - 2 * 53)  # 53 BNs' statistics have no moments
    params = named_parameters(net)
    for name in ("mscm.score.weight", "mscm.convert.bias", "ra3.convs.6.bias",
                 "resnet.layer4.0.downsample.1.moving_variance", "resnet.layer1.2.bn3.gamma"):
        np.testing.assert_array_equal(params[name].asnumpy(), values[name], err_msg=name)


def test_torchvision_backbone_key_map(net, reference_keys):
    """ImageNet ResNet-50 with torchvision names (fc included) loads into ``resnet.*`` only."""
    rows = [(n[len("resnet."):], s) for n, s in read_table(reference_keys) if n.startswith("resnet.")]
    rows += [("fc.weight", (1000, 2048)), ("fc.bias", (1000,))]
    state = random_state(rows, seed=3)
    report = load_weights(net, state, key_map=torchvision_backbone_to_ours, ignore_missing=HEAD_PREFIXES)
    assert report.ok and len(report.loaded) == 265
    np.testing.assert_array_equal(named_parameters(net)["resnet.layer2.3.bn1.moving_mean"].asnumpy(),
                                  state["layer2.3.bn1.running_mean"])


def test_detect_layout_rejects_unknown_names():
    from common.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="cannot tell the RAS checkpoint layout"):
        detect_layout({"encoder.conv.weight": np.zeros(3, np.float32)})

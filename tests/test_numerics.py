"""``numerics="oldport"``: the old MindSpore ports' ops (TF-style ``same`` padding, legacy bilinear
resize, floor / ``same`` pooling), checked against MindSpore's own operators, exported to ONNX,
and switched on end to end in U-2-NetP, DDRNet-23-slim and RAS against references written here
with MindSpore's native operators."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn, ops

import models
from common import layers as L
from common.config import load_config
from common.export import export_model, onnx_session

RNG = np.random.default_rng(0)
ATOL = 1e-5


@pytest.fixture
def graph():
    ms.set_device("CPU")
    old = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=old)


def _x(*shape):
    return Tensor(RNG.standard_normal(shape).astype(np.float32))


# ---------------------------------------------------------------- op level

def test_same_pads_golden():
    assert L.same_pads(8, 3, 2) == (0, 1)        # even: bottom/right only
    assert L.same_pads(9, 3, 2) == (1, 1)
    assert L.same_pads(8, 1, 2) == (0, 0)
    assert L.same_pads(10, 3, 1, dilation=2) == (2, 2)
    assert L.same_pads(7, 7, 2) == (3, 3)
    assert L.same_pads(6, 7, 2) == (2, 3)


@pytest.mark.parametrize("kernel,stride,dilation,groups", [(3, 2, 1, 1), (1, 2, 1, 2), (3, 1, 2, 1),
                                                           (4, 3, 1, 1)])
def test_conv_same_equals_mindspore_same(pynative, kernel, stride, dilation, groups):
    for h, w in ((8, 8), (9, 7), (10, 13)):
        ours = L.conv2d_same(4, 6, kernel, stride, dilation, groups, has_bias=True)
        ref = nn.Conv2d(4, 6, kernel, stride=stride, pad_mode="same", dilation=dilation, group=groups,
                        has_bias=True)
        ref.weight.set_data(ours.weight.data)
        ref.bias.set_data(Tensor(RNG.standard_normal(6).astype(np.float32)))
        ours.bias.set_data(ref.bias.data)
        x = _x(2, 4, h, w)
        got, want = ours(x).asnumpy(), ref(x).asnumpy()
        assert got.shape == want.shape, (h, w)
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=1e-5, err_msg=f"{h}x{w}")


def test_conv_same_differs_from_symmetric_on_even_input_only():
    ours = L.conv2d_same(3, 5, 3, 2)
    sym = L.conv2d(3, 5, 3, stride=2, padding=1, has_bias=False)
    sym.weight.set_data(ours.weight.data)
    even, odd = _x(1, 3, 8, 8), _x(1, 3, 9, 9)
    assert np.abs(ours(even).asnumpy() - sym(even).asnumpy()).max() > 1e-2
    np.testing.assert_allclose(ours(odd).asnumpy(), sym(odd).asnumpy(), atol=ATOL)
    assert [p.name for p in ours.get_parameters()] == ["weight"]


def test_legacy_interp_matrix_golden():
    # src = dst * in / out: 0, 0.5, 1, 1.5 -> last row clamps onto the last pixel
    np.testing.assert_allclose(L.interp_matrix(2, 4, half_pixel_centers=False),
                               [[1, 0], [0.5, 0.5], [0, 1], [0, 1]])
    # down 5 -> 2: src = 0, 2.5
    np.testing.assert_allclose(L.interp_matrix(5, 2, half_pixel_centers=False),
                               [[1, 0, 0, 0, 0], [0, 0, 0.5, 0.5, 0]])


LEGACY_RESIZES = (((6, 8), (13, 5)), ((5, 7), (20, 28)), ((9, 9), (3, 3)), ((7, 11), (14, 22)),
                  ((11, 11), (352, 352)), ((13, 3), (5, 9)))


class LegacyResizes(nn.Cell):
    """Every LEGACY_RESIZES case of one input (cropped to each source size), ours or MindSpore's."""

    def __init__(self, ours):
        super().__init__()
        self.ours = ours
        self.legacy = ops.ResizeBilinearV2(align_corners=False, half_pixel_centers=False)

    def construct(self, x):
        out = ()
        for (h, w), size in LEGACY_RESIZES:
            src = x[:, :, :h, :w]
            if self.ours:
                out = out + (L.resize_bilinear(src, size, False, False),)
            else:
                out = out + (self.legacy(src, size),)
        return out


def test_legacy_bilinear_equals_resize_bilinear_v2(pynative):
    x = _x(2, 3, 16, 16)
    got = [o.asnumpy() for o in LegacyResizes(True)(x)]
    want = [o.asnumpy() for o in LegacyResizes(False)(x)]
    for ((h, w), size), g, wt in zip(LEGACY_RESIZES, got, want):
        assert g.shape == wt.shape == (2, 3) + size
        np.testing.assert_allclose(g, wt, atol=ATOL, rtol=1e-5, err_msg=f"{h}x{w} -> {size}")
        half = L.resize_bilinear(x[:, :, :h, :w], size).asnumpy()
        assert np.abs(half - wt).max() > 1e-3, size  # the default (half-pixel) mapping differs


@pytest.mark.parametrize("size", [(8, 8), (9, 7), (11, 5)])
def test_floor_pool_equals_valid_pool(pynative, size):
    x = _x(2, 3, *size)
    got = L.max_pool_2x2("oldport")(x).asnumpy()
    want = nn.MaxPool2d(2, 2, pad_mode="valid")(x).asnumpy()
    assert got.shape == want.shape == (2, 3, size[0] // 2, size[1] // 2)
    np.testing.assert_array_equal(got, want)
    ceil = L.max_pool_2x2("authors")(x)
    assert ceil.shape == (2, 3, -(-size[0] // 2), -(-size[1] // 2))


@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 2), (5, 3)])
def test_maxpool_same_equals_mindspore_same(pynative, kernel, stride):
    for h, w in ((8, 8), (9, 10), (7, 5)):
        x = _x(2, 3, h, w) - 3.0   # negative: padding must never win a window
        got = L.MaxPool2dSame(kernel, stride)(x).asnumpy()
        want = nn.MaxPool2d(kernel, stride, pad_mode="same")(x).asnumpy()
        assert got.shape == want.shape, (h, w)
        np.testing.assert_array_equal(got, want)


def test_check_numerics_names_the_choices():
    assert L.check_numerics("oldport") == "oldport"
    with pytest.raises(ValueError, match="authors.*oldport.*'pytorch'"):
        L.check_numerics("pytorch")
    with pytest.raises(ValueError, match="oldport"):
        models.create_model("u2netp", numerics="old")


class OldPortOps(nn.Cell):
    """Every old-port variant in one graph: same-padded stride-2 convs (even and odd sizes),
    legacy bilinear up and down, floor and same max-pools."""

    def __init__(self):
        super().__init__()
        self.conv = L.conv2d_same(3, 4, 3, 2, has_bias=True)
        self.pool_same = L.MaxPool2dSame(3, 2)
        self.pool_floor = L.max_pool_2x2("oldport")

    def construct(self, x):
        a = self.conv(x)                                   # 16x16 -> 8x8 (pads 0/1)
        b = self.conv(x[:, :, :15, :13])                   # odd sizes (pads 1/1)
        up = L.resize_bilinear(a, (13, 17), False, False)
        down = L.resize_bilinear(b, (5, 3), False, False)
        return up, down, self.pool_same(a), self.pool_floor(b)


class NativeOldPortOps(nn.Cell):
    """:class:`OldPortOps` with MindSpore's own operators (the old ports' ops)."""

    def __init__(self, ours):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, pad_mode="same", has_bias=True)
        self.conv.weight.set_data(ours.conv.weight.data)
        self.conv.bias.set_data(ours.conv.bias.data)
        self.pool_same = nn.MaxPool2d(3, 2, pad_mode="same")
        self.pool_floor = nn.MaxPool2d(2, 2, pad_mode="valid")
        self.resize = ops.ResizeBilinearV2(align_corners=False, half_pixel_centers=False)

    def construct(self, x):
        a = self.conv(x)
        b = self.conv(x[:, :, :15, :13])
        return (self.resize(a, (13, 17)), self.resize(b, (5, 3)), self.pool_same(a), self.pool_floor(b))


def test_oldport_ops_equal_native_ops_in_graph_mode(graph):
    ours = OldPortOps()
    ours.conv.bias.set_data(Tensor(RNG.standard_normal(4).astype(np.float32)))
    x = _x(2, 3, 16, 16)
    got = [o.asnumpy() for o in ours(x)]
    want = [o.asnumpy() for o in NativeOldPortOps(ours)(x)]
    assert [g.shape for g in got] == [w.shape for w in want] == [(2, 4, 13, 17), (2, 4, 5, 3),
                                                                 (2, 4, 4, 4), (2, 4, 4, 3)]
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, atol=ATOL, rtol=1e-5, err_msg=f"output {i}")


def test_oldport_ops_export_to_onnx_with_parity(tmp_path):
    net = OldPortOps()
    x = RNG.standard_normal((2, 3, 16, 16)).astype(np.float32)
    result = export_model(net, x, "ONNX", tmp_path / "oldport_ops")
    sess = onnx_session(result.path)
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    want = [o.asnumpy() for o in net(Tensor(x))]
    assert [g.shape for g in got] == [(2, 4, 13, 17), (2, 4, 5, 3), (2, 4, 4, 4), (2, 4, 4, 3)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- end to end

def _randomise(net, seed=0):
    """Weights at a scale where activations neither vanish nor explode; BN statistics too."""
    rng = np.random.default_rng(seed)
    for p in net.get_parameters():
        shape, leaf = tuple(p.shape), p.name.rsplit(".", 1)[-1]
        if leaf == "weight" and len(shape) >= 2:
            v = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
        elif leaf in ("gamma", "moving_variance"):
            v = rng.uniform(0.5, 1.5, shape)
        else:
            v = rng.uniform(-0.3, 0.3, shape)
        p.set_data(Tensor(v.astype(np.float32)))


def _pair(name, *overrides):
    """Nets built by the model's spec with ``model.numerics`` authors and oldport, holding the
    same random weights, in eval mode."""
    spec = models.get_spec(name)
    assert load_config(spec.defaults).model.numerics == "authors"  # the default
    nets = []
    for numerics in ("authors", "oldport"):
        cfg = load_config(spec.defaults, overrides=[f"model.name={name}", f"model.numerics={numerics}",
                                                     *overrides])
        nets.append(spec.build_net(cfg))
    authors, oldport = nets
    assert (authors.numerics, oldport.numerics) == ("authors", "oldport")
    _randomise(authors)
    params = {p.name: p for p in oldport.get_parameters()}
    for p in authors.get_parameters():
        params.pop(p.name).set_data(p.data)
    assert not params, f"oldport-only parameters: {sorted(params)}"
    authors.set_train(False)
    oldport.set_train(False)
    return authors, oldport


def _rel_change(a, b):
    return float(np.abs(a - b).max() / (np.abs(a).max() + 1e-12))


def _legacy_up(x, ref):
    return ops.ResizeBilinearV2(align_corners=False, half_pixel_centers=False)(x, ref.shape[2:])


def _ref_rsu(block, x):
    """RSU data flow with native floor pooling and legacy resize (the old port's blocks)."""
    pool, cat = nn.MaxPool2d(2, 2, pad_mode="valid"), ops.Concat(axis=1)
    n = block.height
    hxin = block.rebnconvin(x)
    enc, hx = [], hxin
    for i in range(1, n + 1):
        hx = getattr(block, f"rebnconv{i}")(hx)
        enc.append(hx)
        if block.pooled[i - 1]:
            hx = pool(hx)
    d = enc[-1]
    for i in range(n - 1, 0, -1):
        if d.shape[2:] != enc[i - 1].shape[2:]:
            d = _legacy_up(d, enc[i - 1])
        d = getattr(block, f"rebnconv{i}d")(cat((d, enc[i - 1])))
    return d + hxin


def _ref_u2net(net, x):
    pool, cat = nn.MaxPool2d(2, 2, pad_mode="valid"), ops.Concat(axis=1)
    feats, hx = [], x
    for i in range(1, 7):
        hx = _ref_rsu(getattr(net, f"stage{i}"), hx if i == 1 else pool(hx))
        feats.append(hx)
    dec = {6: feats[5]}
    hx = feats[5]
    for i in range(5, 0, -1):
        hx = _ref_rsu(getattr(net, f"stage{i}d"), cat((_legacy_up(hx, feats[i - 1]), feats[i - 1])))
        dec[i] = hx
    d1 = net.side1(dec[1])
    maps = [d1] + [_legacy_up(getattr(net, f"side{i}")(dec[i]), d1) for i in range(2, 7)]
    d0 = net.outconv(cat(tuple(maps)))
    return [m.asnumpy() for m in [d0] + maps]   # logits, as the spec builds the net


def test_u2netp_oldport_end_to_end(pynative):
    size = (72, 56)   # 9 -> 4 and 7 -> 3 at the fourth pool: floor and ceil pooling differ
    authors, oldport = _pair("u2netp")
    x = _x(1, 3, *size)
    got = [o.asnumpy() for o in oldport(x)]
    base = [o.asnumpy() for o in authors(x)]
    want = _ref_u2net(oldport, x)
    assert [g.shape for g in got] == [(1, 1) + size] * 7
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, atol=2e-5, err_msg=f"output d{i}")
    assert _rel_change(base[0], got[0]) > 1e-3  # the switch changes the fused map


def _native_same(conv):
    """``nn.Conv2d(pad_mode="same")`` holding the weights of one of our convolutions."""
    ref = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                    pad_mode="same", dilation=conv.dilation, group=conv.group, has_bias=conv.has_bias)
    ref.weight.set_data(conv.weight.data)
    if conv.has_bias:
        ref.bias.set_data(conv.bias.data)
    ref.set_train(False)
    return ref


def _ref_seq(seq, x):
    """A SequentialCell with every convolution swapped for MindSpore's own ``same`` conv."""
    for cell in seq:
        x = _native_same(cell)(x) if isinstance(cell, nn.Conv2d) else cell(x)
    return x


def _ref_basic_block(b, x):
    out = b.relu(b.bn1(_native_same(b.conv1)(x)))
    out = b.bn2(_native_same(b.conv2)(out))
    shortcut = x if b.downsample is None else _ref_seq(b.downsample, x)
    out = out + shortcut
    return out if b.no_relu else b.relu(out)


def test_ddrnet_oldport_blocks_and_network(pynative):
    authors, oldport = _pair("ddrnet23_slim", "model.num_classes=10")
    assert isinstance(oldport.down4[0], L.Conv2dSame) and not isinstance(authors.down4[0], L.Conv2dSame)
    x = _x(2, 3, 64, 64)
    # stem (two stride-2 convs with bias) and the stride-2 first block of layer2 with its projection
    stem = oldport.conv1(x)
    np.testing.assert_allclose(stem.asnumpy(), _ref_seq(oldport.conv1, x).asnumpy(), atol=2e-5)
    h = oldport.layer1(stem)
    block = oldport.layer2[0]
    np.testing.assert_allclose(block(h).asnumpy(), _ref_basic_block(block, h).asnumpy(), atol=2e-5)
    # the two-conv down4 path and the low-to-high legacy upsample of the fusion
    hi = _x(2, 64, 8, 8)
    np.testing.assert_allclose(oldport.down4(hi).asnumpy(), _ref_seq(oldport.down4, hi).asnumpy(),
                               atol=2e-5)
    low = _x(2, 64, 2, 2)
    np.testing.assert_allclose(L.upsample_like(low, hi, False, oldport.half_pixel).asnumpy(),
                               _legacy_up(low, hi).asnumpy(), atol=1e-5)
    got, base = oldport(x).asnumpy(), authors(x).asnumpy()
    assert got.shape == base.shape == (2, 10)
    assert _rel_change(base, got) > 1e-2


def _swap_same_convs(net):
    """Every Conv2dSame of ``net`` replaced, in place, by MindSpore's own ``same`` conv."""
    swaps = [(parent, name, child) for _, parent in net.cells_and_names()
             for name, child in parent.name_cells().items() if isinstance(child, L.Conv2dSame)]
    for parent, name, child in swaps:
        native = _native_same(child)
        if isinstance(parent, nn.SequentialCell):
            parent[int(name)] = native
        else:
            setattr(parent, name, native)
    return len(swaps)


def test_ddrnet_oldport_whole_network_equals_native_ops(pynative, monkeypatch):
    """The whole old-port DDRNet against a twin in which every same-padded conv is MindSpore's
    ``Conv2d(pad_mode="same")`` and every fusion upsample is ``ResizeBilinearV2(half_pixel_centers=False)``."""
    from models.ddrnet.src import ddrnet

    _, oldport = _pair("ddrnet23_slim", "model.num_classes=10")
    x = _x(2, 3, 96, 80)
    got = oldport(x).asnumpy()
    spec = models.get_spec("ddrnet23_slim")
    twin = spec.build_net(load_config(spec.defaults, overrides=["model.name=ddrnet23_slim", "model.num_classes=10",
                                                                "model.numerics=oldport"]))
    for p, q in zip(oldport.get_parameters(), twin.get_parameters()):
        assert p.name == q.name
        q.set_data(p.data)
    twin.set_train(False)
    assert _swap_same_convs(twin) >= 4  # the stem, the stride-2 blocks' convs and projections, down paths
    assert not any(isinstance(c, L.Conv2dSame) for _, c in twin.cells_and_names())

    def native_up(low, ref, align_corners=False, half_pixel_centers=True):
        assert not half_pixel_centers  # the old port's setting reaches the fusion
        return _legacy_up(low, ref)

    monkeypatch.setattr(ddrnet, "upsample_like", native_up)
    np.testing.assert_allclose(twin(x).asnumpy(), got, rtol=0, atol=2e-5 * float(np.abs(got).max()))


def _ref_ras(net, x):
    """RAS with the old port's native ops: ``same`` 3x3/2 max-pool and legacy resize."""
    r = net.resnet
    c1 = r.relu(r.bn1(r.conv1(x)))
    c2 = r.layer1(nn.MaxPool2d(3, 2, pad_mode="same")(c1))
    c3 = r.layer2(c2)
    c4 = r.layer3(c3)
    c5 = r.layer4(c4)
    y5 = net.mscm(c5)
    y4 = net.ra4(c4, _legacy_up(y5, c4))
    y3 = net.ra3(c3, _legacy_up(y4, c3))
    y2 = net.ra2(c2, _legacy_up(y3, c2))
    y1 = net.ra1(c1, _legacy_up(y2, c1))
    return [_legacy_up(y, x).asnumpy() for y in (y1, y2, y3, y4, y5)]


def test_ras_oldport_end_to_end(pynative):
    authors, oldport = _pair("ras")
    assert isinstance(oldport.resnet.maxpool, L.MaxPool2dSame)
    x = _x(1, 3, 64, 64)
    got = [o.asnumpy() for o in oldport(x)]
    base = [o.asnumpy() for o in authors(x)]
    want = _ref_ras(oldport, x)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == (1, 1, 64, 64)
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=1e-4, err_msg=f"score{i + 1}")
    assert _rel_change(base[0], got[0]) > 1e-2


@pytest.mark.extended
@pytest.mark.slow
@pytest.mark.parametrize("name,size,overrides", [("u2netp", (72, 56), ()),
                                                 ("ddrnet23_slim", (64, 64), ("model.num_classes=10",)),
                                                 ("ras", (64, 64), ())])
def test_oldport_networks_export_to_onnx_with_parity(tmp_path, name, size, overrides):
    _, oldport = _pair(name, *overrides)
    x = RNG.standard_normal((1, 3) + size).astype(np.float32)
    result = export_model(oldport, x, "ONNX", tmp_path / name)
    sess = onnx_session(result.path)
    got = sess.run(None, {sess.get_inputs()[0].name: x})
    out = oldport(Tensor(x))
    want = [o.asnumpy() for o in (out if isinstance(out, tuple) else (out,))]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=1e-4 * max(1.0, float(np.abs(w).max())), rtol=1e-4)

"""Export-safe layers equal the plain MindSpore operators (PyNative and graph mode), PyTorch
semantics written out in numpy, and ONNX Runtime running the exported graph."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn, ops

from common import layers as L
from common.export import export_model, onnx_session

ATOL = 1e-5
RNG = np.random.default_rng(0)


@pytest.fixture(params=[ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def mode(request):
    ms.set_device("CPU")
    old = ms.get_context("mode")
    ms.set_context(mode=request.param)
    yield request.param
    ms.set_context(mode=old)


def _np(outputs):
    return [o.asnumpy() for o in outputs]


def _close(got, want, atol=ATOL, rtol=1e-5):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"output {i}: shape {g.shape} != {w.shape}"
        np.testing.assert_allclose(g, w, atol=atol, rtol=rtol, err_msg=f"output {i}")


def _onnx_outputs(net, x, tmp_path, name):
    result = export_model(net, x, "ONNX", tmp_path / name)
    return onnx_session(result.path).run(None, {"x": x})


# ---------------------------------------------------------------- bilinear resize

RESIZES = (((6, 8), (13, 5)), ((16, 16), (7, 9)), ((5, 7), (20, 28)), ((9, 9), (3, 3)), ((4, 6), (4, 6)))


class Resizes(nn.Cell):
    """All RESIZES of one input (cropped to each source size) with our resize or ops.interpolate."""

    def __init__(self, align_corners, ours, half_pixel_centers=True):
        super().__init__()
        self.align_corners = align_corners
        self.half_pixel_centers = half_pixel_centers
        self.ours = ours

    def construct(self, x):
        out = ()
        for (h, w), size in RESIZES:
            src = x[:, :, :h, :w]
            if self.ours:
                y = L.resize_bilinear(src, size, self.align_corners, self.half_pixel_centers)
            else:
                y = ops.interpolate(src, size=size, mode="bilinear", align_corners=self.align_corners)
            out = out + (y,)
        return out


class WeightedSum(nn.Cell):
    """sum_i <net(x)_i, weights_i>: its gradient is the vector-Jacobian product of ``net``."""

    def __init__(self, net, weights):
        super().__init__()
        self.net = net
        self.weights = weights

    def construct(self, x):
        total = 0.0
        for y, w in zip(self.net(x), self.weights):
            total = total + (y * w).sum()
        return total


@pytest.fixture(params=L.RESIZE_IMPLS)
def resize_impl(request):
    with L.resize_impl(request.param):
        yield request.param


@pytest.mark.parametrize("align_corners", [False, True])
def test_resize_matches_interpolate(mode, resize_impl, align_corners):
    x = Tensor(RNG.standard_normal((2, 3, 16, 16)).astype(np.float32))
    _close(_np(Resizes(align_corners, True)(x)), _np(Resizes(align_corners, False)(x)))


# (align_corners, half_pixel_centers) of the models: U-2-Net / DDRNet / RefineNet loss (False, True),
# RAS / RefineNet (True, either), the old ports' legacy mapping (False, False)
MAPPINGS = ((False, True), (True, True), (True, False), (False, False))


@pytest.mark.parametrize("align_corners,half_pixel_centers", MAPPINGS)
def test_resize_native_equals_matmul(mode, align_corners, half_pixel_centers):
    # every RESIZES pair (non-square, up and down, identity), values and gradients
    x = Tensor(RNG.standard_normal((2, 3, 16, 16)).astype(np.float32))
    weights = tuple(Tensor(RNG.standard_normal((2, 3) + size).astype(np.float32)) for _, size in RESIZES)
    got = {}
    for impl in L.RESIZE_IMPLS:
        with L.resize_impl(impl):  # a fresh Cell per impl: graphs take the setting at compile time
            net = Resizes(align_corners, True, half_pixel_centers)
            got[impl] = _np(net(x)) + [ms.grad(WeightedSum(net, weights))(x).asnumpy()]
    _close(got["native"], got["matmul"])
    # the mapping really differs between the combinations (True ignores half_pixel_centers)
    assert (np.abs(got["native"][0] - got["native"][0].mean()) > 0).any()


def test_resize_impl_setting():
    assert L.get_resize_impl() == "native"  # the default for training and evaluation
    with L.resize_impl("matmul"):
        assert L.get_resize_impl() == "matmul"
    assert L.get_resize_impl() == "native"
    with pytest.raises(ValueError, match="resize impl must be one of"):
        L.set_resize_impl("nearest")


def test_resize_golden_values(resize_impl):
    # 1-D [0, 3] -> 4 samples: corners aligned gives 0,1,2,3; half-pixel (clamped) 0,0.75,2.25,3;
    # legacy (src = dst * 2 / 4, clamped at the end) 0,1.5,3,3
    x = Tensor(np.array([0.0, 3.0], np.float32).reshape(1, 1, 1, 2))
    np.testing.assert_allclose(L.resize_bilinear(x, (1, 4), True).asnumpy().ravel(), [0, 1, 2, 3], atol=1e-6)
    np.testing.assert_allclose(L.resize_bilinear(x, (1, 4), False).asnumpy().ravel(), [0, 0.75, 2.25, 3],
                               atol=1e-6)
    np.testing.assert_allclose(L.resize_bilinear(x, (1, 4), False, False).asnumpy().ravel(), [0, 1.5, 3, 3],
                               atol=1e-6)
    cell = L.BilinearResize(scale_factor=2)
    assert cell(Tensor(np.zeros((1, 1, 3, 5), np.float32))).shape == (1, 1, 6, 10)
    with pytest.raises(ValueError):
        L.BilinearResize()


@pytest.mark.parametrize("align_corners", [False, True])
def test_resize_onnx(tmp_path, align_corners):
    import onnx

    x = RNG.standard_normal((2, 3, 16, 16)).astype(np.float32)
    want = _np(Resizes(align_corners, False)(Tensor(x)))
    ours = Resizes(align_corners, True)
    ms.set_context(mode=ms.GRAPH_MODE)
    _close(_np(ours(Tensor(x))), want)  # compiled with the native resize first
    assert L.get_resize_impl() == "native"
    _close(_onnx_outputs(ours, x, tmp_path, f"resize{align_corners}.onnx"), want)
    ops_used = {n.op_type for n in onnx.load(str(tmp_path / f"resize{align_corners}.onnx")).graph.node}
    assert "MatMul" in ops_used and "Resize" not in ops_used, ops_used
    assert L.get_resize_impl() == "native"  # restored after the export


# ---------------------------------------------------------------- max pool

# (kernel, stride, padding, ceil_mode): ResNet stem, VGG pool3 (ceil), SSD pool5, and ceil-mode
# cases where PyTorch drops a last window that would start in the padding.
POOLS = ((3, 2, 1, False), (2, 2, 0, True), (2, 2, 0, False), (3, 1, 1, False), (3, 2, 0, True),
         (3, 2, 1, True), (2, 2, 1, True))


class Pools(nn.Cell):
    def __init__(self, ours):
        super().__init__()
        make = L.MaxPool2d if ours else (
            lambda k, s, p, c: nn.MaxPool2d(k, s, pad_mode="pad", padding=p, ceil_mode=c))
        self.pools = nn.CellList([make(*cfg) for cfg in POOLS])

    def construct(self, x):
        out = ()
        for pool in self.pools:
            out = out + (pool(x),)
        return out


def _pool_out(n, k, s, p, ceil):
    # PyTorch's documented rule: floor/ceil of (n + 2p - k) / s, + 1; in ceil mode the last window
    # must start inside the input or the left padding.
    out = int(np.ceil((n + 2 * p - k) / s) if ceil else np.floor((n + 2 * p - k) / s)) + 1
    return out - 1 if ceil and (out - 1) * s >= n + p else out


def _maxpool_ref(x, k, s, p, ceil):
    n, c, h, w = x.shape
    oh, ow = _pool_out(h, k, s, p, ceil), _pool_out(w, k, s, p, ceil)
    xp = np.full((n, c, h + 2 * p + k + s, w + 2 * p + k + s), -np.inf, np.float32)
    xp[:, :, p:p + h, p:p + w] = x
    out = np.empty((n, c, oh, ow), np.float32)
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = xp[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
    return out


@pytest.mark.parametrize("size", [(7, 10), (8, 9)])
def test_maxpool_matches_mindspore_and_numpy(mode, size):
    # all negative: zero padding instead of -inf would show up on every border window
    x = (-np.abs(RNG.standard_normal((2, 3) + size)) - 1).astype(np.float32)
    got = _np(Pools(True)(Tensor(x)))
    _close(got, _np(Pools(False)(Tensor(x))))
    _close(got, [_maxpool_ref(x, *cfg) for cfg in POOLS])


def test_pool_output_size_golden():
    # hand-computed from PyTorch's rule
    assert L.pool_output_size(5, 2, 2, 0, True) == 3 and L.pool_output_size(5, 2, 2, 0, False) == 2
    assert L.pool_output_size(7, 3, 2, 1, False) == 4
    assert L.pool_output_size(7, 2, 2, 1, True) == 4  # 5 before dropping the window in the padding
    assert L.pool_output_size(75, 2, 2, 0, True) == 38  # SSD300 pool3: 75 -> 38


def test_ceil_pool_same_mode_is_used_and_equal():
    pool = L.MaxPool2dCeil(2, 2)
    assert pool.use_same
    x = (-np.abs(RNG.standard_normal((1, 2, 9, 7))) - 1).astype(np.float32)
    _close([pool(Tensor(x)).asnumpy()], [_maxpool_ref(x, 2, 2, 0, True)])


def test_maxpool_onnx(tmp_path):
    x = (RNG.standard_normal((2, 3, 7, 10)) - 1).astype(np.float32)
    _close(_onnx_outputs(Pools(True), x, tmp_path, "pools.onnx"), [_maxpool_ref(x, *cfg) for cfg in POOLS])


# ---------------------------------------------------------------- convolutions

def _conv_ref(x, w, b, stride, padding, dilation, groups):
    (ph, pw), d = padding, dilation
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, hp, wp = xp.shape
    o, cg, kh, kw = w.shape
    oh, ow = (hp - d * (kh - 1) - 1) // stride + 1, (wp - d * (kw - 1) - 1) // stride + 1
    og = o // groups
    out = np.zeros((n, o, oh, ow))
    for g in range(groups):
        for a in range(kh):
            for c in range(kw):
                patch = xp[:, g * cg:(g + 1) * cg, a * d:a * d + stride * (oh - 1) + 1:stride,
                           c * d:c * d + stride * (ow - 1) + 1:stride]
                wg = w[g * og:(g + 1) * og, :, a, c]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg)
    return (out + (0 if b is None else b.reshape(1, -1, 1, 1))).astype(np.float32)


# (in, out, kernel, stride, padding, dilation, groups): RefineDet fc6, a strided conv with
# different H/W padding, a grouped conv, and a rectangular kernel.
CONVS = ((4, 6, 3, 1, 3, 3, 1), (4, 6, 3, 2, (1, 2), 1, 1), (4, 6, 3, 1, 1, 1, 2),
         (4, 6, (1, 3), 1, (0, 1), 1, 1))


class Convs(nn.Cell):
    def __init__(self):
        super().__init__()
        self.convs = nn.CellList([L.conv2d(i, o, k, s, p, d, g) for i, o, k, s, p, d, g in CONVS])

    def construct(self, x):
        out = ()
        for conv in self.convs:
            out = out + (conv(x),)
        return out


def _convs_ref(net, x):
    refs = []
    for conv, (_, _, _, s, p, d, g) in zip(net.convs, CONVS):
        refs.append(_conv_ref(x, conv.weight.asnumpy(), conv.bias.asnumpy(), s, L._pair(p), d, g))
    return refs


def test_conv2d_matches_numpy(mode):
    net = Convs()
    assert all(c.pad_mode == "pad" for c in net.convs)
    x = RNG.standard_normal((2, 4, 11, 12)).astype(np.float32)
    _close(_np(net(Tensor(x))), _convs_ref(net, x), atol=2e-5)


def test_conv2d_onnx(tmp_path):
    # includes padding that differs between H and W: needs the pads-order fix-up
    net = Convs()
    x = RNG.standard_normal((2, 4, 11, 12)).astype(np.float32)
    _close(_onnx_outputs(net, x, tmp_path, "convs.onnx"), _convs_ref(net, x), atol=2e-5)


def _conv_transpose_ref(x, w, b, stride, padding, output_padding, dilation=1):
    # PyTorch: scatter every input pixel through the kernel, then crop `padding` at the top/left
    # and `padding - output_padding` at the bottom/right.
    n, _, h, wd = x.shape
    _, o, kh, kw = w.shape
    full = np.zeros((n, o, (h - 1) * stride + dilation * (kh - 1) + 1 + output_padding,
                     (wd - 1) * stride + dilation * (kw - 1) + 1 + output_padding))
    for a in range(kh):
        for c in range(kw):
            full[:, :, a * dilation:a * dilation + stride * (h - 1) + 1:stride,
                 c * dilation:c * dilation + stride * (wd - 1) + 1:stride] += np.einsum(
                     "nchw,co->nohw", x.astype(np.float64), w[:, :, a, c])
    oh = (h - 1) * stride - 2 * padding + dilation * (kh - 1) + output_padding + 1
    ow = (wd - 1) * stride - 2 * padding + dilation * (kw - 1) + output_padding + 1
    out = full[:, :, padding:padding + oh, padding:padding + ow]
    return (out + b.reshape(1, -1, 1, 1)).astype(np.float32)


# (kernel, stride, padding, output_padding): FCN/RefineNet-style 4/2/1, the "same-size x2" 3/2/1/1
# decoder, the 2/2 unpooling.
DECONVS = ((4, 2, 1, 0), (3, 2, 1, 1), (2, 2, 0, 0))


class Deconvs(nn.Cell):
    def __init__(self, ours):
        super().__init__()
        if ours:
            cells = [L.ConvTranspose2d(4, 3, k, s, p, op) for k, s, p, op in DECONVS]
        else:  # the plain operator (no output_padding: MindSpore's differs from PyTorch's)
            cells = [nn.Conv2dTranspose(4, 3, k, s, pad_mode="pad", padding=p, has_bias=True)
                     for k, s, p, _ in DECONVS]
        self.deconvs = nn.CellList(cells)

    def construct(self, x):
        out = ()
        for cell in self.deconvs:
            out = out + (cell(x),)
        return out


def test_conv_transpose_matches_numpy_and_mindspore(mode):
    ours, plain = Deconvs(True), Deconvs(False)
    for a, b in zip(ours.deconvs, plain.deconvs):
        b.weight.set_data(a.weight.data)
        b.bias.set_data(a.bias.data)
    x = RNG.standard_normal((2, 4, 5, 6)).astype(np.float32)
    got = _np(ours(Tensor(x)))
    refs = [_conv_transpose_ref(x, c.weight.asnumpy(), c.bias.asnumpy(), s, p, op)
            for c, (_, s, p, op) in zip(ours.deconvs, DECONVS)]
    _close(got, refs)
    assert got[1].shape[2:] == (10, 12)  # 3/2/1 with output_padding 1 doubles the size
    for g, want, (_, _, _, op) in zip(got, _np(plain(Tensor(x))), DECONVS):
        if op == 0:
            _close([g], [want])


def test_conv_transpose_rejects_output_padding_beyond_padding():
    with pytest.raises(ValueError, match="output_padding"):
        L.ConvTranspose2d(4, 4, 2, 2, padding=0, output_padding=1)


def test_conv_transpose_onnx(tmp_path):
    net = Deconvs(True)
    x = RNG.standard_normal((2, 4, 5, 6)).astype(np.float32)
    refs = [_conv_transpose_ref(x, c.weight.asnumpy(), c.bias.asnumpy(), s, p, op)
            for c, (_, s, p, op) in zip(net.deconvs, DECONVS)]
    _close(_onnx_outputs(net, x, tmp_path, "deconvs.onnx"), refs)


# ---------------------------------------------------------------- L2Norm, global average pool

class NormAndPool(nn.Cell):
    def __init__(self, ours):
        super().__init__()
        self.ours = ours
        self.norm = L.L2Norm(5, 10.0)
        self.l2 = ops.L2Normalize(axis=1, epsilon=1e-12)
        self.avg = nn.AdaptiveAvgPool2d(1)

    def construct(self, x):
        if self.ours:
            return self.norm(x), L.global_avg_pool(x), L.global_avg_pool(x, keepdim=False)
        w = self.norm.weight.reshape(1, -1, 1, 1)
        pooled = self.avg(x)
        return self.l2(x) * w, pooled, pooled.reshape(x.shape[0], -1)


def _l2norm_ref(x, w):
    x = x.astype(np.float64)
    return (x / (np.sqrt((x * x).sum(1, keepdims=True)) + 1e-10) * w.reshape(1, -1, 1, 1)).astype(np.float32)


def test_l2norm_and_global_pool(mode):
    x = RNG.standard_normal((2, 5, 6, 7)).astype(np.float32)
    ours, plain = NormAndPool(True), NormAndPool(False)
    plain.norm.weight.set_data(Tensor(RNG.uniform(5, 12, 5).astype(np.float32)))
    ours.norm.weight.set_data(plain.norm.weight.data)
    got = _np(ours(Tensor(x)))
    _close(got, _np(plain(Tensor(x))))
    _close(got[:1], [_l2norm_ref(x, plain.norm.weight.asnumpy())])


def test_l2norm_init_and_name():
    norm = L.L2Norm(512, 8.0)
    assert [(n, p.shape) for n, p in norm.parameters_and_names()] == [("weight", (512,))]
    np.testing.assert_array_equal(norm.weight.asnumpy(), np.full(512, 8.0, np.float32))


def test_l2norm_and_global_pool_onnx(tmp_path):
    x = RNG.standard_normal((2, 5, 6, 7)).astype(np.float32)
    net = NormAndPool(True)
    w = net.norm.weight.asnumpy()
    want = [_l2norm_ref(x, w), x.mean((2, 3), keepdims=True), x.mean((2, 3))]
    _close(_onnx_outputs(net, x, tmp_path, "norm.onnx"), want)

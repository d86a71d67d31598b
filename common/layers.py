"""Export-safe building blocks shared by every model.

MindSpore 2.10 cannot export its bilinear resize, padded / ceil-mode max-pool, ``ops.pad``,
adaptive pooling or ``ops.L2Normalize`` to ONNX, and ONNX Runtime rejects dilated convolutions
exported with ``pad_mode="same"``. The layers here compute the same values with operators that
export (matmul, concat, VALID pooling, ``pad_mode="pad"`` convolutions) and are checked against
the plain MindSpore operators and ONNX Runtime in tests/test_layers.py.

Bilinear resize has two implementations behind one setting (:func:`set_resize_impl`,
:func:`resize_impl`): MindSpore's own ``ResizeBilinearV2`` ("native", the default, for training and
evaluation; equal to the matmul form to about 5e-6 in values and gradients for every mapping) and
the export-safe two matmuls ("matmul"), which common/export.py selects while it exports.

``numerics="oldport"`` variants (TF-style ``same`` convolution / pooling, legacy bilinear
resize, floor pooling) reproduce the old MindSpore ports, whose published weights were trained
with them; they are checked against MindSpore's own operators in tests/test_numerics.py.
"""
import contextlib

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

# Pad value for max pooling: below every finite float32, so padding never wins a window.
NEG_PAD = -3.0e38

# "authors": PyTorch semantics of the reference code; "oldport": ops of the old MindSpore ports.
NUMERICS = ("authors", "oldport")


def check_numerics(numerics):
    """``numerics`` itself, or a ValueError naming the accepted values."""
    if numerics not in NUMERICS:
        raise ValueError(f"numerics must be one of {NUMERICS}, got {numerics!r}")
    return numerics


def interp_matrix(n_in, n_out, align_corners=False, half_pixel_centers=True):
    """(n_out, n_in) matrix M such that ``M @ v`` is the 1-D linear interpolation of ``v``.

    ``align_corners=False`` is the half-pixel mapping of PyTorch / ONNX (source index clamped at 0),
    ``True`` maps the corner pixels onto each other. ``half_pixel_centers=False`` (with
    ``align_corners=False``) is the legacy mapping ``src = dst * n_in / n_out`` of
    ``ops.ResizeBilinearV2(half_pixel_centers=False)`` and the old ``ops.ResizeBilinear``.
    """
    out = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = out * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros_like(out)
    elif not half_pixel_centers:
        src = out * (n_in / n_out)
    else:
        src = np.maximum((out + 0.5) * (n_in / n_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    m = np.zeros((n_out, n_in), np.float64)
    np.add.at(m, (np.arange(n_out), i0), 1.0 - w1)
    np.add.at(m, (np.arange(n_out), i1), w1)
    return m.astype(np.float32)


@ms.constexpr
def _interp_tensor(n_in, n_out, align_corners, half_pixel_centers, transpose):
    m = interp_matrix(n_in, n_out, align_corners, half_pixel_centers)
    return Tensor(m.T.copy() if transpose else m)


RESIZE_IMPLS = ("native", "matmul")
_resize = {"impl": "native"}


def set_resize_impl(impl):
    """Select the bilinear resize of every model: "native" or "matmul"; returns the previous one.

    Graph mode reads the setting when a graph is compiled, so set it before the first call of a
    network (an already compiled graph keeps the form it was compiled with).
    """
    if impl not in RESIZE_IMPLS:
        raise ValueError(f"resize impl must be one of {RESIZE_IMPLS}, got {impl!r}")
    previous, _resize["impl"] = _resize["impl"], impl
    return previous


def get_resize_impl():
    return _resize["impl"]


@contextlib.contextmanager
def resize_impl(impl):
    """``with resize_impl("matmul"): ...`` selects ``impl`` inside the block only."""
    previous = set_resize_impl(impl)
    try:
        yield
    finally:
        set_resize_impl(previous)


@ms.constexpr
def _native_resize():
    # constexpr: evaluated at each compilation, so a graph follows the setting of its compile time
    return _resize["impl"] == "native"


class _NativeResize(nn.Cell):
    """``ResizeBilinearV2`` to the size of the matrices ``mh`` (H_out, H) and ``mw`` (W, W_out),
    with the matmul form's gradient: MindSpore's own gradient kernel is slower on CPU (u2netp 320:
    about 320 ms per backward against 200 ms for the matmuls), which would cancel the forward gain."""

    def __init__(self, align_corners, half_pixel_centers):
        super().__init__()
        self.resize = ops.ResizeBilinearV2(align_corners, half_pixel_centers)

    def construct(self, x, mh, mw):
        return self.resize(x, (mh.shape[0], mw.shape[1]))

    def bprop(self, x, mh, mw, out, dout):
        return ops.matmul(ops.matmul(mh.T, dout), mw.T), ops.zeros_like(mh), ops.zeros_like(mw)


# index: 2 = align_corners (which ignores half-pixel centers, as interp_matrix does; V2 rejects
# both True), 1 = half-pixel, 0 = legacy
_NATIVE = (_NativeResize(False, False), _NativeResize(False, True), _NativeResize(True, False))


def resize_bilinear(x, size, align_corners=False, half_pixel_centers=True):
    """Bilinear resize of an NCHW tensor to ``size`` = (H, W).

    The "matmul" form (:func:`set_resize_impl`) is two matmuls: shapes are static in graph mode,
    so the interpolation matrices are compile-time constants and the exported ONNX graph holds
    two MatMul nodes with initialisers. "native" is ``ops.ResizeBilinearV2`` with the same mapping
    forward (3x faster on u2netp's resizes) and the matmul form's gradient.
    ``half_pixel_centers=False`` selects the legacy mapping (see :func:`interp_matrix`).
    """
    h, w = x.shape[2], x.shape[3]
    oh, ow = size[0], size[1]
    if (h, w) == (oh, ow):
        return x
    mh = ops.cast(_interp_tensor(h, oh, align_corners, half_pixel_centers, False), x.dtype)
    mw = ops.cast(_interp_tensor(w, ow, align_corners, half_pixel_centers, True), x.dtype)
    if _native_resize():
        return _NATIVE[2 if align_corners else (1 if half_pixel_centers else 0)](x, mh, mw)
    return ops.matmul(ops.matmul(mh, x), mw)


def upsample_like(x, ref, align_corners=False, half_pixel_centers=True):
    """Resize ``x`` bilinearly to the spatial size of ``ref``."""
    return resize_bilinear(x, (ref.shape[2], ref.shape[3]), align_corners, half_pixel_centers)


class BilinearResize(nn.Cell):
    """Cell form of :func:`resize_bilinear` with a fixed output size or scale factor."""

    def __init__(self, size=None, scale_factor=None, align_corners=False, half_pixel_centers=True):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError("BilinearResize needs exactly one of size=(H, W) or scale_factor")
        self.size = tuple(size) if size is not None else None
        self.scale_factor = scale_factor
        self.align_corners = align_corners
        self.half_pixel_centers = half_pixel_centers

    def construct(self, x):
        if self.size is not None:
            return resize_bilinear(x, self.size, self.align_corners, self.half_pixel_centers)
        size = (int(x.shape[2] * self.scale_factor), int(x.shape[3] * self.scale_factor))
        return resize_bilinear(x, size, self.align_corners, self.half_pixel_centers)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
           has_bias=True, weight_init=None, bias_init=None):
    """``nn.Conv2d`` with PyTorch padding semantics (``pad_mode="pad"``, symmetric ``padding``).

    ``padding`` is an int or (pad_h, pad_w). ``pad_mode="pad"`` is also what makes dilated
    convolutions export to ONNX in a form ONNX Runtime accepts. ``has_bias`` defaults to True as
    in ``torch.nn.Conv2d``; pass False before BatchNorm.
    """
    ph, pw = _pair(padding)
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                     padding=(ph, ph, pw, pw), dilation=dilation, group=groups, has_bias=has_bias,
                     weight_init=weight_init, bias_init=bias_init)


def same_pads(n, kernel, stride, dilation=1):
    """(before, after) padding of TF / MindSpore ``pad_mode="same"`` along an axis of length ``n``:
    output ``ceil(n / stride)``, an odd total's extra pixel at the end (stride 2 on an even size
    pads only bottom/right, where PyTorch-style ``padding=k // 2`` pads both sides)."""
    span = (kernel - 1) * dilation + 1
    total = max((-(-n // stride) - 1) * stride + span - n, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    """``nn.Conv2d(pad_mode="same")`` written with explicit (asymmetric) pads, for the old ports.

    The pads depend on the input size modulo the stride, so one convolution primitive per residue
    is built up front and ``construct`` picks one from the static shape; each exports to ONNX as a
    Conv with explicit ``pads``. Parameters are those of ``nn.Conv2d`` (``weight``, ``bias``).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, groups=1,
                 has_bias=False, weight_init=None, bias_init=None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad", padding=0,
                         dilation=dilation, group=groups, has_bias=has_bias, weight_init=weight_init,
                         bias_init=bias_init)
        (kh, kw), (sh, sw), (dh, dw) = _pair(kernel_size), _pair(stride), _pair(dilation)
        self._strides = (sh, sw)
        prims = []
        for rh in range(sh):
            for rw in range(sw):
                # pads depend only on n mod stride: any n with that residue gives them
                pad = same_pads(rh + sh * kh, kh, sh, dh) + same_pads(rw + sw * kw, kw, sw, dw)
                prims.append(ops.Conv2D(out_channels, (kh, kw), mode=1, pad_mode="pad", pad=pad,
                                        stride=(sh, sw), dilation=(dh, dw), group=groups))
        self._convs = tuple(prims)

    def construct(self, x):
        sh, sw = self._strides
        out = self._convs[(x.shape[2] % sh) * sw + x.shape[3] % sw](x, self.weight)
        if self.has_bias:
            out = ops.bias_add(out, self.bias)
        return out


def conv2d_same(in_channels, out_channels, kernel_size, stride=1, dilation=1, groups=1,
                has_bias=False, weight_init=None, bias_init=None):
    """Factory twin of :func:`conv2d` with the old ports' TF-style padding (:class:`Conv2dSame`).

    ``has_bias`` defaults to False as in MindSpore 1.x ``nn.Conv2d``, which the old ports used.
    """
    return Conv2dSame(in_channels, out_channels, kernel_size, stride, dilation, groups, has_bias,
                      weight_init, bias_init)


class ConvTranspose2d(nn.Conv2dTranspose):
    """``torch.nn.ConvTranspose2d`` semantics on ``nn.Conv2dTranspose`` (weight (in, out/groups, k, k)).

    MindSpore implements ``output_padding`` by zero-padding the result (no kernel taps, no bias
    there), PyTorch by cropping less of the full transposed convolution. We get PyTorch's values
    by cropping ``padding - output_padding`` at the bottom/right instead, which needs
    ``output_padding <= padding``. Exporting to ONNX needs the ``output_shape`` and ``pads``
    fix-ups of common/export.py (``export_model`` applies them).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0,
                 groups=1, has_bias=True, dilation=1, weight_init=None, bias_init=None):
        ph, pw = _pair(padding)
        oph, opw = _pair(output_padding)
        if oph > ph or opw > pw:
            raise ValueError(f"ConvTranspose2d: output_padding {output_padding} larger than padding "
                             f"{padding} is not supported (it would add rows no kernel tap reaches)")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, pad_mode="pad",
                         padding=(ph, ph - oph, pw, pw - opw), dilation=dilation, group=groups,
                         has_bias=has_bias, weight_init=weight_init, bias_init=bias_init)


def pool_output_size(n, kernel, stride, padding, ceil_mode):
    """Output length of a PyTorch max-pool along one axis (a window may not start in the padding)."""
    span = n + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + padding:
        out -= 1
    return out


def _neg_border(x, axis, before, after):
    """Concatenate ``before`` / ``after`` rows (axis 2) or columns (axis 3) of NEG_PAD to ``x``.

    The border is one slice of ``x`` clamped to NEG_PAD, so it follows a dynamic batch size in the
    exported graph (a constant block would fix the batch).
    """
    if before + after == 0:
        return x
    edge = ops.minimum(x[:, :, :1] if axis == 2 else x[:, :, :, :1], NEG_PAD)
    return ops.concat([edge] * before + [x] + [edge] * after, axis)


class MaxPool2d(nn.Cell):
    """Max pool with PyTorch semantics (``padding``, ``ceil_mode``) that exports to ONNX.

    Padding is a concatenated border of a very negative constant followed by a VALID pool, so
    negative inputs are handled like PyTorch's implicit -inf padding. Kernel == stride with no
    padding in ceil mode is exactly MindSpore's ``pad_mode="same"`` (the extra row/column of a
    ceil-mode window lies past the end), which needs no concatenation.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.padding = _pair(padding)
        self.ceil_mode = ceil_mode
        if any(2 * p > k for p, k in zip(self.padding, self.kernel)):
            raise ValueError(f"MaxPool2d: padding {padding} must be at most half of kernel {kernel_size}")
        same = ceil_mode and self.kernel == self.stride and self.padding == (0, 0)
        self.use_same = same
        self.pool = nn.MaxPool2d(self.kernel, self.stride, pad_mode="same" if same else "valid")

    def construct(self, x):
        if self.use_same:
            return self.pool(x)
        h, w = x.shape[2], x.shape[3]
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        oh = pool_output_size(h, kh, sh, ph, self.ceil_mode)
        ow = pool_output_size(w, kw, sw, pw, self.ceil_mode)
        # Pad before by `padding`, after by just enough for the last window (never negative).
        x = _neg_border(x, 2, ph, max((oh - 1) * sh + kh - h - ph, 0))
        x = _neg_border(x, 3, pw, max((ow - 1) * sw + kw - w - pw, 0))
        return self.pool(x)


class MaxPool2dCeil(MaxPool2d):
    """Ceil-mode max pool (Caffe's pooling), e.g. VGG's pool3 in SSD / RefineDet."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding, ceil_mode=True)


class MaxPool2dSame(nn.Cell):
    """``nn.MaxPool2d(pad_mode="same")`` (TF style: output ``ceil(n / stride)``, the extra padding at
    the bottom/right) as a NEG_PAD border + VALID pool, so it exports to ONNX for any kernel.
    The old RAS port's backbone used it for its 3x3/2 pool, where the authors pad 1 on each side.
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel = _pair(kernel_size)
        self.stride = _pair(stride if stride is not None else kernel_size)
        self.pool = nn.MaxPool2d(self.kernel, self.stride, pad_mode="valid")

    def construct(self, x):
        (kh, kw), (sh, sw) = self.kernel, self.stride
        top, bottom = same_pads(x.shape[2], kh, sh)
        left, right = same_pads(x.shape[3], kw, sw)
        x = _neg_border(x, 2, top, bottom)
        x = _neg_border(x, 3, left, right)
        return self.pool(x)


def max_pool_2x2(numerics="authors"):
    """U-2-Net's 2x2/2 pool: ceil mode as the authors' PyTorch, floor mode (VALID) as the old port."""
    return MaxPool2dCeil(2, 2) if check_numerics(numerics) == "authors" else MaxPool2d(2, 2)


class L2Norm(nn.Cell):
    """Channel-wise L2 normalisation with a learnable per-channel scale (SSD / RefineDet).

    ``x / (sqrt(sum(x^2 over C)) + eps) * weight``, the formula of the reference PyTorch code,
    written with elementwise ops because ``ops.L2Normalize`` does not export. RefineDet uses
    ``scale`` 10 for conv4_3 and 8 for conv5_3.
    """

    def __init__(self, channels, scale, eps=1e-10):
        super().__init__()
        self.weight = Parameter(Tensor(np.full((channels,), scale, np.float32)), name="weight")
        self.eps = eps

    def construct(self, x):
        norm = ops.sqrt(ops.sum(x * x, dim=1, keepdim=True)) + self.eps
        return x / norm * self.weight.reshape(1, -1, 1, 1)


def global_avg_pool(x, keepdim=True):
    """Mean over H and W (``AdaptiveAvgPool2d(1)`` does not export to ONNX)."""
    return ops.mean(x, (2, 3), keepdim)

"""RAS: reverse attention for salient object detection (Chen et al., TIP 2020, RAS-pytorch ``v1``).

ResNet-50 features C1..C5 (C1 after conv1/BN/ReLU, before the max-pool), a multi-scale context
module (MSCM) on C5 giving a coarse saliency logit map, then four reverse-attention blocks on
C4, C3, C2, C1 (``ra4`` .. ``ra1``). Each block refines the coarser logits resized to its level by
a residual computed from features weighted with ``1 - sigmoid(logits)``, i.e. it looks where the
coarser map is not yet confident. Parameter names are the authors' (``resnet.*``, ``mscm.*``,
``ra1..ra4.*``) with MindSpore's BatchNorm fields. Every resize is bilinear with
``align_corners=True`` as two matmuls (:func:`common.layers.upsample_like`), so the network
exports to ONNX.

``numerics="oldport"`` reproduces the old MindSpore port (Ascend build, whose weights were
published) for its weights: a TF-style ``same`` 3x3/2 backbone max-pool (pads only bottom/right
on even sizes) and the legacy bilinear resize (``align_corners=False, half_pixel_centers=False``)
everywhere. The port passed (W, H) as the resize size, so it only matches on square inputs.
"""
import math

from mindspore import nn, ops
from mindspore.common.initializer import Normal, Uniform, initializer

from common.backbones.resnet import ResNet
from common.layers import MaxPool2dSame, check_numerics, conv2d, upsample_like

CHANNELS = 64
# MSCM branches: (kernel of the first conv, dilation of the second 3x3 conv), the authors' values.
MSCM_BRANCHES = ((1, 1), (3, 2), (5, 4), (7, 6))


def _conv(in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1):
    """Conv with bias, "same" size padding, initialised as the authors' RAS: weight N(0, 0.01),
    bias PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (their init leaves biases alone)."""
    fan_in = in_channels * kernel_size * kernel_size
    return conv2d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2),
                  dilation=dilation, has_bias=True, weight_init=Normal(0.01),
                  bias_init=Uniform(1.0 / math.sqrt(fan_in)))


class MSCM(nn.Cell):
    """1x1 ``convert`` (no ReLU), four parallel branches (conv k x k + ReLU, dilated 3x3 + ReLU),
    concatenated and scored to one logit channel by a 3x3 conv (no ReLU)."""

    def __init__(self, in_channels: int, channels: int = CHANNELS):
        super().__init__()
        self.convert = _conv(in_channels, channels, 1)
        for i, (kernel, dilation) in enumerate(MSCM_BRANCHES, start=1):
            setattr(self, f"branch{i}", nn.SequentialCell([
                _conv(channels, channels, kernel), nn.ReLU(),
                _conv(channels, channels, 3, dilation), nn.ReLU()]))
        self.score = _conv(channels * len(MSCM_BRANCHES), 1, 3)
        self.cat = ops.Concat(axis=1)

    def construct(self, x):
        x = self.convert(x)
        return self.score(self.cat((self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x))))


class ReverseAttention(nn.Cell):
    """``y + convs(convert(x) * (1 - sigmoid(y)))`` for features ``x`` and coarser logits ``y``
    already resized to the size of ``x`` (y: (B, 1, H, W), broadcast over the channels)."""

    def __init__(self, in_channels: int, channels: int = CHANNELS):
        super().__init__()
        self.convert = _conv(in_channels, channels, 1)
        self.convs = nn.SequentialCell([
            _conv(channels, channels, 3), nn.ReLU(),
            _conv(channels, channels, 3), nn.ReLU(),
            _conv(channels, channels, 3), nn.ReLU(),
            _conv(channels, 1, 3)])
        self.sigmoid = ops.Sigmoid()

    def construct(self, x, y):
        weight = self.sigmoid(-y)  # = 1 - sigmoid(y)
        return y + self.convs(self.convert(x) * weight)


class RAS(nn.Cell):
    """RAS v1 on ResNet-50. ``construct(x)`` returns five logit maps at the input size, finest
    first: (score1 from ra1 at C1, score2, score3, score4, score5 from MSCM at C5).

    Any input size works (the authors train and test at 352x352). ``frozen_bn`` freezes the
    backbone's BatchNorms (statistics and affine parameters). ``numerics``: "authors" or
    "oldport" (see the module docstring).
    """

    def __init__(self, in_channels: int = 3, channels: int = CHANNELS, frozen_bn: bool = False,
                 numerics: str = "authors"):
        super().__init__()
        self.numerics = check_numerics(numerics)
        # authors: align_corners=True; old port: legacy mapping (no corners, no half-pixel)
        self.align_corners = numerics == "authors"
        self.half_pixel = numerics == "authors"
        # Attribute order = the authors' definition order = their state-dict order.
        self.resnet = ResNet(50, out_indices=(0, 1, 2, 3, 4), frozen_bn=frozen_bn, in_channels=in_channels)
        if numerics == "oldport":
            self.resnet.maxpool = MaxPool2dSame(3, 2)  # parameter-free, so names are unchanged
        c1, c2, c3, c4, c5 = (f["channels"] for f in self.resnet.feature_info)
        self.mscm = MSCM(c5, channels)
        self.ra1 = ReverseAttention(c1, channels)
        self.ra2 = ReverseAttention(c2, channels)
        self.ra3 = ReverseAttention(c3, channels)
        self.ra4 = ReverseAttention(c4, channels)
        # The authors re-initialise every conv, the backbone's too, before loading ImageNet weights
        # into the backbone; without those weights this is what they would train from.
        for _, cell in self.resnet.cells_and_names():
            if isinstance(cell, nn.Conv2d):
                cell.weight.set_data(initializer(Normal(0.01), cell.weight.shape, cell.weight.dtype))

    def _up(self, y, ref):
        return upsample_like(y, ref, self.align_corners, self.half_pixel)

    def construct(self, x):
        c1, c2, c3, c4, c5 = self.resnet(x)
        y5 = self.mscm(c5)
        y4 = self.ra4(c4, self._up(y5, c4))
        y3 = self.ra3(c3, self._up(y4, c3))
        y2 = self.ra2(c2, self._up(y3, c2))
        y1 = self.ra1(c1, self._up(y2, c1))
        return (self._up(y1, x), self._up(y2, x), self._up(y3, x), self._up(y4, x), self._up(y5, x))


def build_ras(in_channels: int = 3, frozen_bn: bool = False, numerics: str = "authors") -> RAS:
    """RAS v1 with the authors' 64 head channels: 24,697,989 trainable parameters."""
    return RAS(in_channels=in_channels, channels=CHANNELS, frozen_bn=frozen_bn, numerics=numerics)

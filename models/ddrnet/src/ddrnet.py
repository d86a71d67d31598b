"""DDRNet for ImageNet classification (Hong et al., 2021), after ydhongHIT/DDRNet ``classification/``.

Two branches run side by side from stage 3 on: a low-resolution path (``layer3``, ``layer4``,
``layer5``) that halves the size each stage, and a high-resolution path at 1/8 of the input
(``layer3_``, ``layer4_``, ``layer5_``). After each stage they exchange features: the high branch
is strided down into the low one (``down3``/``down4``) and the low branch is compressed and
bilinearly upsampled into the high one (``compression3``/``compression4``). DDRNet-39 splits
stage 3 into two fused halves (``layer3_1``/``layer3_2`` and so on).

Parameter names equal the authors' PyTorch modules, so their weights load after renaming the
BatchNorm fields (see ``convert.py``). Two things differ from the old MindSpore port on purpose:
drop-path scales the residual branch (the port scaled the shortcut) and BatchNorm momentum is
0.9 in MindSpore's convention (= PyTorch's 0.1; the port gave one BN layer per bottleneck 0.1).

``numerics="oldport"`` reproduces the port's ops for its published weights: TF-style ``same``
padding (stride-2 3x3 convolutions pad only bottom/right on even sizes) and the legacy bilinear
resize (``half_pixel_centers=False``).
"""
import numpy as np
from mindspore import nn, ops
from mindspore.common.initializer import HeNormal

from common.layers import check_numerics, conv2d_same, upsample_like

BN_MOMENTUM = 0.9  # MindSpore: running = 0.9 * running + 0.1 * batch, i.e. PyTorch momentum 0.1


def _conv(cin, cout, kernel, stride=1, bias=False, numerics="authors"):
    """PyTorch-style convolution: symmetric padding k // 2 (not MindSpore's TF-style "same",
    which pads only bottom/right at stride 2, unless ``numerics="oldport"``), He-normal fan-out
    init as in the authors' code."""
    init = HeNormal(mode="fan_out", nonlinearity="relu")
    if numerics == "oldport":
        return conv2d_same(cin, cout, kernel, stride=stride, has_bias=bias, weight_init=init)
    return nn.Conv2d(cin, cout, kernel, stride=stride, pad_mode="pad", padding=kernel // 2,
                     has_bias=bias, weight_init=init)


def _bn(channels):
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=BN_MOMENTUM)


def _conv_bn(cin, cout, kernel, stride=1, numerics="authors"):
    return [_conv(cin, cout, kernel, stride, numerics=numerics), _bn(cout)]


class DropPath(nn.Cell):
    """Stochastic depth: in training, zero the input for a random subset of samples and scale
    the rest by 1 / keep probability; the identity in inference."""

    def __init__(self, drop_prob=0.0):
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        self.drop_prob = float(drop_prob)
        self.keep_prob = 1.0 - self.drop_prob

    def construct(self, x):
        if not self.training or self.drop_prob == 0.0:
            return x
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = ops.bernoulli(ops.zeros(shape, x.dtype), p=self.keep_prob)
        return x * (mask / self.keep_prob)


class _ResidualBlock(nn.Cell):
    """out = drop_path(residual(x)) + shortcut(x), then ReLU unless ``no_relu``.

    Subclasses build their convolutions first (so parameters are listed in the authors' module
    order) and then call ``_init_shortcut``.
    """

    expansion = 1

    def _init_shortcut(self, inplanes, planes, stride, no_relu, drop_path, numerics):
        out = planes * self.expansion
        # The authors' _make_layer adds a projection when the shape changes.
        needs_projection = stride != 1 or inplanes != out
        self.downsample = (nn.SequentialCell(_conv_bn(inplanes, out, 1, stride, numerics))
                           if needs_projection else None)
        self.relu = nn.ReLU()
        self.no_relu = no_relu
        self.drop_path = DropPath(drop_path)

    def residual(self, x):
        raise NotImplementedError

    def construct(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.drop_path(self.residual(x)) + shortcut
        if self.no_relu:
            return out
        return self.relu(out)


class BasicBlock(_ResidualBlock):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, no_relu=False, drop_path=0.0, numerics="authors"):
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 3, stride, numerics=numerics)
        self.bn1 = _bn(planes)
        self.conv2 = _conv(planes, planes, 3, numerics=numerics)
        self.bn2 = _bn(planes)
        self._init_shortcut(inplanes, planes, stride, no_relu, drop_path, numerics)

    def residual(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))


class Bottleneck(_ResidualBlock):
    expansion = 2

    def __init__(self, inplanes, planes, stride=1, no_relu=False, drop_path=0.0, numerics="authors"):
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 1, numerics=numerics)
        self.bn1 = _bn(planes)
        self.conv2 = _conv(planes, planes, 3, stride, numerics=numerics)
        self.bn2 = _bn(planes)
        self.conv3 = _conv(planes, planes * self.expansion, 1, numerics=numerics)
        self.bn3 = _bn(planes * self.expansion)
        self._init_shortcut(inplanes, planes, stride, no_relu, drop_path, numerics)

    def residual(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


def make_layer(block, inplanes, planes, drop_paths, stride=1, numerics="authors"):
    """A stage of ``len(drop_paths)`` blocks. As in the authors' code, the last block of a
    stage with two or more blocks skips its final ReLU (the next consumer applies one)."""
    n = len(drop_paths)
    blocks = []
    for i, rate in enumerate(drop_paths):
        blocks.append(block(inplanes if i == 0 else planes * block.expansion, planes,
                            stride=stride if i == 0 else 1, no_relu=(n > 1 and i == n - 1),
                            drop_path=rate, numerics=numerics))
    return nn.SequentialCell(blocks)


class DualResNet(nn.Cell):
    """DDRNet classifier.

    Args:
        layers: blocks per low-resolution stage (stage 1..4); the high-resolution stages have
            as many blocks as the low-resolution stage they run beside.
        planes: width of the stem; stage k of the low branch has ``planes * 2**(k-1)`` channels,
            the high branch ``2 * planes``.
        last_planes: channels of the 1x1 conv before pooling.
        stage3_parts: 1 (DDRNet-23) or 2 (DDRNet-39: stage 3 in two halves, each fused).
        drop_path_rate: stochastic depth rate of the deepest block; rates rise linearly over the
            low-resolution blocks, high-resolution blocks take the rates of the blocks beside
            them, and the two final bottlenecks take the full rate (the seed recipe's schedule).
        numerics: "authors" (PyTorch padding and resize) or "oldport" (the old MindSpore port's).
    """

    def __init__(self, layers=(2, 2, 2, 2), planes=64, last_planes=2048, stage3_parts=1,
                 num_classes=1000, in_channels=3, drop_path_rate=0.0, numerics="authors"):
        super().__init__()
        self.numerics = check_numerics(numerics)
        self.half_pixel = numerics == "authors"
        nm = numerics
        layers = tuple(int(n) for n in layers)
        if len(layers) != 4 or layers[2] % stage3_parts:
            raise ValueError(f"layers={layers} must have 4 stages and layers[2] divisible by "
                             f"stage3_parts={stage3_parts}")
        high = planes * 2
        part = layers[2] // stage3_parts
        low_counts = [layers[0], layers[1]] + [part] * stage3_parts + [layers[3]]
        rates = [float(r) for r in np.linspace(0.0, drop_path_rate, sum(low_counts))]
        stage_rates = []
        for n in low_counts:
            stage_rates.append(rates[:n])
            rates = rates[n:]

        self.conv1 = nn.SequentialCell([
            _conv(in_channels, planes, 3, 2, bias=True, numerics=nm), _bn(planes), nn.ReLU(),
            _conv(planes, planes, 3, 2, bias=True, numerics=nm), _bn(planes), nn.ReLU()])
        self.relu = nn.ReLU()
        self.layer1 = make_layer(BasicBlock, planes, planes, stage_rates[0], numerics=nm)
        self.layer2 = make_layer(BasicBlock, planes, planes * 2, stage_rates[1], stride=2, numerics=nm)

        # Fusion stages: (low layer, high layer, low->high compression, high->low down) names.
        suffixes = [""] if stage3_parts == 1 else [f"_{i + 1}" for i in range(stage3_parts)]
        self._fusions = tuple((f"layer3{s}", f"layer3{s}_", f"compression3{s}", f"down3{s}")
                              for s in suffixes) + (("layer4", "layer4_", "compression4", "down4"),)
        # Created in the authors' order: low layers, compressions, downs, then high layers.
        for i, (low, _, _, _) in enumerate(self._fusions[:-1]):
            setattr(self, low, make_layer(BasicBlock, planes * 2 if i == 0 else planes * 4,
                                          planes * 4, stage_rates[2 + i], stride=2 if i == 0 else 1,
                                          numerics=nm))
        self.layer4 = make_layer(BasicBlock, planes * 4, planes * 8, stage_rates[-1], stride=2, numerics=nm)
        for low, _, comp, _ in self._fusions:
            cin = planes * (8 if low == "layer4" else 4)
            setattr(self, comp, nn.SequentialCell(_conv_bn(cin, high, 1, numerics=nm)))
        for _, _, _, down in self._fusions[:-1]:
            setattr(self, down, nn.SequentialCell(_conv_bn(high, planes * 4, 3, 2, nm)))
        self.down4 = nn.SequentialCell(_conv_bn(high, planes * 4, 3, 2, nm) + [nn.ReLU()]
                                       + _conv_bn(planes * 4, planes * 8, 3, 2, nm))
        for i, (_, high_name, _, _) in enumerate(self._fusions):
            setattr(self, high_name, make_layer(BasicBlock, high, high, stage_rates[2 + i], numerics=nm))

        self.layer5_ = make_layer(Bottleneck, high, high, [drop_path_rate], numerics=nm)
        self.down5 = nn.SequentialCell(_conv_bn(high * Bottleneck.expansion, planes * 8, 3, 2, nm)
                                       + [nn.ReLU()] + _conv_bn(planes * 8, planes * 16, 3, 2, nm))
        self.layer5 = make_layer(Bottleneck, planes * 8, planes * 8, [drop_path_rate], numerics=nm)
        self.last_layer = nn.SequentialCell(_conv_bn(planes * 16, last_planes, 1, numerics=nm) + [nn.ReLU()])
        self.linear = nn.Dense(last_planes, num_classes)

    def construct(self, x):
        x = self.layer1(self.conv1(x))
        x = self.layer2(self.relu(x))
        x_ = x  # the high-resolution branch starts from the stage-2 output
        for low_name, high_name, comp_name, down_name in self._fusions:
            low = getattr(self, low_name)(self.relu(x))
            x_ = getattr(self, high_name)(self.relu(x_))
            x = low + getattr(self, down_name)(self.relu(x_))
            x_ = x_ + upsample_like(getattr(self, comp_name)(self.relu(low)), x_, False, self.half_pixel)
        x = self.layer5(self.relu(x)) + self.down5(self.relu(self.layer5_(self.relu(x_))))
        x = self.last_layer(self.relu(x))
        x = ops.mean(x, axis=(2, 3))  # global average pool (AdaptiveAvgPool2d does not export)
        return self.linear(x)


# Architecture of each registered variant (authors' get_model() functions).
ARCHS = {
    "ddrnet23": {"layers": (2, 2, 2, 2), "planes": 64, "last_planes": 2048, "stage3_parts": 1},
    "ddrnet23_slim": {"layers": (2, 2, 2, 2), "planes": 32, "last_planes": 1024, "stage3_parts": 1},
    "ddrnet39": {"layers": (3, 4, 6, 3), "planes": 64, "last_planes": 2048, "stage3_parts": 2},
}


def build_ddrnet(variant: str, num_classes: int = 1000, drop_path_rate: float = 0.0,
                 in_channels: int = 3, numerics: str = "authors") -> DualResNet:
    if variant not in ARCHS:
        raise KeyError(f"unknown DDRNet variant '{variant}', expected one of {sorted(ARCHS)}")
    return DualResNet(**ARCHS[variant], num_classes=num_classes, in_channels=in_channels,
                      drop_path_rate=drop_path_rate, numerics=numerics)

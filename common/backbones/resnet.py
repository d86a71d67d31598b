"""ResNet-50 / ResNet-101 feature extractors in torchvision's layout, returning C1..C5.

Parameter names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ``layer1.0.downsample.0``,
...) with MindSpore's BatchNorm fields, so torchvision / Caffe-converted weights load after a
rename of BatchNorm fields (:func:`torchvision_resnet_key_map`) and the MindSpore model zoo's
ResNet checkpoints after a rename of the shortcut (:func:`mindspore_modelzoo_resnet_key_map`).
Every layer exports to ONNX (``pad_mode="pad"`` convolutions, export-safe 3x3/2 max-pool).
"""
from mindspore import nn
from mindspore.common.initializer import HeNormal

from common.checkpoint import torch_to_mindspore_names
from common.layers import MaxPool2d, conv2d

DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
# output stride -> which of layer2..layer4 trade their stride for dilation (torchvision's
# replace_stride_with_dilation; 16 and 8 are DeepLab's settings).
DILATE = {32: (False, False, False), 16: (False, False, True), 8: (False, True, True)}
FEATURE_NAMES = ("relu", "layer1", "layer2", "layer3", "layer4")
EXPANSION = 4


def batch_norm(channels, frozen=False):
    """BatchNorm with PyTorch's defaults (eps 1e-5; MindSpore momentum 0.9 = PyTorch 0.1).

    ``frozen``: always normalise with the stored statistics and do not train gamma/beta, the
    usual setting for detection / segmentation fine-tuning with small batches.
    """
    bn = nn.BatchNorm2d(channels, eps=1e-5, momentum=0.9, use_batch_statistics=False if frozen else None)
    if frozen:
        bn.gamma.requires_grad = False
        bn.beta.requires_grad = False
    return bn


def _conv(in_channels, out_channels, kernel_size, stride=1, dilation=1):
    # torchvision initialises ResNet convs with kaiming_normal(mode="fan_out", relu)
    return conv2d(in_channels, out_channels, kernel_size, stride=stride,
                  padding=dilation * (kernel_size // 2), dilation=dilation, has_bias=False,
                  weight_init=HeNormal(mode="fan_out", nonlinearity="relu"))


class Bottleneck(nn.Cell):
    """1x1 -> 3x3 -> 1x1 residual block. The stride sits on the 3x3 conv (torchvision, "v1.5")
    or, with ``stride_in_1x1``, on the first 1x1 conv (the original Caffe ResNet)."""

    def __init__(self, in_channels, planes, stride=1, dilation=1, downsample=False, stride_in_1x1=False,
                 frozen_bn=False):
        super().__init__()
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        out_channels = planes * EXPANSION
        self.conv1 = _conv(in_channels, planes, 1, stride=stride_1x1)
        self.bn1 = batch_norm(planes, frozen_bn)
        self.conv2 = _conv(planes, planes, 3, stride=stride_3x3, dilation=dilation)
        self.bn2 = batch_norm(planes, frozen_bn)
        self.conv3 = _conv(planes, out_channels, 1)
        self.bn3 = batch_norm(out_channels, frozen_bn)
        self.relu = nn.ReLU()
        self.has_downsample = downsample
        if downsample:
            self.downsample = nn.SequentialCell([_conv(in_channels, out_channels, 1, stride=stride),
                                                 batch_norm(out_channels, frozen_bn)])

    def construct(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.has_downsample else x
        return self.relu(out + identity)


class ResNet(nn.Cell):
    """Bottleneck ResNet returning the features selected by ``out_indices`` from
    C1 (conv1+bn+relu, stride 2, before the max-pool), C2 (layer1) .. C5 (layer4).

    ``feature_info`` lists {name, channels, reduction} of the returned features, in order.
    ``output_stride`` 16 or 8 replaces the stride of the last stages by dilation.
    """

    def __init__(self, depth=50, out_indices=(0, 1, 2, 3, 4), output_stride=32, stride_in_1x1=False,
                 frozen_bn=False, in_channels=3):
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"ResNet depth {depth} not supported, expected one of {sorted(DEPTHS)}")
        if output_stride not in DILATE:
            raise ValueError(f"output_stride {output_stride} not supported, expected one of {sorted(DILATE)}")
        self.out_indices = tuple(out_indices)
        if not self.out_indices or any(i not in range(5) for i in self.out_indices):
            raise ValueError(f"out_indices {out_indices} must be a non-empty subset of 0..4 (C1..C5)")
        self.conv1 = _conv(in_channels, 64, 7, stride=2)
        self.bn1 = batch_norm(64, frozen_bn)
        self.relu = nn.ReLU()
        self.maxpool = MaxPool2d(3, 2, 1)

        infos = [{"name": "relu", "channels": 64, "reduction": 2}]
        self._in_channels, self._dilation, reduction = 64, 1, 4
        for k, (blocks, planes) in enumerate(zip(DEPTHS[depth], (64, 128, 256, 512))):
            stride = 1 if k == 0 else 2
            dilate = k > 0 and DILATE[output_stride][k - 1]
            layer = self._make_layer(planes, blocks, stride, dilate, stride_in_1x1, frozen_bn)
            setattr(self, f"layer{k + 1}", layer)
            reduction *= 1 if dilate else stride
            infos.append({"name": f"layer{k + 1}", "channels": planes * EXPANSION, "reduction": reduction})
        self.feature_info = [infos[i] for i in self.out_indices]

    def _make_layer(self, planes, blocks, stride, dilate, stride_in_1x1, frozen_bn):
        # As torchvision: a dilated stage keeps the previous dilation in its first block.
        previous = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        out_channels = planes * EXPANSION
        layers = [Bottleneck(self._in_channels, planes, stride, previous,
                             stride != 1 or self._in_channels != out_channels, stride_in_1x1, frozen_bn)]
        self._in_channels = out_channels
        layers += [Bottleneck(out_channels, planes, 1, self._dilation, False, stride_in_1x1, frozen_bn)
                   for _ in range(1, blocks)]
        return nn.SequentialCell(layers)

    def construct(self, x):
        c1 = self.relu(self.bn1(self.conv1(x)))
        c2 = self.layer1(self.maxpool(c1))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        feats = (c1, c2, c3, c4, c5)
        out = ()
        for i in self.out_indices:
            out = out + (feats[i],)
        return out


def resnet50(out_indices=(0, 1, 2, 3, 4), output_stride=32, stride_in_1x1=False, frozen_bn=False):
    return ResNet(50, out_indices, output_stride, stride_in_1x1, frozen_bn)


def resnet101(out_indices=(0, 1, 2, 3, 4), output_stride=32, stride_in_1x1=False, frozen_bn=False):
    return ResNet(101, out_indices, output_stride, stride_in_1x1, frozen_bn)


# ---------------------------------------------------------------- weight key maps (dict -> dict)

def _strip(params, prefixes):
    out = {}
    for key, value in params.items():
        for prefix in prefixes:
            if prefix and key.startswith(prefix):
                key = key[len(prefix):]
                break
        out[key] = value
    return out


def torchvision_resnet_key_map(state_dict, keep_fc=False, prefix=""):
    """torchvision / PyTorch ResNet state dict -> our names.

    BatchNorm ``weight/bias/running_mean/running_var`` become ``gamma/beta/moving_mean/
    moving_variance``, ``num_batches_tracked`` is dropped, so is the classifier ``fc.*`` unless
    ``keep_fc``. ``prefix`` (e.g. ``"resnet."``) is removed first. Use with
    ``functools.partial`` to pass options to ``load_weights(key_map=...)``.
    """
    params = _strip(state_dict, (prefix,))
    if not keep_fc:
        params = {k: v for k, v in params.items() if not k.startswith("fc.")}
    return torch_to_mindspore_names(params)


def mindspore_modelzoo_resnet_key_map(params, keep_fc=False, prefixes=("network.", "backbone.")):
    """MindSpore model zoo ResNet checkpoint (official/cv/ResNet) -> our names.

    The zoo names the projection shortcut ``down_sample_layer.0/1`` (ours: ``downsample.0/1``) and
    the classifier ``end_point`` (dropped unless ``keep_fc``, then renamed ``fc``); checkpoints may
    carry a ``network.`` or ``backbone.`` prefix. Note the zoo trains with ``pad_mode="same"``
    convolutions and BatchNorm eps 1e-4, so outputs differ slightly from the original network.
    """
    out = {}
    for key, value in _strip(params, prefixes).items():
        if key.startswith("end_point."):
            if not keep_fc:
                continue
            key = "fc." + key[len("end_point."):]
        out[key.replace(".down_sample_layer.", ".downsample.")] = value
    return out

"""VGG-16 reduced (fc6/fc7 as convolutions) for SSD / RefineDet.

The layers form one indexed sequence exactly as the ``vgg`` ModuleList of SSD / RefineDet in
PyTorch (luuuyi/RefineDet.PyTorch, amdegroot/ssd.pytorch): conv1_1 is ``0``, conv4_3 ``21``,
fc6 ``31``, fc7 ``33``. A detector holding this backbone as ``self.vgg`` therefore has the
authors' parameter names ``vgg.0.weight`` .. ``vgg.33.bias``, and the "vgg16_reducedfc" ImageNet
weights (keys ``0.weight`` .. ``33.bias``) load after the usual torch read, without renaming.
"""
from mindspore import nn
from mindspore.common.initializer import HeNormal

from common.layers import MaxPool2d, MaxPool2dCeil, conv2d

# Channels, "M" = 2x2/2 max-pool, "C" = the same in ceil mode (Caffe's pool3 in SSD / RefineDet).
CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "C", 512, 512, 512, "M", 512, 512, 512)
# pool5: RefineDet keeps VGG's 2x2/2 (fc7 at stride 32), SSD uses 3x3/1 pad 1 (stride 16).
POOL5 = {"2x2": lambda: MaxPool2d(2, 2), "3x3": lambda: MaxPool2d(3, 1, 1)}
# torchvision's VGG init (kaiming_normal fan_out, zero bias): without BatchNorm, the framework
# default (uniform, a=sqrt(5)) shrinks the signal ~6x in variance per layer, so a VGG trained
# from scratch barely learns; pretrained weights overwrite it anyway.
_INIT = {"weight_init": HeNormal(mode="fan_out", nonlinearity="relu"), "bias_init": "zeros"}
# (name, index of the ReLU whose output is the feature, channels)
TAPS = (("conv4_3", 22, 512), ("conv5_3", 29, 512), ("fc7", 34, 1024))


class VGG16(nn.SequentialCell):
    """VGG-16 with fc6 (3x3, dilation 3, 1024) and fc7 (1x1, 1024) returning the features chosen
    by ``out_indices`` from (conv4_3, conv5_3, fc7), each after its ReLU.

    ``feature_info`` lists {name, channels, reduction} of the returned features.
    """

    def __init__(self, pool5="2x2", out_indices=(0, 1, 2), in_channels=3):
        if pool5 not in POOL5:
            raise ValueError(f"pool5 '{pool5}' not supported, expected one of {sorted(POOL5)}")
        self_out = tuple(out_indices)
        if not self_out or any(i not in range(len(TAPS)) for i in self_out):
            raise ValueError(f"out_indices {out_indices} must be a non-empty subset of 0..2 "
                             "(conv4_3, conv5_3, fc7)")
        layers, channels, reductions, reduction = [], in_channels, {}, 1
        for v in CFG:
            if v in ("M", "C"):
                layers.append(MaxPool2dCeil(2, 2) if v == "C" else MaxPool2d(2, 2))
                reduction *= 2
            else:
                layers += [conv2d(channels, v, 3, padding=1, **_INIT), nn.ReLU()]
                channels = v
                reductions[len(layers) - 1] = reduction
        layers.append(POOL5[pool5]())
        reduction *= 2 if pool5 == "2x2" else 1
        layers += [conv2d(512, 1024, 3, padding=3, dilation=3, **_INIT), nn.ReLU(),  # fc6
                   conv2d(1024, 1024, 1, **_INIT), nn.ReLU()]  # fc7
        reductions[len(layers) - 1] = reduction
        super().__init__(layers)
        self.out_indices = self_out
        self.taps = tuple(TAPS[i][1] for i in self_out)
        self.last = max(self.taps)
        self.feature_info = [{"name": TAPS[i][0], "channels": TAPS[i][2],
                              "reduction": reductions[TAPS[i][1]]} for i in self_out]

    def construct(self, x):
        out = ()
        for i, layer in enumerate(self.cell_list):
            if i <= self.last:
                x = layer(x)
                if i in self.taps:
                    out = out + (x,)
        return out


def vgg16(pool5="2x2", out_indices=(0, 1, 2)):
    """RefineDet's VGG-16 (``pool5="2x2"``); ``pool5="3x3"`` gives SSD's."""
    return VGG16(pool5, out_indices)


def torchvision_vgg16_key_map(state_dict):
    """torchvision ``vgg16`` (``features.N.weight``) -> our names; its classifier is dropped, so
    fc6 / fc7 (``31.*``, ``33.*``) stay missing: load with ``ignore_missing=("31.", "33.")``."""
    return {k[len("features."):]: v for k, v in state_dict.items() if k.startswith("features.")}

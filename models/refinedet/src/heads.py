"""RefineDet's transfer connection blocks (TCB), prediction heads and initialisation.

The TCB cells live in three flat lists, as in luuuyi/RefineDet.PyTorch, so the VGG variant's
names are the authors' (``tcb0.0`` .. ``tcb0.11``, ``tcb1.0`` .. ``tcb1.2``, ``tcb2.1`` ..
``tcb2.10``). Level ``l`` (0 = finest) uses the ``l``-th chunk of each list:

- ``tcb0``: conv3x3 - ReLU - conv3x3 (the top level: conv - ReLU - conv, its ReLU is in ``tcb2``)
- ``tcb1``: 2x2 / 2 transposed conv of level ``l + 1``'s TCB output, added to ``tcb0``'s output
- ``tcb2``: ReLU - conv3x3 - ReLU

With ``batch_norm`` (the ResNet-101 variants, sfzhang15's ``AddExtraLayers(use_batchnorm=True)``)
every conv and the transposed conv lose their bias and gain a BatchNorm, so the chunks are
(conv, BN, ReLU, conv, BN), (deconv, BN) and (ReLU, conv, BN, ReLU).
"""
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.common.initializer import Normal, XavierUniform, initializer

from common.backbones.resnet import Bottleneck, batch_norm
from common.layers import ConvTranspose2d, conv2d

TCB_CHANNELS = 256
NUM_ANCHORS = 3  # per location: aspect ratios 1, 2, 1/2 (no max-size box)


def _conv_bn(in_channels, out_channels, batch_norm_, frozen_bn):
    if not batch_norm_:
        return [conv2d(in_channels, out_channels, 3, padding=1)]
    return [conv2d(in_channels, out_channels, 3, padding=1, has_bias=False), batch_norm(out_channels, frozen_bn)]


def build_tcb(in_channels, batch_norm_=False, frozen_bn=False):
    """(tcb0, tcb1, tcb2) CellLists for sources with ``in_channels`` (finest first)."""
    tcb0, tcb1, tcb2 = [], [], []
    c = TCB_CHANNELS
    for level, ch in enumerate(in_channels):
        tcb0 += _conv_bn(ch, c, batch_norm_, frozen_bn) + [nn.ReLU()] + _conv_bn(c, c, batch_norm_, frozen_bn)
        tcb2 += [nn.ReLU()] + _conv_bn(c, c, batch_norm_, frozen_bn) + [nn.ReLU()]
        if level != len(in_channels) - 1:
            if batch_norm_:
                tcb1 += [ConvTranspose2d(c, c, 2, 2, has_bias=False), batch_norm(c, frozen_bn)]
            else:
                tcb1 += [ConvTranspose2d(c, c, 2, 2)]
    return nn.CellList(tcb0), nn.CellList(tcb1), nn.CellList(tcb2)


def build_heads(in_channels, out_per_anchor):
    """One 3x3 conv per source predicting ``NUM_ANCHORS * out_per_anchor`` values per location."""
    return nn.CellList([conv2d(ch, NUM_ANCHORS * out_per_anchor, 3, padding=1) for ch in in_channels])


def build_inter_blocks(in_channels, stride_in_1x1=False, frozen_bn=False):
    """sfzhang15's ``inter_layer_depth`` blocks of the ResNet variants: a bottleneck (256, 256,
    1024) with a projection shortcut before each head."""
    return nn.CellList([Bottleneck(ch, 256, 1, 1, True, stride_in_1x1, frozen_bn) for ch in in_channels])


def flatten_head(x, values):
    """(B, A_l * values, H, W) -> (B, H * W * A_l, values), NHWC order as the authors'.

    The batch is left as -1 so an exported graph keeps a dynamic batch axis.
    """
    _, c, h, w = x.shape
    return ops.transpose(x, (0, 2, 3, 1)).reshape(-1, h * w * (c // values), values)


def init_new_layers(cells):
    """Initialise convs of the layers RefineDet adds to its backbone.

    Convs with a bias (no BatchNorm after them): Xavier uniform, zero bias (luuuyi's
    ``weights_init``, Caffe's ``xavier`` filler). Bias-free convs feeding a BatchNorm: Gaussian
    std 0.01, sfzhang15's ``ConvBNLayer`` filler. BatchNorm keeps gamma 1, beta 0.
    """
    for cell in cells:
        for _, sub in cell.cells_and_names():
            if not isinstance(sub, (nn.Conv2d, nn.Conv2dTranspose)):
                continue
            shape = sub.weight.shape
            if sub.has_bias:
                sub.weight.set_data(initializer(XavierUniform(), shape, sub.weight.dtype))
                sub.bias.set_data(Tensor(np.zeros(sub.bias.shape, np.float32)))
            else:
                sub.weight.set_data(initializer(Normal(0.01), shape, sub.weight.dtype))

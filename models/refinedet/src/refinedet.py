"""RefineDet (Zhang et al., CVPR 2018): VGG-16 and ResNet-101 networks at 320 / 512.

VGG-16 variants mirror luuuyi/RefineDet.PyTorch module for module, so its ``.pth`` names are
ours: ``vgg.*`` (common.backbones.vgg16, pool5 2x2/2, fc6 dilation 3), ``conv4_3_L2Norm`` (10),
``conv5_3_L2Norm`` (8), ``extras.0`` (1x1, 256) and ``extras.1`` (3x3/2, 512), ReLU after each,
``arm_loc/arm_conf.{0..3}``, ``tcb0/tcb1/tcb2`` (see heads.py), ``odm_loc/odm_conf.{0..3}``.

ResNet-101 variants follow sfzhang15's Caffe ``ResNet101_COCO_{320,512}.py``:
- sources C3 (``res3b3``, 512 ch, stride 8), C4 (``res4b22``, 1024, 16), C5 (``res5c``, 2048, 32)
  and ``res6``, one extra bottleneck (128, 128, 512) of stride 2 with a projection shortcut on
  C5 (``extras.0``, stride 64); no L2Norm;
- TCBs with BatchNorm after every conv and the transposed conv, convs without bias;
- before every ARM and ODM head, a bottleneck (256, 256, 1024) with a projection shortcut
  (``arm_inter.i`` / ``odm_inter.i``), so all heads read 1024 channels.
The backbone is ``common.backbones.resnet101`` held as ``backbone`` (torchvision names and
layout: stride on the 3x3 conv, max-pool 3x3/2 pad 1, so torchvision ImageNet weights load);
``stride_in_1x1=True`` puts the stride on the first 1x1 conv as in the Caffe ResNet. Caffe's
pool1 (3x3/2, no pad, ceil) gives the same sizes at even inputs.

Trainable parameters (21 / 81 classes): VGG-16 34,440,884 / 36,100,484 (equal to luuuyi's);
ResNet-101 75,815,348 / 82,451,588 (ours, re-derived layer by layer from the Caffe layout in
tests/test_refinedet_net.py; 42,500,160 of them the ResNet-101 backbone). The input size does not
change them.

``construct`` returns raw head outputs ``(arm_loc (B, A, 4), arm_conf (B, A, 2) logits,
odm_loc (B, A, 4), odm_conf (B, A, C) logits)`` with A = 3 * sum(H_l * W_l) anchors in the
authors' prior order (level, row, column, box); no softmax.
"""
from mindspore import nn, ops

from common.backbones import resnet101, vgg16
from common.backbones.resnet import Bottleneck
from common.layers import L2Norm, conv2d
from models.refinedet.src.heads import (
    TCB_CHANNELS,
    build_heads,
    build_inter_blocks,
    build_tcb,
    flatten_head,
    init_new_layers,
)

BACKBONES = ("vgg16", "resnet101")
# Registry name -> (backbone, training / evaluation input size).
VARIANTS = {"refinedet320_vgg16": ("vgg16", 320), "refinedet512_vgg16": ("vgg16", 512),
            "refinedet320_resnet101": ("resnet101", 320), "refinedet512_resnet101": ("resnet101", 512)}
STEPS = (8, 16, 32, 64)
DEFAULT_NUM_CLASSES = 81  # COCO (80 + background), as the old port; VOC is 21


def _conv_out(n, kernel, stride, padding, dilation=1, ceil=False):
    span = n + 2 * padding - dilation * (kernel - 1) - 1
    return (-(-span // stride) if ceil else span // stride) + 1


def _level_sizes(n, backbone):
    """Side lengths of the four sources along one axis of length ``n``."""
    if backbone == "vgg16":
        n = _conv_out(n, 2, 2, 0)  # pool1
        n = _conv_out(n, 2, 2, 0)  # pool2
        c4 = _conv_out(n, 2, 2, 0, ceil=True)  # pool3 (ceil mode)
        c5 = _conv_out(c4, 2, 2, 0)  # pool4
        fc7 = _conv_out(c5, 2, 2, 0)  # pool5; fc6 / fc7 keep the size
        return [c4, c5, fc7, _conv_out(fc7, 3, 2, 1)]  # extras.1: 3x3 / 2 pad 1
    n = _conv_out(_conv_out(n, 7, 2, 3), 3, 2, 1)  # conv1, max-pool
    sizes = []
    for _ in range(4):  # layer2, layer3, layer4, res6: each stride 2 (1x1 or 3x3, same sizes)
        n = _conv_out(n, 3, 2, 1)
        sizes.append(n)
    return sizes


def feature_map_sizes(image_size, backbone="vgg16"):
    """[(H, W)] of the four source maps (strides 8, 16, 32, 64) for an input of ``image_size``
    (int or (H, W)), the ``feature_maps`` the anchor generator needs.

    Raises ValueError when a level is not twice the next coarser one: the TCB's 2x2 / 2
    transposed conv then cannot be added to it (e.g. VGG at 300: 38, 19, 9, 5).
    """
    if backbone not in BACKBONES:
        raise ValueError(f"backbone '{backbone}' not supported, expected one of {BACKBONES}")
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    hs, ws = _level_sizes(h, backbone), _level_sizes(w, backbone)
    for sizes, axis, n in ((hs, "height", h), (ws, "width", w)):
        if min(sizes) < 1 or any(sizes[i] != 2 * sizes[i + 1] for i in range(3)):
            raise ValueError(f"RefineDet ({backbone}) cannot run at input {axis} {n}: source sizes {sizes} "
                             "must halve level by level for the TCB upsampling (use a multiple of 64)")
    return list(zip(hs, ws))


def num_anchors(image_size, backbone="vgg16"):
    """Anchors (3 per location) over all four levels, e.g. 6,375 at 320 and 16,320 at 512."""
    return 3 * sum(h * w for h, w in feature_map_sizes(image_size, backbone))


class RefineDet(nn.Cell):
    """RefineDet with anchor refinement (ARM), TCBs and object detection (ODM) heads.

    Args:
        backbone: "vgg16" or "resnet101".
        num_classes: ODM classes including background (81 COCO, 21 VOC).
        image_size: the input size it is meant for (320 or 512); any multiple of 64 runs.
        frozen_bn: (ResNet) backbone BatchNorm uses stored statistics and is not trained.
        stride_in_1x1: (ResNet) stride on the first 1x1 conv of a bottleneck (Caffe ResNet).
    """

    def __init__(self, backbone: str = "vgg16", num_classes: int = DEFAULT_NUM_CLASSES, image_size: int = 320,
                 frozen_bn: bool = False, stride_in_1x1: bool = False):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"backbone '{backbone}' not supported, expected one of {BACKBONES}")
        if num_classes < 2:
            raise ValueError(f"num_classes must count background and at least one class, got {num_classes}")
        self.backbone_name = backbone
        self.num_classes = num_classes
        self.image_size = image_size
        self.is_vgg = backbone == "vgg16"
        if self.is_vgg:
            self.vgg = vgg16(pool5="2x2")
            self.conv4_3_L2Norm = L2Norm(512, 10.0)
            self.conv5_3_L2Norm = L2Norm(512, 8.0)
            self.extras = nn.CellList([conv2d(1024, 256, 1), conv2d(256, 512, 3, stride=2, padding=1)])
            channels = (512, 512, 1024, 512)
            head_in = channels
            odm_in = (TCB_CHANNELS,) * 4
        else:
            self.backbone = resnet101(out_indices=(2, 3, 4), stride_in_1x1=stride_in_1x1, frozen_bn=frozen_bn)
            self.extras = nn.CellList([Bottleneck(2048, 128, 2, 1, True, stride_in_1x1)])
            channels = (512, 1024, 2048, 512)
            self.arm_inter = build_inter_blocks(channels, stride_in_1x1)
            self.odm_inter = build_inter_blocks((TCB_CHANNELS,) * 4, stride_in_1x1)
            head_in = odm_in = (1024,) * 4
        self.arm_loc = build_heads(head_in, 4)
        self.arm_conf = build_heads(head_in, 2)
        self.odm_loc = build_heads(odm_in, 4)
        self.odm_conf = build_heads(odm_in, num_classes)
        self.tcb0, self.tcb1, self.tcb2 = build_tcb(channels, batch_norm_=not self.is_vgg)
        n_levels = len(channels)
        self.n_levels = n_levels
        self.chunk0 = len(self.tcb0) // n_levels
        self.chunk1 = len(self.tcb1) // (n_levels - 1)
        self.chunk2 = len(self.tcb2) // n_levels
        new = [self.extras, self.arm_loc, self.arm_conf, self.odm_loc, self.odm_conf, self.tcb0, self.tcb1, self.tcb2]
        if not self.is_vgg:
            new += [self.arm_inter, self.odm_inter]
        init_new_layers(new)

    def feature_map_sizes(self, image_size=None):
        """[(H, W)] of the four sources at ``image_size`` (default: the variant's size)."""
        return feature_map_sizes(self.image_size if image_size is None else image_size, self.backbone_name)

    def _sources(self, x):
        if self.is_vgg:
            c4, c5, fc7 = self.vgg(x)
            e = ops.relu(self.extras[0](fc7))
            e = ops.relu(self.extras[1](e))
            return self.conv4_3_L2Norm(c4), self.conv5_3_L2Norm(c5), fc7, e
        c3, c4, c5 = self.backbone(x)
        return c3, c4, c5, self.extras[0](c5)

    def _tcb_level(self, level, x, above):
        for i in range(self.chunk0):
            x = self.tcb0[level * self.chunk0 + i](x)
        if level != self.n_levels - 1:
            for i in range(self.chunk1):
                above = self.tcb1[level * self.chunk1 + i](above)
            x = x + above
        for i in range(self.chunk2):
            x = self.tcb2[level * self.chunk2 + i](x)
        return x

    def _head(self, loc, conf, inter, feats, classes):
        locs, confs = (), ()
        for i in range(self.n_levels):
            f = feats[i]
            if not self.is_vgg:
                f = inter[i](f)
            locs = locs + (flatten_head(loc[i](f), 4),)
            confs = confs + (flatten_head(conf[i](f), classes),)
        return ops.concat(locs, 1), ops.concat(confs, 1)

    def construct(self, x):
        sources = self._sources(x)
        arm_inter = None if self.is_vgg else self.arm_inter
        odm_inter = None if self.is_vgg else self.odm_inter
        arm_loc, arm_conf = self._head(self.arm_loc, self.arm_conf, arm_inter, sources, 2)
        top = self.n_levels - 1
        p = self._tcb_level(top, sources[top], sources[top])
        tcb = (p,)
        for level in range(top - 1, -1, -1):
            p = self._tcb_level(level, sources[level], p)
            tcb = (p,) + tcb
        odm_loc, odm_conf = self._head(self.odm_loc, self.odm_conf, odm_inter, tcb, self.num_classes)
        return arm_loc, arm_conf, odm_loc, odm_conf


def build_refinedet(variant, num_classes=DEFAULT_NUM_CLASSES, frozen_bn=False, stride_in_1x1=False):
    """The registered variant ``variant`` (see VARIANTS)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown RefineDet variant '{variant}', expected one of {sorted(VARIANTS)}")
    backbone, size = VARIANTS[variant]
    return RefineDet(backbone, num_classes, size, frozen_bn, stride_in_1x1)

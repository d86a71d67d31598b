"""RefineNet-101 (Lin et al., CVPR 2017) as in DrSleep/refinenet-pytorch ``rf101``.

Four cascaded RefineNet blocks on a ResNet whose parameters sit at the top level (``conv1``,
``bn1``, ``layer1`` ...), as in DrSleep's module; every parameter name and shape equals his after
the BatchNorm field rename. The coarsest path (from C5) has 512 channels, the others 256. Each
block: 3x3 ``dimred`` of the backbone feature, 2 residual conv units (``adapt_stage*_b``),
a 3x3 conv, the sum with the coarser block's upsampled output, ReLU, chained residual pooling
(``mflow_conv_g*_pool``), 3 residual conv units (``mflow_conv_g*_b``) and, except in the last,
a 3x3 fusion conv before a bilinear (align_corners=True) upsampling to the next finer level.
The logits come out at 1/4 of the input size; the network does not upsample them.

BatchNorm: DrSleep trains with ``FREEZE_BN`` (light-weight-refinenet ``src/train.py``): every
BatchNorm in eval mode, so its statistics stay those of ImageNet, while gamma and beta are
still in the optimiser. ``frozen_bn=True`` (the default) does the same; ``frozen_bn=False``
uses batch statistics in training and updates the moving averages.
"""
from mindspore import nn

from common.backbones.resnet import ResNet
from common.layers import upsample_like
from models.refinenet.src.blocks import CRPBlock, RCUBlock, conv3x3

# Decoder widths: the path from C5 and everything after its fusion conv.
COARSE_CHANNELS = 512
CHANNELS = 256


def _rcu(channels, n_blocks):
    # DrSleep wraps each block in nn.Sequential, hence the ".0." in the names
    return nn.SequentialCell([RCUBlock(channels, n_blocks)])


def _crp(channels):
    return nn.SequentialCell([CRPBlock(channels, 4)])


class RefineNet(ResNet):
    """RefineNet on a bottleneck ResNet (``depth`` 101 for rf101; 50 also builds).

    Input (B, 3, H, W) normalised with the ImageNet mean/std on a [0, 1] scale; output logits
    (B, num_classes, ceil(H/4), ceil(W/4)) (the size of C2). ``dropout`` is the probability of
    the three dropout layers (on C4, C5 and before the classifier).
    """

    def __init__(self, num_classes=21, depth=101, frozen_bn=True, dropout=0.5):
        super().__init__(depth, out_indices=(1, 2, 3, 4), frozen_bn=frozen_bn)
        if frozen_bn:
            for _, cell in self.cells_and_names():
                if isinstance(cell, nn.BatchNorm2d):  # statistics frozen, affine still trained
                    cell.gamma.requires_grad = True
                    cell.beta.requires_grad = True
        c2, c3, c4, c5 = (info["channels"] for info in self.feature_info)
        self.dropout = nn.Dropout(p=dropout)

        self.p_ims1d2_outl1_dimred = conv3x3(c5, COARSE_CHANNELS)
        self.adapt_stage1_b = _rcu(COARSE_CHANNELS, 2)
        self.mflow_conv_g1_pool = _crp(COARSE_CHANNELS)
        self.mflow_conv_g1_b = _rcu(COARSE_CHANNELS, 3)
        self.mflow_conv_g1_b3_joint_varout_dimred = conv3x3(COARSE_CHANNELS, CHANNELS)
        for k, channels in ((2, c4), (3, c3), (4, c2)):
            setattr(self, f"p_ims1d2_outl{k}_dimred", conv3x3(channels, CHANNELS))
            setattr(self, f"adapt_stage{k}_b", _rcu(CHANNELS, 2))
            setattr(self, f"adapt_stage{k}_b2_joint_varout_dimred", conv3x3(CHANNELS, CHANNELS))
            setattr(self, f"mflow_conv_g{k}_pool", _crp(CHANNELS))
            setattr(self, f"mflow_conv_g{k}_b", _rcu(CHANNELS, 3))
            if k < 4:
                setattr(self, f"mflow_conv_g{k}_b3_joint_varout_dimred", conv3x3(CHANNELS, CHANNELS))
        self.clf_conv = conv3x3(CHANNELS, num_classes, has_bias=True)

    def _refine(self, feature, coarser, dimred, adapt, joint, pool, out):
        """One RefineNet block below the coarsest: adapt ``feature``, add ``coarser``, pool, refine."""
        x = joint(adapt(dimred(feature)))
        return out(pool(self.relu(x + coarser)))

    def construct(self, x):
        l1, l2, l3, l4 = super().construct(x)
        # layer4 has already seen l3: the dropout on l3 acts on the decoder's input only
        l4 = self.dropout(l4)
        l3 = self.dropout(l3)

        x4 = self.relu(self.adapt_stage1_b(self.p_ims1d2_outl1_dimred(l4)))
        x4 = self.mflow_conv_g1_b(self.mflow_conv_g1_pool(x4))
        x4 = upsample_like(self.mflow_conv_g1_b3_joint_varout_dimred(x4), l3, align_corners=True)

        x3 = self._refine(l3, x4, self.p_ims1d2_outl2_dimred, self.adapt_stage2_b,
                          self.adapt_stage2_b2_joint_varout_dimred, self.mflow_conv_g2_pool,
                          self.mflow_conv_g2_b)
        x3 = upsample_like(self.mflow_conv_g2_b3_joint_varout_dimred(x3), l2, align_corners=True)

        x2 = self._refine(l2, x3, self.p_ims1d2_outl3_dimred, self.adapt_stage3_b,
                          self.adapt_stage3_b2_joint_varout_dimred, self.mflow_conv_g3_pool,
                          self.mflow_conv_g3_b)
        x2 = upsample_like(self.mflow_conv_g3_b3_joint_varout_dimred(x2), l1, align_corners=True)

        x1 = self._refine(l1, x2, self.p_ims1d2_outl4_dimred, self.adapt_stage4_b,
                          self.adapt_stage4_b2_joint_varout_dimred, self.mflow_conv_g4_pool,
                          self.mflow_conv_g4_b)
        return self.clf_conv(self.dropout(x1))


def refinenet(depth=101, num_classes=21, frozen_bn=True, dropout=0.5):
    return RefineNet(num_classes, depth, frozen_bn, dropout)

"""U-2-Net and U-2-Net-lite (U2NETP), Qin et al., Pattern Recognition 2020.

Layout and parameter names follow the authors' ``model/u2net.py`` (xuebinqin/U-2-Net), so their
PyTorch weights load after renaming the BatchNorm fields. Every operator exports to ONNX:
bilinear upsampling is :func:`common.layers.upsample_like` (two matmuls) and the ceil-mode
2x2/2 max-pool is :class:`common.layers.MaxPool2dCeil` (MindSpore's ``pad_mode="same"``, which
equals PyTorch's ``ceil_mode=True`` when kernel = stride).

``numerics="oldport"`` swaps in the old MindSpore port's ops, for its published weights: floor
(VALID) pooling and the legacy bilinear resize (``half_pixel_centers=False``).
"""
from mindspore import nn, ops

from common.layers import check_numerics, conv2d, max_pool_2x2, upsample_like


class REBNCONV(nn.Cell):
    """3x3 conv (dilated, with bias) + BatchNorm + ReLU; names ``conv_s1``/``bn_s1`` as the authors'."""

    def __init__(self, in_ch: int, out_ch: int, dirate: int = 1):
        super().__init__()
        self.conv_s1 = conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate, has_bias=True)
        self.bn_s1 = nn.BatchNorm2d(out_ch, momentum=0.9, eps=1e-5)  # = PyTorch momentum 0.1
        self.relu_s1 = nn.ReLU()

    def construct(self, x):
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Cell):
    """Residual U-block of ``height`` levels (the authors' RSU7/RSU6/RSU5/RSU4, or RSU4F).

    Plain blocks (``dilated=False``) halve the resolution between encoder levels 1..height-1 with
    a ceil-mode max-pool, use dilation 2 at the deepest level and upsample in the decoder.
    Dilated blocks (RSU4F) keep the resolution and use dilations 1, 2, 4, 8 instead.
    Decoder level i concatenates (deeper decoder output, encoder level i) as the authors do.
    """

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int, dilated: bool = False,
                 numerics: str = "authors"):
        super().__init__()
        if height < 2:
            raise ValueError(f"RSU height must be >= 2, got {height}")
        if dilated:
            dilations = [2 ** i for i in range(height)]
            pooled = [False] * height
        else:
            dilations = [1] * (height - 1) + [2]
            pooled = [i < height - 2 for i in range(height)]  # pool after levels 1..height-2
        self.height = height
        self.pooled = tuple(pooled)
        # Attribute order = the authors' definition order = parameter order in their state dict.
        self.rebnconvin = REBNCONV(in_ch, out_ch, 1)
        for i in range(1, height + 1):
            setattr(self, f"rebnconv{i}", REBNCONV(out_ch if i == 1 else mid_ch, mid_ch, dilations[i - 1]))
        for i in range(height - 1, 0, -1):
            cout = out_ch if i == 1 else mid_ch
            setattr(self, f"rebnconv{i}d", REBNCONV(2 * mid_ch, cout, dilations[i - 1]))
        self.encoder = tuple(getattr(self, f"rebnconv{i}") for i in range(1, height + 1))
        self.decoder = tuple(getattr(self, f"rebnconv{i}d") for i in range(height - 1, 0, -1))
        self.pool = max_pool_2x2(numerics)
        self.half_pixel = check_numerics(numerics) == "authors"
        self.cat = ops.Concat(axis=1)

    def construct(self, x):
        hxin = self.rebnconvin(x)
        skips = ()
        hx = hxin
        for i in range(self.height):
            hx = self.encoder[i](hx)
            skips = skips + (hx,)
            if self.pooled[i]:
                hx = self.pool(hx)
        for j in range(self.height - 1):
            level = self.height - 2 - j  # 0-based encoder level this decoder step joins
            hx = self.decoder[j](self.cat((hx, skips[level])))
            if level > 0 and self.pooled[level - 1]:
                hx = upsample_like(hx, skips[level - 1], False, self.half_pixel)
        return hx + hxin


class RSU4F(RSU):
    """RSU of height 4 with dilations 1, 2, 4, 8 and no pooling."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int, numerics: str = "authors"):
        super().__init__(4, in_ch, mid_ch, out_ch, dilated=True, numerics=numerics)


# (name, height or "F", in, mid, out) for stage1..6 then stage5d..1d, the authors' order.
U2NET_STAGES = (
    ("stage1", 7, 3, 32, 64), ("stage2", 6, 64, 32, 128), ("stage3", 5, 128, 64, 256),
    ("stage4", 4, 256, 128, 512), ("stage5", "F", 512, 256, 512), ("stage6", "F", 512, 256, 512),
    ("stage5d", "F", 1024, 256, 512), ("stage4d", 4, 1024, 128, 256), ("stage3d", 5, 512, 64, 128),
    ("stage2d", 6, 256, 32, 64), ("stage1d", 7, 128, 16, 64),
)
U2NETP_STAGES = (
    ("stage1", 7, 3, 16, 64), ("stage2", 6, 64, 16, 64), ("stage3", 5, 64, 16, 64),
    ("stage4", 4, 64, 16, 64), ("stage5", "F", 64, 16, 64), ("stage6", "F", 64, 16, 64),
    ("stage5d", "F", 128, 16, 64), ("stage4d", 4, 128, 16, 64), ("stage3d", 5, 128, 16, 64),
    ("stage2d", 6, 128, 16, 64), ("stage1d", 7, 128, 16, 64),
)


def _rsu(height, in_ch, mid_ch, out_ch, numerics):
    if height == "F":
        return RSU4F(in_ch, mid_ch, out_ch, numerics)
    return RSU(height, in_ch, mid_ch, out_ch, numerics=numerics)


class U2Net(nn.Cell):
    """Six encoder stages, five decoder stages, six side outputs and a 1x1 fusion conv.

    ``construct`` returns seven maps at the input size, fused first: (d0, d1, ..., d6), passed
    through a sigmoid unless ``return_logits`` (use logits with a BCE-with-logits loss).
    Inputs of any size work; sizes not divisible by 32 behave like the authors' ceil-mode pools.
    ``numerics``: "authors" (PyTorch ops) or "oldport" (the old MindSpore port's, see above).
    """

    def __init__(self, stages: tuple, in_channels: int = 3, out_channels: int = 1,
                 return_logits: bool = False, numerics: str = "authors"):
        super().__init__()
        self.numerics = check_numerics(numerics)
        if len(stages) != 11:
            raise ValueError(f"U2Net needs 6 encoder + 5 decoder stage specs, got {len(stages)}")
        stages = list(stages)
        name, height, _, mid, out = stages[0]
        stages[0] = (name, height, in_channels, mid, out)
        for name, height, cin, mid, cout in stages:
            setattr(self, name, _rsu(height, cin, mid, cout, numerics))
        self.encoder = tuple(getattr(self, s[0]) for s in stages[:6])
        self.decoder = tuple(getattr(self, s[0]) for s in stages[6:])
        # Side heads read stage1d..stage4d, stage5d and stage6 (in that order: side1..side6).
        side_in = [s[4] for s in reversed(stages[6:])] + [stages[5][4]]
        for i, cin in enumerate(side_in, start=1):
            setattr(self, f"side{i}", conv2d(cin, out_channels, 3, padding=1))
        self.outconv = conv2d(6 * out_channels, out_channels, 1)
        self.sides = tuple(getattr(self, f"side{i}") for i in range(1, 7))
        self.return_logits = return_logits
        self.pool = max_pool_2x2(numerics)
        self.half_pixel = numerics == "authors"
        self.cat = ops.Concat(axis=1)
        self.sigmoid = ops.Sigmoid()

    def construct(self, x):
        feats = ()
        hx = x
        for i in range(6):
            hx = self.encoder[i](hx)
            feats = feats + (hx,)
            if i < 5:
                hx = self.pool(hx)
        hx = feats[5]
        dec = (hx,)  # stage6, stage5d, ..., stage1d
        for j in range(5):
            up = upsample_like(hx, feats[4 - j], False, self.half_pixel)
            hx = self.decoder[j](self.cat((up, feats[4 - j])))
            dec = dec + (hx,)
        d1 = self.sides[0](dec[5])
        maps = (d1,)
        for i in range(1, 6):
            maps = maps + (upsample_like(self.sides[i](dec[5 - i]), d1, False, self.half_pixel),)
        d0 = self.outconv(self.cat(maps))
        out = (d0,) + maps
        if self.return_logits:
            return out
        probs = ()
        for m in out:
            probs = probs + (self.sigmoid(m),)
        return probs


def build_u2net(variant: str = "u2net", in_channels: int = 3, out_channels: int = 1,
                return_logits: bool = False, numerics: str = "authors") -> U2Net:
    """Build ``u2net`` (44.0 M parameters) or ``u2netp`` (1.13 M)."""
    table = {"u2net": U2NET_STAGES, "u2netp": U2NETP_STAGES}
    if variant not in table:
        raise ValueError(f"unknown U-2-Net variant '{variant}', expected one of {sorted(table)}")
    return U2Net(table[variant], in_channels=in_channels, out_channels=out_channels,
                 return_logits=return_logits, numerics=numerics)

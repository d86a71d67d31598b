"""RandAugment with timm's op set and config strings ("rand-m9-mstd0.5-inc1"), written on PIL.

Semantics follow timm's ``auto_augment.rand_augment_transform``: ``n`` ops (default 2) are drawn
with replacement from 15; each is applied with probability ``p`` (0.5) at magnitude ``m`` out of 10,
jittered by N(0, mstd) and clipped to [0, mmax]. ``inc1`` selects the variants whose strength grows
with the magnitude (posterize keeps fewer bits, solarize lowers its threshold, enhance factors move
away from 1). Signed ops (rotate, shear, translate, enhance) get a random sign. Geometric ops fill
with the ImageNet mean colour.
"""
import re

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from .transforms import IMAGENET_MEAN
from .transforms_cls import PIL_INTERPOLATIONS

LEVEL_MAX = 10.0
FILL = tuple(round(255 * m) for m in IMAGENET_MEAN)


def _signed(value, rng):
    return -value if rng.random() < 0.5 else value


def _affine(img, matrix, ctx):
    return img.transform(img.size, Image.AFFINE, matrix, resample=ctx["resample"], fillcolor=FILL)


def _posterize(img, bits):
    # by LUT: Pillow >= 11 rejects bits=0, which timm's increasing posterize reaches at magnitude 10
    # (older Pillow, and timm with it, then returned a black image)
    if bits >= 8:
        return img
    keep = (0xFF << (8 - bits)) & 0xFF
    return img.point([v & keep for v in range(256)] * len(img.getbands()))


def _solarize_add(img, add, threshold=128):
    lut = [min(255, i + add) if i < threshold else i for i in range(256)]
    return img.point(lut * len(img.getbands()))


def _enhance(cls):
    return lambda img, factor, ctx: cls(img).enhance(factor)


# name -> (op(img, arg, ctx), arg(level, rng) or None)
_OPS = {
    "AutoContrast": (lambda img, _, ctx: ImageOps.autocontrast(img), None),
    "Equalize": (lambda img, _, ctx: ImageOps.equalize(img), None),
    "Invert": (lambda img, _, ctx: ImageOps.invert(img), None),
    "Rotate": (lambda img, deg, ctx: img.rotate(deg, resample=ctx["resample"], fillcolor=FILL),
               lambda m, rng: _signed(m / LEVEL_MAX * 30.0, rng)),
    "Posterize": (lambda img, bits, ctx: _posterize(img, bits), lambda m, rng: int(m / LEVEL_MAX * 4)),
    "PosterizeIncreasing": (lambda img, bits, ctx: _posterize(img, bits),
                            lambda m, rng: 4 - int(m / LEVEL_MAX * 4)),
    "Solarize": (lambda img, t, ctx: ImageOps.solarize(img, t), lambda m, rng: int(m / LEVEL_MAX * 256)),
    "SolarizeIncreasing": (lambda img, t, ctx: ImageOps.solarize(img, t),
                           lambda m, rng: 256 - int(m / LEVEL_MAX * 256)),
    "SolarizeAdd": (lambda img, add, ctx: _solarize_add(img, add), lambda m, rng: int(m / LEVEL_MAX * 110)),
    "ShearX": (lambda img, f, ctx: _affine(img, (1, f, 0, 0, 1, 0), ctx),
               lambda m, rng: _signed(m / LEVEL_MAX * 0.3, rng)),
    "ShearY": (lambda img, f, ctx: _affine(img, (1, 0, 0, f, 1, 0), ctx),
               lambda m, rng: _signed(m / LEVEL_MAX * 0.3, rng)),
    "TranslateXRel": (lambda img, pct, ctx: _affine(img, (1, 0, pct * img.size[0], 0, 1, 0), ctx),
                      lambda m, rng: _signed(m / LEVEL_MAX * 0.45, rng)),
    "TranslateYRel": (lambda img, pct, ctx: _affine(img, (1, 0, 0, 0, 1, pct * img.size[1]), ctx),
                      lambda m, rng: _signed(m / LEVEL_MAX * 0.45, rng)),
}
_ENHANCERS = {"Color": ImageEnhance.Color, "Contrast": ImageEnhance.Contrast,
              "Brightness": ImageEnhance.Brightness, "Sharpness": ImageEnhance.Sharpness}
for _name, _cls in _ENHANCERS.items():
    _OPS[_name] = (_enhance(_cls), lambda m, rng: m / LEVEL_MAX * 1.8 + 0.1)
    _OPS[_name + "Increasing"] = (_enhance(_cls), lambda m, rng: 1.0 + _signed(m / LEVEL_MAX * 0.9, rng))

_COMMON = ("AutoContrast", "Equalize", "Invert", "Rotate")
_GEOMETRIC = ("ShearX", "ShearY", "TranslateXRel", "TranslateYRel")
OPS_PLAIN = _COMMON + ("Posterize", "Solarize", "SolarizeAdd", "Color", "Contrast", "Brightness",
                       "Sharpness") + _GEOMETRIC
OPS_INCREASING = _COMMON + ("PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd", "ColorIncreasing",
                            "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing") + _GEOMETRIC


def parse_config(config):
    """Keyword arguments of ``RandAugment`` from a timm string such as "rand-m9-n2-mstd0.5-inc1"."""
    parts = config.split("-")
    if parts[0] != "rand":
        raise ValueError(f"RandAugment config {config!r} must start with 'rand'")
    kwargs = {}
    casts = {"m": ("magnitude", float), "n": ("num_ops", int), "mstd": ("magnitude_std", float),
             "mmax": ("magnitude_max", float), "p": ("prob", float),
             "inc": ("increasing", lambda v: bool(int(v)))}
    for part in parts[1:]:
        match = re.fullmatch(r"([a-z]+)([0-9.]+)", part)
        if match is None or match.group(1) not in casts:
            raise ValueError(f"RandAugment config {config!r}: unknown part {part!r}; expected m<int>, "
                             f"n<int>, mstd<float>, mmax<float>, p<float> or inc<0|1>")
        name, cast = casts[match.group(1)]
        kwargs[name] = cast(match.group(2))
    if kwargs.get("magnitude_std", 0) > 100:  # timm: mstd > 100 means uniform in [0, m]
        kwargs["magnitude_std"] = float("inf")
    return kwargs


class RandAugment:
    """Sample transform on the uint8 RGB "image" (apply before Normalize)."""

    def __init__(self, magnitude=9.0, num_ops=2, magnitude_std=0.0, magnitude_max=LEVEL_MAX, prob=0.5,
                 increasing=False, interpolation="bicubic"):
        self.ops = OPS_INCREASING if increasing else OPS_PLAIN
        self.magnitude, self.num_ops, self.magnitude_std = magnitude, num_ops, magnitude_std
        self.magnitude_max, self.prob = magnitude_max, prob
        self.ctx = {"resample": PIL_INTERPOLATIONS[interpolation]}

    @classmethod
    def from_config(cls, config, interpolation="bicubic"):
        return cls(interpolation=interpolation, **parse_config(config))

    def _level(self, rng):
        m = self.magnitude
        if self.magnitude_std == float("inf"):
            m = rng.uniform(0, m)
        elif self.magnitude_std > 0:
            m = rng.normal(m, self.magnitude_std)
        return min(max(m, 0.0), self.magnitude_max)

    def apply_op(self, img, name, level, rng):
        """One named op at ``level`` (0..10) on a PIL image."""
        op, to_arg = _OPS[name]
        return op(img, to_arg(level, rng) if to_arg else None, self.ctx)

    def __call__(self, sample, rng):
        img = Image.fromarray(sample["image"])
        for index in rng.integers(0, len(self.ops), size=self.num_ops):
            if rng.random() < self.prob:
                img = self.apply_op(img, self.ops[index], self._level(rng), rng)
        out = dict(sample)
        out["image"] = np.asarray(img)
        return out

    def __repr__(self):
        return (f"RandAugment(m={self.magnitude}, n={self.num_ops}, mstd={self.magnitude_std}, "
                f"ops={len(self.ops)})")

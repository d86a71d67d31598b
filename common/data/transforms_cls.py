"""ImageNet classification transforms in the timm / DeiT recipe (as DDRNet was trained).

Resizing here goes through PIL, not OpenCV, on purpose: PIL's bicubic filter widens its support
when shrinking (antialiasing) and the published ImageNet accuracies were measured with it; OpenCV's
INTER_CUBIC does not, which costs accuracy on the 500 px -> 256 px eval resize.
"""
import math

import numpy as np
from PIL import Image

from .transforms import IMAGENET_MEAN, IMAGENET_STD, Compose, Normalize, RandomHorizontalFlip, ToCHW

PIL_INTERPOLATIONS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
                      "lanczos": Image.LANCZOS}


def resize_pil(image, width, height, interpolation="bicubic"):
    if interpolation not in PIL_INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {interpolation!r}; "
                         f"expected one of {', '.join(PIL_INTERPOLATIONS)}")
    return np.asarray(Image.fromarray(image).resize((width, height), PIL_INTERPOLATIONS[interpolation]))


class RandomResizedCrop:
    """Crop a random area fraction in ``scale`` with aspect ratio in ``ratio`` (log-uniform), resize
    to ``size``. Ten tries, then a centre crop clamped to the ratio range (torchvision's rule)."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bicubic"):
        self.size = (size, size) if np.isscalar(size) else tuple(size)
        self.scale, self.ratio, self.interpolation = scale, ratio, interpolation

    def window(self, height, width, rng):
        """(top, left, h, w) of the crop."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, round(width / min(self.ratio))
        elif in_ratio > max(self.ratio):
            h, w = height, round(height * max(self.ratio))
        else:
            h, w = height, width
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, sample, rng):
        top, left, h, w = self.window(*sample["image"].shape[:2], rng)
        out = dict(sample)
        crop = np.ascontiguousarray(sample["image"][top:top + h, left:left + w])
        out["image"] = resize_pil(crop, self.size[1], self.size[0], self.interpolation)
        return out


class ResizeCenterCrop:
    """Eval transform: short side to floor(size / crop_pct) (256 for 224 at 0.875), centre crop ``size``."""

    def __init__(self, size=224, crop_pct=0.875, interpolation="bicubic"):
        self.size, self.crop_pct, self.interpolation = size, crop_pct, interpolation
        self.scale_size = math.floor(size / crop_pct)

    def __call__(self, sample, rng=None):
        image = sample["image"]
        h, w = image.shape[:2]
        # long side truncated, as torchvision's Resize(int) does
        if h <= w:
            nh, nw = self.scale_size, int(self.scale_size * w / h)
        else:
            nh, nw = int(self.scale_size * h / w), self.scale_size
        image = resize_pil(image, nw, nh, self.interpolation)
        top, left = round((nh - self.size) / 2), round((nw - self.size) / 2)
        out = dict(sample)
        out["image"] = np.ascontiguousarray(image[top:top + self.size, left:left + self.size])
        return out


class RandomErasing:
    """timm RandomErasing on a normalised float HWC image: with probability ``p`` erase ``count``
    rectangles of area fraction [min_area, max_area] and log-uniform aspect [min_aspect, 1/min_aspect].

    ``mode``: "pixel" fills with per-pixel N(0, 1) noise, "rand" one N(0, 1) colour, "const" zeros.
    """

    def __init__(self, p=0.25, mode="pixel", min_area=0.02, max_area=1 / 3, min_aspect=0.3, count=1):
        if mode not in ("pixel", "rand", "const"):
            raise ValueError(f"RandomErasing mode {mode!r}: expected 'pixel', 'rand' or 'const'")
        self.p, self.mode, self.min_area, self.max_area, self.count = p, mode, min_area, max_area, count
        self.log_aspect = (math.log(min_aspect), math.log(1 / min_aspect))

    def __call__(self, sample, rng):
        if rng.random() >= self.p:
            return sample
        image = np.array(sample["image"], dtype=np.float32)  # copy: erase in place below
        height, width, channels = image.shape
        area = height * width
        for _ in range(self.count):
            for _attempt in range(10):
                target = rng.uniform(self.min_area, self.max_area) * area / self.count
                aspect = math.exp(rng.uniform(*self.log_aspect))
                h = round(math.sqrt(target * aspect))
                w = round(math.sqrt(target / aspect))
                if w < width and h < height:
                    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
                    shape = {"pixel": (h, w, channels), "rand": (1, 1, channels)}.get(self.mode)
                    image[top:top + h, left:left + w] = rng.standard_normal(shape) if shape else 0.0
                    break
        out = dict(sample)
        out["image"] = image
        return out


def one_hot_smooth(labels, num_classes, smoothing):
    off = smoothing / num_classes
    targets = np.full((len(labels), num_classes), off, dtype=np.float32)
    targets[np.arange(len(labels)), labels] = 1.0 - smoothing + off
    return targets


class MixupCutmix:
    """Batch-level Mixup / CutMix with label smoothing (timm ``Mixup``, mode "batch").

    ``__call__(images (B, C, H, W) float32, labels (B,) int, rng) -> (images, targets (B, K) float32)``.
    With probability ``prob`` the batch is mixed with its reverse: CutMix (chance ``switch_prob``)
    pastes a box of the reversed batch, Mixup blends; lambda ~ Beta(alpha, alpha), and for CutMix it
    is corrected to the pasted area after clipping.
    """

    def __init__(self, num_classes, mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5,
                 label_smoothing=0.1):
        self.num_classes, self.mixup_alpha, self.cutmix_alpha = num_classes, mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob, self.label_smoothing = prob, switch_prob, label_smoothing

    def _lambda(self, rng):
        """(lam, use_cutmix) for one batch."""
        if rng.random() >= self.prob or (self.mixup_alpha <= 0 and self.cutmix_alpha <= 0):
            return 1.0, False
        if self.mixup_alpha > 0 and self.cutmix_alpha > 0:
            use_cutmix = rng.random() < self.switch_prob
        else:
            use_cutmix = self.cutmix_alpha > 0
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        return float(rng.beta(alpha, alpha)), use_cutmix

    def __call__(self, images, labels, rng):
        images = np.array(images, dtype=np.float32)
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        lam, use_cutmix = self._lambda(rng)
        reversed_images = images[::-1].copy()
        if lam < 1.0 and use_cutmix:
            height, width = images.shape[-2:]
            cut = math.sqrt(1 - lam)
            cut_h, cut_w = int(height * cut), int(width * cut)
            cy, cx = int(rng.integers(0, height)), int(rng.integers(0, width))
            y1, y2 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
            x1, x2 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
            images[..., y1:y2, x1:x2] = reversed_images[..., y1:y2, x1:x2]
            lam = 1.0 - (y2 - y1) * (x2 - x1) / float(height * width)
        elif lam < 1.0:
            images = images * lam + reversed_images * (1.0 - lam)
        y1 = one_hot_smooth(labels, self.num_classes, self.label_smoothing)
        y2 = one_hot_smooth(labels[::-1], self.num_classes, self.label_smoothing)
        return images.astype(np.float32), (y1 * lam + y2 * (1.0 - lam)).astype(np.float32)


def imagenet_train_transform(size=224, auto_augment="rand-m9-mstd0.5-inc1", erase_p=0.25,
                             interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                             scale=(0.08, 1.0)):
    """DeiT training chain: RRC (area fraction in ``scale``) -> flip -> RandAugment -> normalise ->
    RandomErasing -> CHW."""
    from .randaugment import RandAugment

    steps = [RandomResizedCrop(size, scale=tuple(scale), interpolation=interpolation), RandomHorizontalFlip()]
    if auto_augment:
        steps.append(RandAugment.from_config(auto_augment, interpolation=interpolation))
    steps.append(Normalize(mean, std))
    if erase_p > 0:
        steps.append(RandomErasing(p=erase_p, mode="pixel"))
    steps.append(ToCHW())
    return Compose(steps)


def imagenet_eval_transform(size=224, crop_pct=0.875, interpolation="bicubic", mean=IMAGENET_MEAN,
                            std=IMAGENET_STD):
    return Compose([ResizeCenterCrop(size, crop_pct, interpolation), Normalize(mean, std), ToCHW()])

"""Sample-dict transforms shared by all tasks (numpy + OpenCV, no framework ops).

A transform is a callable ``t(sample, rng) -> sample``; ``rng`` is a ``numpy.random.Generator`` and
the only source of randomness, so a pipeline replays exactly under the same seed. Keys:

- ``"image"``: HxWxC (uint8 until ``Normalize``, then float32);
- ``"mask"``: dense HxW label map (SOD 0..255 mask or segmentation class ids) - resized with
  nearest neighbour, padded with ``mask_fill`` (255 = ignore for segmentation);
- ``"boxes"``: (N, 4) float32 x1, y1, x2, y2 pixel edges, moved with the image, clipped to it, and
  dropped when empty together with their per-box entries ``"labels"``, ``"difficult"``, ``"iscrowd"``.

Other keys (name, image_id, orig_size, ...) pass through untouched.
"""
import cv2
import numpy as np

MAP_KEYS = ("mask",)
BOX_KEYS = ("labels", "difficult", "iscrowd")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


def _interp(name):
    if name not in INTERPOLATIONS:
        raise ValueError(f"unknown interpolation {name!r}; expected one of {', '.join(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


def _pair(size):
    """(h, w) from an int or a pair."""
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def _fill(value, channels):
    """cv2 border value for an image of ``channels`` channels (cv2 takes at most 4)."""
    values = [float(value)] * channels if np.isscalar(value) else [float(v) for v in value]
    return tuple(values[:4])


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, sample, rng=None):
        # rng=None means unseeded randomness (fine for quick looks; the loader always passes one)
        rng = np.random.default_rng() if rng is None else rng
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def __repr__(self):
        return "Compose(" + ", ".join(map(repr, self.transforms)) + ")"


# ---- geometry helpers -------------------------------------------------------------------------

def _same_geometry(sample, fn):
    """A copy of ``sample`` with ``fn`` (a flip or rotation) applied to the image and every
    dense label map alike, made contiguous."""
    out = dict(sample)
    for key in ("image", *MAP_KEYS):
        if key in sample:
            out[key] = np.ascontiguousarray(fn(sample[key]))
    return out


def filter_boxes(sample, keep):
    """Keep boxes where ``keep`` is True, along with their per-box entries."""
    for key in ("boxes",) + BOX_KEYS:
        if key in sample:
            sample[key] = sample[key][keep]
    return sample


def clip_boxes(sample, width, height):
    """Clip boxes to the image and drop those left with no width or height."""
    if "boxes" not in sample:
        return sample
    boxes = sample["boxes"].copy()
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    sample["boxes"] = boxes
    return filter_boxes(sample, (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))


def resize_sample(sample, height, width, interpolation="bilinear"):
    out = dict(sample)
    h0, w0 = sample["image"].shape[:2]
    out["image"] = cv2.resize(sample["image"], (width, height), interpolation=_interp(interpolation))
    for key in MAP_KEYS:
        if key in sample:
            out[key] = cv2.resize(sample[key], (width, height), interpolation=cv2.INTER_NEAREST)
    if "boxes" in sample:
        out["boxes"] = sample["boxes"] * np.array([width / w0, height / h0] * 2, dtype=np.float32)
    return out


def pad_sample(sample, top, bottom, left, right, image_fill=0, mask_fill=255):
    """Constant padding on each side; boxes shift by (left, top)."""
    out = dict(sample)
    image = sample["image"]
    channels = image.shape[2] if image.ndim == 3 else 1
    out["image"] = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                                      value=_fill(image_fill, channels))
    if image.ndim == 3 and out["image"].ndim == 2:  # cv2 drops a single channel axis
        out["image"] = out["image"][:, :, None]
    for key in MAP_KEYS:
        if key in sample:
            out[key] = cv2.copyMakeBorder(sample[key], top, bottom, left, right, cv2.BORDER_CONSTANT,
                                          value=mask_fill)
    if "boxes" in sample:
        out["boxes"] = sample["boxes"] + np.array([left, top, left, top], dtype=np.float32)
    return out


def crop_sample(sample, top, left, height, width):
    """Crop a window that lies inside the image; boxes are shifted, clipped and filtered."""
    out = dict(sample)  # views, not copies: later steps copy anyway
    out["image"] = sample["image"][top:top + height, left:left + width]
    for key in MAP_KEYS:
        if key in sample:
            out[key] = sample[key][top:top + height, left:left + width]
    if "boxes" in sample:
        out["boxes"] = sample["boxes"] - np.array([left, top, left, top], dtype=np.float32)
        out = clip_boxes(out, width, height)
    return out


# ---- resizing, padding, cropping ------------------------------------------------------------

class Resize:
    """Resize to ``size`` (int or (h, w)).

    ``keep_ratio``: fit inside (h, w) keeping the aspect ratio. ``short_side``: scale so the short
    side equals ``size`` (an int), the long side capped at ``max_size`` when given.
    """

    def __init__(self, size, keep_ratio=False, short_side=False, max_size=None, interpolation="bilinear"):
        if keep_ratio and short_side:
            raise ValueError("Resize: choose keep_ratio or short_side, not both")
        if short_side and not np.isscalar(size):
            raise ValueError(f"Resize(short_side=True) needs an int size, got {size!r}")
        _interp(interpolation)
        self.size, self.keep_ratio, self.short_side = size, keep_ratio, short_side
        self.max_size, self.interpolation = max_size, interpolation

    def output_size(self, height, width):
        if self.short_side:
            scale = self.size / min(height, width)
            if self.max_size is not None:
                scale = min(scale, self.max_size / max(height, width))
        elif self.keep_ratio:
            th, tw = _pair(self.size)
            scale = min(th / height, tw / width)
        else:
            return _pair(self.size)
        return max(1, round(height * scale)), max(1, round(width * scale))

    def __call__(self, sample, rng=None):
        h, w = self.output_size(*sample["image"].shape[:2])
        return resize_sample(sample, h, w, self.interpolation)

    def __repr__(self):
        return f"Resize({self.size}, keep_ratio={self.keep_ratio}, short_side={self.short_side})"


class RandomScale:
    """Scale both sides by one factor drawn uniformly from ``scale_range`` (segmentation recipe)."""

    def __init__(self, scale_range=(0.5, 2.0), interpolation="bilinear"):
        self.scale_range, self.interpolation = tuple(scale_range), interpolation

    def __call__(self, sample, rng):
        s = rng.uniform(*self.scale_range)
        h, w = sample["image"].shape[:2]
        return resize_sample(sample, max(1, round(h * s)), max(1, round(w * s)), self.interpolation)


class PadToSize:
    """Pad bottom/right (or evenly with ``center=True``) up to at least ``size``; never crops."""

    def __init__(self, size, image_fill=0, mask_fill=255, center=False):
        self.size, self.image_fill, self.mask_fill, self.center = _pair(size), image_fill, mask_fill, center

    def __call__(self, sample, rng=None):
        h, w = sample["image"].shape[:2]
        ph, pw = max(self.size[0] - h, 0), max(self.size[1] - w, 0)
        if ph == 0 and pw == 0:
            return sample
        top, left = (ph // 2, pw // 2) if self.center else (0, 0)
        return pad_sample(sample, top, ph - top, left, pw - left, self.image_fill, self.mask_fill)


class RandomCrop:
    """Random ``size`` window; smaller images are first padded bottom/right, the mask with
    ``mask_fill`` (255 = ignore for class maps; pass 0 for SOD masks, where 255 means "object")."""

    def __init__(self, size, image_fill=0, mask_fill=255):
        self.size = _pair(size)
        self.pad = PadToSize(size, image_fill, mask_fill)

    def __call__(self, sample, rng):
        sample = self.pad(sample)
        h, w = sample["image"].shape[:2]
        ch, cw = self.size
        top, left = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        return crop_sample(sample, int(top), int(left), ch, cw)


class CenterCrop:
    """Central ``size`` window (rounding like torchvision); the image must be at least that big."""

    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, sample, rng=None):
        h, w = sample["image"].shape[:2]
        ch, cw = self.size
        if ch > h or cw > w:
            raise ValueError(f"CenterCrop{self.size}: image is only {h}x{w}")
        return crop_sample(sample, round((h - ch) / 2), round((w - cw) / 2), ch, cw)


# ---- flips and rotations ----------------------------------------------------------------------

def _flip(sample, axis):
    out = _same_geometry(sample, lambda a: np.flip(a, axis))
    if "boxes" in sample:
        size = sample["image"].shape[axis]  # width for a horizontal flip (axis 1), else height
        b = sample["boxes"]
        lo, hi = (0, 2) if axis == 1 else (1, 3)
        flipped = b.copy()
        flipped[:, lo], flipped[:, hi] = size - b[:, hi], size - b[:, lo]
        out["boxes"] = flipped
    return out


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, sample, rng):
        return _flip(sample, 1) if rng.random() < self.p else sample


class RandomVerticalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, sample, rng):
        return _flip(sample, 0) if rng.random() < self.p else sample


def rotate90(sample, k):
    """Rotate by k x 90 degrees counter-clockwise (as ``np.rot90``)."""
    k %= 4
    out = _same_geometry(sample, lambda a: np.rot90(a, k))
    if "boxes" in sample:
        boxes = sample["boxes"]
        h, w = sample["image"].shape[:2]
        for _ in range(k):  # one CCW quarter turn: (x, y) -> (y, w - x); width and height swap
            boxes = np.stack([boxes[:, 1], w - boxes[:, 2], boxes[:, 3], w - boxes[:, 0]], axis=1)
            h, w = w, h
        out["boxes"] = boxes.astype(np.float32)
    return out


class RandomRotation90:
    """Rotate by 0, 90, 180 or 270 degrees, each equally likely (the old U-2-Net port's augmentation)."""

    def __call__(self, sample, rng):
        return rotate90(sample, int(rng.integers(0, 4)))


class RandomRotation:
    """Rotate by an angle drawn from ``degrees`` (a bound d means [-d, d]); positive = counter-clockwise.

    The canvas keeps its size; uncovered pixels get ``image_fill`` / ``mask_fill``. Boxes become the
    enclosing box of their rotated corners, clipped to the image.
    """

    def __init__(self, degrees=10.0, p=1.0, image_fill=0, mask_fill=255, interpolation="bilinear"):
        self.degrees = (-float(degrees), float(degrees)) if np.isscalar(degrees) else tuple(degrees)
        self.p, self.image_fill, self.mask_fill = p, image_fill, mask_fill
        self.interpolation = _interp(interpolation)

    def __call__(self, sample, rng):
        if rng.random() >= self.p:
            return sample
        angle = rng.uniform(*self.degrees)
        image = sample["image"]
        h, w = image.shape[:2]
        # cv2 rotates pixel centres, whose image centre is ((w-1)/2, (h-1)/2)
        matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
        out = dict(sample)
        channels = image.shape[2] if image.ndim == 3 else 1
        out["image"] = cv2.warpAffine(image, matrix, (w, h), flags=self.interpolation,
                                      borderMode=cv2.BORDER_CONSTANT,
                                      borderValue=_fill(self.image_fill, channels))
        for key in MAP_KEYS:
            if key in sample:
                out[key] = cv2.warpAffine(sample[key], matrix, (w, h), flags=cv2.INTER_NEAREST,
                                          borderMode=cv2.BORDER_CONSTANT, borderValue=self.mask_fill)
        if "boxes" in sample:
            # box edges rotate about (w/2, h/2): the same rotation shifted by half a pixel
            b = sample["boxes"]
            corners = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [0, 3]], b[:, [2, 3]]], axis=1)
            rot = matrix[:, :2]
            centre = np.array([w / 2, h / 2])
            moved = (corners - centre) @ rot.T + centre
            out["boxes"] = np.concatenate([moved.min(axis=1), moved.max(axis=1)], axis=1).astype(np.float32)
            out = clip_boxes(out, w, h)
        return out


# ---- value transforms -------------------------------------------------------------------------

class Normalize:
    """float32 ``(image / scale - mean) / std`` per channel.

    ``divide_by_max=True`` divides by the image's own maximum instead of ``scale`` (U-2-Net's test
    preprocessing: ``image / np.max(image)``). For Caffe-style mean subtraction use scale=1 and
    mean in pixel units with std=1.
    """

    def __init__(self, mean=IMAGENET_MEAN, std=IMAGENET_STD, scale=255.0, divide_by_max=False):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.scale, self.divide_by_max = float(scale), divide_by_max

    def __call__(self, sample, rng=None):
        image = sample["image"].astype(np.float32)
        denom = float(image.max()) if self.divide_by_max else self.scale
        denom = denom if denom > 0 else 1.0
        # one multiply-add in place: 1.5x faster than the textbook expression on 513x513 crops
        image *= 1.0 / (denom * self.std)
        image -= self.mean / self.std
        out = dict(sample)
        out["image"] = image
        return out


class MaskToUnit:
    """0..255 saliency mask -> (1, H, W) float32 in [0, 1] (the SOD training target)."""

    def __call__(self, sample, rng=None):
        out = dict(sample)
        out["mask"] = (sample["mask"].astype(np.float32) / 255.0)[None]
        return out


class ToCHW:
    """HWC -> CHW (contiguous) for the listed keys."""

    def __init__(self, keys=("image",)):
        self.keys = tuple(keys)

    def __call__(self, sample, rng=None):
        out = dict(sample)
        for key in self.keys:
            out[key] = np.ascontiguousarray(np.transpose(sample[key], (2, 0, 1)))
        return out

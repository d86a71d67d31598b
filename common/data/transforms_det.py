"""SSD / RefineDet training augmentation: photometric distortion, expand (zoom out), min-IoU crop.

Follows the Caffe SSD ``distort_param`` / ``expand_param`` / ``batch_sampler`` that RefineDet's
own prototxts use. Then resize to the fixed input with ``transforms.Resize((320, 320))``.
"""
import cv2
import numpy as np

from .transforms import crop_sample, filter_boxes, pad_sample

# ImageNet mean in 0..255 units: the fill the SSD family uses for expanded canvases
PIXEL_MEAN = (123.675, 116.28, 103.53)


class PhotometricDistort:
    """Random brightness, contrast, saturation and hue, each applied with probability ``p``.

    Contrast comes either first or last (coin flip), as in SSD. Works in float32 on RGB uint8
    input; the result is clipped back to uint8 so later geometric ops stay cheap.
    """

    def __init__(self, brightness_delta=32, contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5),
                 hue_delta=18, p=0.5, channel_swap_p=0.0):
        self.brightness_delta = brightness_delta
        self.contrast_range, self.saturation_range = contrast_range, saturation_range
        self.hue_delta, self.p, self.channel_swap_p = hue_delta, p, channel_swap_p

    def _contrast(self, image, rng):
        if rng.random() < self.p:
            image *= rng.uniform(*self.contrast_range)
        return image

    def __call__(self, sample, rng):
        image = sample["image"].astype(np.float32)
        if rng.random() < self.p:
            image += rng.uniform(-self.brightness_delta, self.brightness_delta)
        contrast_first = rng.random() < 0.5
        if contrast_first:
            image = self._contrast(image, rng)
        do_sat, do_hue = rng.random() < self.p, rng.random() < self.p
        if do_sat or do_hue:
            hsv = cv2.cvtColor(np.clip(image, 0, 255) / 255.0, cv2.COLOR_RGB2HSV)  # H in degrees
            if do_sat:
                hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*self.saturation_range), 0, 1)
            if do_hue:
                hsv[..., 0] = (hsv[..., 0] + rng.uniform(-self.hue_delta, self.hue_delta)) % 360
            image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
        if not contrast_first:
            image = self._contrast(image, rng)
        if self.channel_swap_p and rng.random() < self.channel_swap_p:
            image = image[..., rng.permutation(3)]
        out = dict(sample)
        out["image"] = np.clip(image, 0, 255).astype(np.uint8)
        return out


class Expand:
    """With probability ``p``, place the image at a random spot of a canvas ``r`` times larger
    (r uniform in ``ratio_range``) filled with ``mean`` - shrinks objects for small-object training."""

    def __init__(self, mean=PIXEL_MEAN, ratio_range=(1.0, 4.0), p=0.5, mask_fill=255):
        self.mean, self.ratio_range, self.p, self.mask_fill = mean, ratio_range, p, mask_fill

    def __call__(self, sample, rng):
        if rng.random() >= self.p:
            return sample
        h, w = sample["image"].shape[:2]
        ratio = rng.uniform(*self.ratio_range)
        out_h, out_w = int(h * ratio), int(w * ratio)
        top, left = int(rng.integers(0, out_h - h + 1)), int(rng.integers(0, out_w - w + 1))
        return pad_sample(sample, top, out_h - h - top, left, out_w - w - left, self.mean, self.mask_fill)


def box_iou(boxes, window):
    """IoU of each box (N, 4) with one window (4,)."""
    ix1, iy1 = np.maximum(boxes[:, 0], window[0]), np.maximum(boxes[:, 1], window[1])
    ix2, iy2 = np.minimum(boxes[:, 2], window[2]), np.minimum(boxes[:, 3], window[3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    win_area = (window[2] - window[0]) * (window[3] - window[1])
    return inter / np.maximum(area + win_area - inter, 1e-9)


class MinIoURandomCrop:
    """SSD's patch sampling.

    Pick one option uniformly: keep the whole image, or a crop whose IoU with at least one box is
    >= each of ``min_ious``, or any crop (min IoU 0). A crop has sides in [min_crop_size, 1] of the
    image and aspect ratio within ``aspect_range``; boxes whose centres fall outside are dropped and
    the rest clipped. After ``max_trials`` failures the image is kept whole (it always satisfies).
    """

    def __init__(self, min_ious=(0.1, 0.3, 0.5, 0.7, 0.9), min_crop_size=0.3, aspect_range=(0.5, 2.0),
                 max_trials=50):
        self.options = (None,) + tuple(min_ious) + (0.0,)
        self.min_crop_size, self.aspect_range, self.max_trials = min_crop_size, aspect_range, max_trials

    def __call__(self, sample, rng):
        min_iou = self.options[int(rng.integers(0, len(self.options)))]
        boxes = sample.get("boxes")
        if min_iou is None or boxes is None or len(boxes) == 0:
            return sample
        h, w = sample["image"].shape[:2]
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        for _ in range(self.max_trials):
            cw = rng.uniform(self.min_crop_size * w, w)
            ch = rng.uniform(self.min_crop_size * h, h)
            if not self.aspect_range[0] <= ch / cw <= self.aspect_range[1]:
                continue
            left, top = int(rng.uniform(0, w - cw)), int(rng.uniform(0, h - ch))
            window = np.array([left, top, left + int(cw), top + int(ch)], dtype=np.float32)
            if window[2] <= window[0] or window[3] <= window[1]:
                continue
            if box_iou(boxes, window).max() < min_iou:
                continue
            inside = ((centres[:, 0] > window[0]) & (centres[:, 0] < window[2])
                      & (centres[:, 1] > window[1]) & (centres[:, 1] < window[3]))
            if not inside.any():
                continue
            kept = filter_boxes(dict(sample), inside)
            return crop_sample(kept, top, left, int(window[3] - top), int(window[2] - left))
        return sample


"""Default boxes (priors) of SSD-style detectors, in RefineDet's layout.

Order as the authors' ``PriorBox``: level by level, rows then columns of each feature map, then
the boxes of one location (1:1, then for each aspect ratio r the pair sqrt(r):1/sqrt(r) and
1/sqrt(r):sqrt(r)). Boxes are (cx, cy, w, h) normalised by the image width / height (Caffe's
``PriorBox`` convention, which also covers non-square inputs).
"""
import math

import numpy as np

# Rounding of each stride-2 step of RefineDet's VGG-16: pool1, pool2 floor, pool3 ceil,
# pool4, pool5 floor, then the 3x3 / 2 / pad 1 conv of the extra layer (= ceil).
VGG16_REFINEDET_ROUNDING = ("floor", "floor", "ceil", "floor", "floor", "ceil")


def _size_pair(image_size):
    if isinstance(image_size, (int, np.integer)):
        return int(image_size), int(image_size)
    height, width = (int(v) for v in image_size)
    return height, width


def downsampled_size(size, step, rounding=VGG16_REFINEDET_ROUNDING):
    """Feature-map length after ``log2(step)`` stride-2 steps, each rounded as ``rounding`` says."""
    halvings = round(math.log2(step))
    if 2 ** halvings != step or halvings > len(rounding):
        raise ValueError(f"step {step} must be a power of 2 up to 2**{len(rounding)} for rounding {rounding}")
    for mode in rounding[:halvings]:
        size = -(-size // 2) if mode == "ceil" else size // 2
    return size


class AnchorGenerator:
    """Default boxes for every level: one square box of ``sizes[k]`` pixels plus two boxes per
    aspect ratio at each location of level k (stride ``steps[k]``); no SSD "max size" box.

    ``rounding`` describes how the backbone shrinks the input (per stride-2 step, ``"floor"`` or
    ``"ceil"``), so the feature-map sizes equal the network's for any input size; the default is
    RefineDet's VGG-16 (320 -> 40, 20, 10, 5; 512 -> 64, 32, 16, 8).
    """

    def __init__(self, sizes=(32, 64, 128, 256), steps=(8, 16, 32, 64), aspect_ratios=(2,), clip=True,
                 rounding=VGG16_REFINEDET_ROUNDING):
        if len(sizes) != len(steps):
            raise ValueError(f"sizes {sizes} and steps {steps} must have one entry per level")
        if any(r <= 0 for r in aspect_ratios):
            raise ValueError(f"aspect_ratios {aspect_ratios} must be positive")
        self.sizes, self.steps = tuple(sizes), tuple(steps)
        self.aspect_ratios, self.clip, self.rounding = tuple(aspect_ratios), clip, tuple(rounding)

    def num_anchors_per_location(self):
        return 1 + 2 * len(self.aspect_ratios)

    def feature_map_sizes(self, image_size):
        """[(rows, cols)] per level for an input of ``image_size`` (int or (height, width))."""
        height, width = _size_pair(image_size)
        return [(downsampled_size(height, s, self.rounding), downsampled_size(width, s, self.rounding))
                for s in self.steps]

    def _shapes(self, size):
        shapes = [(size, size)]
        for r in self.aspect_ratios:
            shapes += [(size * math.sqrt(r), size / math.sqrt(r)), (size / math.sqrt(r), size * math.sqrt(r))]
        return np.array(shapes, np.float64)  # (K, 2) as (w, h) in pixels

    def generate(self, image_size, feature_map_sizes=None):
        """(A, 4) float32 (cx, cy, w, h) normalised to [0, 1] (clipped in that form when ``clip``).

        ``feature_map_sizes`` overrides the sizes derived from ``rounding``.
        """
        height, width = _size_pair(image_size)
        maps = feature_map_sizes or self.feature_map_sizes((height, width))
        if len(maps) != len(self.steps):
            raise ValueError(f"feature_map_sizes {maps} must have {len(self.steps)} levels")
        levels = []
        for (rows, cols), step, size in zip(maps, self.steps, self.sizes):
            cy, cx = np.meshgrid((np.arange(rows) + 0.5) * step / height,
                                 (np.arange(cols) + 0.5) * step / width, indexing="ij")
            wh = self._shapes(size) / (width, height)
            k = len(wh)
            boxes = np.empty((rows, cols, k, 4), np.float64)
            boxes[..., 0] = cx[:, :, None]
            boxes[..., 1] = cy[:, :, None]
            boxes[..., 2:] = wh[None, None]
            levels.append(boxes.reshape(-1, 4))
        anchors = np.concatenate(levels, axis=0)
        if self.clip:
            anchors = np.clip(anchors, 0.0, 1.0)
        return anchors.astype(np.float32)

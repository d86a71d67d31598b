"""Drawing primitives for the synthetic datasets: textured backgrounds and filled shapes whose
masks are exact (the image pixels of an object are set through its own mask, no antialiasing)."""
import colorsys

import cv2
import numpy as np

SHAPE_KINDS = ("ellipse", "rectangle", "triangle", "star")


def background(rng, height, width, muted=True):
    """Smooth random colour field plus fine noise; ``muted`` keeps it greyish so objects stand out."""
    coarse = rng.uniform(0, 255, size=(height // 32 + 2, width // 32 + 2, 3)).astype(np.float32)
    if muted:
        coarse = 0.35 * coarse + 0.65 * coarse.mean(axis=2, keepdims=True)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    field += 10.0 * rng.standard_normal((height, width, 1), dtype=np.float32)
    return np.clip(field, 0, 255).astype(np.uint8)


def class_look(k):
    """(shape kind, RGB colour) of class ``k``: the shape cycles with k, the hue steps by the golden
    ratio, so any two classes differ in shape or clearly in colour."""
    hue = (k * 0.618034) % 1.0
    value = 1.0 if (k // len(SHAPE_KINDS)) % 2 == 0 else 0.7
    rgb = colorsys.hsv_to_rgb(hue, 0.9, value)
    return SHAPE_KINDS[k % len(SHAPE_KINDS)], tuple(int(255 * c) for c in rgb)


def shape_polygon(rng, kind, cx, cy, radius):
    """(K, 2) int32 vertices of a ``kind`` shape of roughly ``radius`` around (cx, cy)."""
    angle = rng.uniform(0, 360)
    if kind == "ellipse":
        axes = (int(radius), max(2, int(radius * rng.uniform(0.5, 1.0))))
        return cv2.ellipse2Poly((int(cx), int(cy)), axes, int(angle), 0, 360, 10).astype(np.int32)
    if kind == "rectangle":
        size = (2 * radius, 2 * radius * rng.uniform(0.45, 0.9))
        return np.round(cv2.boxPoints(((cx, cy), size, angle))).astype(np.int32)
    if kind == "triangle":
        t = np.deg2rad(angle + np.array([0, 120, 240]))
    elif kind == "star":
        t = np.deg2rad(angle + np.arange(10) * 36)
    else:
        raise ValueError(f"unknown shape kind {kind!r}; expected one of {', '.join(SHAPE_KINDS)}")
    r = np.full(len(t), radius) if kind == "triangle" else np.where(np.arange(10) % 2, radius * 0.45, radius)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1).round().astype(np.int32)


def polygon_mask(points, height, width):
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(mask, [points], 1, lineType=cv2.LINE_8)
    return mask.astype(bool)


def paint(image, mask, colour, rng, texture=12):
    """Fill ``mask`` with ``colour`` plus a little noise so objects are not perfectly flat."""
    noise = texture * rng.standard_normal((int(np.count_nonzero(mask)), 3), dtype=np.float32)
    image[mask] = np.clip(np.asarray(colour, dtype=np.float32) + noise, 0, 255).astype(np.uint8)


def place_shapes(rng, height, width, count, radius_range, margin=4, max_tries=50):
    """Up to ``count`` (cx, cy, radius) whose bounding squares neither overlap nor leave the image."""
    placed = []
    for _ in range(count):
        for _try in range(max_tries):
            r = rng.uniform(*radius_range) * min(height, width)
            if 2 * (r + margin) >= min(height, width):
                continue
            cx = rng.uniform(r + margin, width - r - margin)
            cy = rng.uniform(r + margin, height - r - margin)
            if all(abs(cx - x) > r + q + margin or abs(cy - y) > r + q + margin for x, y, q in placed):
                placed.append((cx, cy, r))
                break
    return placed


def image_size(rng, size):
    """(height, width): height = size, width varies +-25 % (even), like real photo collections."""
    return size, round(size * rng.uniform(0.75, 1.33) / 2) * 2

"""Decoding and listing helpers shared by all readers.

Images are decoded with OpenCV (fast, handles JPEG/PNG/BMP/WebP) and returned RGB; label maps are
decoded with PIL because OpenCV would expand a palette PNG to colours instead of class indices.
"""
import functools
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DatasetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def read_image(path):
    """RGB uint8 HxWx3 array of the image file at ``path``."""
    path = os.fspath(path)
    data = np.fromfile(path, dtype=np.uint8) if os.path.isfile(path) else None
    if data is None:
        raise DatasetError(f"image file not found: {path}")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DatasetError(f"cannot decode image file {path}: expected a readable JPEG/PNG/BMP image "
                           f"(file is corrupt or in an unsupported format)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label_map(path, grayscale_rgb=False):
    """HxW uint8 array of a label map.

    Palette ("P") PNGs give their palette indices (VOC class ids, 255 = ignore) and grayscale PNGs
    their values. RGB masks (some SOD datasets store them so) are accepted only with
    ``grayscale_rgb=True`` and converted to grayscale; for class maps an RGB file is an error,
    because its colours are not class ids.
    """
    path = os.fspath(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("P", "L"):
                arr = np.array(img)
            elif mode in ("1", "I;16", "I", "F") or (grayscale_rgb and mode in ("RGB", "RGBA", "LA")):
                arr = np.array(img.convert("L"))
            else:
                raise DatasetError(f"label map {path} has mode {mode}: expected a palette (P) or "
                                   f"grayscale (L) PNG holding class indices")
    except FileNotFoundError:
        raise DatasetError(f"label file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DatasetError(f"cannot decode label file {path}: {exc}") from None
    return arr.astype(np.uint8, copy=False)


def check_same_size(image, label, image_path, label_path):
    if image.shape[:2] != label.shape[:2]:
        raise DatasetError(f"size mismatch: image {image_path} is {image.shape[1]}x{image.shape[0]} "
                           f"(WxH) but its label {label_path} is {label.shape[1]}x{label.shape[0]}; "
                           f"expected equal sizes")


def list_images(folder, extensions=IMAGE_EXTENSIONS):
    """Sorted image files directly inside ``folder`` (extension match is case-insensitive)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions)
    return files


def preview(names, limit=5):
    """'a, b, c, ... (N in total)' for error messages about sets of files."""
    names = sorted(str(n) for n in names)
    shown = ", ".join(names[:limit])
    more = ", ..." if len(names) > limit else ""
    return f"{shown}{more} ({len(names)} in total)"


@functools.cache
def _flat_palette():
    return voc_palette().reshape(-1).tolist()


def voc_palette(num_colors=256):
    """The PASCAL VOC colour map: class c gets colour bits from the bits of c, MSB first."""
    palette = np.zeros((num_colors, 3), dtype=np.uint8)
    for c in range(num_colors):
        r = g = b = 0
        label = c
        for shift in range(7, -1, -1):
            r |= ((label >> 0) & 1) << shift
            g |= ((label >> 1) & 1) << shift
            b |= ((label >> 2) & 1) << shift
            label >>= 3
        palette[c] = (r, g, b)
    return palette


def write_palette_png(path, label_map):
    """Save an HxW uint8 class map as a palette PNG with the VOC colour map (like VOC's own files)."""
    label_map = np.ascontiguousarray(label_map, dtype=np.uint8)
    img = Image.frombytes("P", (label_map.shape[1], label_map.shape[0]), label_map.tobytes())
    img.putpalette(_flat_palette())
    img.save(os.fspath(path))

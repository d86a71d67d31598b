"""Salient object detection datasets: a folder of images and a folder of 0/255 masks paired by stem.

Works for DUTS (``DUTS-TR/DUTS-TR-Image`` + ``DUTS-TR-Mask``), ECSSD, HKU-IS, DUT-OMRON, PASCAL-S
and the ``images/`` + ``masks/`` layout that ``common.data.synthetic`` writes.
"""
from pathlib import Path

from .errors import DatasetError
from .image_io import check_same_size, list_images, preview, read_image, read_label_map

IMAGE_DIR_NAMES = ("images", "imgs", "image", "Image", "Imgs", "im")
MASK_DIR_NAMES = ("masks", "gts", "gt", "labels", "GT", "mask", "Mask", "ground_truth_mask",
                  "pixelwiseGT-new-PNG")
_IMAGE_SUFFIXES = ("-Image", "_Image", "-Images", "-image")
_MASK_SUFFIXES = ("-Mask", "_Mask", "-Masks", "-GT", "_GT")


def _find_subdir(root, names, suffixes):
    children = [p for p in root.iterdir() if p.is_dir()]
    for name in names:
        for child in children:
            if child.name == name:
                return child
    for child in sorted(children):
        if child.name.endswith(suffixes):
            return child
    return None


def _by_stem(paths):
    by_stem = {}
    for p in paths:
        if p.stem in by_stem:  # a.jpg + a.png: pairing by stem would be ambiguous
            raise DatasetError(f"two files share the stem {p.stem!r}: {by_stem[p.stem]} and {p}")
        by_stem[p.stem] = p
    return by_stem


def resolve_sod_dirs(root):
    """(image_dir, mask_dir or None) of a dataset root such as ``DUTS-TR`` or ``ECSSD``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"SOD dataset folder not found: {root}")
    image_dir = _find_subdir(root, IMAGE_DIR_NAMES, _IMAGE_SUFFIXES)
    if image_dir is None:
        return root, None  # a plain folder of images
    return image_dir, _find_subdir(root, MASK_DIR_NAMES, _MASK_SUFFIXES)


class SODDataset:
    """Random-access SOD source: ``{"image": HxWx3 uint8, "mask": HxW uint8 0..255, "name": stem}``.

    ``image_dir`` is either the image folder (then give ``mask_dir``) or a dataset root holding an
    image folder (``images``, ``*-Image``) and a mask folder (``masks``, ``gts``, ``labels``, ``GT``,
    ``*-Mask``). With ``require_masks=False`` a missing mask folder is allowed (prediction only) and
    samples carry no "mask".
    """

    def __init__(self, image_dir, mask_dir=None, require_masks=True):
        root = Path(image_dir)
        if mask_dir is None:
            image_dir, mask_dir = resolve_sod_dirs(root)
        elif not Path(mask_dir).is_dir():
            raise DatasetError(f"SOD mask folder not found: {mask_dir}")
        if mask_dir is None and require_masks:
            raise DatasetError(
                f"no mask folder found in {root}: "
                f"expected a sub-folder named one of {', '.join(MASK_DIR_NAMES)} or ending in "
                f"{'/'.join(_MASK_SUFFIXES)} (or pass mask_dir, or require_masks=False for prediction)")
        images = _by_stem(list_images(image_dir))
        if not images:
            raise DatasetError(f"no images (*.jpg, *.png, ...) found in {image_dir}")
        self.image_dir = Path(image_dir)
        self.mask_dir = Path(mask_dir) if mask_dir is not None else None
        self.names = sorted(images)
        self.image_paths = [images[n] for n in self.names]
        self.mask_paths = None
        if self.mask_dir is not None:
            masks = _by_stem(list_images(self.mask_dir))
            self._check_pairing(images, masks)
            self.mask_paths = [masks[n] for n in self.names]

    def _check_pairing(self, images, masks):
        if not masks:
            raise DatasetError(f"no mask files (*.png, ...) found in {self.mask_dir}")
        no_mask = set(images) - set(masks)
        no_image = set(masks) - set(images)
        problems = []
        if no_mask:
            problems.append(f"images in {self.image_dir} without a mask in {self.mask_dir}: "
                            f"{preview(no_mask)}")
        if no_image:
            problems.append(f"masks in {self.mask_dir} without an image in {self.image_dir}: "
                            f"{preview(no_image)}")
        if problems:
            raise DatasetError("SOD images and masks must pair up by file stem; " + "; ".join(problems))

    def __len__(self):
        return len(self.names)

    def __getitem__(self, index):
        image = read_image(self.image_paths[index])
        sample = {"image": image, "name": self.names[index]}
        if self.mask_paths is not None:
            mask_path = self.mask_paths[index]
            mask = read_label_map(mask_path, grayscale_rgb=True)
            check_same_size(image, mask, self.image_paths[index], mask_path)
            sample["mask"] = mask
        return sample

    def __repr__(self):
        return f"SODDataset({self.image_dir}, masks={self.mask_dir}, n={len(self)})"


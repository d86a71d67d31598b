"""PASCAL VOC semantic segmentation: image + palette PNG of class indices (0 = background, 255 = ignore)."""
from pathlib import Path

from .errors import DatasetError
from .image_io import check_same_size, preview, read_image, read_label_map

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
    "tvmonitor",
)
VOC_SEG_CLASSES = ("background",) + VOC_CLASSES  # 21 classes, index = value in the PNG
IGNORE_INDEX = 255


def read_list_file(list_file):
    """Non-empty, stripped lines of a list file; DatasetError when it is missing or empty."""
    path = Path(list_file)
    if not path.is_file():
        raise DatasetError(f"list file not found: {path}")
    lines = [line.strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    if not lines:
        raise DatasetError(f"list file {path} is empty: expected one sample per line")
    return lines


def parse_seg_list(root, list_file):
    """[(image_path, label_path)] from lines "image_rel label_rel" or "id" (VOC layout).

    Every listed file must exist (DatasetError naming the first few missing otherwise).
    """
    root = Path(root)
    pairs = []
    for number, line in enumerate(read_list_file(list_file), 1):
        fields = line.split()
        if len(fields) == 1:
            pairs.append((root / "JPEGImages" / f"{fields[0]}.jpg",
                          root / "SegmentationClass" / f"{fields[0]}.png"))
        elif len(fields) == 2:
            # lstrip("/") keeps DeepLab-style lists ("/JPEGImages/x.jpg ...") relative to root;
            # absolute paths to existing files (e.g. converted SBD labels) are kept as they are.
            pairs.append(tuple(Path(f) if Path(f).is_absolute() and Path(f).is_file()
                               else root / f.lstrip("/") for f in fields))
        else:
            raise DatasetError(f"{list_file}:{number}: expected 'image_path label_path' or an image id, "
                               f"got {line!r}")
    missing = [str(p) for pair in pairs for p in pair if not p.is_file()]
    if missing:
        raise DatasetError(f"files listed in {list_file} do not exist: {preview(missing, 3)}")
    return pairs


class VOCSegDataset:
    """Random-access VOC segmentation source: ``{"image", "mask": HxW uint8 class ids, "name"}``.

    ``list_file`` lines are "JPEGImages/x.jpg SegmentationClass/x.png" (relative to ``root``) or a
    bare id. The mask keeps 255 (object borders / "void") so losses and mIoU can ignore it.
    """

    def __init__(self, root, list_file):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"VOC root folder not found: {self.root}")
        self.pairs = parse_seg_list(self.root, list_file)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        image_path, label_path = self.pairs[index]
        image = read_image(image_path)
        mask = read_label_map(label_path)
        check_same_size(image, mask, image_path, label_path)
        return {"image": image, "mask": mask, "name": image_path.stem}

    def __repr__(self):
        return f"VOCSegDataset({self.root}, n={len(self)})"

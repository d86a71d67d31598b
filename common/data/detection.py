"""Detection readers: COCO json, VOC XML, and "path x1,y1,x2,y2,cls ..." text lists.

Every sample is ``{"image": HxWx3 uint8, "boxes": (N, 4) float32, "labels": (N,) int32,
"difficult", "iscrowd": (N,) bool, "image_id": int64, "orig_size": (2,) int32 [h, w]}``.
Boxes are x1, y1, x2, y2 edges in pixels (a box over pixel columns 0..9 is x1=0, x2=10), labels are
1..K with 0 reserved for background.
"""
import contextlib
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .errors import DatasetError
from .image_io import preview, read_image
from .voc_seg import VOC_CLASSES, read_list_file


def _sample(image, boxes, labels, image_id, difficult=None, iscrowd=None):
    # Both flags are always present (all False where a format has no such notion), so one column
    # list serves every format.
    labels = np.asarray(labels, dtype=np.int32).reshape(-1)
    no_flags = np.zeros(len(labels), dtype=bool)
    return {
        "image": image,
        "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "labels": labels,
        "difficult": no_flags if difficult is None else np.asarray(difficult, dtype=bool).reshape(-1),
        "iscrowd": no_flags.copy() if iscrowd is None else np.asarray(iscrowd, dtype=bool).reshape(-1),
        "image_id": np.int64(image_id),
        "orig_size": np.array(image.shape[:2], dtype=np.int32),
    }


class CocoDetection:
    """COCO instances json via pycocotools.

    Labels are contiguous 1..K in sorted category-id order; ``cat_ids[label - 1]`` is the COCO id
    (needed to write results for COCOeval). Crowd regions stay in the sample with ``iscrowd=True``
    so training can ignore them. Boxes with no area are dropped. With ``skip_empty=False``
    (default) images without annotations are kept, as COCO evaluation counts every image.
    """

    def __init__(self, image_dir, ann_file, skip_empty=False):
        from pycocotools.coco import COCO

        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise DatasetError(f"COCO image folder not found: {self.image_dir}")
        if not Path(ann_file).is_file():
            raise DatasetError(f"COCO annotation file not found: {ann_file}")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
                self.coco = COCO(str(ann_file))
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"cannot read COCO annotations {ann_file}: {exc!r}") from None
        self.cat_ids = sorted(self.coco.getCatIds())
        if not self.cat_ids:
            raise DatasetError(f"{ann_file} has no categories")
        self.label_of_cat = {cid: i + 1 for i, cid in enumerate(self.cat_ids)}
        self.class_names = [self.coco.cats[c]["name"] for c in self.cat_ids]
        ids = sorted(self.coco.getImgIds())
        if skip_empty:
            ids = [i for i in ids if self.coco.getAnnIds(imgIds=i)]
        if not ids:
            raise DatasetError(f"{ann_file} lists no images")
        self.image_ids = ids
        missing = [self.coco.imgs[i]["file_name"] for i in ids
                   if not (self.image_dir / self.coco.imgs[i]["file_name"]).is_file()]
        if missing:
            raise DatasetError(f"images listed in {ann_file} are missing from {self.image_dir}: "
                               f"{preview(missing)}")

    def __len__(self):
        return len(self.image_ids)

    def annotations(self, index):
        """(boxes, labels, iscrowd) of image ``index`` without decoding the image."""
        anns = self.coco.imgToAnns.get(self.image_ids[index], [])
        boxes, labels, crowd = [], [], []
        for ann in anns:
            x, y, w, h = ann["bbox"]
            if w <= 0 or h <= 0:
                continue
            boxes.append((x, y, x + w, y + h))
            labels.append(self.label_of_cat[ann["category_id"]])
            crowd.append(bool(ann.get("iscrowd", 0)))
        return boxes, labels, crowd

    def image_path(self, index):
        return self.image_dir / self.coco.imgs[self.image_ids[index]]["file_name"]

    def __getitem__(self, index):
        info = self.coco.imgs[self.image_ids[index]]
        path = self.image_path(index)
        image = read_image(path)
        if image.shape[:2] != (info["height"], info["width"]):
            raise DatasetError(f"image {path} is {image.shape[1]}x{image.shape[0]} but the annotation "
                               f"file says {info['width']}x{info['height']}")
        boxes, labels, crowd = self.annotations(index)
        return _sample(image, boxes, labels, info["id"], iscrowd=crowd)


class VOCDetection:
    """VOC ``Annotations/*.xml`` for the ids of ``ImageSets/Main/<image_set>.txt``.

    ``image_set`` is a split name or a path to an id list. Labels 1..20 in the standard VOC class
    order; ``difficult`` kept as a flag (VOC AP ignores those boxes). VOC pixel indices are 1-based
    and inclusive, so x1 = xmin - 1 and x2 = xmax: the box area equals VOC's (xmax-xmin+1)(ymax-ymin+1).
    """

    def __init__(self, root, image_set="trainval", class_names=VOC_CLASSES):
        self.root = Path(root)
        if not (self.root / "Annotations").is_dir():
            raise DatasetError(f"no Annotations/ folder in VOC root {self.root}")
        self.class_names = tuple(class_names)
        self._label = {name: i + 1 for i, name in enumerate(self.class_names)}
        self.ids = [line.split()[0] for line in read_list_file(self._list_path(image_set))]
        missing = [i for i in self.ids if not (self.root / "Annotations" / f"{i}.xml").is_file()]
        if missing:
            raise DatasetError(f"annotations missing in {self.root / 'Annotations'}: {preview(missing)}")

    def _list_path(self, image_set):
        candidates = [Path(image_set)] if str(image_set).endswith(".txt") else [
            self.root / "ImageSets" / "Main" / f"{image_set}.txt",
            self.root / "ImageSets" / f"{image_set}.txt"]
        for path in candidates:
            if path.is_file():
                return path
        raise DatasetError(f"image set {image_set!r} not found: tried {', '.join(map(str, candidates))}")

    def __len__(self):
        return len(self.ids)

    def parse_xml(self, index):
        """(file_name, boxes, labels, difficult) of image ``index``."""
        path = self.root / "Annotations" / f"{self.ids[index]}.xml"
        try:
            tree = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise DatasetError(f"cannot parse VOC annotation {path}: {exc}") from None
        boxes, labels, difficult = [], [], []
        for obj in tree.iter("object"):
            name = obj.findtext("name", "").strip()
            if name not in self._label:
                raise DatasetError(f"{path}: unknown class {name!r}; "
                                   f"expected one of {', '.join(self.class_names)}")
            bb = obj.find("bndbox")
            try:
                xmin, ymin, xmax, ymax = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            except (AttributeError, TypeError, ValueError):
                raise DatasetError(f"{path}: object {name!r} lacks a numeric bndbox "
                                   f"xmin/ymin/xmax/ymax") from None
            boxes.append((xmin - 1, ymin - 1, xmax, ymax))
            labels.append(self._label[name])
            difficult.append(obj.findtext("difficult", "0").strip() == "1")
        file_name = tree.findtext("filename") or f"{self.ids[index]}.jpg"
        return file_name.strip(), boxes, labels, difficult

    def image_path(self, index):
        return self.root / "JPEGImages" / self.parse_xml(index)[0]

    def __getitem__(self, index):
        file_name, boxes, labels, difficult = self.parse_xml(index)
        image = read_image(self.root / "JPEGImages" / file_name)
        sample = _sample(image, boxes, labels, index, difficult=difficult)
        sample["name"] = self.ids[index]
        return sample


class TxtDetection:
    """Lines "relative/path.jpg x1,y1,x2,y2,cls x1,y1,x2,y2,cls ..." (keras-yolo / old-port format).

    ``cls`` is the 0-based class index, so label = cls + 1 (0 stays background); coordinates are
    taken as box edges in pixels. ``image_id`` is the line number (0-based).
    """

    def __init__(self, list_file, image_root):
        self.image_root = Path(image_root)
        self.entries = []
        for number, line in enumerate(read_list_file(list_file), 1):
            fields = line.split()
            boxes, labels = [], []
            for field in fields[1:]:
                try:
                    x1, y1, x2, y2, cls = field.split(",")
                    boxes.append((float(x1), float(y1), float(x2), float(y2)))
                    labels.append(int(cls) + 1)
                except ValueError:
                    raise DatasetError(f"{list_file}:{number}: bad box {field!r}; expected "
                                       f"x1,y1,x2,y2,class_index") from None
            self.entries.append((self.image_root / fields[0], boxes, labels))
        missing = [str(e[0]) for e in self.entries if not e[0].is_file()]
        if missing:
            raise DatasetError(f"images listed in {list_file} do not exist: {preview(missing, 3)}")

    def __len__(self):
        return len(self.entries)

    def image_path(self, index):
        return self.entries[index][0]

    def __getitem__(self, index):
        path, boxes, labels = self.entries[index]
        return _sample(read_image(path), boxes, labels, index)

"""Small synthetic datasets in the real on-disk formats, so quickstarts and tests need no downloads.

    python -m common.data.synthetic --format {sod,voc,coco,imagenet} --out DIR --num N
        [--num-val M] [--size S] [--seed K] [--num-classes K] [--radius MIN,MAX]

Images are random shapes (ellipses, rectangles, triangles, stars) on textured backgrounds; masks,
class maps and boxes come from the same filled polygons, so they are exact. Output is a pure
function of the arguments (per-image generators seeded by (seed, split, index)).

Layouts:
- sod:      OUT/{train,test}/{images/*.jpg, masks/*.png (0/255)}; the salient object is one or
            two saturated shapes on a muted background.
- voc:      OUT/VOCdevkit/VOC2012/{JPEGImages, SegmentationClass (VOC palette PNG, 255 on object
            borders), Annotations (XML; objects under 24 px marked difficult),
            ImageSets/{Segmentation,Main}/{train,val}.txt}; classes are the first K VOC classes.
- coco:     OUT/{train2017,val2017}/*.jpg + OUT/annotations/instances_{train2017,val2017}.json
            with polygons, xywh boxes, areas (objects are painted through pycocotools' own
            rasterisation of their polygon, so mask, area and box agree exactly); category ids
            skip every 11th number (1..10, 12..21, ...) like COCO's gaps; every 10th image has no
            objects.
- imagenet: OUT/{train,val}/<wnid>/*.JPEG, one object whose shape and colour are the class.
            wnids are fake, "n00000000", "n00000001", ...: sorted order equals the class index and
            nobody mistakes them for real ImageNet classes.
"""
import argparse
import colorsys
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np

from .image_io import write_palette_png
from .synthetic_draw import (
    SHAPE_KINDS,
    background,
    class_look,
    image_size,
    paint,
    place_shapes,
    polygon_mask,
    shape_polygon,
)
from .voc_seg import VOC_CLASSES

DEFAULTS = {  # format: (image height, number of classes)
    "sod": (320, 1),
    "voc": (320, 20),
    "coco": (320, 80),
    "imagenet": (224, 10),
}
_JPEG = [cv2.IMWRITE_JPEG_QUALITY, 95]


def _rng(seed, split, index):
    return np.random.default_rng([seed, {"train": 0, "val": 1, "test": 1}[split], index])


def _save_jpg(path, image):
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), _JPEG)


def coco_polygon_mask(polygon, height, width):
    """The mask pycocotools rasterises for ``polygon``, so image, segmentation and area agree
    exactly under COCO's own definition."""
    from pycocotools import mask as mask_utils

    rles = mask_utils.frPyObjects([polygon.astype(float).reshape(-1).tolist()], height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def draw_objects(rng, size, classes, count_range, radius_range, rasterize=polygon_mask):
    """(image, [(class, polygon, mask)]) with non-overlapping objects of random classes."""
    h, w = image_size(rng, size)
    image = background(rng, h, w)
    count = int(rng.integers(count_range[0], count_range[1] + 1))
    objects = []
    for cx, cy, r in place_shapes(rng, h, w, count, radius_range):
        k = int(rng.integers(0, classes))
        kind, colour = class_look(k)
        polygon = shape_polygon(rng, kind, cx, cy, r)
        mask = rasterize(polygon, h, w)
        if not mask.any():  # a sliver too thin to cover a pixel centre: no object to label
            continue
        paint(image, mask, colour, rng)
        objects.append((k, polygon, mask))
    return image, objects


def _mask_box(mask):
    """(x, y, w, h) pixel extent of a mask, as edges (a single pixel is 1x1)."""
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def make_sod(out, num, num_val, size, seed, classes=1):
    """SOD has no classes; ``classes`` is accepted for a uniform writer signature."""
    out = Path(out)
    for split, n in (("train", num), ("test", num_val)):
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "masks").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rng = _rng(seed, split, i)
            h, w = image_size(rng, size)
            image = background(rng, h, w)
            mask = np.zeros((h, w), dtype=bool)
            for cx, cy, r in place_shapes(rng, h, w, int(rng.integers(1, 3)), (0.15, 0.35)):
                kind = SHAPE_KINDS[int(rng.integers(0, len(SHAPE_KINDS)))]
                obj = polygon_mask(shape_polygon(rng, kind, cx, cy, r), h, w)
                colour = colorsys.hsv_to_rgb(rng.uniform(), 0.85, 1.0)  # saturated vs. the muted background
                paint(image, obj, tuple(int(255 * c) for c in colour), rng)
                mask |= obj
            _save_jpg(out / split / "images" / f"{split}_{i:05d}.jpg", image)
            cv2.imwrite(str(out / split / "masks" / f"{split}_{i:05d}.png"), mask.astype(np.uint8) * 255)
    return {"images": num + num_val, "files": 2 * (num + num_val)}


def _voc_xml(name, image, objects, classes):
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "VOC2012"
    ET.SubElement(root, "filename").text = f"{name}.jpg"
    size = ET.SubElement(root, "size")
    for tag, value in zip(("width", "height", "depth"), (image.shape[1], image.shape[0], 3)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "1"
    for k, _, mask in objects:
        x, y, w, h = _mask_box(mask)
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = classes[k]
        ET.SubElement(obj, "pose").text = "Unspecified"
        ET.SubElement(obj, "truncated").text = "0"
        ET.SubElement(obj, "difficult").text = "1" if min(w, h) < 24 else "0"
        box = ET.SubElement(obj, "bndbox")
        # VOC coordinates are 1-based inclusive pixel indices
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), (x + 1, y + 1, x + w, y + h)):
            ET.SubElement(box, tag).text = str(value)
    ET.indent(root, "\t")
    return ET.tostring(root, encoding="unicode")


def make_voc(out, num, num_val, size, seed, classes=20):
    if not 1 <= classes <= len(VOC_CLASSES):
        raise ValueError(f"voc: --num-classes must be 1..{len(VOC_CLASSES)}, got {classes}")
    root = Path(out) / "VOCdevkit" / "VOC2012"
    dirs = {d: root / d for d in ("JPEGImages", "SegmentationClass", "Annotations",
                                  "ImageSets/Segmentation", "ImageSets/Main")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    kernel = np.ones((3, 3), np.uint8)
    for split, n in (("train", num), ("val", num_val)):
        names = []
        for i in range(n):
            rng = _rng(seed, split, i)
            image, objects = draw_objects(rng, size, classes, (1, 3), (0.05, 0.3))
            label = np.zeros(image.shape[:2], dtype=np.uint8)
            for k, _, mask in objects:
                label[mask] = k + 1
            for _, _, mask in objects:  # VOC marks a void band along every object outline
                m = mask.astype(np.uint8)
                label[(cv2.dilate(m, kernel) - cv2.erode(m, kernel)) > 0] = 255
            name = f"2012_{split[0]}{i:05d}"
            names.append(name)
            _save_jpg(dirs["JPEGImages"] / f"{name}.jpg", image)
            write_palette_png(dirs["SegmentationClass"] / f"{name}.png", label)
            (dirs["Annotations"] / f"{name}.xml").write_text(_voc_xml(name, image, objects, VOC_CLASSES))
        for sub in ("ImageSets/Segmentation", "ImageSets/Main"):
            (dirs[sub] / f"{split}.txt").write_text("".join(n + "\n" for n in names))
    return {"images": num + num_val, "files": 3 * (num + num_val) + 4, "root": str(root)}


def coco_categories(classes):
    return [{"id": k + 1 + k // 10, "name": f"{class_look(k)[0]}_{k}", "supercategory": "shape"}
            for k in range(classes)]


def make_coco(out, num, num_val, size, seed, classes=80, radius=(0.05, 0.25)):
    out = Path(out)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    categories = coco_categories(classes)
    ann_id = 1
    for split, n, first_id in (("train", num, 1), ("val", num_val, 1_000_001)):
        folder = out / f"{split}2017"
        folder.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(n):
            rng = _rng(seed, split, i)
            count = (0, 0) if i % 10 == 9 else (1, 4)
            image, objects = draw_objects(rng, size, classes, count, radius, coco_polygon_mask)
            image_id = first_id + i
            file_name = f"{image_id:012d}.jpg"
            _save_jpg(folder / file_name, image)
            images.append({"id": image_id, "file_name": file_name, "height": image.shape[0],
                           "width": image.shape[1]})
            for k, polygon, mask in objects:
                annotations.append({
                    "id": ann_id, "image_id": image_id, "category_id": categories[k]["id"],
                    "bbox": list(_mask_box(mask)), "area": int(mask.sum()), "iscrowd": 0,
                    "segmentation": [polygon.astype(float).reshape(-1).tolist()]})
                ann_id += 1
        doc = {"info": {"description": "synthetic shapes (common.data.synthetic)"}, "licenses": [],
               "images": images, "annotations": annotations, "categories": categories}
        (out / "annotations" / f"instances_{split}2017.json").write_text(json.dumps(doc))
    return {"images": num + num_val, "files": num + num_val + 2}


def make_imagenet(out, num, num_val, size, seed, classes=10):
    out = Path(out)
    wnids = [f"n{k:08d}" for k in range(classes)]
    for split, n in (("train", num), ("val", num_val)):
        for wnid in wnids:
            (out / split / wnid).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rng = _rng(seed, split, i)
            k = i % classes
            h, w = image_size(rng, size)
            image = background(rng, h, w)
            kind, colour = class_look(k)
            for cx, cy, r in place_shapes(rng, h, w, 1, (0.2, 0.4)):
                paint(image, polygon_mask(shape_polygon(rng, kind, cx, cy, r), h, w), colour, rng)
            stem = f"{wnids[k]}_{i}" if split == "train" else f"ILSVRC2012_val_{i + 1:08d}"
            _save_jpg(out / split / wnids[k] / f"{stem}.JPEG", image)
    return {"images": num + num_val, "files": num + num_val}


WRITERS = {"sod": make_sod, "voc": make_voc, "coco": make_coco, "imagenet": make_imagenet}


def generate(fmt, out, num, num_val=None, size=None, seed=0, num_classes=None, radius=None):
    """Write a synthetic ``fmt`` dataset to ``out``; returns {"images": n, "files": n}.

    ``radius`` (coco only): (min, max) object radius as a fraction of the shorter image side.
    """
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(WRITERS)}")
    default_size, default_classes = DEFAULTS[fmt]
    num_val = max(1, num // 4) if num_val is None else num_val
    extra = {}
    if radius is not None:
        if fmt != "coco":
            raise ValueError(f"radius is a coco option, not one of format {fmt!r}")
        low, high = (float(v) for v in radius)
        if not 0 < low <= high < 0.5:
            raise ValueError(f"radius {tuple(radius)} must satisfy 0 < min <= max < 0.5 (fractions of the shorter image side)")
        extra["radius"] = (low, high)
    return WRITERS[fmt](out, num, num_val, size or default_size, seed, num_classes or default_classes, **extra)


def _radius_pair(text):
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--radius {text!r}: expected MIN,MAX, e.g. 0.1,0.3") from None
    return low, high


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m common.data.synthetic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=sorted(WRITERS))
    parser.add_argument("--out", required=True, help="output folder (created)")
    parser.add_argument("--num", type=int, default=20, help="training images (default 20)")
    parser.add_argument("--num-val", type=int, default=None, help="validation/test images (default num/4)")
    parser.add_argument("--size", type=int, default=None, help="image height (default 320; imagenet 224)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-classes", type=int, default=None,
                        help="classes (default: voc 20, coco 80, imagenet 10)")
    parser.add_argument("--radius", type=_radius_pair, default=None,
                        help="coco: object radius range MIN,MAX as fractions of the shorter image side (default 0.05,0.25)")
    args = parser.parse_args(argv)
    if args.num < 1 or (args.num_val is not None and args.num_val < 0):
        parser.error("--num must be >= 1 and --num-val >= 0")
    try:
        result = generate(args.format, args.out, args.num, args.num_val, args.size, args.seed, args.num_classes,
                          args.radius)
    except ValueError as err:
        parser.error(str(err))
    print(f"wrote synthetic {args.format} dataset to {Path(args.out).resolve()}: "
          f"{result['images']} images, {result['files']} files")


if __name__ == "__main__":
    main()

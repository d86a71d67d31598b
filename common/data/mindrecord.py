"""MindRecord conversion of segmentation lists (the old RefineNet port's schema) and of any
detection reader (COCO, VOC, text list).

Segmentation rows are ``{file_name, data: encoded image bytes, label: encoded PNG bytes}``;
detection rows are ``{file_name, data, boxes (N*4 float32, x1 y1 x2 y2), labels, difficult,
iscrowd (N int32), image_id}``. Image files are copied byte for byte (no re-encoding), so a
MindRecord holds exactly what the folder held.
"""
import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .errors import DatasetError
from .voc_seg import parse_seg_list

SEG_SCHEMA = {"file_name": {"type": "string"}, "data": {"type": "bytes"}, "label": {"type": "bytes"}}


def write_seg_mindrecord(root, list_file, out_file, shard_num=1, rows_per_write=64):
    """Write the pairs of ``list_file`` into ``out_file`` (``out_file0..N-1`` when shard_num > 1).

    Returns the list of written data files.
    """
    from mindspore.mindrecord import FileWriter

    pairs = parse_seg_list(root, list_file)  # checks every file first: no half-written output
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    writer = FileWriter(file_name=str(out_file), shard_num=shard_num, overwrite=True)
    writer.add_schema(SEG_SCHEMA, "segmentation")
    rows = []
    for image_path, label_path in pairs:
        rows.append({"file_name": image_path.name, "data": image_path.read_bytes(),
                     "label": label_path.read_bytes()})
        if len(rows) == rows_per_write:
            writer.write_raw_data(rows)
            rows = []
    if rows:
        writer.write_raw_data(rows)
    writer.commit()
    if shard_num == 1:
        return [out_file]
    return [out_file.with_name(f"{out_file.name}{i}") for i in range(shard_num)]


def read_seg_mindrecord(files, num_shards=None, shard_id=None, shuffle=False, num_parallel_workers=1):
    """A ``MindDataset`` over the columns (file_name, data, label); decode rows with ``decode_seg_row``."""
    import mindspore.dataset as ds

    files = [str(f) for f in ([files] if isinstance(files, (str, Path)) else files)]
    for f in files:
        if not Path(f).is_file():
            raise DatasetError(f"MindRecord file not found: {f}")
    return ds.MindDataset(files, columns_list=["file_name", "data", "label"], shuffle=shuffle,
                          num_shards=num_shards, shard_id=shard_id,
                          num_parallel_workers=num_parallel_workers)


def decode_seg_row(file_name, data, label):
    """Sample dict (same keys as VOCSegDataset) from one MindRecord row."""
    name = file_name.item() if isinstance(file_name, np.ndarray) else file_name
    if isinstance(name, bytes):
        name = name.decode()
    image = cv2.imdecode(np.frombuffer(np.asarray(data).tobytes(), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"MindRecord row {name}: image bytes do not decode")
    mask = np.array(Image.open(io.BytesIO(np.asarray(label).tobytes())))
    return {"image": cv2.cvtColor(image, cv2.COLOR_BGR2RGB), "mask": mask.astype(np.uint8),
            "name": Path(str(name)).stem}


DET_SCHEMA = {"file_name": {"type": "string"}, "data": {"type": "bytes"},
              "boxes": {"type": "float32", "shape": [-1]}, "labels": {"type": "int32", "shape": [-1]},
              "difficult": {"type": "int32", "shape": [-1]}, "iscrowd": {"type": "int32", "shape": [-1]},
              "image_id": {"type": "int64"}}
DET_COLUMNS = list(DET_SCHEMA)


def write_det_mindrecord(source, out_file, shard_num=1, rows_per_write=64):
    """Write every sample of a detection reader (``CocoDetection``, ``VOCDetection``,
    ``TxtDetection``) into ``out_file``; each image is decoded once to validate it first."""
    from mindspore.mindrecord import FileWriter

    if len(source) == 0:
        raise DatasetError(f"detection source {source!r} has no samples to convert")
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    writer = FileWriter(file_name=str(out_file), shard_num=shard_num, overwrite=True)
    writer.add_schema(DET_SCHEMA, "detection")
    rows = []
    for index in range(len(source)):
        sample, path = source[index], source.image_path(index)
        n = len(sample["labels"])
        rows.append({
            "file_name": path.name, "data": path.read_bytes(),
            # MindRecord cannot hold empty arrays: images without boxes store one -1 sentinel
            "boxes": sample["boxes"].reshape(-1).astype(np.float32) if n else np.full(4, -1, np.float32),
            "labels": sample["labels"].astype(np.int32) if n else np.full(1, -1, np.int32),
            "difficult": sample["difficult"].astype(np.int32) if n else np.full(1, -1, np.int32),
            "iscrowd": sample["iscrowd"].astype(np.int32) if n else np.full(1, -1, np.int32),
            "image_id": int(sample["image_id"])})
        if len(rows) == rows_per_write:
            writer.write_raw_data(rows)
            rows = []
    if rows:
        writer.write_raw_data(rows)
    writer.commit()
    if shard_num == 1:
        return [out_file]
    return [out_file.with_name(f"{out_file.name}{i}") for i in range(shard_num)]


def read_det_mindrecord(files, num_shards=None, shard_id=None, shuffle=False, num_parallel_workers=1):
    """A ``MindDataset`` over the detection columns; decode rows with ``decode_det_row``."""
    import mindspore.dataset as ds

    files = [str(f) for f in ([files] if isinstance(files, (str, Path)) else files)]
    for f in files:
        if not Path(f).is_file():
            raise DatasetError(f"MindRecord file not found: {f}")
    return ds.MindDataset(files, columns_list=DET_COLUMNS, shuffle=shuffle, num_shards=num_shards,
                          shard_id=shard_id, num_parallel_workers=num_parallel_workers)


def decode_det_row(file_name, data, boxes, labels, difficult, iscrowd, image_id):
    """Sample dict (same keys as the detection readers) from one MindRecord row."""
    name = file_name.item() if isinstance(file_name, np.ndarray) else file_name
    name = name.decode() if isinstance(name, bytes) else str(name)
    image = cv2.imdecode(np.frombuffer(np.asarray(data).tobytes(), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"MindRecord row {name}: image bytes do not decode")
    labels = np.asarray(labels, np.int32)
    keep = labels >= 0
    return {"image": cv2.cvtColor(image, cv2.COLOR_BGR2RGB),
            "boxes": np.asarray(boxes, np.float32).reshape(-1, 4)[keep],
            "labels": labels[keep], "difficult": np.asarray(difficult)[keep].astype(bool),
            "iscrowd": np.asarray(iscrowd)[keep].astype(bool), "image_id": int(np.asarray(image_id)),
            "name": Path(name).stem}


def _detection_source(args):
    from .detection import CocoDetection, TxtDetection, VOCDetection

    table = {
        "coco": lambda: CocoDetection(args.images, args.ann),
        "voc": lambda: VOCDetection(args.root, args.split),
        "txt": lambda: TxtDetection(args.list, args.images),
    }
    needed = {"coco": ("images", "ann"), "voc": ("root",), "txt": ("list", "images")}[args.format]
    missing = [f"--{n}" for n in needed if getattr(args, n) is None]
    if missing:
        raise DatasetError(f"--format {args.format} needs {', '.join(missing)}")
    return table[args.format]()


def main(argv=None):
    """``python -m common.data.mindrecord --format coco|voc|txt ... --out FILE [--shard-num N]``:
    a detection dataset to MindRecord (segmentation lists: ``python -m common.data.voc_tools to-mindrecord``)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__.split("\n")[0].strip("`: "))
    parser.add_argument("--format", required=True, choices=["coco", "voc", "txt"])
    parser.add_argument("--images", help="image folder (coco, txt)")
    parser.add_argument("--ann", help="COCO instances json (coco)")
    parser.add_argument("--root", help="VOC year folder with Annotations/, JPEGImages/, ImageSets/ (voc)")
    parser.add_argument("--split", default="trainval", help="VOC image set (voc)")
    parser.add_argument("--list", help="list file of 'path x1,y1,x2,y2,cls ...' lines (txt)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--shard-num", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        files = write_det_mindrecord(_detection_source(args), args.out, args.shard_num)
    except DatasetError as exc:
        sys.exit(f"error: {exc}")
    print(f"wrote {', '.join(str(f) for f in files)}")


if __name__ == "__main__":
    main()

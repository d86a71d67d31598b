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


def _write(rows, schema, description, out_file, shard_num, rows_per_write=64):
    """Write an iterable of row dicts; returns the data files (``out_file0..N-1`` when sharded)."""
    from mindspore.mindrecord import FileWriter

    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    files = [out_file] if shard_num == 1 else [out_file.with_name(f"{out_file.name}{i}")
                                               for i in range(shard_num)]
    writer = FileWriter(file_name=str(out_file), shard_num=shard_num, overwrite=True)
    writer.add_schema(schema, description)
    try:
        chunk = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == rows_per_write:
                writer.write_raw_data(chunk)
                chunk = []
        if chunk:
            writer.write_raw_data(chunk)
        writer.commit()
    except BaseException:  # a bad sample mid-way: leave nothing half-written behind
        for f in files:
            for path in (f, f.with_name(f.name + ".db")):
                path.unlink(missing_ok=True)
        raise
    return files


def _read(files, columns, num_shards, shard_id, shuffle, num_parallel_workers):
    import mindspore.dataset as ds

    files = [str(f) for f in ([files] if isinstance(files, (str, Path)) else files)]
    for f in files:
        if not Path(f).is_file():
            raise DatasetError(f"MindRecord file not found: {f}")
    return ds.MindDataset(files, columns_list=list(columns), shuffle=shuffle, num_shards=num_shards,
                          shard_id=shard_id, num_parallel_workers=num_parallel_workers)


def write_seg_mindrecord(root, list_file, out_file, shard_num=1, rows_per_write=64):
    """Write the pairs of ``list_file`` into ``out_file`` (``out_file0..N-1`` when shard_num > 1).

    Returns the list of written data files.
    """
    pairs = parse_seg_list(root, list_file)  # checks every file first: no half-written output
    rows = ({"file_name": image.name, "data": image.read_bytes(), "label": label.read_bytes()}
            for image, label in pairs)
    return _write(rows, SEG_SCHEMA, "segmentation", out_file, shard_num, rows_per_write)


def read_seg_mindrecord(files, num_shards=None, shard_id=None, shuffle=False, num_parallel_workers=1):
    """A ``MindDataset`` over the columns (file_name, data, label); decode rows with ``decode_seg_row``."""
    return _read(files, SEG_SCHEMA, num_shards, shard_id, shuffle, num_parallel_workers)


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


def _det_row(source, index):
    sample, path = source[index], source.image_path(index)
    n = len(sample["labels"])

    def column(key, width=1):  # MindRecord holds no empty arrays: no boxes -> one -1 sentinel
        dtype = np.float32 if key == "boxes" else np.int32
        return sample[key].reshape(-1).astype(dtype) if n else np.full(width, -1, dtype)

    return {"file_name": path.name, "data": path.read_bytes(), "boxes": column("boxes", 4),
            "labels": column("labels"), "difficult": column("difficult"),
            "iscrowd": column("iscrowd"), "image_id": int(sample["image_id"])}


def write_det_mindrecord(source, out_file, shard_num=1, rows_per_write=64):
    """Write every sample of a detection reader (``CocoDetection``, ``VOCDetection``,
    ``TxtDetection``) into ``out_file``; each image is decoded once to validate it first."""
    if len(source) == 0:
        raise DatasetError(f"detection source {source!r} has no samples to convert")
    rows = (_det_row(source, i) for i in range(len(source)))
    return _write(rows, DET_SCHEMA, "detection", out_file, shard_num, rows_per_write)


def read_det_mindrecord(files, num_shards=None, shard_id=None, shuffle=False, num_parallel_workers=1):
    """A ``MindDataset`` over the detection columns; decode rows with ``decode_det_row``."""
    return _read(files, DET_COLUMNS, num_shards, shard_id, shuffle, num_parallel_workers)


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

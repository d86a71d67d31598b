"""MindRecord conversion of a segmentation list, in the old RefineNet port's schema.

Rows are ``{file_name: string, data: encoded image bytes, label: encoded PNG bytes}``; the files are
copied byte for byte (no re-encoding), so a MindRecord holds exactly what the folder held.
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

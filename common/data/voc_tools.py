"""VOC segmentation preparation tools.

    python -m common.data.voc_tools make-lists --voc-root VOCdevkit/VOC2012 --out lists/
        [--sbd-root benchmark_RELEASE/dataset --sbd-png-dir SBD_PNG]
    python -m common.data.voc_tools sbd-to-png --sbd-root benchmark_RELEASE/dataset --out SBD_PNG
    python -m common.data.voc_tools to-mindrecord --voc-root ... --list lists/train.txt --out voc.mindrecord

``make-lists`` writes train.txt / val.txt from ImageSets/Segmentation and, with SBD, the usual
10,582-image "train_aug" list: (SBD train + SBD val + VOC train) minus VOC val, using VOC's own
label where one exists (it has the 255 borders) and the converted SBD label otherwise.
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .errors import DatasetError
from .image_io import preview, write_palette_png
from .voc_seg import read_list_file


def resolve_voc_root(path):
    """The folder holding JPEGImages/ (accepts VOC2012 itself, VOCdevkit, or VOCdevkit's parent)."""
    path = Path(path)
    for candidate in (path, path / "VOC2012", path / "VOCdevkit" / "VOC2012"):
        if (candidate / "JPEGImages").is_dir():
            return candidate
    raise DatasetError(f"no VOC2012 folder with JPEGImages/ found at {path} "
                       f"(tried {path}, {path}/VOC2012, {path}/VOCdevkit/VOC2012)")


def _ids(list_file):
    return [line.split()[0] for line in read_list_file(list_file)]


def _rel(path, root):
    """Path relative to root when inside it (lists stay portable), else absolute."""
    path, root = Path(path).resolve(), Path(root).resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def make_lists(voc_root, out_dir, sbd_root=None, sbd_png_dir=None):
    """Write the list files; returns {name: number of lines}."""
    voc_root = resolve_voc_root(voc_root)
    seg_sets = voc_root / "ImageSets" / "Segmentation"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = {name: _ids(seg_sets / f"{name}.txt") for name in ("train", "val")}
    line = "JPEGImages/{0}.jpg SegmentationClass/{0}.png"
    written = {}
    for name, ids in splits.items():
        (out_dir / f"{name}.txt").write_text("".join(line.format(i) + "\n" for i in ids))
        written[name] = len(ids)
    if sbd_root is not None:
        sbd_root = Path(sbd_root)
        sbd_png_dir = Path(sbd_png_dir) if sbd_png_dir is not None else sbd_root / "cls_png"
        sbd_ids = _ids(sbd_root / "train.txt") + _ids(sbd_root / "val.txt")
        val = set(splits["val"])
        voc_train = set(splits["train"])
        aug = sorted((set(sbd_ids) | voc_train) - val)
        lines, missing = [], []
        for i in aug:
            if i in voc_train:
                lines.append(line.format(i))
                continue
            png = sbd_png_dir / f"{i}.png"
            if not png.is_file():
                missing.append(png.name)
            lines.append(f"JPEGImages/{i}.jpg {_rel(png, voc_root)}")
        if missing:
            raise DatasetError(f"SBD labels missing in {sbd_png_dir}: {preview(missing)}; "
                               f"run 'python -m common.data.voc_tools sbd-to-png' first")
        (out_dir / "train_aug.txt").write_text("".join(entry + "\n" for entry in lines))
        written["train_aug"] = len(lines)
    return written


def load_sbd_mat(path):
    """HxW uint8 class map from an SBD ``cls/*.mat`` file (struct GTcls, field Segmentation)."""
    from scipy.io import loadmat

    try:
        mat = loadmat(os.fspath(path), squeeze_me=True, struct_as_record=False)
        return np.asarray(mat["GTcls"].Segmentation, dtype=np.uint8)
    except (KeyError, AttributeError):
        raise DatasetError(f"{path}: expected a MATLAB struct 'GTcls' with field 'Segmentation' "
                           f"(SBD cls/*.mat)") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read SBD label {path}: {exc}") from None


def sbd_to_png(sbd_root, out_dir):
    """Convert every ``sbd_root/cls/*.mat`` to a VOC-palette PNG in ``out_dir``; returns the count."""
    cls_dir = Path(sbd_root) / "cls"
    mats = sorted(cls_dir.glob("*.mat")) if cls_dir.is_dir() else []
    if not mats:
        raise DatasetError(f"no SBD label files found: expected {cls_dir}/*.mat")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for mat in tqdm(mats, desc="sbd-to-png", unit="file"):
        write_palette_png(out_dir / f"{mat.stem}.png", load_sbd_mat(mat))
    return len(mats)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m common.data.voc_tools", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make-lists", help="write train/val (and train_aug) list files")
    p.add_argument("--voc-root", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--sbd-root", help="SBD benchmark_RELEASE/dataset (holds train.txt, val.txt, cls/)")
    p.add_argument("--sbd-png-dir", help="converted SBD labels (default: SBD_ROOT/cls_png)")
    p = sub.add_parser("sbd-to-png", help="convert SBD cls/*.mat to VOC palette PNGs")
    p.add_argument("--sbd-root", required=True)
    p.add_argument("--out", help="output folder (default: SBD_ROOT/cls_png)")
    p = sub.add_parser("to-mindrecord", help="pack a list into MindRecord {file_name, data, label}")
    p.add_argument("--voc-root", required=True, help="root the list's paths are relative to")
    p.add_argument("--list", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--shard-num", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if args.command == "make-lists":
            counts = make_lists(args.voc_root, args.out, args.sbd_root, args.sbd_png_dir)
            for name, n in counts.items():
                print(f"wrote {Path(args.out) / (name + '.txt')}: {n} samples")
        elif args.command == "sbd-to-png":
            out = args.out or Path(args.sbd_root) / "cls_png"
            print(f"wrote {sbd_to_png(args.sbd_root, out)} PNG labels to {out}")
        else:
            from .mindrecord import write_seg_mindrecord

            files = write_seg_mindrecord(args.voc_root, args.list, args.out, args.shard_num)
            print(f"wrote {len(files)} MindRecord file(s): {', '.join(map(str, files))}")
    except DatasetError as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()

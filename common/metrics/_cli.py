"""What the metric command lines share: input errors, pairing files by stem, JSON and tables.

Every input problem raises :class:`MetricInputError` (or :class:`MetricFileNotFoundError`) with
a message naming the file at fault; :func:`run_cli` turns it into ``error: ...`` on stderr and a
non-zero exit, so a batch job never records a score computed from half the data.
"""
import json
import math
import sys
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class MetricInputError(ValueError):
    """Predictions or ground truth that cannot be scored (the message names the file)."""


class MetricFileNotFoundError(MetricInputError, FileNotFoundError):
    """A folder or file given to a metric does not exist."""


def require_file(path, what):
    path = Path(path)
    if not path.is_file():
        raise MetricFileNotFoundError(f"{what} file not found: {path}")
    return path


def list_by_stem(folder, what, suffixes=IMAGE_SUFFIXES):
    """{stem: path} of the files in ``folder`` with one of ``suffixes``; two files sharing a stem
    would make the pairing ambiguous, so that is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MetricFileNotFoundError(f"{what} folder not found: {folder}")
    files = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in suffixes:
            continue
        if path.stem in files:
            raise MetricInputError(f"{what} folder has two files with stem '{path.stem}': "
                                   f"{files[path.stem]} and {path}")
        files[path.stem] = path
    if not files:
        raise MetricInputError(f"{what} folder {folder} has no files with suffix {'/'.join(suffixes)}")
    return files


def _name_some(paths, limit=5):
    paths = [str(p) for p in paths]
    more = f" (and {len(paths) - limit} more)" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def pair_by_stem(pred_dir, gt_dir, pred_what="prediction", gt_what="ground-truth",
                 suffixes=IMAGE_SUFFIXES):
    """[(stem, pred_path, gt_path)] sorted by stem; every prediction needs a ground truth and
    every ground truth a prediction (a missing prediction would silently raise the score)."""
    preds = list_by_stem(pred_dir, pred_what, suffixes)
    gts = list_by_stem(gt_dir, gt_what, suffixes)
    no_gt = sorted(set(preds) - set(gts))
    if no_gt:
        raise MetricInputError(f"no {gt_what} file in {gt_dir} for {pred_what} "
                               f"{_name_some(preds[s] for s in no_gt)}")
    no_pred = sorted(set(gts) - set(preds))
    if no_pred:
        raise MetricInputError(f"no {pred_what} file in {pred_dir} for {gt_what} "
                               f"{_name_some(gts[s] for s in no_pred)}")
    return [(stem, preds[stem], gts[stem]) for stem in sorted(gts)]


def to_jsonable(value):
    """Plain Python values for ``json``; NaN (an undefined score) becomes null."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_json(path, result):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(result), indent=1, allow_nan=False) + "\n")


def format_table(rows, header=("metric", "value")):
    """A plain-text table; floats shown with 4 decimals, NaN as 'n/a'."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "n/a" if math.isnan(v) else f"{v:.4f}"
        return str(v)
    text = [[str(h) for h in header]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in text]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_cli(main, argv=None):
    """Run ``main(argv)``; input errors end the process with ``error: <message>`` and status 1."""
    try:
        main(argv)
    except (ValueError, FileNotFoundError) as exc:
        sys.exit(f"error: {exc}")

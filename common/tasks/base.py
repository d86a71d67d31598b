"""The contract every task implements, and the helpers tasks share (image files, outputs)."""
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from common.config import ConfigError
from common.data.errors import DatasetError
from common.data.image_io import IMAGE_EXTENSIONS, read_image


class OutputWriteError(OSError):
    """An output file could not be written (read-only folder, full disk, ...)."""


class PredictionError(ValueError):
    """A network output is unusable (NaN or infinite values)."""


def check_finite(array, what):
    if not np.all(np.isfinite(array)):
        raise PredictionError(f"{what} holds NaN or infinite values")
    return array


class Task:
    """Base of the task objects. ``spec`` is the model's ModelSpec, ``cfg`` its validated config,
    ``predict(batch NCHW float32) -> [numpy outputs]`` the deployed network (MindSpore, ONNX
    Runtime, ...)."""

    name = "task"
    defaults: ClassVar[dict] = {}     # config sections the task reads (merged under the model's)
    predict_arguments: ClassVar[list] = []  # extra predict.py flags: [(flags, kwargs)]

    def input_size(self, spec, cfg):
        """(H, W) the deployed network takes (also the export size)."""
        raise NotImplementedError

    def with_input_size(self, spec, cfg, size):
        """``cfg`` evaluating at ``size`` = (H, W) (an ONNX file fixed to another size)."""
        hook = spec.hooks.get("set_input_size")
        if hook is None:
            raise ConfigError(f"models/{spec.folder} cannot evaluate at {size}: set the size in the config")
        return hook(cfg, size)

    def data_path_overrides(self, path):
        """Config overrides that make ``--data_path PATH`` the split to score."""
        raise NotImplementedError

    def data_path(self, cfg):
        """The split ``cfg`` scores, as ``--data_path`` names it (inverse of data_path_overrides)."""
        raise NotImplementedError

    def example_input(self, spec, cfg, batch_size, size=None):
        h, w = size or self.input_size(spec, cfg)
        channels = cfg.model.get("in_channels", 3)
        rng = np.random.default_rng(0)
        return rng.standard_normal((batch_size, channels, h, w)).astype(np.float32)

    def training_evaluator(self, spec, cfg):
        """``evaluate(net) -> metrics`` for evaluation during training, or None."""
        return

    def evaluate(self, spec, cfg, predict, tag):
        raise NotImplementedError

    def predict_files(self, spec, cfg, predict, files, out_dir, args):
        raise NotImplementedError

    def write_inputs(self, spec, cfg, output_dir):
        raise NotImplementedError

    def score_outputs(self, spec, cfg, outputs, data_dir, tag):
        raise NotImplementedError


class SplitAtTestRoot:
    """Tasks whose config names the scored split ``test.root`` (``--data_path`` sets it)."""

    def data_path_overrides(self, path):
        return [f"test.root={path}"]

    def data_path(self, cfg):
        return Path(cfg.test.root)


class SquareTestSplit(SplitAtTestRoot):
    """... and whose input is the square ``test.size``."""

    def input_size(self, spec, cfg):
        return (cfg.test.size, cfg.test.size)

    def with_input_size(self, spec, cfg, size):
        cfg.test.size = square_size(size, f"models/{spec.folder} evaluation (test.size)")
        return cfg


# ---------------------------------------------------------------- files

def list_input_images(path):
    """[(file, relative name without suffix)] for an image or a folder searched recursively.

    Relative names keep sub-folders (``a/img`` and ``b/img`` stay apart), so outputs never collide.
    """
    path = Path(path)
    if path.is_file():
        return [(path, path.stem)]
    if not path.is_dir():
        raise DatasetError(f"input not found: {path} (expected an image or a folder of images)")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
    items = [(f, str(f.relative_to(path).with_suffix(""))) for f in files]
    names = [n for _, n in items]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DatasetError(f"{path}: several images share the names {dup[:5]} (same name, other "
                           "suffix); outputs would collide")
    return items


def write_image(path, array, rgb=True):
    """Write an image atomically (temporary file + rename); fails naming the file and the cause."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(f"cannot create output folder {path.parent}: {exc.strerror}") from exc
    array = np.asarray(array)
    if rgb and array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGBA2BGRA if array.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    ok, data = cv2.imencode(path.suffix, array)
    if not ok:
        raise OutputWriteError(f"cannot encode {path} as {path.suffix}")
    try:
        data.tofile(str(tmp))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputWriteError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


@contextmanager
def staged_folder(folder):
    """Yield a temporary sibling of ``folder`` to fill; it replaces ``folder`` only when the block
    ends without an error, so a failed run never leaves a partial output folder behind."""
    if folder is None:
        yield None
        return
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise OutputWriteError(f"cannot create output folder {tmp.parent}: {exc.strerror}") from exc
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def predict_loop(items, handle, desc="predict"):
    """Run ``handle(file, name, image)`` for every (file, name); unreadable images are skipped with
    a warning. Returns (written {file: [outputs]}, skipped {file: reason})."""
    from tqdm import tqdm

    written, skipped = {}, {}
    for file, name in tqdm(items, desc=desc, unit="img"):
        try:
            image = read_image(file)
        except DatasetError as exc:
            skipped[str(file)] = str(exc)
            tqdm.write(f"warning: skipped {file}: {exc}", file=sys.stderr)
            continue
        written[str(file)] = [str(p) for p in handle(file, name, image)]
    return written, skipped


def square_size(size, what):
    if size[0] != size[1]:
        raise ConfigError(f"{what} takes square inputs, got {tuple(size)}")
    return int(size[0])

"""Data in and out of the C++ inference app (ascend310_infer/), and the MindSpore Lite tools.

A model's ``preprocess.py`` writes its inputs with :class:`InputWriter` (raw .bin files plus
``manifest.txt``), ``infer_app`` writes one ``<sample>_<k>.bin`` per output plus its own
``manifest.txt``, and the model's ``postprocess.py`` reads them back with :func:`read_outputs`.
Manifest lines (the C++ side parses the same format, ascend310_infer/src/manifest.h)::

    NAME FILE:DTYPE:DIMS [FILE:DTYPE:DIMS ...]        e.g.  img_0001 img_0001_0.bin:float32:1x3x320x320

MindSpore Lite on x86 Linux exists on PyPI only as ``mindspore-lite==2.0.0`` for Python 3.7; it
lives in its own venv made by ``ascend310_infer/setup_lite.sh`` and is driven here through a
subprocess. It cannot read a MindSpore 2.10 MINDIR, so models reach it as ONNX:
:func:`convert_onnx_to_lite`.
"""
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.paths import REPO_ROOT

MANIFEST = "manifest.txt"
DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "int64": np.int64,
          "uint8": np.uint8}
APP_DIR = REPO_ROOT / "ascend310_infer"
_NAME_OK = re.compile(r"^[A-Za-z0-9_.\-]+$")


class Infer310Error(RuntimeError):
    """Bad manifest or tensor file, or a failed Lite / app step; the message names the file."""


class LiteUnavailable(Infer310Error):
    """MindSpore Lite cannot be set up here (no Python 3.7, or pip could not install it)."""


@dataclass
class TensorEntry:
    file: str
    dtype: str
    shape: tuple

    def format(self):
        dims = "x".join(str(d) for d in self.shape) if self.shape else "scalar"
        return f"{self.file}:{self.dtype}:{dims}"


# ---------------------------------------------------------------- manifest and .bin files

def _parse_entry(token, where):
    parts = token.rsplit(":", 2)
    if len(parts) != 3 or not parts[0]:
        raise Infer310Error(f"{where}: bad entry '{token}', expected FILE:DTYPE:DIMS")
    file, dtype, dims = parts
    if dtype not in DTYPES:
        raise Infer310Error(f"{where}: unknown dtype '{dtype}' (known: {', '.join(DTYPES)})")
    if dims == "scalar":
        return TensorEntry(file, dtype, ())
    if not re.fullmatch(r"\d+(x\d+)*", dims):
        raise Infer310Error(f"{where}: bad dims '{dims}' in '{token}', expected e.g. 1x3x320x320")
    return TensorEntry(file, dtype, tuple(int(d) for d in dims.split("x")))


def read_manifest(folder):
    """``folder/manifest.txt`` -> list of (sample name, [TensorEntry, ...]) in file order."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise Infer310Error(f"{path}: no manifest (written by common.infer310.InputWriter / infer_app)")
    samples = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        where = f"{path}:{lineno}"
        if len(tokens) < 2:
            raise Infer310Error(f"{where}: sample '{tokens[0]}' lists no tensor file")
        samples.append((tokens[0], [_parse_entry(t, where) for t in tokens[1:]]))
    return samples


def check_tensor_file(folder, entry):
    """The path of one manifest entry, checked to exist and to hold dtype x shape bytes."""
    path = Path(folder) / entry.file
    if not path.is_file():
        raise Infer310Error(f"{path}: missing (listed in {Path(folder) / MANIFEST})")
    want = int(np.prod(entry.shape, dtype=np.int64)) * np.dtype(DTYPES[entry.dtype]).itemsize
    size = path.stat().st_size
    if size != want:
        raise Infer310Error(f"{path}: {size} bytes, but {entry.format()} needs {want}")
    return path


def read_tensor(folder, entry):
    """Load one manifest entry, checking the file size against dtype x shape."""
    path = check_tensor_file(folder, entry)
    return np.fromfile(path, dtype=np.dtype(DTYPES[entry.dtype])).reshape(entry.shape)


def iter_tensors(folder):
    """Yield (sample name, [array, ...]) for every sample of ``folder``'s manifest, lazily."""
    for name, entries in read_manifest(folder):
        yield name, [read_tensor(folder, e) for e in entries]


class AppOutputs(Mapping):
    """The app's results as a read-only {sample name: [output 0, output 1, ...]} in manifest order.

    Only the manifest is held; a sample's files are read when it is looked up, so scoring a
    dataset of detector heads or segmentation logits never holds them all in memory."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self._entries = dict(read_manifest(folder))
        for entries in self._entries.values():  # a missing or short file fails before any scoring
            for entry in entries:
                check_tensor_file(self.folder, entry)

    def __getitem__(self, name):
        return [read_tensor(self.folder, e) for e in self._entries[name]]

    def __iter__(self):
        return iter(self._entries)

    def __len__(self):
        return len(self._entries)


def read_outputs(output_dir):
    """The app's results: {sample name: [output 0, output 1, ...]}, read lazily (:class:`AppOutputs`)."""
    return AppOutputs(output_dir)


class InputWriter:
    """Write samples as ``<name>_<i>.bin`` plus ``manifest.txt`` into ``folder``.

    Arrays are cast to ``dtype`` (float32, what exported models take; None keeps each array's
    own type) and written C-contiguous. The manifest is written on :meth:`close` (or leaving the
    ``with`` block), through a temporary file, so a folder never holds a manifest that lists
    files not yet written.
    """

    def __init__(self, folder, dtype=np.float32):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dtype = dtype
        self.lines = []
        self.names = set()

    def add(self, name, *arrays):
        name = str(name)
        if not _NAME_OK.match(name):
            raise Infer310Error(f"sample name '{name}': use letters, digits, '_', '-', '.' only")
        if name in self.names:
            raise Infer310Error(f"sample name '{name}' written twice into {self.folder}")
        if not arrays:
            raise Infer310Error(f"sample '{name}': no arrays given")
        entries = []
        for i, array in enumerate(arrays):
            array = np.asarray(array.asnumpy() if hasattr(array, "asnumpy") else array)
            if self.dtype is not None:
                array = array.astype(self.dtype, copy=False)
            dtype = next((k for k, v in DTYPES.items() if np.dtype(v) == array.dtype), None)
            if dtype is None:
                raise Infer310Error(f"sample '{name}' input {i}: dtype {array.dtype} not in {list(DTYPES)}")
            entry = TensorEntry(f"{name}_{i}.bin", dtype, tuple(int(d) for d in array.shape))
            np.ascontiguousarray(array).tofile(self.folder / entry.file)
            entries.append(entry.format())
        self.names.add(name)
        self.lines.append(" ".join([name] + entries))

    def close(self):
        tmp = self.folder / f".{MANIFEST}.tmp{os.getpid()}"
        tmp.write_text("# sample FILE:DTYPE:DIMS per input (common/infer310.py)\n"
                       + "".join(line + "\n" for line in self.lines))
        os.replace(tmp, self.folder / MANIFEST)
        return self.folder / MANIFEST

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()


def write_inputs(folder, samples, dtype=np.float32):
    """``samples``: {name: array or tuple of arrays} or iterable of (name, arrays).

    Returns the manifest's path.
    """
    items = samples.items() if isinstance(samples, dict) else samples
    with InputWriter(folder, dtype) as writer:
        for name, arrays in items:
            writer.add(name, *(arrays if isinstance(arrays, (tuple, list)) else (arrays,)))
    return Path(folder) / MANIFEST


# ---------------------------------------------------------------- MindSpore Lite and the app

@dataclass
class LiteEnv:
    python: Path  # the Python 3.7 venv interpreter that imports mindspore_lite
    root: Path    # the mindspore_lite package folder: include/api/, lib/


def lite_env(install=True):
    """MindSpore Lite's venv via ascend310_infer/setup_lite.sh (idempotent; installs when asked).

    Raises :class:`LiteUnavailable` with the script's reason when it cannot be set up.
    """
    cmd = ["bash", str(APP_DIR / "setup_lite.sh")] + ([] if install else ["--check"])
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise LiteUnavailable(f"MindSpore Lite unavailable ({' '.join(cmd)} -> exit {proc.returncode}): "
                              f"{reason}")
    root = Path(proc.stdout.strip().splitlines()[-1])
    python = root.parents[3] / "bin" / "python"  # <venv>/lib/python3.7/site-packages/mindspore_lite
    if not python.exists():
        raise LiteUnavailable(f"{root}: not inside a venv (no {python})")
    return LiteEnv(python=python, root=root)


_CONVERT_SCRIPT = r"""
import json, sys
import mindspore_lite as mslite
src, dst, shapes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
converter = mslite.Converter()
if shapes:
    converter.input_shape = shapes
converter.convert(fmk_type=mslite.FmkType.ONNX, model_file=src, output_file=dst)
"""


def convert_onnx_to_lite(onnx_path, output_path, input_shapes=None, env=None, timeout=1800):
    """Convert an ONNX file into a MindSpore Lite model (MINDIR, ``.mindir`` suffix) for infer_app.

    ``input_shapes`` ({input name: [dims]}) fixes dynamic axes at conversion time; without it the
    app resizes the inputs to each sample's shape. The Lite 2.0 runtime of the wheel reads only
    this MINDIR form (the converter's MINDIR_LITE ``.ms`` files fail to build). Returns the path.
    """
    onnx_path, output_path = Path(onnx_path), Path(output_path)
    if not onnx_path.is_file():
        raise Infer310Error(f"ONNX file not found: {onnx_path}")
    if output_path.suffix != ".mindir":
        output_path = output_path.with_name(output_path.name + ".mindir")
    env = env or lite_env()
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_stem = output_path.with_name(f".{output_path.stem}.tmp{os.getpid()}")  # converter adds .mindir
    tmp = tmp_stem.with_name(tmp_stem.name + ".mindir")
    shapes = {k: [int(d) for d in v] for k, v in (input_shapes or {}).items()}
    cmd = [str(env.python), "-c", _CONVERT_SCRIPT, str(onnx_path.resolve()), str(tmp_stem),
           json.dumps(shapes)]
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not tmp.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise Infer310Error(f"Lite converter failed on {onnx_path} (exit {proc.returncode}):\n{tail}")
        tmp.chmod(0o644)  # the converter writes it read-only
        os.replace(tmp, output_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return output_path


def app_path(backend="lite"):
    """Where ascend310_infer/build.sh puts the app for ``backend`` ("lite" | "ascend")."""
    return APP_DIR / "build" / backend / "infer_app"


def build_app(backend="lite", timeout=1800):
    """Build (or bring up to date) infer_app with ascend310_infer/build.sh; returns its path."""
    proc = subprocess.run(["bash", str(APP_DIR / "build.sh"), backend], check=False, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise Infer310Error(f"ascend310_infer/build.sh {backend} failed (exit {proc.returncode}):\n{tail}")
    return app_path(backend)


def run_app(model_path, input_dir, output_dir, backend="lite_cpu", device_id=0, threads=2, time_dir=None,
            app=None, timeout=3600):
    """Run infer_app (default: the Lite build) and return the CompletedProcess.

    Check ``returncode`` (codes in ascend310_infer/README.md); stderr names the fault.
    """
    app = Path(app) if app else app_path("lite")
    cmd = [str(app), "--model_path", str(model_path), "--input_dir", str(input_dir), "--output_dir",
           str(output_dir), "--backend", backend, "--device_id", str(device_id), "--threads", str(threads)]
    if time_dir is not None:
        cmd += ["--time_dir", str(time_dir)]
    return subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)


def run_onnx_like_app(onnx_path, input_dir, output_dir, threads=None):
    """Run an ONNX file with ONNX Runtime on the app's inputs and write its outputs exactly as
    ``infer_app`` does (``<name>_<k>.bin`` + manifest): the 310 postprocess checked without the app."""
    from common.export import onnx_session, run_onnx

    session = onnx_session(onnx_path, threads=threads)
    with InputWriter(output_dir, dtype=None) as writer:
        for name, arrays in iter_tensors(input_dir):
            writer.add(name, *run_onnx(session, arrays))
    return Path(output_dir)

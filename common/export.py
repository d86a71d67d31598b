"""Export a network to MINDIR / ONNX / AIR, fix up the ONNX graph and check parity.

``export_model(net, inputs, fmt, path)`` writes to a temporary file beside ``path``, runs the
exported file (``nn.GraphCell`` for MINDIR, ONNX Runtime for ONNX) on ``inputs``, compares every
output with the network's and only then renames the file into place. A file whose outputs differ
by more than ``atol + rtol * max|output|`` is removed and :class:`ExportError` raised, so nothing
half-written or wrong
is left behind. Model-agnostic: it takes a Cell and numpy / Tensor inputs.
"""
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn

from common.layers import resize_impl
from common.onnx_runtime import onnx_session

SUFFIXES = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
BATCH_AXIS = "batch"


class ExportError(RuntimeError):
    """Export impossible on this backend, or the exported file does not reproduce the network."""


@dataclass
class ExportResult:
    path: Path
    fmt: str
    diffs: list = field(default_factory=list)  # max |exported - network| per output
    dynamic_batch: bool = False

    @property
    def max_diff(self):
        return max(self.diffs) if self.diffs else float("nan")


def _as_tensors(inputs):
    if isinstance(inputs, (Tensor, np.ndarray)):
        inputs = (inputs,)
    return tuple(x if isinstance(x, Tensor) else Tensor(np.asarray(x)) for x in inputs)


def _flatten(outputs):
    """Network output (Tensor or nested tuple/list of Tensors) -> list of numpy arrays."""
    if isinstance(outputs, (tuple, list)):
        return [a for o in outputs for a in _flatten(o)]
    return [outputs.asnumpy() if hasattr(outputs, "asnumpy") else np.asarray(outputs)]


def _compare(got, ref, label):
    if len(got) != len(ref):
        raise ExportError(f"{label}: {len(got)} outputs, the network has {len(ref)}")
    diffs = []
    for i, (g, r) in enumerate(zip(got, ref)):
        if g.shape != r.shape:
            raise ExportError(f"{label}: output {i} has shape {g.shape}, the network's is {r.shape}")
        diffs.append(float(np.max(np.abs(g.astype(np.float64) - r))) if r.size else 0.0)
    return diffs


class _Fresh(nn.Cell):
    """New top-level Cell around ``net`` for each export call.

    MindSpore 2.10 caches the compiled export graph per top-level Cell and fails ("i: 3 out of
    range ... BiasAdd") when the same Cell is exported to ONNX a second time; a fresh wrapper
    compiles afresh. ``auto_prefix=False`` keeps the parameter names.
    """

    def __init__(self, net):
        super().__init__(auto_prefix=False)
        self.net = net

    def construct(self, *inputs):
        return self.net(*inputs)


def _device():
    return ms.get_context("device_target")


# ---------------------------------------------------------------- ONNX Runtime helpers

def run_onnx(session, inputs, batch_size=None):
    """Run ``session`` on ``inputs`` (array, list of arrays in input order, or {name: array}).

    With ``batch_size`` the inputs are split along axis 0 into chunks that are run one after the
    other and the outputs concatenated. A model exported with a fixed batch always runs chunks of
    that size; the last partial chunk is padded by repeating the last sample and trimmed again.
    Returns the list of outputs.
    """
    names = [i.name for i in session.get_inputs()]
    if isinstance(inputs, dict):
        arrays = [np.asarray(inputs[n]) for n in names]
    else:
        if isinstance(inputs, (np.ndarray, Tensor)):
            inputs = [inputs]
        arrays = [x.asnumpy() if isinstance(x, Tensor) else np.asarray(x) for x in inputs]
        if len(arrays) != len(names):
            raise ValueError(f"run_onnx: model takes inputs {names}, got {len(arrays)} arrays")
    fixed = session.get_inputs()[0].shape[0]
    fixed = fixed if isinstance(fixed, int) and fixed > 0 else None
    n = arrays[0].shape[0]
    batch_size = fixed or batch_size  # a fixed-batch graph takes nothing else
    if batch_size is None or (batch_size >= n and fixed in (None, n)):
        return session.run(None, dict(zip(names, arrays)))
    chunks = []
    for start in range(0, n, batch_size):
        part = [a[start:start + batch_size] for a in arrays]
        real = part[0].shape[0]
        if fixed is not None and real < fixed:
            part = [np.concatenate([p] + [p[-1:]] * (fixed - real)) for p in part]
        chunks.append([o[:real] for o in session.run(None, dict(zip(names, part)))])
    return [np.concatenate(outs) for outs in zip(*chunks)]


# ---------------------------------------------------------------- ONNX graph fix-ups

def fix_onnx_graph(model, batch_size=None):
    """Repair what MindSpore 2.10's ONNX exporter writes wrongly. Returns the list of fixes made.

    * Conv / ConvTranspose ``pads`` are written in MindSpore's (top, bottom, left, right) order;
      ONNX reads (top, left, bottom, right), so any padding that differs between H and W, or
      between the two sides, gives wrong shapes and values. Reordered here.
    * ConvTranspose carries an ``output_shape`` attribute holding (N, C) instead of (H, W); ONNX
      Runtime then fails or mis-sizes the output. Without it the size follows from pads/strides.
    * Graph outputs keep the static export batch size even when the inputs have a dynamic batch
      axis (ONNX Runtime warns on every run); the batch dimension is renamed to the symbolic one.
    """
    fixes = []
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose"):
            for attr in node.attribute:
                if attr.name == "pads" and len(attr.ints) == 4:
                    top, bottom, left, right = attr.ints
                    if bottom != left:
                        attr.ints[:] = [top, left, bottom, right]
                        fixes.append(f"{node.op_type} {node.name}: pads reordered to ONNX "
                                     f"(top, left, bottom, right) = {list(attr.ints)}")
        if node.op_type == "ConvTranspose":
            keep = [a for a in node.attribute if a.name != "output_shape"]
            if len(keep) != len(node.attribute):
                del node.attribute[:]
                node.attribute.extend(keep)
                fixes.append(f"ConvTranspose {node.name}: removed output_shape")
    if batch_size is not None:
        for out in model.graph.output:
            dims = out.type.tensor_type.shape.dim
            if len(dims) and dims[0].HasField("dim_value") and dims[0].dim_value == batch_size:
                dims[0].dim_param = BATCH_AXIS  # setting dim_param clears dim_value (oneof)
                fixes.append(f"output {out.name}: batch axis made dynamic")
    return fixes


def _write_onnx(net, inputs, tmp, input_names, dynamic):
    import onnx

    axes = {n: {0: BATCH_AXIS} for n in input_names} if dynamic else None
    ms.onnx.export(_Fresh(net), *inputs, file_name=str(tmp), input_names=list(input_names), dynamic_axes=axes)
    model = onnx.load(str(tmp))
    fixes = fix_onnx_graph(model, inputs[0].shape[0] if dynamic else None)
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp))
    return fixes


def _onnx_batch_probe(session, arrays, ref):
    """True when the ONNX graph really takes another batch size (one sample appended)."""
    bigger = [np.concatenate([a, a[:1]]) for a in arrays]
    try:
        got = session.run(None, dict(zip([i.name for i in session.get_inputs()], bigger)))
    except Exception:  # noqa: BLE001  (ONNX Runtime raises its own exception types)
        return False
    want = [np.concatenate([r, r[:1]]) if r.ndim and r.shape[0] == arrays[0].shape[0] else None for r in ref]
    return all(w is not None and g.shape == w.shape and np.allclose(g, w, atol=1e-4, rtol=1e-4)
               for g, w in zip(got, want))


# ---------------------------------------------------------------- export

def _default_names(n):
    return ["x"] if n == 1 else [f"x{i}" for i in range(n)]


# Exported graphs take the export-safe matmul resize (no bilinear op exports). The parity
# reference may be a graph compiled before with the native resize; the check covers that too.
@resize_impl("matmul")
def export_model(net, inputs, fmt, path, check=True, atol=1e-4, input_names=None, dynamic_batch=True,
                 rtol=1e-5):
    """Export ``net`` to ``path`` in ``fmt`` ("MINDIR" | "ONNX" | "AIR") and check parity.

    ``inputs`` (a Tensor / array or a tuple of them) fix the traced shapes; random data is fine.
    ONNX gets a dynamic batch axis when ``dynamic_batch`` and the exported graph really accepts
    another batch size (probed with ONNX Runtime); otherwise it is re-exported with a fixed batch.
    Without ``check`` a requested dynamic batch axis is kept unverified. The suffix of ``path`` is
    added when missing. Returns an :class:`ExportResult` (path, per-output max diffs).
    """
    fmt = str(fmt).upper()
    if fmt not in SUFFIXES:
        raise ExportError(f"unknown export format '{fmt}', expected one of {sorted(SUFFIXES)}")
    if fmt == "AIR" and _device() != "Ascend":
        raise ExportError(f"AIR export needs the Ascend backend (device is {_device()}); "
                          "export MINDIR or ONNX instead")
    suffix = SUFFIXES[fmt]
    path = Path(path)
    if path.suffix.lower() != suffix:
        path = path.with_name(path.name + suffix)
    tensors = _as_tensors(inputs)
    names = list(input_names) if input_names else _default_names(len(tensors))
    if len(names) != len(tensors):
        raise ExportError(f"{len(names)} input names {names} for {len(tensors)} inputs")
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{suffix}")
    _check_writable(path.parent, tmp)
    was_training = net.training
    net.set_train(False)
    result = ExportResult(path=path, fmt=fmt)
    try:
        ref = _flatten(net(*tensors)) if check else None
        if fmt == "MINDIR":
            ms.export(_Fresh(net), *tensors, file_name=str(tmp), file_format="MINDIR")
            if check:
                graph = nn.GraphCell(ms.load(str(tmp)))
                result.diffs = _compare(_flatten(graph(*tensors)), ref, f"{path.name} (MINDIR)")
        elif fmt == "ONNX":
            result.diffs, result.dynamic_batch = _export_onnx(net, tensors, tmp, names, dynamic_batch,
                                                              ref, path.name)
        else:  # AIR, on Ascend: MindSpore cannot run an AIR file back, so no parity check
            ms.export(_Fresh(net), *tensors, file_name=str(tmp), file_format="AIR")
            print(f"[export] {path.name}: AIR files cannot be run by MindSpore; parity not checked")
        if check and fmt != "AIR":
            print(f"[export] {fmt} {path}: max |diff| per output = "
                  + ", ".join(f"{d:.3g}" for d in result.diffs))
            # float32 reassociation error grows with the output's magnitude and depth (e.g. the
            # logits of an untrained RefineNet-101, up to ~800, differ by 1e-3), hence atol +
            # rtol * max|output|
            limits = [atol + rtol * float(np.max(np.abs(r))) if r.size else atol for r in ref]
            if any(d > lim for d, lim in zip(result.diffs, limits)):
                raise ExportError(f"{path}: exported {fmt} differs from the network by "
                                  f"{max(result.diffs):.3g} > atol {atol} + rtol {rtol} x max|output| "
                                  f"(per output {result.diffs}); file removed")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
        net.set_train(was_training)
    return result


def _check_writable(folder, probe):
    """Fail up front, naming the folder and the cause, when the export could not be written
    (MindSpore's own error for an unwritable folder names only its temporary file)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb"):
            pass
    except OSError as exc:
        raise ExportError(f"cannot write the export into folder {folder}: "
                          f"{exc.strerror or exc} ({type(exc).__name__})") from exc
    finally:
        if probe.is_file():
            probe.unlink()


def _export_onnx(net, tensors, tmp, names, dynamic, ref, label):
    arrays = [t.asnumpy() for t in tensors]
    for attempt_dynamic in ([True, False] if dynamic else [False]):
        fixes = _write_onnx(net, tensors, tmp, names, attempt_dynamic)
        for fix in fixes:
            print(f"[export] {label}: {fix}")
        if ref is None:
            return [], attempt_dynamic
        session = onnx_session(tmp)
        diffs = _compare(session.run(None, dict(zip(names, arrays))), ref, f"{label} (ONNX)")
        if not attempt_dynamic or _onnx_batch_probe(session, arrays, ref):
            return diffs, attempt_dynamic
        print(f"[export] {label}: the graph does not accept another batch size; "
              "re-exporting with a fixed batch axis")
    raise AssertionError("unreachable")


def export_or_exit(net, inputs, fmt, path, atol=1e-4, input_names=("image",)):
    """:func:`export_model` for entry points: prints the parity summary, exits non-zero with
    the reason when the export is impossible or fails its parity check."""
    try:
        result = export_model(net, inputs, fmt, path, atol=atol, input_names=list(input_names))
    except ExportError as exc:
        sys.exit(f"error: {exc}")
    print(f"exported {result.path} (max abs diff vs MindSpore {result.max_diff:.2e}, "
          f"dynamic batch: {result.dynamic_batch})")
    return result

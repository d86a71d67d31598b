"""Save and load .ckpt / .safetensors checkpoints with atomic writes and a load report.

Loading accepts checkpoints from our training runs, from the old MindSpore ports (wrapper
prefixes such as ``network.`` and optimizer state) and, through a per-model ``key_map``, from
other layouts. Nothing is loaded silently: every missing, unexpected or mis-shaped key is
reported by name, and strict mode (the default) refuses to load when any exists.
"""
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import mindspore as ms
import numpy as np

from common.torch_pickle import read_torch_state_dict  # noqa: F401  (re-exported)

FORMATS = {".ckpt": "ckpt", ".safetensors": "safetensors"}
WRAPPER_PREFIXES = ("network.", "model.", "module.", "net.", "_backbone.", "backbone_network.",
                    "train_network.", "_network.")
# Optimizer, loss-scale and bookkeeping entries written by MindSpore wrappers and our engine.
STATE_PREFIXES = ("moment1.", "moment2.", "moments.", "accum.", "adam_m.", "adam_v.", "ema.",
                  "train_state.", "optimizer.")
STATE_KEYS = {"global_step", "learning_rate", "momentum", "beta1_power", "beta2_power", "scale_sense",
              "current_iterator_step", "last_overflow_iterator_step", "epoch_num", "step_num",
              "loss_scale", "epoch", "step", "cur_step_num", "cur_epoch_num"}


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the network."""


def _format_of(path):
    fmt = FORMATS.get(Path(path).suffix)
    if fmt is None:
        raise CheckpointError(f"{path}: unknown checkpoint suffix, expected one of {sorted(FORMATS)}")
    return fmt


def _to_numpy(value):
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    return np.asarray(value)


def named_parameters(net):
    """{name: Parameter} with names relative to ``net`` (MindSpore's ``Parameter.name`` gains
    the prefix of whatever wrapper the network was last put in, so it is not used)."""
    out = {}
    for cell_name, cell in net.cells_and_names():
        for pname, param in cell._params.items():  # pylint: disable=protected-access
            if param is None:
                continue
            out.setdefault(f"{cell_name}.{pname}" if cell_name else pname, param)
    return out


def state_dict(net):
    """{name: numpy array} of every parameter (trainable and buffers such as BN statistics)."""
    return {k: p.asnumpy().copy() for k, p in named_parameters(net).items()}


def save_checkpoint(params, path, extra=None):
    """Write ``params`` (a Cell, or {name: array/Tensor}) to ``path`` atomically.

    The data goes to a temporary file in the same folder that is renamed over ``path`` only when
    complete, so a crash mid-save leaves the previous checkpoint intact. ``extra`` holds scalars
    (epoch, step, ...) stored beside the weights.
    """
    path = Path(path)
    fmt = _format_of(path)
    if isinstance(params, ms.nn.Cell):
        params = state_dict(params)
    items = [{"name": k, "data": ms.Tensor(_to_numpy(v))} for k, v in params.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        ms.save_checkpoint(items, str(tmp), append_dict=dict(extra or {}), format=fmt)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _mem_available():
    """MemAvailable of /proc/meminfo in bytes (free memory plus reclaimable page cache), or None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@contextlib.contextmanager
def _available_memory_counts_page_cache():
    """MindSpore 2.10 refuses a .ckpt larger than the *free* pages (SC_AVPHYS_PAGES), which leaves
    out the page cache: after a pip install or a few large files, a 1.4 GB RefineNet checkpoint is
    refused on a 24 GiB machine with 1.3 GB "free". Its check is given MemAvailable instead."""
    try:
        from mindspore.train import serialization
    except ImportError:  # pragma: no cover - other MindSpore layouts keep their own check
        yield
        return
    original = getattr(serialization, "_get_available_memory", None)
    if original is None or _mem_available() is None:
        yield
        return
    serialization._get_available_memory = lambda: _mem_available() or original()
    try:
        yield
    finally:
        serialization._get_available_memory = original


def read_checkpoint(path):
    """{name: numpy array} of everything stored in a .ckpt / .safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    fmt = _format_of(path)
    try:
        with _available_memory_counts_page_cache():
            params = ms.load_checkpoint(str(path), format=fmt)
    except Exception as exc:  # MindSpore raises ValueError/RuntimeError for corrupt files
        raise CheckpointError(f"{path}: cannot read {fmt} checkpoint ({exc})") from exc
    return {k: _to_numpy(v) for k, v in params.items()}


def split_state(params):
    """Split a checkpoint dict into (weights, training state) by the known state names."""
    weights, state = {}, {}
    for k, v in params.items():
        is_state = k in STATE_KEYS or k.startswith(STATE_PREFIXES)
        (state if is_state else weights)[k] = v
    return weights, state


def torch_to_mindspore_names(state_dict_):
    """Rename PyTorch BatchNorm fields to MindSpore's and drop ``num_batches_tracked``.

    A module is a BatchNorm when it has a ``running_mean``; its ``weight``/``bias`` become
    ``gamma``/``beta``. Conv and linear ``weight``/``bias`` keep their names.
    """
    bn_modules = {k[: -len(".running_mean")] for k in state_dict_ if k.endswith(".running_mean")}
    rename = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
              "running_var": "moving_variance"}
    out = {}
    for key, value in state_dict_.items():
        module, _, leaf = key.rpartition(".")
        if leaf == "num_batches_tracked":
            continue
        if module in bn_modules and leaf in rename:
            key = f"{module}.{rename[leaf]}"
        out[key] = _to_numpy(value)
    return out


TORCH_WRAPPER_KEYS = ("state_dict", "model", "net", "network")


def strip_prefixes(params, prefixes=("module.", "network.", "model.", "net.")):
    """Remove any chain of the given prefixes from every key (foreign layouts' wrappers)."""
    out = {}
    for key, value in params.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in prefixes:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix):], True
        out[key] = value
    return out


def unwrap_torch_checkpoint(obj):
    """The state dict inside a training checkpoint such as ``{"state_dict": {...}, "epoch": 3}``."""
    while isinstance(obj, dict):
        inner = next((obj[k] for k in TORCH_WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    return obj


def strip_wrapper_prefixes(params, known_names, prefixes=WRAPPER_PREFIXES):
    """Remove wrapper prefixes (``network.``, ``model.``, ...) from keys the network lacks."""
    out = {}
    for key, value in params.items():
        while key not in known_names:
            for prefix in prefixes:
                if key.startswith(prefix):
                    key = key[len(prefix):]
                    break
            else:
                break
        out[key] = value
    return out


@dataclass
class LoadReport:
    source: str
    loaded: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    mismatched: list = field(default_factory=list)  # (name, checkpoint shape, network shape)
    ignored_state: list = field(default_factory=list)

    @property
    def ok(self):
        return not (self.missing or self.unexpected or self.mismatched)

    def summary(self, limit=20):
        def few(names):
            names = list(names)
            more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
            return ", ".join(str(n) for n in names[:limit]) + more

        lines = [f"{self.source}: loaded {len(self.loaded)} tensors"
                 + (f", ignored {len(self.ignored_state)} optimizer/training-state entries"
                    if self.ignored_state else "")]
        if self.missing:
            lines.append(f"  missing in checkpoint ({len(self.missing)}): {few(self.missing)}")
        if self.unexpected:
            lines.append(f"  not in network ({len(self.unexpected)}): {few(self.unexpected)}")
        if self.mismatched:
            lines.append(f"  shape mismatch ({len(self.mismatched)}): " + few(
                f"{n} checkpoint {tuple(a)} vs network {tuple(b)}" for n, a, b in self.mismatched))
        return "\n".join(lines)


def load_weights(net, source, strict=True, key_map=None, ignore_missing=()):
    """Load weights from ``source`` (a path or {name: array}) into ``net`` and report.

    Steps: drop optimizer/training state, strip wrapper prefixes, apply ``key_map`` (a callable
    {name: array} -> {name: array} for foreign layouts), compare names and shapes. In strict
    mode any missing, unexpected or mis-shaped key raises :class:`CheckpointError` naming them
    and nothing is loaded. ``ignore_missing`` lists name prefixes allowed to stay at their
    initial values (e.g. a new classifier when fine-tuning).
    """
    label = str(source) if not isinstance(source, dict) else "<state dict>"
    params = read_checkpoint(source) if not isinstance(source, dict) else dict(source)
    own = named_parameters(net)
    weights, state = split_state(params)
    weights = strip_wrapper_prefixes(weights, own)
    if key_map is not None:
        weights = key_map(weights)
    report = LoadReport(source=label, ignored_state=sorted(state))
    for name, value in weights.items():
        if name not in own:
            report.unexpected.append(name)
        elif tuple(np.shape(value)) != tuple(own[name].shape):
            report.mismatched.append((name, tuple(np.shape(value)), tuple(own[name].shape)))
    report.missing = [n for n in own if n not in weights and not n.startswith(tuple(ignore_missing))]
    if strict and not report.ok:
        raise CheckpointError("checkpoint does not fit the network:\n" + report.summary())
    bad = {m[0] for m in report.mismatched}
    for name, value in weights.items():
        if name in own and name not in bad:
            param = own[name]
            param.set_data(ms.Tensor(_to_numpy(value), dtype=param.dtype))
            report.loaded.append(name)
    return report

"""Read PyTorch ``.pth`` state dicts into numpy without importing torch.

Supports the zip format (torch >= 1.6) and the legacy tar-less pickle stream (torch < 1.6,
which is how several authors' checkpoints were saved). Only plain tensors in (nested) dicts are
supported; anything else fails with a message naming the unsupported type.
"""
import collections
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class TorchFileError(ValueError):
    pass


class _StorageType:
    def __init__(self, name):
        if name not in _STORAGE_DTYPES:
            raise TorchFileError(f"unsupported tensor storage type torch.{name}")
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *_):
    if not size:
        return storage[offset:offset + 1].reshape(()).copy()
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=tuple(size),
                                           strides=tuple(s * itemsize for s in stride))
    return np.ascontiguousarray(view)


def _rebuild_parameter(data, *_):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, fileobj, load_storage):
        super().__init__(fileobj)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name == "device":
            return str
        raise TorchFileError(f"unsupported object {module}.{name} in the checkpoint (only tensors "
                             "in dicts can be read without torch)")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise TorchFileError(f"unsupported persistent id {pid!r}")
        return self._load_storage(pid[1], str(pid[2]), int(pid[4]))


def _read_zip(path):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise TorchFileError(f"{path}: zip file without data.pkl: not a PyTorch checkpoint")
        root = pkl[: -len("data.pkl")]
        cache = {}

        def load_storage(stype, key, numel):
            if key not in cache:
                raw = zf.read(f"{root}data/{key}")
                cache[key] = np.frombuffer(raw, dtype=stype.dtype, count=numel).copy()
            return cache[key]

        with zf.open(pkl) as f:
            return _Unpickler(f, load_storage).load()


def _resolve_legacy(obj, storages):
    # In the legacy stream the storages follow the pickle, so tensors were built on placeholders.
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _resolve_legacy(v, storages)) for k, v in obj.items())
    if isinstance(obj, _LazyTensor):
        return obj.materialise()
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve_legacy(v, storages) for v in obj)
    return obj


class _LazyTensor:
    def __init__(self, slot, offset, size, stride):
        self.slot, self.offset, self.size, self.stride = slot, offset, size, stride

    def materialise(self):
        return _rebuild_tensor(self.slot[1], self.offset, self.size, self.stride)


class _LegacyUnpickler(_Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda slot, offset, size, stride, *_: _LazyTensor(slot, offset, size, stride)
        return super().find_class(module, name)


def _flatten(obj, prefix=""):
    out = collections.OrderedDict()
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        elif isinstance(value, np.ndarray):
            out[name] = value
    return out


def read_torch_state_dict(path, entry=None):
    """{name: numpy array} from a PyTorch checkpoint file.

    ``entry`` selects a sub-dict (e.g. ``"state_dict"`` or ``"model"``); by default the common
    wrappers are unwrapped when the top level holds no tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise TorchFileError(f"PyTorch checkpoint not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            obj = _read_zip(path)
        else:
            obj = _read_legacy(path)
    except TorchFileError:
        raise
    except Exception as exc:
        raise TorchFileError(f"{path}: cannot read as a PyTorch checkpoint ({exc})") from exc
    if not isinstance(obj, dict):
        raise TorchFileError(f"{path}: top level is {type(obj).__name__}, expected a state dict")
    if entry is not None:
        if entry not in obj:
            raise TorchFileError(f"{path}: no entry '{entry}'; top-level keys: {list(obj)[:10]}")
        obj = obj[entry]
    elif not any(isinstance(v, np.ndarray) for v in obj.values()):
        for candidate in ("state_dict", "model", "model_state", "net", "network"):
            if isinstance(obj.get(candidate), dict):
                obj = obj[candidate]
                break
    return _flatten(obj)


def _read_legacy(path):
    with open(path, "rb") as f:
        magic = pickle.load(f)
        if magic != _LEGACY_MAGIC:
            raise TorchFileError(f"{path}: not a PyTorch checkpoint (bad magic number)")
        pickle.load(f)
        pickle.load(f)
        slots = {}

        def load_storage(stype, key, numel):
            return slots.setdefault(key, [stype, None])

        obj = _LegacyUnpickler(f, load_storage).load()
        for key in pickle.load(f):
            (numel,) = struct.unpack("<q", f.read(8))
            stype = slots[key][0]
            slots[key][1] = np.frombuffer(f.read(numel * stype.dtype.itemsize), dtype=stype.dtype)
    return _resolve_legacy(obj, slots)

"""Model registry: ``create_model(name, **kwargs)`` and ``list_models()``.

Each model package registers its variants with ``@register_model`` when imported; the packages
listed in ``_MODEL_PACKAGES`` are imported on first use so that the registry is always complete.
"""
import difflib
import importlib

import common  # noqa: F401  (sets the CPU kernel environment before MindSpore runs)

_MODEL_PACKAGES = ("models.u2net", "models.ddrnet", "models.ras", "models.refinedet", "models.refinenet")
_REGISTRY = {}
_TORCH_KEY_MAPS = {}
_SPECS = {}          # registry name -> ModelSpec (common/runner/spec.py)
_FOLDER_SPECS = {}   # model folder -> ModelSpec
_loaded = False


def register_model(fn):
    """Register ``fn`` (a builder returning a Cell) under its function name. Duplicates fail."""
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"model '{name}' is already registered by {_REGISTRY[name].__module__}")
    _REGISTRY[name] = fn
    return fn


def register_torch_key_map(names, key_map):
    """Declare how the authors' PyTorch names (after the BatchNorm rename) map to ours."""
    for name in names:
        _TORCH_KEY_MAPS[name] = key_map


def register_spec(spec):
    """Attach a model folder's :class:`common.runner.spec.ModelSpec` to its registered variants."""
    for name in spec.variants:
        if name not in _REGISTRY:
            raise ValueError(f"spec of models/{spec.folder} names '{name}', which is not registered")
        _SPECS[name] = spec
    _FOLDER_SPECS[spec.folder] = spec
    return spec


def get_spec(name):
    """The spec of a registry name or model folder; unknown names fail listing the known ones."""
    _load_all()
    if name in _SPECS:
        return _SPECS[name]
    if name in _FOLDER_SPECS:
        return _FOLDER_SPECS[name]
    known = sorted(_SPECS) + sorted(set(_FOLDER_SPECS) - set(_SPECS))
    close = difflib.get_close_matches(name, known, n=3)
    hint = f" Did you mean {close}?" if close else ""
    raise KeyError(f"unknown model '{name}'.{hint} Known models: {sorted(_SPECS)}; "
                   f"model folders: {sorted(_FOLDER_SPECS)}")


def model_info(name):
    """Metadata of a registered model: folder, task, default input size (H, W), paper metric."""
    spec = get_spec(name)
    if name not in spec.variants:
        raise KeyError(f"'{name}' is a model folder; give one of its variants {sorted(spec.variants)}")
    return {"name": name, "folder": spec.folder, "task": spec.task, "input_size": spec.default_size(name),
            "paper_metric": spec.paper_metric}


def torch_key_map(name):
    """The key map registered for model ``name`` (None when names already match)."""
    _load_all()
    if name not in _REGISTRY:
        create_model(name)  # raises the helpful unknown-model error
    return _TORCH_KEY_MAPS.get(name)


def _load_all():
    global _loaded
    if not _loaded:
        for pkg in _MODEL_PACKAGES:
            importlib.import_module(pkg)
        _loaded = True


def list_models():
    """Sorted names of every registered model."""
    _load_all()
    return sorted(_REGISTRY)


def create_model(name, **kwargs):
    """Build the registered model ``name``. ``None`` keyword values are dropped so the model's
    own defaults apply; an unknown name fails listing the known ones."""
    _load_all()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise KeyError(f"unknown model '{name}'.{hint} Known models: {sorted(_REGISTRY)}")
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return _REGISTRY[name](**kwargs)

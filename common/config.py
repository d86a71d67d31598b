"""YAML configs with command-line overrides, validated against typed defaults.

A model declares its defaults as a nested dict (see ``ENGINE_DEFAULTS`` for the shared
sections). A YAML file overrides any subset of them and may name a ``base:`` file it extends.
The command line overrides any key as ``key.sub=value`` or ``--key.sub value``. Every value is
type-checked against its default, and an unknown key fails naming the closest valid keys.
"""
import copy
import difflib
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """Invalid config file, key or value."""


class Opt:
    """Default ``None`` for a key whose values must be of ``type_`` when given."""

    def __init__(self, type_):
        self.type = type_

    def __repr__(self):
        return f"Opt({self.type.__name__})"


class Config(dict):
    """A dict with attribute access for nested sections (``cfg.optim.lr``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(f"config has no key '{name}' (keys: {sorted(self)})") from exc

    def __setattr__(self, name, value):
        self[name] = value

    def to_dict(self):
        return {k: v.to_dict() if isinstance(v, Config) else v for k, v in self.items()}


# Sections every training run has; models add their own `model` / `data` keys.
ENGINE_DEFAULTS = {
    "seed": 1,
    "device": "CPU",                 # CPU | GPU | Ascend
    "mode": "graph",                 # graph | pynative
    "output_dir": "outputs/run",
    "train": {
        "epochs": 1,
        "iters": Opt(int),           # total iterations instead of epochs (unset/0: use epochs); the
                                     # last epoch may end early; lr.milestones/warmup_iters count iters
        "batch_size": 2,             # per device
        "num_workers": 2,
        "log_interval": 10,          # steps; loss/LR/finite flag are read from the device only here
        "max_steps_per_epoch": Opt(int),
        "resume": Opt(str),
        "overwrite": False,          # a fresh run may replace a non-empty output_dir (old run removed)
        "pretrained": Opt(str),      # weights to start from; every network key must load ...
        "pretrained_ignore": [],     # ... unless it matches one of these patterns (e.g. "head.*")
        "sink": False,               # dataset sink mode (GPU/Ascend; MindSpore has no device queue on CPU)
        "sink_size": -1,             # steps per device launch in sink mode; -1 = one launch per epoch
        "ema_decay": Opt(float),     # e.g. 0.9998: keep an EMA of weights, evaluated and kept as best
    },
    "optim": {
        "name": "adam",              # adam | adamw | momentum | nesterov | sgd
        "lr": 0.001,
        "scale_lr_by_batch": Opt(int),   # lr *= total_batch / this (e.g. 256)
        "momentum": 0.9,
        "weight_decay": 0.0,
        "no_decay_bn_bias": True,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "clip_grad_norm": Opt(float),
        # [{pattern: "backbone.*", lr_mult: 0.1}, {pattern: "*.bias", lr_mult: 2.0, weight_decay: 0}]:
        # first matching rule wins, a rule matching nothing is an error (common/engine/param_groups.py)
        "param_groups": [],
    },
    "lr": {
        "schedule": "constant",      # constant | multistep | cosine | poly
        "warmup_epochs": 0.0,
        "warmup_iters": 0,           # warm-up in iterations (required form with train.iters)
        "warmup_init_lr": 0.0,
        "min_lr": 0.0,
        "milestones": [],            # epochs (iterations with train.iters), for multistep
        "gamma": 0.1,
        "power": 0.9,                # poly
    },
    "amp": {
        "level": "O0",               # O0 | O1 | O2 | O3 (BatchNorm stays float32)
        "loss_scale": "none",        # none | fixed | dynamic
        "init_scale": 65536.0,
        "scale_factor": 2,
        "scale_window": 1000,
    },
    "ckpt": {
        "interval": 1,               # epochs (0 = none; last.ckpt is still written every epoch)
        "interval_iters": 0,         # also every N iterations (0 = off)
        "keep": 3,                   # epoch/iteration checkpoints kept (0 = all)
        "format": "ckpt",            # ckpt | safetensors
    },
    "eval": {
        "interval": 0,               # epochs; 0 = only at the end
        "metric": Opt(str),          # key of the eval result used to keep the best checkpoint
        "higher_is_better": True,
    },
    "data": {
        "verify": Opt(bool),         # pre-scan file headers/sizes; unset = when <= 20k samples
        "max_boxes": 100,            # detection: boxes per image after padding (extra ones dropped)
    },
}


def _check_type(key, value, default, where):
    if isinstance(default, Opt):
        if value is None:
            return None
        default_type = default.type
    elif default is None:
        return value
    else:
        default_type = type(default)
    if default_type is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if default_type is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if default_type is list and isinstance(value, tuple):
        value = list(value)
    if default_type is str and isinstance(value, Path):
        value = str(value)
    if default_type is dict and isinstance(value, dict):
        return value
    if isinstance(value, bool) != (default_type is bool) or not isinstance(value, default_type):
        raise ConfigError(f"{where}: key '{key}' expects {default_type.__name__}, "
                          f"got {type(value).__name__} {value!r}")
    return value


def _flat_keys(defaults, prefix=""):
    keys = []
    for k, v in defaults.items():
        keys.append(prefix + k)
        if isinstance(v, dict) and v:
            keys.extend(_flat_keys(v, f"{prefix}{k}."))
    return keys


def _unknown(key, defaults, where):
    valid = _flat_keys(defaults)
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    hint = f"; closest valid keys: {', '.join(close)}" if close else ""
    return ConfigError(f"{where}: unknown config key '{key}'{hint}")


def merge(defaults, overrides, where, prefix="", root=None):
    """Return ``defaults`` updated by ``overrides`` with every key and type checked."""
    root = defaults if root is None else root
    out = copy.deepcopy(defaults)
    for key, value in (overrides or {}).items():
        full = prefix + key
        if key not in defaults:
            raise _unknown(full, root, where)
        default = defaults[key]
        if isinstance(default, dict) and default:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: key '{full}' is a section, got {value!r}")
            out[key] = merge(default, value, where, full + ".", root)
        else:
            out[key] = _check_type(full, value, default, where)
    return out


def _materialise(tree):
    """Replace Opt markers by None and dicts by Config."""
    return Config({k: _materialise(v) if isinstance(v, dict) else (None if isinstance(v, Opt) else v)
                   for k, v in tree.items()})


def read_yaml(path, _seen=()):
    """Load a YAML config, following ``base:`` (relative to the file) recursively."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path in _seen:
        raise ConfigError(f"{path}: 'base' chain loops back to itself")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return [(str(path), data)]
    return read_yaml(path.parent / base, _seen + (path,)) + [(str(path), data)]


def _nest(dotted, value):
    node = {}
    cur = node
    parts = dotted.split(".")
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
    cur[parts[-1]] = value
    return node


def parse_overrides(items):
    """``["a.b=1", "--c.d", "x", "--e=2"]`` -> list of (dotted key, parsed value)."""
    out = []
    i = 0
    while i < len(items):
        item = items[i]
        if item.startswith("--"):
            item = item[2:]
            if "=" not in item:
                if i + 1 >= len(items):
                    raise ConfigError(f"command line: '--{item}' needs a value")
                item = f"{item}={items[i + 1]}"
                i += 1
        if "=" not in item:
            raise ConfigError(f"command line: expected key=value or --key value, got '{item}'")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        out.append((key.replace("-", "_"), value))
        i += 1
    return out


def load_config(defaults, path=None, overrides=()):
    """Defaults <- YAML file (and its bases) <- command-line overrides, all validated."""
    tree = copy.deepcopy(defaults)
    if path is not None:
        for where, data in read_yaml(path):
            tree = merge(tree, data, where)
    for key, value in parse_overrides(list(overrides)):
        tree = merge(tree, _nest(key, value), "command line")
    return _materialise(tree)


def save_config(cfg, path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.to_dict() if isinstance(cfg, Config) else cfg, sort_keys=False))
    return path


def merge_sections(*layers):
    """Later layers win; sections (dicts) are merged key by key, one level deep."""
    out = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **copy.deepcopy(value)}
            else:
                out[key] = copy.deepcopy(value)
    return out


def with_engine_defaults(model_defaults):
    """Shared engine sections deep-merged with a model's own defaults (model wins)."""
    return merge_sections(ENGINE_DEFAULTS, model_defaults)

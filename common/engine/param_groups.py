"""Parameter groups by name pattern, each with its own LR and weight-decay multipliers.

A rule is ``{pattern, lr_mult=1.0, weight_decay=None, weight_decay_mult=1.0}``; ``pattern`` is an
``fnmatch`` pattern over the network's parameter names (``backbone.*``, ``*.bias``). The rules are
tried in order and the first match wins, so each parameter belongs to exactly one group;
parameters no rule matches form the default group (multipliers 1). A rule matching nothing is an
error (it is usually a typo). ``weight_decay`` sets a group's decay outright; otherwise it is
``optim.weight_decay x weight_decay_mult`` with BatchNorm and bias parameters at 0 when
``no_decay_bn_bias`` is on.
"""
import fnmatch
from dataclasses import dataclass, field

from common.config import ConfigError

NO_DECAY_SUFFIXES = (".gamma", ".beta", ".bias", "moving_mean", "moving_variance")
_RULE_KEYS = {"pattern", "lr_mult", "weight_decay", "weight_decay_mult"}


@dataclass
class ParamGroup:
    label: str
    lr_mult: float
    weight_decay: float
    names: list = field(default_factory=list)
    params: list = field(default_factory=list)


def _check_rule(i, rule):
    where = f"optim.param_groups[{i}]"
    if not isinstance(rule, dict) or "pattern" not in rule:
        raise ConfigError(f"{where}: expected a mapping with a 'pattern' key, got {rule!r}")
    unknown = set(rule) - _RULE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}")
    for key in ("lr_mult", "weight_decay", "weight_decay_mult"):
        value = rule.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value < 0):
            raise ConfigError(f"{where}: '{key}' must be a number >= 0, got {value!r}")


def resolve_param_groups(named_params, rules=(), weight_decay=0.0, no_decay_bn_bias=True):
    """Split ``named_params`` ({name: Parameter}, trainable only are kept) into groups.

    Returns a list of :class:`ParamGroup` (rule groups in rule order, then the default group),
    each split into a decayed and a non-decayed part where ``no_decay_bn_bias`` applies.
    """
    rules = list(rules or ())
    for i, rule in enumerate(rules):
        _check_rule(i, rule)
    named = {n: p for n, p in named_params.items() if p.requires_grad}
    members = [[] for _ in rules]
    default = []
    for name in named:
        for i, rule in enumerate(rules):
            if fnmatch.fnmatchcase(name, rule["pattern"]):
                members[i].append(name)
                break
        else:
            default.append(name)
    for i, rule in enumerate(rules):
        if not members[i]:
            shadow = [r["pattern"] for r in rules[:i]
                      if any(fnmatch.fnmatchcase(n, rule["pattern"]) for n in named)]
            why = (f"; the parameters it matches were taken by earlier rules {shadow} (first match wins)"
                   if shadow else f"; parameter names look like {list(named)[:3]}")
            raise ConfigError(f"optim.param_groups[{i}]: pattern '{rule['pattern']}' matches no "
                              f"trainable parameter{why}")
    groups = []
    specs = [(f"{r['pattern']}", r, m) for r, m in zip(rules, members)] + [("default", {}, default)]
    for label, rule, names in specs:
        lr_mult = float(rule.get("lr_mult", 1.0))
        if rule.get("weight_decay") is not None:
            parts = [(names, float(rule["weight_decay"]), "")]
        else:
            wd = weight_decay * float(rule.get("weight_decay_mult", 1.0))
            if no_decay_bn_bias and wd > 0:
                no_decay = [n for n in names if n.endswith(NO_DECAY_SUFFIXES)]
                decay = [n for n in names if not n.endswith(NO_DECAY_SUFFIXES)]
                parts = [(decay, wd, ""), (no_decay, 0.0, " (bn/bias)")]
            else:
                parts = [(names, wd, "")]
        for part_names, wd, suffix in parts:
            if part_names:
                groups.append(ParamGroup(label + suffix, lr_mult, wd, part_names,
                                         [named[n] for n in part_names]))
    return groups


def describe_groups(groups, base_lr=None):
    """One line per group, for the run's log."""
    lines = []
    for g in groups:
        lr = f" lr {base_lr * g.lr_mult:.3g}" if base_lr is not None else ""
        lines.append(f"param group '{g.label}': {len(g.params)} tensors, "
                     f"{sum(int(p.size) for p in g.params):,} values, lr x{g.lr_mult:g}{lr}, "
                     f"weight_decay {g.weight_decay:g} (e.g. {', '.join(g.names[:3])})")
    return lines

"""Optimizer factory: a table of MindSpore optimizers and parameter groups for weight decay."""
import numpy as np
from mindspore import Tensor, nn

from common.engine.param_groups import NO_DECAY_SUFFIXES as _NO_DECAY_SUFFIXES


def _adam(params, lr, cfg):
    return nn.Adam(params, learning_rate=lr, beta1=cfg["betas"][0], beta2=cfg["betas"][1],
                   eps=cfg["eps"])


def _adamw(params, lr, cfg):
    return nn.AdamWeightDecay(params, learning_rate=lr, beta1=cfg["betas"][0],
                              beta2=cfg["betas"][1], eps=cfg["eps"])


def _momentum(params, lr, cfg):
    return nn.Momentum(params, learning_rate=lr, momentum=cfg["momentum"])


def _nesterov(params, lr, cfg):
    return nn.Momentum(params, learning_rate=lr, momentum=cfg["momentum"], use_nesterov=True)


def _sgd(params, lr, cfg):
    return nn.SGD(params, learning_rate=lr)


OPTIMIZERS = {"adam": _adam, "adamw": _adamw, "momentum": _momentum, "nesterov": _nesterov,
              "sgd": _sgd}


def param_groups(params, weight_decay, no_decay_bn_bias=True):
    """Weight decay on weights only (optionally), as MindSpore parameter groups."""
    params = [p for p in params if p.requires_grad]
    if not no_decay_bn_bias or weight_decay == 0:
        return [{"params": params, "weight_decay": weight_decay}, {"order_params": params}]
    decay = [p for p in params if not p.name.endswith(_NO_DECAY_SUFFIXES)]
    no_decay = [p for p in params if p.name.endswith(_NO_DECAY_SUFFIXES)]
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    groups.append({"order_params": params})
    return groups


def _mindspore_groups(groups, lr):
    """:class:`ParamGroup` list -> MindSpore groups; each gets ``lr x lr_mult`` when any differs."""
    per_group_lr = any(g.lr_mult != 1.0 for g in groups)
    out = []
    for g in groups:
        entry = {"params": g.params, "weight_decay": g.weight_decay}
        if per_group_lr:
            scaled = np.asarray(lr, np.float32) * np.float32(g.lr_mult)
            entry["lr"] = float(scaled) if scaled.ndim == 0 else Tensor(scaled)
        out.append(entry)
    out.append({"order_params": [p for g in groups for p in g.params]})
    return out


def build_optimizer(name, params, lr, weight_decay=0.0, no_decay_bn_bias=True, momentum=0.9,
                    betas=(0.9, 0.999), eps=1e-8, groups=None):
    """``lr`` is a float or a per-step array (see common.engine.lr). ``groups`` (a list of
    :class:`common.engine.param_groups.ParamGroup`) replaces ``params`` and the decay split."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer '{name}'; known: {sorted(OPTIMIZERS)}")
    if groups is not None:
        groups = _mindspore_groups(groups, lr)
    else:
        groups = param_groups(params, weight_decay, no_decay_bn_bias)
    if not isinstance(lr, float):
        lr = Tensor(np.asarray(lr, np.float32))
    return OPTIMIZERS[name](groups, lr, {"momentum": momentum, "betas": betas, "eps": eps})

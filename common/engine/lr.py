"""Learning-rate schedules computed per step as numpy arrays.

MindSpore optimizers accept a per-step learning-rate array indexed by their ``global_step``,
so restoring ``global_step`` on resume restores the schedule position too.
"""
import math

import numpy as np


def _warmup(base_lr, warmup_init_lr, warmup_steps, step):
    return warmup_init_lr + (base_lr - warmup_init_lr) * step / warmup_steps


def constant(base_lr, total_steps, **_):
    return np.full(total_steps, base_lr, np.float64)


def multistep(base_lr, total_steps, steps_per_epoch, milestones=(), gamma=0.1, **_):
    bounds = sorted(int(m * steps_per_epoch) for m in milestones)
    steps = np.arange(total_steps)
    return base_lr * gamma ** np.searchsorted(bounds, steps, side="right")


def cosine(base_lr, total_steps, min_lr=0.0, warmup_steps=0, **_):
    """Cosine from ``base_lr`` (after warm-up) down to ``min_lr`` at the last step."""
    steps = np.arange(total_steps) - warmup_steps
    span = max(total_steps - warmup_steps, 1)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + np.cos(math.pi * steps / span))


def poly(base_lr, total_steps, power=0.9, min_lr=0.0, warmup_steps=0, **_):
    steps = np.arange(total_steps) - warmup_steps
    span = max(total_steps - warmup_steps, 1)
    return min_lr + (base_lr - min_lr) * (1 - steps / span) ** power


SCHEDULES = {"constant": constant, "multistep": multistep, "cosine": cosine, "poly": poly}


def build_lr_schedule(name, base_lr, steps_per_epoch, epochs, warmup_epochs=0.0,
                      warmup_init_lr=0.0, **kwargs):
    """Per-step learning rates (float32 array of length ``epochs * steps_per_epoch``).

    A linear warm-up from ``warmup_init_lr`` to ``base_lr`` over ``warmup_epochs`` replaces the
    first steps of any schedule; the schedule itself starts after warm-up.
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown lr schedule '{name}'; known: {sorted(SCHEDULES)}")
    if steps_per_epoch <= 0 or epochs <= 0:
        raise ValueError(f"lr schedule needs steps_per_epoch > 0 and epochs > 0, got "
                         f"{steps_per_epoch} and {epochs}")
    total = int(steps_per_epoch * epochs)
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    lrs = SCHEDULES[name](base_lr, total, steps_per_epoch=steps_per_epoch,
                          warmup_steps=warmup_steps, **kwargs)
    for step in range(min(warmup_steps, total)):
        lrs[step] = _warmup(base_lr, warmup_init_lr, warmup_steps, step)
    return lrs.astype(np.float32)

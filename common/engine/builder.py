"""Wires a validated config into the engine, so each model's train.py only binds its parts.

Nothing is written into ``output_dir`` until every check has passed and training starts
(config, pretrained report); a fresh run refuses a non-empty ``output_dir`` unless
``train.overwrite`` (then the old run's files are removed first) or ``--resume``.
"""
import fnmatch
import json
import logging
import sys
from pathlib import Path

import mindspore as ms
import yaml

from common.checkpoint import CheckpointError, load_weights, named_parameters
from common.config import ConfigError
from common.data.errors import DatasetError
from common.engine.amp import build_loss_scaler
from common.engine.callbacks import CheckpointCallback, EvalCallback, LogCallback
from common.engine.distributed import init_distributed, setup_logging
from common.engine.lr import build_lr_schedule
from common.engine.optim import build_optimizer
from common.engine.param_groups import describe_groups, resolve_param_groups
from common.engine.trainer import Trainer, TrainingError, seed_everything

log = logging.getLogger("zoo")

_MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}
_DEVICES = ("CPU", "GPU", "Ascend")
# what a previous run left in output_dir; train.overwrite removes these
RUN_ARTIFACTS = ("checkpoints", "train_log.jsonl", "train_summary.json", "config.yaml",
                 "pretrained_report.txt")


def setup_device(device, mode="graph", device_id=None):
    """``device_id`` None lets MindSpore choose (0, or what msrun negotiates)."""
    if device not in _DEVICES:
        raise ValueError(f"device '{device}' is not one of {_DEVICES}")
    if mode not in _MODES:
        raise ValueError(f"mode '{mode}' is not one of {sorted(_MODES)}")
    ms.set_device(device, device_id)
    ms.set_context(mode=_MODES[mode])


def check_output_dir(cfg):
    """A fresh run (no ``train.resume``) needs an empty or new ``output_dir`` unless
    ``train.overwrite``; raises :class:`ConfigError` naming both ways out."""
    out = Path(cfg.output_dir)
    if cfg.train.resume or not out.is_dir() or not any(out.iterdir()):
        return
    if not cfg.train.overwrite:
        raise ConfigError(f"output_dir {out} already holds a run ({', '.join(sorted(p.name for p in out.iterdir())[:5])}"
                          "): continue it with --resume CKPT, choose another output_dir, or pass "
                          "train.overwrite=true to replace it")


def check_sink(cfg):
    """Dataset sink mode (``ms.data_sink``: the device pulls batches from its queue and runs
    ``train.sink_size`` steps per launch) exists in MindSpore 2.10 on GPU and Ascend only."""
    if cfg.train.sink and cfg.device == "CPU":
        raise ConfigError("train.sink=true (dataset sink mode) needs device GPU or Ascend: MindSpore "
                          "2.10 has no device data queue on CPU; set train.sink=false")
    if cfg.train.sink_size == 0 or cfg.train.sink_size < -1:
        raise ConfigError(f"train.sink_size {cfg.train.sink_size}: expected -1 (one launch per epoch) "
                          "or a positive number of steps")


def setup_run(cfg):
    """Checks the output folder, then device, mode, distributed init, logging with rank and seed.
    Returns the DistInfo. Writes nothing: the trainer saves the effective config when it starts."""
    check_output_dir(cfg)  # before init(): no rank has written anything yet
    check_sink(cfg)
    setup_device(cfg.device, cfg.mode, cfg.get("device_id"))
    dist = init_distributed()
    setup_logging(dist.rank)
    seed_everything(cfg.seed)
    return dist


def load_pretrained(network, path, ignore=(), key_map=None):
    """Load ``path`` into ``network``; every network key that stays unloaded (missing or
    mis-shaped) must match a pattern of ``ignore`` (``train.pretrained_ignore``), else
    :class:`CheckpointError`. Returns the report text (saved as pretrained_report.txt)."""
    own = set(named_parameters(network))
    report = load_weights(network, path, strict=False, key_map=key_map)
    unloaded = [n for n in report.missing] + [m[0] for m in report.mismatched]
    ignored = [n for n in unloaded if any(fnmatch.fnmatchcase(n, p) for p in ignore)]
    refused = [n for n in unloaded if n not in ignored]
    unused = [p for p in ignore if not any(fnmatch.fnmatchcase(n, p) for n in own)]
    text = "\n".join([report.summary(limit=10**6),
                      f"  allowed by train.pretrained_ignore {list(ignore)} ({len(ignored)}): "
                      + ", ".join(ignored)] + ([f"  patterns matching no network key: {unused}"]
                                               if unused else []))
    if refused:
        raise CheckpointError(f"train.pretrained {path}: {len(refused)} network tensors would keep "
                              f"their initial values: {', '.join(refused[:10])}"
                              f"{' ...' if len(refused) > 10 else ''}; fix the checkpoint or key map, "
                              "or list them in train.pretrained_ignore (patterns such as 'head.*')")
    return text + "\n"


def build_trainer(cfg, network, loss_fn, steps_per_epoch, dist, evaluate=None, num_inputs=1,
                  model_name="model", pretrained_key_map=None):
    """Optimizer, LR schedule, loss scaler and callbacks from ``cfg``; returns a Trainer.

    ``pretrained_key_map`` ({name: array} -> {name: array}) converts ``train.pretrained`` from
    another layout (see common.checkpoint.load_weights)."""
    run_files = {"config.yaml": yaml.safe_dump(cfg.to_dict(), sort_keys=False)}
    if cfg.train.pretrained:
        run_files["pretrained_report.txt"] = load_pretrained(
            network, cfg.train.pretrained, cfg.train.pretrained_ignore, pretrained_key_map)
        log.info("pretrained weights: %s", run_files["pretrained_report.txt"].splitlines()[0])
    lr = lr_schedule_from_config(cfg, steps_per_epoch, dist.size)
    groups = resolve_param_groups(named_parameters(network), cfg.optim.param_groups,
                                  cfg.optim.weight_decay, cfg.optim.no_decay_bn_bias)
    for line in describe_groups(groups, float(lr[0]) if len(lr) else None):
        log.info("%s", line)
    optimizer = build_optimizer(cfg.optim.name, None, lr, momentum=cfg.optim.momentum,
                                betas=tuple(cfg.optim.betas), eps=cfg.optim.eps, groups=groups)
    scaler = build_loss_scaler(cfg.amp.loss_scale, cfg.amp.init_scale, cfg.amp.scale_factor,
                               cfg.amp.scale_window)
    out = Path(cfg.output_dir)
    # evaluation runs before the epoch checkpoint so that checkpoint carries the new best score
    callbacks = [LogCallback(cfg.train.log_interval, out / "train_log.jsonl")]
    if evaluate is not None:
        callbacks.append(EvalCallback(evaluate, out / "checkpoints", cfg.eval.metric,
                                      cfg.eval.interval, cfg.eval.higher_is_better, cfg.ckpt.format))
    callbacks.append(CheckpointCallback(out / "checkpoints", model_name, cfg.ckpt.interval,
                                        cfg.ckpt.keep, cfg.ckpt.format, cfg.ckpt.interval_iters))
    clear = [out / name for name in RUN_ARTIFACTS] if cfg.train.overwrite and not cfg.train.resume else []
    return Trainer(network, loss_fn, optimizer, num_inputs=num_inputs, amp_level=cfg.amp.level,
                   loss_scaler=scaler, clip_grad_norm=cfg.optim.clip_grad_norm, dist=dist,
                   callbacks=callbacks, output_dir=out,
                   max_steps_per_epoch=cfg.train.max_steps_per_epoch, lr_schedule=lr,
                   ema_decay=cfg.train.ema_decay, log_interval=cfg.train.log_interval,
                   resume_guard={"optim.name": cfg.optim.name}, run_files=run_files,
                   clear_on_start=clear, sink_size=cfg.train.sink_size if cfg.train.sink else None)


def lr_schedule_from_config(cfg, steps_per_epoch, world_size=1):
    """Per-step LR array; ``optim.scale_lr_by_batch`` = B makes lr *= total batch / B.

    With ``train.iters`` the schedule is ``train.iters`` long and ``lr.milestones`` and
    ``lr.warmup_iters`` count iterations; otherwise they count epochs (``lr.warmup_epochs``)."""
    steps = min(steps_per_epoch, cfg.train.max_steps_per_epoch or steps_per_epoch)
    base_lr = cfg.optim.lr
    if cfg.optim.scale_lr_by_batch:
        base_lr *= cfg.train.batch_size * world_size / cfg.optim.scale_lr_by_batch
    kwargs = _schedule_kwargs(cfg.lr)
    if cfg.lr.warmup_iters and cfg.lr.warmup_epochs:
        raise ConfigError("give lr.warmup_iters or lr.warmup_epochs, not both")
    if cfg.train.iters:
        if cfg.lr.warmup_epochs:
            raise ConfigError("train.iters is set: give the warm-up as lr.warmup_iters, not lr.warmup_epochs")
        return build_lr_schedule(cfg.lr.schedule, base_lr, 1, cfg.train.iters,
                                 warmup_epochs=cfg.lr.warmup_iters, warmup_init_lr=cfg.lr.warmup_init_lr,
                                 **kwargs)
    warmup = cfg.lr.warmup_epochs or cfg.lr.warmup_iters / steps
    return build_lr_schedule(cfg.lr.schedule, base_lr, steps, cfg.train.epochs, warmup_epochs=warmup,
                             warmup_init_lr=cfg.lr.warmup_init_lr, **kwargs)


def _schedule_kwargs(lr_cfg):
    table = {"multistep": {"milestones": lr_cfg.milestones, "gamma": lr_cfg.gamma},
             "cosine": {"min_lr": lr_cfg.min_lr},
             "poly": {"power": lr_cfg.power, "min_lr": lr_cfg.min_lr}}
    return table.get(lr_cfg.schedule, {})


def run_training(trainer, dataset, cfg, sampler=None):
    """Runs ``fit``; turns engine errors into a clear message and a non-zero exit (2 for bad
    data or checkpoints, 128 + signal when interrupted, 1 when diverged)."""
    try:
        trainer.fit(dataset, cfg.train.epochs, sampler=sampler, start_from=cfg.train.resume,
                    iters=cfg.train.iters)
    except TrainingError as exc:
        log.error("%s", exc)
        sys.exit(exc.exit_code)
    except (CheckpointError, DatasetError, ConfigError) as exc:
        log.error("error: %s", exc)
        sys.exit(2)
    if trainer.dist.is_main:
        summary = {"epochs": trainer.epoch, "global_step": trainer.global_step,
                   "checkpoints": str(Path(cfg.output_dir) / "checkpoints")}
        (Path(cfg.output_dir) / "train_summary.json").write_text(json.dumps(summary, indent=1))
        log.info("training done: %s", summary)
    return trainer


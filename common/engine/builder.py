"""Wires a validated config into the engine, so each model's train.py only binds its parts."""
import json
import logging
import sys
from pathlib import Path

import mindspore as ms

from common.checkpoint import CheckpointError, load_weights
from common.config import save_config
from common.engine.amp import build_loss_scaler
from common.engine.callbacks import CheckpointCallback, EvalCallback, LogCallback
from common.engine.distributed import init_distributed, setup_logging
from common.engine.lr import build_lr_schedule
from common.engine.optim import build_optimizer
from common.engine.trainer import Trainer, TrainingError, seed_everything

log = logging.getLogger("zoo")

_MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}
_DEVICES = ("CPU", "GPU", "Ascend")


def setup_device(device, mode="graph"):
    if device not in _DEVICES:
        raise ValueError(f"device '{device}' is not one of {_DEVICES}")
    if mode not in _MODES:
        raise ValueError(f"mode '{mode}' is not one of {sorted(_MODES)}")
    ms.set_device(device)
    ms.set_context(mode=_MODES[mode])


def setup_run(cfg):
    """Device, mode, distributed init, logging with rank, seed, output folder and the saved
    effective config (rank 0 only). Returns the DistInfo."""
    setup_device(cfg.device, cfg.mode)
    dist = init_distributed()
    setup_logging(dist.rank)
    seed_everything(cfg.seed)
    out = Path(cfg.output_dir)
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        log.info("effective config saved to %s", out / "config.yaml")
    return dist


def build_trainer(cfg, network, loss_fn, steps_per_epoch, dist, evaluate=None, num_inputs=1,
                  model_name="model"):
    """Optimizer, LR schedule, loss scaler and callbacks from ``cfg``; returns a Trainer."""
    if cfg.train.pretrained:
        report = load_weights(network, cfg.train.pretrained, strict=False)
        log.info("pretrained weights: %s", report.summary())
    lr = lr_schedule_from_config(cfg, steps_per_epoch, dist.size)
    optimizer = build_optimizer(cfg.optim.name, network.trainable_params(), lr,
                                weight_decay=cfg.optim.weight_decay,
                                no_decay_bn_bias=cfg.optim.no_decay_bn_bias,
                                momentum=cfg.optim.momentum, betas=tuple(cfg.optim.betas),
                                eps=cfg.optim.eps)
    scaler = build_loss_scaler(cfg.amp.loss_scale, cfg.amp.init_scale, cfg.amp.scale_factor,
                               cfg.amp.scale_window)
    out = Path(cfg.output_dir)
    callbacks = [LogCallback(cfg.train.log_interval, out / "train_log.jsonl"),
                 CheckpointCallback(out / "checkpoints", model_name, cfg.ckpt.interval,
                                    cfg.ckpt.keep, cfg.ckpt.format)]
    if evaluate is not None:
        callbacks.append(EvalCallback(evaluate, out / "checkpoints", cfg.eval.metric,
                                      cfg.eval.interval, cfg.eval.higher_is_better, cfg.ckpt.format))
    return Trainer(network, loss_fn, optimizer, num_inputs=num_inputs, amp_level=cfg.amp.level,
                   loss_scaler=scaler, clip_grad_norm=cfg.optim.clip_grad_norm, dist=dist,
                   callbacks=callbacks, output_dir=out,
                   max_steps_per_epoch=cfg.train.max_steps_per_epoch, lr_schedule=lr,
                   ema_decay=cfg.train.ema_decay)


def lr_schedule_from_config(cfg, steps_per_epoch, world_size=1):
    """Per-step LR array; ``optim.scale_lr_by_batch`` = B makes lr *= total batch / B."""
    steps = min(steps_per_epoch, cfg.train.max_steps_per_epoch or steps_per_epoch)
    base_lr = cfg.optim.lr
    if cfg.optim.scale_lr_by_batch:
        base_lr *= cfg.train.batch_size * world_size / cfg.optim.scale_lr_by_batch
    return build_lr_schedule(cfg.lr.schedule, base_lr, steps, cfg.train.epochs,
                             warmup_epochs=cfg.lr.warmup_epochs, warmup_init_lr=cfg.lr.warmup_init_lr,
                             **_schedule_kwargs(cfg.lr))


def _schedule_kwargs(lr_cfg):
    table = {"multistep": {"milestones": lr_cfg.milestones, "gamma": lr_cfg.gamma},
             "cosine": {"min_lr": lr_cfg.min_lr},
             "poly": {"power": lr_cfg.power, "min_lr": lr_cfg.min_lr}}
    return table.get(lr_cfg.schedule, {})


def run_training(trainer, dataset, cfg, sampler=None):
    """Runs ``fit``; turns engine errors into a clear message and a non-zero exit."""
    try:
        trainer.fit(dataset, cfg.train.epochs, sampler=sampler, start_from=cfg.train.resume)
    except TrainingError as exc:
        log.error("%s", exc)
        sys.exit(exc.exit_code)
    except CheckpointError as exc:
        log.error("%s", exc)
        sys.exit(2)
    if trainer.dist.is_main:
        summary = {"epochs": trainer.epoch, "global_step": trainer.global_step,
                   "checkpoints": str(Path(cfg.output_dir) / "checkpoints")}
        (Path(cfg.output_dir) / "train_summary.json").write_text(json.dumps(summary, indent=1))
        log.info("training done: %s", summary)
    return trainer

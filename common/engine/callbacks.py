"""Training callbacks: logging, checkpoints (last K, best), periodic evaluation.

Only rank 0 writes files; every rank logs with its rank in the line.
"""
import json
import logging
import math
import time
from pathlib import Path

log = logging.getLogger("zoo")


class Callback:
    def on_train_begin(self, trainer):
        pass

    def on_step_end(self, trainer, info):
        pass

    def on_epoch_end(self, trainer, epoch):
        pass

    def on_train_end(self, trainer):
        pass


class LogCallback(Callback):
    """Loss, LR, step time, images/s and ETA every ``interval`` steps, also as JSON lines."""

    def __init__(self, interval=10, jsonl_path=None):
        self.interval = max(1, interval)
        self.jsonl_path = Path(jsonl_path) if jsonl_path else None
        self._losses, self._times, self._skipped = [], [], 0

    def on_train_begin(self, trainer):
        self._t_start = time.perf_counter()
        self._start_step = trainer.global_step

    def on_step_end(self, trainer, info):
        self._losses.append(info["loss"])
        self._times.append(info["step_time"])
        self._skipped += 0 if info["finite"] else 1
        last_in_epoch = info["step_in_epoch"] + 1 == trainer.steps_per_epoch
        if len(self._losses) < self.interval and not last_in_epoch:
            return
        times = sorted(self._times)
        step_time = times[len(times) // 2]
        done = trainer.global_step - self._start_step
        left = trainer.total_steps - trainer.global_step
        elapsed = time.perf_counter() - self._t_start
        eta = elapsed / max(done, 1) * left
        finite = [x for x in self._losses if math.isfinite(x)]
        record = {
            "epoch": info["epoch"] + 1, "step": info["step_in_epoch"] + 1,
            "global_step": trainer.global_step,
            "loss": sum(finite) / len(finite) if finite else float("nan"),
            "lr": info["lr"], "step_time_ms": 1000 * step_time,
            "images_per_s": trainer.global_batch_size / step_time if step_time > 0 else 0.0,
            "skipped_steps": self._skipped, "eta_s": eta,
        }
        if trainer.loss_scale_value is not None:
            record["loss_scale"] = trainer.loss_scale_value
        log.info("epoch %d/%d step %d/%d loss %.5f lr %.3g %.0f ms/step %.1f img/s ETA %s%s",
                 record["epoch"], trainer.epochs, record["step"], trainer.steps_per_epoch,
                 record["loss"], record["lr"], record["step_time_ms"], record["images_per_s"],
                 _hms(eta), f" (skipped {self._skipped} overflow steps)" if self._skipped else "")
        if self.jsonl_path and trainer.dist.is_main:
            with open(self.jsonl_path, "a") as f:
                f.write(json.dumps(record) + "\n")
        self._losses, self._times, self._skipped = [], [], 0


def _hms(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class CheckpointCallback(Callback):
    """Resumable checkpoint every ``interval`` epochs, keeping the last ``keep``; ``last`` always."""

    def __init__(self, directory, prefix, interval=1, keep=3, fmt="ckpt"):
        self.directory = Path(directory)
        self.prefix, self.interval, self.keep, self.suffix = prefix, max(1, interval), keep, f".{fmt}"
        self._written = []

    def on_epoch_end(self, trainer, epoch):
        if not trainer.dist.is_main:
            return
        trainer.save_resumable(self.directory / f"last{self.suffix}")
        last_epoch = epoch + 1 == trainer.epochs
        if (epoch + 1) % self.interval and not last_epoch:
            return
        path = trainer.save_resumable(self.directory / f"{self.prefix}-e{epoch + 1:03d}{self.suffix}")
        self._written.append(path)
        while self.keep > 0 and len(self._written) > self.keep:
            old = self._written.pop(0)
            if old.exists():
                old.unlink()
        log.info("saved %s", path)


class EvalCallback(Callback):
    """Runs ``evaluate(network) -> dict`` every ``interval`` epochs (and at the end) on rank 0,
    keeps the best checkpoint by ``metric`` and writes the results as JSON."""

    def __init__(self, evaluate, directory, metric=None, interval=0, higher_is_better=True,
                 fmt="ckpt"):
        self.evaluate, self.directory = evaluate, Path(directory)
        self.metric, self.interval, self.higher = metric, interval, higher_is_better
        self.suffix = f".{fmt}"
        self.best = None
        self.history = []

    def on_epoch_end(self, trainer, epoch):
        last_epoch = epoch + 1 == trainer.epochs
        due = self.interval > 0 and (epoch + 1) % self.interval == 0
        if not (due or last_epoch) or not trainer.dist.is_main:
            return
        trainer.network.set_train(False)
        if trainer.ema is not None:  # evaluate (and keep as best) the averaged weights
            trainer.ema.swap()
        try:
            result = dict(self.evaluate(trainer.network))
            result["ema"] = trainer.ema is not None
            best = self._update_best(trainer, result, epoch)
        finally:
            if trainer.ema is not None:
                trainer.ema.swap()
            trainer.network.set_train(True)
        if best:
            log.info("new best %s %.4f at epoch %d", self.metric, self.best, epoch + 1)

    def _update_best(self, trainer, result, epoch):
        result["epoch"] = epoch + 1
        self.history.append(result)
        log.info("eval epoch %d: %s", epoch + 1, ", ".join(
            f"{k} {v:.4f}" for k, v in result.items() if isinstance(v, float)))
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "eval_history.json", "w") as f:
            json.dump(self.history, f, indent=1)
        if self.metric is None:
            return False
        if self.metric not in result:
            raise KeyError(f"eval.metric '{self.metric}' not in the evaluation result "
                           f"(keys: {sorted(result)})")
        value = result[self.metric]
        better = self.best is None or (value > self.best if self.higher else value < self.best)
        if better:
            self.best = value
            trainer.save_weights(self.directory / f"best{self.suffix}", extra={"epoch": epoch + 1})
            with open(self.directory / "best.json", "w") as f:
                json.dump(result, f, indent=1)
        return better

"""Training callbacks: logging, checkpoints (last K, best), periodic evaluation.

Only rank 0 writes files; every rank logs with its rank in the line. Hooks: ``on_train_begin``,
``on_step_end(info)`` (host-side facts only: no device values, so it never syncs),
``on_log(record)`` (every ``train.log_interval`` steps, with the loss, its parts and the LR read
from the device), ``on_epoch_end(epoch)``, ``on_train_end``. A callback with state to resume
has ``state() -> {"train_state.<key>": value}`` and ``load_state(params, trainer)``.
"""
import json
import logging
import re
import time
from pathlib import Path

from common.engine.distributed import barrier

log = logging.getLogger("zoo")


class Callback:
    def on_train_begin(self, trainer):
        pass

    def on_step_end(self, trainer, info):
        pass

    def on_log(self, trainer, record):
        pass

    def on_epoch_end(self, trainer, epoch):
        pass

    def on_train_end(self, trainer):
        pass


class LogCallback(Callback):
    """Loss (and its named parts), LR, step time, images/s and ETA at every log point, also as
    JSON lines. ``interval`` sets the trainer's log interval when it is not given otherwise."""

    def __init__(self, interval=10, jsonl_path=None):
        self.interval = max(1, interval)
        self.jsonl_path = Path(jsonl_path) if jsonl_path else None

    def on_train_begin(self, trainer):
        self._t_start = time.perf_counter()
        self._start_step = trainer.global_step

    def on_log(self, trainer, record):
        done = trainer.global_step - self._start_step
        left = trainer.total_steps - trainer.global_step
        record = dict(record, eta_s=(time.perf_counter() - self._t_start) / max(done, 1) * left)
        parts = "".join(f" {k} {v:.4f}" for k, v in record.get("parts", {}).items())
        skipped = record["skipped_steps"]
        log.info("epoch %d/%d step %d/%d (iter %d/%d) loss %.5f%s lr %.3g %.0f ms/step %.1f img/s "
                 "ETA %s%s", record["epoch"], trainer.epochs, record["step"], trainer.steps_per_epoch,
                 trainer.global_step, trainer.total_steps, record["loss"], parts, record["lr"],
                 record["step_time_ms"], record["images_per_s"], _hms(record["eta_s"]),
                 f" (skipped {skipped} overflow steps)" if skipped else "")
        if self.jsonl_path and trainer.dist.is_main:
            self.jsonl_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.jsonl_path, "a") as f:
                f.write(json.dumps(record) + "\n")


def _hms(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class CheckpointCallback(Callback):
    """Resumable checkpoint every ``interval`` epochs (``<prefix>-e007``) and/or every
    ``interval_iters`` iterations (``<prefix>-it0005000``), keeping the last ``keep`` of them
    (0 = all); ``last`` is rewritten at every epoch end and iteration checkpoint.

    On resume the kept list is rebuilt from the files in the folder, so checkpoints written
    before an interruption are pruned like the others.
    """

    def __init__(self, directory, prefix, interval=1, keep=3, fmt="ckpt", interval_iters=0):
        self.directory = Path(directory)
        self.prefix, self.interval, self.keep, self.suffix = prefix, interval, keep, f".{fmt}"
        self.interval_iters = interval_iters
        self._written = []
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(e|it)(\d+){re.escape(self.suffix)}$")

    def _step_of(self, path, steps_per_epoch):
        kind, number = self._pattern.match(path.name).groups()
        return int(number) * steps_per_epoch if kind == "e" else int(number)

    def load_state(self, params, trainer):
        if not self.directory.is_dir():
            return
        spe = trainer.steps_per_epoch or 1
        found = [p for p in self.directory.iterdir() if self._pattern.match(p.name)]
        self._written = sorted(found, key=lambda p: self._step_of(p, spe))

    def _keep(self, path, trainer):
        if path in self._written:
            self._written.remove(path)
        self._written.append(path)
        while self.keep > 0 and len(self._written) > self.keep:
            old = self._written.pop(0)
            old.unlink(missing_ok=True)
        log.info("saved %s", path)

    def on_step_end(self, trainer, info):
        if not (self.interval_iters and trainer.global_step % self.interval_iters == 0):
            return
        if trainer.dist.is_main:
            trainer.save_resumable(self.directory / f"last{self.suffix}")
            path = trainer.save_resumable(self.directory / f"{self.prefix}-it{trainer.global_step:07d}"
                                          f"{self.suffix}")
            self._keep(path, trainer)

    def on_epoch_end(self, trainer, epoch):
        if not trainer.dist.is_main:
            return
        trainer.save_resumable(self.directory / f"last{self.suffix}")
        last_epoch = epoch + 1 == trainer.epochs
        due = self.interval > 0 and (epoch + 1) % self.interval == 0
        if not (due or (last_epoch and not self.interval_iters)):
            return
        self._keep(trainer.save_resumable(self.directory / f"{self.prefix}-e{epoch + 1:03d}{self.suffix}"),
                   trainer)


class EvalCallback(Callback):
    """Runs ``evaluate(network) -> dict`` every ``interval`` epochs (and at the end), keeps the
    best checkpoint by ``metric`` and writes the results as JSON.

    Distributed runs: rank 0 evaluates on the whole validation set while the other ranks wait
    at a barrier, so every rank leaves the epoch together (no sharded scores to gather, and
    exactly the single-device numbers). The best score is saved in resumable checkpoints, so
    a resumed run keeps ``best.ckpt`` unless it really does better.
    """

    def __init__(self, evaluate, directory, metric=None, interval=0, higher_is_better=True,
                 fmt="ckpt"):
        self.evaluate, self.directory = evaluate, Path(directory)
        self.metric, self.interval, self.higher = metric, interval, higher_is_better
        self.suffix = f".{fmt}"
        self.best, self.best_epoch = None, None
        self.history = []

    def state(self):
        if self.best is None:
            return {}
        return {"train_state.best_value": float(self.best), "train_state.best_epoch": int(self.best_epoch)}

    def load_state(self, params, trainer):
        if "train_state.best_value" in params:
            self.best = float(params["train_state.best_value"])
            self.best_epoch = int(params["train_state.best_epoch"])
        history = self.directory / "eval_history.json"
        if history.is_file():
            self.history = [h for h in json.loads(history.read_text()) if h.get("epoch", 0) <= trainer.epoch]

    def on_epoch_end(self, trainer, epoch):
        last_epoch = epoch + 1 == trainer.epochs
        due = self.interval > 0 and (epoch + 1) % self.interval == 0
        if not (due or last_epoch):
            return
        if trainer.dist.is_main:
            self._run(trainer, epoch)
        if trainer.dist.distributed:
            barrier()

    def _run(self, trainer, epoch):
        trainer.sync()
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
        result["global_step"] = trainer.global_step
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
            self.best, self.best_epoch = value, epoch + 1
            trainer.save_weights(self.directory / f"best{self.suffix}", extra={"epoch": epoch + 1})
            with open(self.directory / "best.json", "w") as f:
                json.dump(result, f, indent=1)
        return better

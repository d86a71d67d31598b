"""One training loop for every model: compiled step, AMP, loss scaling, clipping, data
parallelism, resumable checkpoints and signal handling.

The step never reads values back to the host: loss, loss parts, the finite flag and the
optimizer step are accumulated on the device (``self._stats``, returned by every step) and read
every ``log_interval`` steps, where the finite check is made exactly (the step of the first
non-finite loss is counted on the device). Non-finite steps never update the weights, so
reading late changes no result. Host reads of parameters (checkpoints, evaluation) first wait
for the last step's output (``sync``): a parameter read alone may overtake queued steps.
"""
import logging
import math
import signal
import time
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, amp, nn, ops

from common.checkpoint import CheckpointError, named_parameters, read_checkpoint
from common.config import ConfigError
from common.data.errors import dataset_error_from
from common.engine.amp import NoLossScaler, apply_amp
from common.engine.distributed import DistInfo
from common.engine.ema import WeightEMA
from common.engine.state import (
    CheckpointWriteError,
    check_resume_guard,
    clean_orphan_tmp_files,
    explain_missing,
    is_schedule_key,
    remove_paths,
    safe_save,
)

log = logging.getLogger("zoo")
# device statistics: steps, non-finite steps, current and max run of consecutive non-finite
# steps, first non-finite step (1-based within the window, 0 = none), optimizer step, loss sum,
# part sums
_STEPS, _BAD, _RUN, _MAX_RUN, _FIRST_BAD, _OPT_STEP, _LOSS = range(7)


class TrainingError(RuntimeError):
    """Training cannot continue (diverged, or interrupted after saving a checkpoint)."""

    exit_code = 1


class TrainingInterrupted(TrainingError):
    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + signum


class _WithLoss(nn.Cell):
    def __init__(self, network, loss_fn, num_inputs):
        super().__init__()
        self.network, self.loss_fn, self.num_inputs = network, loss_fn, num_inputs

    def construct(self, *batch):
        out = self.network(*batch[:self.num_inputs])
        return self.loss_fn(out, *batch[self.num_inputs:])


class Trainer:
    """Trains ``network`` with ``loss_fn(outputs, *targets)`` on a MindSpore dataset.

    The dataset yields ``num_inputs`` network inputs followed by the targets. A loss returns a
    scalar, or ``(total, parts)`` when it has a ``part_names`` attribute (only ``total`` is
    back-propagated; the parts are logged). ``sampler`` (optional) gets ``set_epoch(epoch)``
    before each epoch so shuffling is reproducible, and ``skip_next(n)`` on a mid-epoch resume so
    the consumed samples are not decoded again.
    """

    def __init__(self, network, loss_fn, optimizer, *, num_inputs=1, amp_level="O0",
                 loss_scaler=None, clip_grad_norm=None, dist=None, callbacks=(), output_dir=".",
                 max_steps_per_epoch=None, jit=True, max_overflow_steps=100, lr_schedule=None,
                 ema_decay=None, log_interval=None, resume_guard=None, run_files=None,
                 clear_on_start=(), sink_size=None, data_sink=None):
        self.network = network
        self.lr_schedule = lr_schedule  # for logging; the optimizer holds its own copy
        self.optimizer = optimizer
        self.dist = dist or DistInfo()
        self.callbacks = list(callbacks)
        self.output_dir = Path(output_dir)
        self.max_steps_per_epoch = max_steps_per_epoch
        self.max_overflow_steps = max_overflow_steps
        self.scaler = loss_scaler or NoLossScaler()
        intervals = [cb.interval for cb in self.callbacks if getattr(cb, "interval", None)
                     and hasattr(cb, "on_log")]
        self.log_interval = max(1, int(log_interval or min(intervals, default=10)))
        self.resume_guard = dict(resume_guard or {})
        self.run_files = dict(run_files or {})  # written by rank 0 when training really starts
        self.clear_on_start = list(clear_on_start)  # an overwritten run's old files
        self.part_names = tuple(getattr(loss_fn, "part_names", ()) or ())
        self.epoch, self.global_step, self.epochs = 0, 0, 0
        self.steps_per_epoch, self.total_steps, self.global_batch_size = 0, 0, 0
        # AMP may re-nest cells (O2 wraps BatchNorm), so names are fixed before it runs.
        self._weights = named_parameters(network)
        self.ema = WeightEMA(self._weights, ema_decay) if ema_decay else None
        self._stats = Parameter(Tensor(np.zeros(_LOSS + 1 + len(self.part_names), np.float32)),
                                name="train_stats", requires_grad=False)
        self._flags = (Tensor(False), Tensor(True))  # step input: reset the statistics first
        self._keep_run = (np.arange(_LOSS + 1 + len(self.part_names)) == _RUN).astype(np.float32)
        self._reset_next, self._last_stats = False, None
        amp_net = apply_amp(network, amp_level)
        self._loss_net = _WithLoss(amp_net, loss_fn, num_inputs)
        self._loss_net.set_train(True)
        self._step = self._build_step(clip_grad_norm, jit)
        # dataset sink mode: None = the host loop; -1 = one device launch per epoch; k > 0 = k steps
        self.sink_size, self._data_sink, self._sink, self._jit = sink_size, data_sink, None, jit
        self._sink_chunk = 0
        self._stop_signal = None
        self._window_start = (0, time.perf_counter())
        self.host_syncs = 0  # device-to-host reads made by the loop (measured, not estimated)

    # ----------------------------------------------------------------- compiled step
    def _build_step(self, clip_grad_norm, jit):
        scaler, optimizer, ema, stats = self.scaler, self.optimizer, self.ema, self._stats
        scaled = not isinstance(scaler, NoLossScaler)
        dynamic = isinstance(scaler, amp.DynamicLossScaler)
        has_parts = bool(self.part_names)
        if self.dist.distributed:
            reducer = nn.DistributedGradReducer(optimizer.parameters, mean=True,
                                                degree=self.dist.size)
        else:
            reducer = ops.identity

        def forward(*batch):
            out = self._loss_net(*batch)
            total, parts = (out[0], tuple(out[1])) if has_parts else (out, ())
            return (scaler.scale(total) if scaled else total), (total,) + parts

        grad_fn = ms.value_and_grad(forward, None, optimizer.parameters, has_aux=True)

        keep_run = Tensor(self._keep_run)

        def step(reset, *batch):
            (scaled_loss, values), grads = grad_fn(*batch)
            grads = reducer(grads)
            if scaled:
                grads = scaler.unscale(grads)
            # an overflowing loss can come with finite gradients: both must be finite
            finite = ops.logical_and(amp.all_finite(grads), ops.isfinite(scaled_loss).all())
            if dynamic:
                scaler.adjust(finite)
            if finite:
                if clip_grad_norm is not None:
                    grads = ops.clip_by_global_norm(grads, clip_grad_norm)
                optimizer(grads)
                if ema is not None:
                    ema()
            old = ops.select(reset, stats * keep_run, stats)
            bad = 1.0 - ops.cast(finite, ms.float32)
            steps = old[_STEPS] + 1.0
            run = (old[_RUN] + 1.0) * bad
            first = old[_FIRST_BAD] + ops.cast(old[_FIRST_BAD] == 0.0, ms.float32) * bad * steps
            opt_step = ops.cast(optimizer.global_step.reshape(()), ms.float32)
            sums = [ops.select(finite, ops.cast(v, ms.float32), ops.zeros((), ms.float32)) for v in values]
            new = ops.stack([steps, old[_BAD] + bad, run, ops.maximum(old[_MAX_RUN], run), first, opt_step]
                            + [old[_LOSS + i] + s for i, s in enumerate(sums)])
            ops.assign(stats, new)
            return new

        self._raw_step = step
        return ms.jit(step) if jit else step

    # ----------------------------------------------------------------- state
    @property
    def loss_scale_value(self):
        value = getattr(self.scaler, "scale_value", None)
        return None if value is None else float(value.asnumpy())

    def _optimizer_state(self):
        own = {id(p) for p in self._weights.values()}
        state = {f"optimizer.{p.name}": p for p in self.optimizer.get_parameters() if id(p) not in own}
        state = {k: v for k, v in state.items() if not is_schedule_key(k)}
        if self.ema is not None:
            state.update(self.ema.state())
        return state

    def _lr_at(self, step):
        if self.lr_schedule is None:
            return float("nan")
        if np.ndim(self.lr_schedule) == 0:
            return float(self.lr_schedule)
        return float(self.lr_schedule[min(max(step, 0), len(self.lr_schedule) - 1)])

    def sync(self):
        """Wait until every queued step has run (before reading parameters on the host)."""
        if self._last_stats is not None:
            self._last_stats.asnumpy()
            self.host_syncs += 1

    def save_weights(self, path, extra=None):
        self.sync()
        return safe_save({k: p.asnumpy() for k, p in self._weights.items()}, path, extra)

    def save_resumable(self, path):
        """Weights + optimizer state + epoch/step + loss scale + callback state, written atomically."""
        self.sync()
        params = {k: p.asnumpy() for k, p in self._weights.items()}
        params.update({k: p.asnumpy() for k, p in self._optimizer_state().items()})
        extra = {"train_state.epoch": self.epoch, "train_state.global_step": self.global_step,
                 "train_state.steps_per_epoch": self.steps_per_epoch}
        extra.update({f"train_state.cfg.{k}": str(v) for k, v in self.resume_guard.items()})
        for cb in self.callbacks:
            extra.update(getattr(cb, "state", dict)())
        for field in ("scale_value", "counter"):
            value = getattr(self.scaler, field, None)
            if value is not None:
                params[f"train_state.scaler_{field}"] = value.asnumpy()
        return safe_save(params, path, extra)

    def resume(self, path):
        """Restore weights, optimizer state and step (the LR schedule is the current config's,
        applied at the saved step), epoch, loss scale, best score and kept checkpoints."""
        params = read_checkpoint(path)
        check_resume_guard(path, params, self.resume_guard)
        targets = {**self._weights, **self._optimizer_state()}
        missing = [k for k in targets if k not in params]
        mismatched = [k for k in targets if k in params and params[k].shape != tuple(targets[k].shape)]
        if missing or mismatched:
            raise CheckpointError(f"{path}: not a resumable checkpoint of this model/optimizer "
                                  f"(check {explain_missing(missing + mismatched)}); "
                                  f"missing {missing[:10]} mismatched {mismatched[:10]}")
        for key, param in targets.items():
            param.set_data(ms.Tensor(params[key], dtype=param.dtype))
        for field in ("scale_value", "counter"):
            key = f"train_state.scaler_{field}"
            if key in params and getattr(self.scaler, field, None) is not None:
                getattr(self.scaler, field).set_data(ms.Tensor(params[key]))
        self.global_step = int(params["train_state.global_step"])
        self.epoch = int(params["train_state.epoch"])
        self._saved_steps_per_epoch = int(params.get("train_state.steps_per_epoch", 0))
        for cb in self.callbacks:
            if hasattr(cb, "load_state"):
                cb.load_state(params, self)
        log.info("resumed from %s at epoch %d, global step %d (LR schedule from the current config)",
                 path, self.epoch + 1, self.global_step)

    # ----------------------------------------------------------------- logging window
    def _read_window(self, epoch, step_in_epoch):
        """Read the device statistics (one host sync), check finiteness, reset the window."""
        if self._last_stats is None or self._reset_next:
            return None
        stats = self._last_stats.asnumpy()  # the step's output: waits for that step to finish
        self.host_syncs += 1
        if self._sink is not None:  # the device runs whole chunks: reset the window from the host
            self._stats.set_data(Tensor(stats * self._keep_run))
            self._last_stats = None
        else:
            self._reset_next = True
        opt_step = int(stats[_OPT_STEP])
        steps, bad = int(stats[_STEPS]), int(stats[_BAD])
        start_step, t0 = self._window_start
        now = time.perf_counter()
        self._window_start = (self.global_step, now)
        if steps == 0:
            return None
        if bad and isinstance(self.scaler, NoLossScaler):
            at = start_step + int(stats[_FIRST_BAD])
            raise TrainingError(f"non-finite loss at epoch {self.epoch + 1}, global step {at}; lower "
                                "optim.lr or enable amp.loss_scale=dynamic")
        if int(stats[_MAX_RUN]) >= self.max_overflow_steps:
            raise TrainingError(f"{int(stats[_MAX_RUN])} consecutive non-finite steps up to global step "
                                f"{self.global_step} (loss scale now {self.loss_scale_value}): loss "
                                "scaling cannot absorb it; the run has diverged")
        good = max(steps - bad, 1)
        step_time = (now - t0) / steps
        record = {
            "epoch": epoch + 1, "step": step_in_epoch + 1, "global_step": self.global_step,
            "loss": float(stats[_LOSS]) / good if steps > bad else float("nan"),
            "lr": self._lr_at(opt_step - 1), "step_time_ms": 1000 * step_time,
            "images_per_s": self.global_batch_size / step_time if step_time > 0 else 0.0,
            "skipped_steps": bad,
        }
        if self.part_names:
            record["parts"] = {n: float(stats[_LOSS + 1 + i]) / good for i, n in enumerate(self.part_names)}
        if self.loss_scale_value is not None:
            record["loss_scale"] = self.loss_scale_value
        return record

    def _log_window(self, epoch, step_in_epoch):
        record = self._read_window(epoch, step_in_epoch)
        if record is not None:
            self._call("on_log", record)

    # ----------------------------------------------------------------- loop
    def _install_signal_handlers(self):
        return {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def _on_signal(self, signum, _frame):
        self._stop_signal = signum
        log.warning("received %s: stopping after this step", signal.Signals(signum).name)

    def _call(self, hook, *args):
        """Run a callback hook; signals that arrive meanwhile (e.g. during evaluation) stop the
        run with a resumable checkpoint."""
        for cb in self.callbacks:
            getattr(cb, hook, lambda *a: None)(self, *args)
        # MindSpore's runtime and data pipeline install C-level SIGTERM handlers that exit at
        # once: take the signals back after every step and callback.
        self._install_signal_handlers()
        if self._stop_signal is not None:
            self._interrupt()

    def _plan(self, dataset, epochs, iters):
        size = dataset.get_dataset_size()
        if size == 0:
            raise TrainingError("the training dataset is empty (0 batches per epoch)")
        self.steps_per_epoch = min(size, self.max_steps_per_epoch or size)
        if iters:
            self.total_steps = int(iters)
            self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        else:
            self.epochs, self.total_steps = epochs, epochs * self.steps_per_epoch
        self.global_batch_size = dataset.get_batch_size() * self.dist.size
        if self.sink_size is not None:
            self._sink_chunk = self._plan_sink(size)

    def _plan_sink(self, size):
        """Steps per device launch in sink mode; every launch must end inside one epoch, at the
        epoch's end or at the run's end, for the epoch callbacks and checkpoints to stay exact."""
        chunk = self.steps_per_epoch if self.sink_size in (-1, 0) else int(self.sink_size)
        if self.steps_per_epoch != size:
            raise ConfigError(f"train.sink=true needs whole epochs: train.max_steps_per_epoch "
                              f"{self.max_steps_per_epoch} < {size} batches per epoch")
        if chunk < 1 or self.steps_per_epoch % chunk or self.total_steps % chunk:
            raise ConfigError(f"train.sink_size {self.sink_size} must divide the {self.steps_per_epoch} "
                              f"steps per epoch and the {self.total_steps} steps of the run")
        for cb in self.callbacks:
            every = getattr(cb, "interval_iters", None)
            if every and every % chunk:
                raise ConfigError(f"ckpt.interval_iters {every} must be a multiple of the {chunk} steps "
                                  "of a sink launch (train.sink_size)")
        return chunk

    def _start(self, start_from, dataset):
        self._saved_steps_per_epoch = 0
        if start_from is not None:
            self.resume(start_from)
        saved = self._saved_steps_per_epoch
        if saved and saved != self.steps_per_epoch:  # epoch and step would disagree from here on
            raise CheckpointError(
                f"{start_from}: saved with {saved} steps per epoch, now {self.steps_per_epoch}: "
                "train.batch_size, train.max_steps_per_epoch, the number of devices or the dataset "
                "changed; resume with the old values, or start a new run from its weights "
                "(train.pretrained)")
        skip = self.global_step - self.epoch * self.steps_per_epoch
        if self.dist.is_main:
            remove_paths(self.clear_on_start)
            clean_orphan_tmp_files(self.output_dir / "checkpoints")
            self.output_dir.mkdir(parents=True, exist_ok=True)
            for name, text in self.run_files.items():
                (self.output_dir / name).write_text(text)
        return skip

    def fit(self, dataset, epochs, sampler=None, start_from=None, iters=None):
        """Train for ``epochs`` epochs, or ``iters`` iterations when given (the last epoch may
        then end early), counting from 0 or from a resumed position."""
        sampler = sampler if sampler is not None else getattr(dataset, "epoch_sampler", None)
        self._plan(dataset, epochs, iters)
        skip = self._start(start_from, dataset)
        old_handlers = self._install_signal_handlers()
        try:
            self._call("on_train_begin")
            self._window_start = (self.global_step, time.perf_counter())
            while self.epoch < self.epochs and self.global_step < self.total_steps:
                self._run_epoch(dataset, sampler, skip)
                skip = 0
                self.epoch += 1
                self._call("on_epoch_end", self.epoch - 1)
            self._call("on_train_end")
            self.sync()
        except CheckpointWriteError as exc:
            raise TrainingError(str(exc)) from None
        finally:
            for s, handler in old_handlers.items():
                signal.signal(s, handler)
        return self

    def _run_epoch(self, dataset, sampler, skip):
        try:
            if self.sink_size is not None and skip == 0:
                self._run_epoch_sink(dataset, sampler)
            else:  # in sink mode the host loop finishes an epoch that a resume entered in the middle
                self._run_epoch_host(dataset, sampler, skip)
        except RuntimeError as exc:  # MindSpore wraps a failing sample: name its files in one line
            data_error = dataset_error_from(exc)
            if data_error is None:
                raise
            raise data_error from None

    def _run_epoch_host(self, dataset, sampler, skip):
        if sampler is not None:
            sampler.set_epoch(self.epoch)
            if skip and hasattr(sampler, "skip_next"):
                # the consumed samples come back as cheap placeholders, not decoded again
                sampler.skip_next(skip * dataset.get_batch_size())
        iterator = dataset.create_tuple_iterator(num_epochs=1)
        i = -1
        try:
            for i, batch in enumerate(iterator):
                if i >= self.steps_per_epoch or self.global_step >= self.total_steps:
                    break
                if i < skip:
                    continue
                t0 = time.perf_counter()
                self._last_stats = self._step(self._flags[self._reset_next], *batch)
                self._reset_next = False
                self._install_signal_handlers()
                self.global_step += 1
                last = i + 1 == self.steps_per_epoch or self.global_step == self.total_steps
                if self.global_step % self.log_interval == 0 or last or self._stop_signal is not None:
                    self._log_window(self.epoch, i)
                self._call("on_step_end", {"epoch": self.epoch, "step_in_epoch": i,
                                           "step_time": time.perf_counter() - t0})
        finally:
            if sampler is not None and hasattr(sampler, "skip_next"):
                sampler.skip_next(0)

    def _run_epoch_sink(self, dataset, sampler):
        """One epoch in dataset sink mode: ``ms.data_sink`` launches ``chunk`` steps at a time on
        the device, which pulls the batches from its queue. The pipeline runs on over the epochs
        (the sampler counts epochs by itself), so it is built once, at the first sink epoch."""
        if self._sink is None:
            if sampler is not None:
                sampler.set_epoch(self.epoch)
            flag = self._flags[0]
            raw = self._raw_step

            def sink_step(*batch):
                return raw(flag, *batch)

            sink = self._data_sink or ms.data_sink
            self._sink = sink(sink_step, dataset, sink_size=self._sink_chunk,
                              jit_config=ms.JitConfig() if self._jit else None)
            if self._reset_next:  # a host-loop epoch (resumed mid-epoch) logged its last window
                self._stats.set_data(Tensor(self._stats.asnumpy() * self._keep_run))
                self._reset_next, self._last_stats = False, None
        chunk = self._sink_chunk
        for end in range(chunk, self.steps_per_epoch + 1, chunk):
            if self.global_step >= self.total_steps:
                break
            t0 = time.perf_counter()
            self._last_stats = self._sink()
            self._install_signal_handlers()
            self.global_step += chunk
            self._log_window(self.epoch, end - 1)
            self._call("on_step_end", {"epoch": self.epoch, "step_in_epoch": end - 1,
                                       "step_time": (time.perf_counter() - t0) / chunk})

    def _interrupt(self):
        signum, self._stop_signal = self._stop_signal, None
        path = self.output_dir / "checkpoints" / "interrupted.ckpt"
        if self.dist.is_main:
            self.save_resumable(path)
        raise TrainingInterrupted(f"interrupted by {signal.Signals(signum).name} at global step "
                                  f"{self.global_step}; resumable checkpoint: {path} "
                                  f"(continue with --resume {path})", signum)


def seed_everything(seed):
    ms.set_seed(seed)
    np.random.seed(seed)
    ms.dataset.config.set_seed(seed)

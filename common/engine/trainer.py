"""One training loop for every model: compiled step, AMP, loss scaling, clipping, data
parallelism, resumable checkpoints and signal handling."""
import logging
import math
import signal
import time
from pathlib import Path

import numpy as np

import mindspore as ms
from mindspore import amp, nn, ops

from common.checkpoint import CheckpointError, named_parameters, read_checkpoint, save_checkpoint
from common.engine.amp import NoLossScaler, apply_amp
from common.engine.distributed import DistInfo
from common.engine.ema import WeightEMA

log = logging.getLogger("zoo")


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

    The dataset yields ``num_inputs`` network inputs followed by the targets. ``sampler``
    (optional) gets ``set_epoch(epoch)`` before each epoch so shuffling is reproducible and a
    resumed run sees the same order as an uninterrupted one.
    """

    def __init__(self, network, loss_fn, optimizer, *, num_inputs=1, amp_level="O0",
                 loss_scaler=None, clip_grad_norm=None, dist=None, callbacks=(), output_dir=".",
                 max_steps_per_epoch=None, jit=True, max_overflow_steps=100, lr_schedule=None,
                 ema_decay=None):
        self.network = network
        self.lr_schedule = lr_schedule  # for logging; the optimizer holds its own copy
        self.optimizer = optimizer
        self.dist = dist or DistInfo()
        self.callbacks = list(callbacks)
        self.output_dir = Path(output_dir)
        self.max_steps_per_epoch = max_steps_per_epoch
        self.max_overflow_steps = max_overflow_steps
        self.scaler = loss_scaler or NoLossScaler()
        self.epoch, self.global_step, self.epochs = 0, 0, 0
        self.steps_per_epoch, self.total_steps, self.global_batch_size = 0, 0, 0
        # AMP may re-nest cells (O2 wraps BatchNorm), so names are fixed before it runs.
        self._weights = named_parameters(network)
        self.ema = WeightEMA(self._weights, ema_decay) if ema_decay else None
        amp_net = apply_amp(network, amp_level)
        self._loss_net = _WithLoss(amp_net, loss_fn, num_inputs)
        self._loss_net.set_train(True)
        self._step = self._build_step(clip_grad_norm, jit)
        self._stop_signal = None

    # ----------------------------------------------------------------- compiled step
    def _build_step(self, clip_grad_norm, jit):
        scaler, optimizer, ema = self.scaler, self.optimizer, self.ema
        scaled = not isinstance(scaler, NoLossScaler)
        dynamic = isinstance(scaler, amp.DynamicLossScaler)
        if self.dist.distributed:
            reducer = nn.DistributedGradReducer(optimizer.parameters, mean=True,
                                                degree=self.dist.size)
        else:
            reducer = ops.identity

        def forward(*batch):
            loss = self._loss_net(*batch)
            return scaler.scale(loss) if scaled else loss

        grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

        def step(*batch):
            loss, grads = grad_fn(*batch)
            grads = reducer(grads)
            if scaled:
                loss = scaler.unscale(loss)
                grads = scaler.unscale(grads)
            # an overflowing loss can come with finite gradients: both must be finite
            finite = ops.logical_and(amp.all_finite(grads), ops.isfinite(loss).all())
            if dynamic:
                scaler.adjust(finite)
            if finite:
                if clip_grad_norm is not None:
                    grads = ops.clip_by_global_norm(grads, clip_grad_norm)
                optimizer(grads)
                if ema is not None:
                    ema()
            return loss, finite

        return ms.jit(step) if jit else step

    # ----------------------------------------------------------------- state
    @property
    def loss_scale_value(self):
        value = getattr(self.scaler, "scale_value", None)
        return None if value is None else float(value.asnumpy())

    def _optimizer_state(self):
        own = {id(p) for p in self._weights.values()}
        state = {f"optimizer.{p.name}": p for p in self.optimizer.get_parameters() if id(p) not in own}
        if self.ema is not None:
            state.update(self.ema.state())
        return state

    def _current_lr(self):
        if self.lr_schedule is None:
            return float("nan")
        if np.ndim(self.lr_schedule) == 0:
            return float(self.lr_schedule)
        step = int(self.optimizer.global_step.asnumpy().reshape(-1)[0])
        return float(self.lr_schedule[min(step, len(self.lr_schedule) - 1)])

    def save_weights(self, path, extra=None):
        return save_checkpoint({k: p.asnumpy() for k, p in self._weights.items()}, path, extra)

    def save_resumable(self, path):
        """Weights + optimizer state + epoch/step + loss scale, written atomically."""
        params = {k: p.asnumpy() for k, p in self._weights.items()}
        params.update({k: p.asnumpy() for k, p in self._optimizer_state().items()})
        extra = {"train_state.epoch": self.epoch, "train_state.global_step": self.global_step}
        for field in ("scale_value", "counter"):
            value = getattr(self.scaler, field, None)
            if value is not None:
                params[f"train_state.scaler_{field}"] = value.asnumpy()
        return save_checkpoint(params, path, extra)

    def resume(self, path):
        """Restore weights, optimizer state (and so the LR position), epoch, step, loss scale."""
        params = read_checkpoint(path)
        targets = {**self._weights, **self._optimizer_state()}
        missing = [k for k in targets if k not in params]
        mismatched = [k for k in targets if k in params and params[k].shape != tuple(targets[k].shape)]
        if missing or mismatched:
            raise CheckpointError(f"{path}: not a resumable checkpoint of this model/optimizer; "
                                  f"missing {missing[:10]} mismatched {mismatched[:10]}")
        for key, param in targets.items():
            param.set_data(ms.Tensor(params[key], dtype=param.dtype))
        for field in ("scale_value", "counter"):
            key = f"train_state.scaler_{field}"
            if key in params and getattr(self.scaler, field, None) is not None:
                getattr(self.scaler, field).set_data(ms.Tensor(params[key]))
        self.global_step = int(params["train_state.global_step"])
        self.epoch = int(params["train_state.epoch"])
        log.info("resumed from %s at epoch %d, global step %d", path, self.epoch + 1, self.global_step)

    # ----------------------------------------------------------------- loop
    def _install_signal_handlers(self):
        return {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def _on_signal(self, signum, _frame):
        self._stop_signal = signum
        log.warning("received %s: stopping after this step", signal.Signals(signum).name)

    def _check_finite(self, loss, finite, overflow_run):
        if finite and math.isfinite(loss):
            return 0
        if isinstance(self.scaler, NoLossScaler):
            raise TrainingError(f"non-finite loss ({loss}) at epoch {self.epoch + 1}, global step "
                                f"{self.global_step}; lower optim.lr or enable amp.loss_scale=dynamic")
        overflow_run += 1
        if overflow_run >= self.max_overflow_steps:
            raise TrainingError(f"{overflow_run} consecutive non-finite steps up to global step "
                                f"{self.global_step} (loss scale now {self.loss_scale_value}): loss "
                                "scaling cannot absorb it; the run has diverged")
        return overflow_run

    def fit(self, dataset, epochs, sampler=None, start_from=None):
        """Train for ``epochs`` epochs (counting from 0, or from a resumed position)."""
        if start_from is not None:
            self.resume(start_from)
        sampler = sampler if sampler is not None else getattr(dataset, "epoch_sampler", None)
        size = dataset.get_dataset_size()
        if size == 0:
            raise TrainingError("the training dataset is empty (0 batches per epoch)")
        self.steps_per_epoch = min(size, self.max_steps_per_epoch or size)
        self.epochs, self.total_steps = epochs, epochs * self.steps_per_epoch
        self.global_batch_size = dataset.get_batch_size() * self.dist.size
        skip = self.global_step - self.epoch * self.steps_per_epoch
        old_handlers = self._install_signal_handlers()
        try:
            for cb in self.callbacks:
                cb.on_train_begin(self)
            overflow_run = 0
            while self.epoch < epochs:
                if sampler is not None:
                    sampler.set_epoch(self.epoch)
                iterator = dataset.create_tuple_iterator(num_epochs=1)
                for i, batch in enumerate(iterator):
                    if i >= self.steps_per_epoch:
                        break
                    if i < skip:
                        continue
                    lr = self._current_lr()
                    t0 = time.perf_counter()
                    loss, finite = self._step(*batch)
                    loss, finite = float(loss.asnumpy()), bool(finite.asnumpy())
                    # MindSpore's runtime and data pipeline install C-level SIGTERM handlers
                    # that exit at once: take the signals back after every step.
                    self._install_signal_handlers()
                    step_time = time.perf_counter() - t0
                    self.global_step += 1
                    overflow_run = self._check_finite(loss, finite, overflow_run)
                    info = {"epoch": self.epoch, "step_in_epoch": i, "loss": loss, "lr": lr,
                            "finite": finite, "step_time": step_time}
                    for cb in self.callbacks:
                        cb.on_step_end(self, info)
                    if self._stop_signal is not None:
                        self._interrupt()
                skip = 0
                self.epoch += 1
                for cb in self.callbacks:
                    cb.on_epoch_end(self, self.epoch - 1)
            for cb in self.callbacks:
                cb.on_train_end(self)
        finally:
            for s, handler in old_handlers.items():
                signal.signal(s, handler)
        return self

    def _interrupt(self):
        signum = self._stop_signal
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

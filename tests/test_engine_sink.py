"""Dataset sink mode (train.sink) through the engine's own loop. MindSpore 2.10 refuses
``ms.data_sink`` on CPU, so these tests give the trainer a stand-in with the same contract: one
pipeline iterator across epochs, ``sink_size`` steps per call, the last step's output returned.
Everything else (chunking, the device statistics window, logging, signals, resume) is the code
that runs on GPU/Ascend."""
import os
import signal

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from common.checkpoint import state_dict
from common.config import ConfigError
from common.engine.callbacks import Callback, CheckpointCallback
from common.engine.lr import build_lr_schedule
from common.engine.optim import build_optimizer
from common.engine.trainer import Trainer, TrainingInterrupted, seed_everything
from tests.engine_utils import TinyNet, tiny_data

ms.set_device("CPU")


class FakeSink:
    """``ms.data_sink(fn, dataset, sink_size, jit_config)`` run on the host."""

    def __init__(self):
        self.calls = []

    def __call__(self, fn, dataset, sink_size=1, jit_config=None):
        self.calls.append((sink_size, jit_config))
        iterator = dataset.create_tuple_iterator(num_epochs=-1)

        def batch():
            try:
                return next(iterator)
            except StopIteration:  # an epoch ended: the same iterator goes on with the next
                return next(iterator)

        def launch():
            out = None
            for _ in range(sink_size):
                out = fn(*batch())
            return out

        return launch


class Records(Callback):
    def __init__(self, signal_at=None):
        self.logs, self.signal_at = [], signal_at

    def on_log(self, trainer, record):
        self.logs.append(record)

    def on_step_end(self, trainer, info):
        if trainer.global_step == self.signal_at:
            os.kill(os.getpid(), signal.SIGTERM)


def _trainer(out, sink_size=None, sink=None, callbacks=(), log_interval=4):
    seed_everything(0)
    net = TinyNet()
    lrs = build_lr_schedule("multistep", 0.05, 4, 3, milestones=[2])
    optim = build_optimizer("momentum", net.trainable_params(), lrs)
    return Trainer(net, nn.CrossEntropyLoss(), optim, output_dir=out, lr_schedule=lrs,
                   log_interval=log_interval, callbacks=list(callbacks), sink_size=sink_size,
                   data_sink=sink)


def test_one_launch_per_epoch_trains_as_the_host_loop_with_one_read_per_launch(tmp_path):
    host_logs, sink_logs, sink = Records(), Records(), FakeSink()
    host = _trainer(tmp_path / "host", callbacks=[host_logs]).fit(tiny_data(), epochs=3)
    sunk = _trainer(tmp_path / "sink", -1, sink, [sink_logs]).fit(tiny_data(), epochs=3)
    assert len(sink.calls) == 1 and sink.calls[0][0] == 4          # built once, 4 steps a launch
    assert isinstance(sink.calls[0][1], ms.JitConfig)               # compiled on the device
    for k, v in state_dict(host.network).items():
        np.testing.assert_allclose(state_dict(sunk.network)[k], v, rtol=1e-6, atol=1e-7, err_msg=k)
    assert [r["global_step"] for r in sink_logs.logs] == [4, 8, 12] == [r["global_step"] for r in host_logs.logs]
    for a, b in zip(sink_logs.logs, host_logs.logs):  # the window mean of the same 4 steps
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["lr"] == pytest.approx(b["lr"])
    assert sunk.host_syncs == 3


def test_sigterm_between_launches_then_resume_equals_an_uninterrupted_run(tmp_path):
    full = _trainer(tmp_path / "full", 2, FakeSink()).fit(tiny_data(), epochs=3)
    cut_dir = tmp_path / "cut"
    ckpts = CheckpointCallback(cut_dir / "checkpoints", "tiny", interval=1, keep=3)
    with pytest.raises(TrainingInterrupted):
        _trainer(cut_dir, 2, FakeSink(), [ckpts, Records(signal_at=6)]).fit(tiny_data(), epochs=3)
    resumed_sink = FakeSink()
    # global step 6 is mid epoch 2: the host loop finishes that epoch, then sink launches resume
    resumed = _trainer(cut_dir, 2, resumed_sink).fit(
        tiny_data(), epochs=3, start_from=cut_dir / "checkpoints" / "interrupted.ckpt")
    assert resumed.global_step == 12 and len(resumed_sink.calls) == 1
    for k, v in state_dict(full.network).items():
        np.testing.assert_allclose(state_dict(resumed.network)[k], v, rtol=1e-6, atol=1e-7, err_msg=k)


@pytest.mark.parametrize("kwargs, iters, message", [
    ({"sink_size": 3}, None, "train.sink_size 3 must divide the 4 steps per epoch"),
    ({"sink_size": 4}, 6, "must divide the 4 steps per epoch and the 6 steps of the run"),
])
def test_launches_that_would_cross_an_epoch_or_the_end_are_refused(tmp_path, kwargs, iters, message):
    t = _trainer(tmp_path, sink=FakeSink(), **kwargs)
    with pytest.raises(ConfigError, match=message):
        t.fit(tiny_data(), epochs=3, iters=iters)


def test_partial_epochs_and_off_grid_iteration_checkpoints_are_refused(tmp_path):
    t = _trainer(tmp_path, -1, FakeSink())
    t.max_steps_per_epoch = 2
    with pytest.raises(ConfigError, match="needs whole epochs: train.max_steps_per_epoch 2 < 4"):
        t.fit(tiny_data(), epochs=1)
    ckpt = CheckpointCallback(tmp_path / "c", "tiny", interval=1, keep=1, interval_iters=3)
    with pytest.raises(ConfigError, match="ckpt.interval_iters 3 must be a multiple of the 2 steps"):
        _trainer(tmp_path, 2, FakeSink(), [ckpt]).fit(tiny_data(), epochs=1)

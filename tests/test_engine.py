import math
import os
import signal

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from common.checkpoint import read_checkpoint, state_dict
from common.engine.amp import build_loss_scaler
from common.engine.callbacks import Callback, CheckpointCallback, EvalCallback
from common.engine.lr import build_lr_schedule
from common.engine.optim import build_optimizer, param_groups
from common.engine.trainer import Trainer, TrainingError, TrainingInterrupted, seed_everything
from tests.engine_utils import TinyNet, tiny_data

ms.set_device("CPU")


# ------------------------------------------------------------------ schedules (hand values)
def test_cosine_with_warmup_values():
    lrs = build_lr_schedule("cosine", 0.1, steps_per_epoch=10, epochs=2, warmup_epochs=0.5,
                            warmup_init_lr=0.0, min_lr=0.0)
    assert len(lrs) == 20
    np.testing.assert_allclose(lrs[:6], [0.0, 0.02, 0.04, 0.06, 0.08, 0.1], rtol=1e-6)
    # after warm-up: 15 cosine steps; step 19 is 14/15 of the way
    assert lrs[19] == pytest.approx(0.05 * (1 + math.cos(math.pi * 14 / 15)), rel=1e-5)
    assert lrs[12] == pytest.approx(0.05 * (1 + math.cos(math.pi * 7 / 15)), rel=1e-5)


def test_multistep_poly_constant_values():
    ms_lr = build_lr_schedule("multistep", 0.1, 5, 4, milestones=[1, 3], gamma=0.1)
    np.testing.assert_allclose(ms_lr[[0, 4, 5, 14, 15, 19]], [0.1, 0.1, 0.01, 0.01, 0.001, 0.001],
                               rtol=1e-6)
    poly = build_lr_schedule("poly", 0.01, 10, 1, power=0.9)
    assert poly[0] == pytest.approx(0.01)
    assert poly[5] == pytest.approx(0.01 * 0.5 ** 0.9, rel=1e-6)
    np.testing.assert_allclose(build_lr_schedule("constant", 0.3, 3, 2), np.full(6, 0.3), rtol=1e-6)
    with pytest.raises(ValueError, match="unknown lr schedule 'cosin'"):
        build_lr_schedule("cosin", 0.1, 1, 1)


def test_weight_decay_groups_exclude_bn_and_bias():
    net = TinyNet()
    groups = param_groups(net.trainable_params(), 1e-4, no_decay_bn_bias=True)
    decay = {p.name for p in groups[0]["params"]}
    no_decay = {p.name for p in groups[1]["params"]}
    assert decay == {"conv.weight", "fc.weight"}
    assert no_decay == {"conv.bias", "bn.gamma", "bn.beta", "fc.bias"}
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        build_optimizer("adamm", net.trainable_params(), 0.1)


# ------------------------------------------------------------------ training and resume
def _trainer(out, scaler="dynamic", callbacks=(), clip=None, amp="O0", opt="adam", lr=None):
    seed_everything(0)
    net = TinyNet()
    lrs = build_lr_schedule("cosine", 0.05, 4, 1) if lr is None else lr
    optim = build_optimizer(opt, net.trainable_params(), lrs, weight_decay=1e-4)
    return Trainer(net, nn.CrossEntropyLoss(), optim, loss_scaler=build_loss_scaler(scaler, 1024.0),
                   callbacks=list(callbacks), output_dir=out, clip_grad_norm=clip, amp_level=amp,
                   lr_schedule=lrs)


class _SignalAt(Callback):
    def __init__(self, step, signum):
        self.step, self.signum = step, signum

    def on_step_end(self, trainer, info):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def test_interrupt_and_resume_equals_uninterrupted(tmp_path):
    full = _trainer(tmp_path / "a").fit(tiny_data(), epochs=1)
    expected = state_dict(full.network)

    t = _trainer(tmp_path / "b", callbacks=[_SignalAt(2, signal.SIGTERM)])
    with pytest.raises(TrainingInterrupted) as exc:
        t.fit(tiny_data(), epochs=1)
    assert exc.value.exit_code == 143
    ckpt = tmp_path / "b" / "checkpoints" / "interrupted.ckpt"
    assert int(read_checkpoint(ckpt)["train_state.global_step"]) == 2

    resumed = _trainer(tmp_path / "c")
    resumed.fit(tiny_data(), epochs=1, start_from=ckpt)
    assert resumed.global_step == 4
    assert int(resumed.optimizer.global_step.asnumpy()[0]) == 4   # LR position restored
    for k, v in state_dict(resumed.network).items():
        np.testing.assert_allclose(v, expected[k], atol=1e-6, err_msg=k)


def test_epoch_checkpoints_keep_last_k_and_resume_across_epochs(tmp_path):
    lrs = build_lr_schedule("multistep", 0.05, 2, 4, milestones=[2])
    full = _trainer(tmp_path / "a", lr=lrs).fit(tiny_data(n=8), epochs=4)
    ck = CheckpointCallback(tmp_path / "b" / "ck", "tiny", interval=1, keep=2)
    _trainer(tmp_path / "b", callbacks=[ck], lr=lrs).fit(tiny_data(n=8), epochs=2)
    assert sorted(p.name for p in (tmp_path / "b" / "ck").iterdir()) == [
        "last.ckpt", "tiny-e001.ckpt", "tiny-e002.ckpt"]
    resumed = _trainer(tmp_path / "c", lr=lrs)
    resumed.fit(tiny_data(n=8), epochs=4, start_from=tmp_path / "b" / "ck" / "last.ckpt")
    for k, v in state_dict(resumed.network).items():
        np.testing.assert_allclose(v, state_dict(full.network)[k], atol=1e-6, err_msg=k)


def test_dynamic_loss_scale_skips_overflow_and_lowers_scale(tmp_path):
    seed_everything(0)
    net = TinyNet()
    optim = build_optimizer("sgd", net.trainable_params(), 0.1)
    scaler = build_loss_scaler("dynamic", 2.0 ** 127, scale_factor=2, scale_window=1000)
    trainer = Trainer(net, nn.CrossEntropyLoss(reduction="sum"), optim, loss_scaler=scaler,
                      output_dir=tmp_path, max_steps_per_epoch=1)
    before = state_dict(net)
    trainer.fit(tiny_data(), epochs=1)   # loss (~2.8) x 2**127 overflows float32
    assert trainer.loss_scale_value == 2.0 ** 126
    for k, v in state_dict(net).items():
        if "moving" not in k:
            np.testing.assert_array_equal(v, before[k], err_msg=f"{k} changed on an overflow step")


def test_non_finite_loss_without_scaling_stops_clearly(tmp_path):
    lrs = np.full(8, 1e30, np.float32)
    t = _trainer(tmp_path, scaler="none", opt="sgd", lr=lrs)
    with pytest.raises(TrainingError, match="non-finite loss"):
        t.fit(tiny_data(), epochs=2)


def test_gradient_clipping_bounds_the_update(tmp_path):
    seed_everything(0)
    net = TinyNet()
    optim = build_optimizer("sgd", net.trainable_params(), 1.0)
    t = Trainer(net, nn.CrossEntropyLoss(), optim, clip_grad_norm=1e-3, output_dir=tmp_path,
                max_steps_per_epoch=1)
    before = {k: v for k, v in state_dict(net).items() if "moving" not in k}
    t.fit(tiny_data(), epochs=1)
    after = state_dict(net)
    delta = math.sqrt(sum(float(((after[k] - v) ** 2).sum()) for k, v in before.items()))
    assert 0 < delta <= 1e-3 * (1 + 1e-4)


@pytest.mark.parametrize("level", ["O1", "O2", "O3"])
def test_amp_levels_train_with_float32_batchnorm(tmp_path, level):
    t = _trainer(tmp_path, amp=level)
    t.fit(tiny_data(), epochs=1)
    bn_cells = [c for _, c in t._loss_net.cells_and_names() if isinstance(c, nn.BatchNorm2d)]
    assert bn_cells and all(c.get_flags().get("fp32") for c in bn_cells)
    assert all(np.isfinite(v).all() for v in state_dict(t.network).values())
    # names of the saved weights are the network's own, not AMP's wrappers
    saved = read_checkpoint(t.save_weights(tmp_path / "w.ckpt"))
    assert set(saved) == set(state_dict(TinyNet()))


def test_eval_callback_keeps_best(tmp_path):
    scores = iter([0.5, 0.9, 0.7])
    cb = EvalCallback(lambda net: {"acc": next(scores)}, tmp_path / "ev", metric="acc", interval=1)
    _trainer(tmp_path, callbacks=[cb], lr=build_lr_schedule("constant", 0.01, 4, 3)).fit(
        tiny_data(), epochs=3)
    assert cb.best == 0.9
    assert (tmp_path / "ev" / "best.ckpt").exists()
    assert [h["epoch"] for h in cb.history] == [1, 2, 3]


def test_weight_ema_follows_the_formula_and_resumes(tmp_path):
    snapshots = []

    class Snap(Callback):
        def on_step_end(self, trainer, info):
            trainer.sync()  # the step runs asynchronously: wait before reading weights
            snapshots.append(state_dict(trainer.network)["fc.weight"])

    def make(out, callbacks=()):
        seed_everything(0)
        net = TinyNet()
        optim = build_optimizer("sgd", net.trainable_params(), 0.1)
        return Trainer(net, nn.CrossEntropyLoss(), optim, output_dir=out, ema_decay=0.5,
                       callbacks=list(callbacks))

    t = make(tmp_path / "a", [Snap()])
    initial = state_dict(t.network)["fc.weight"]
    t.fit(tiny_data(), epochs=1)
    expected = initial
    for w in snapshots:               # ema <- 0.5 ema + 0.5 w after every step
        expected = 0.5 * expected + 0.5 * w
    got = t.ema.state()["ema.fc.weight"].asnumpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)

    t2 = make(tmp_path / "b", [_SignalAt(2, signal.SIGTERM)])
    with pytest.raises(TrainingInterrupted):
        t2.fit(tiny_data(), epochs=1)
    t3 = make(tmp_path / "c")
    t3.fit(tiny_data(), epochs=1, start_from=tmp_path / "b" / "checkpoints" / "interrupted.ckpt")
    np.testing.assert_allclose(t3.ema.state()["ema.fc.weight"].asnumpy(), expected, atol=1e-6)

"""Engine features for the next models: parameter groups, named loss parts, iteration-based
training with mid-epoch resume, resume that keeps the best score and the kept checkpoints,
resume with a changed config, fewer host syncs, and the finite check counted on the device."""
import json
import os
import signal
import sys

import mindspore as ms
import mindspore.dataset as ds
import numpy as np
import pytest
from mindspore import nn

from common.checkpoint import CheckpointError, named_parameters, read_checkpoint, state_dict
from common.config import ENGINE_DEFAULTS, ConfigError, load_config
from common.engine.builder import lr_schedule_from_config
from common.engine.callbacks import Callback, CheckpointCallback, EvalCallback, LogCallback
from common.engine.lr import build_lr_schedule
from common.engine.optim import build_optimizer
from common.engine.param_groups import resolve_param_groups
from common.engine.trainer import Trainer, TrainingError, TrainingInterrupted, seed_everything
from tests.engine_utils import TinyNet, tiny_data

ms.set_device("CPU")


class SignalAt(Callback):
    def __init__(self, step, signum=signal.SIGTERM):
        self.step, self.signum = step, signum

    def on_step_end(self, trainer, info):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


# ------------------------------------------------------------------ parameter groups
RULES = [{"pattern": "conv.*", "lr_mult": 0.1}, {"pattern": "*.bias", "lr_mult": 2.0, "weight_decay": 0}]


def test_param_groups_first_match_wins_with_decay_split():
    groups = resolve_param_groups(named_parameters(TinyNet()), RULES, 1e-4, no_decay_bn_bias=True)
    got = {(g.label, g.lr_mult, g.weight_decay): sorted(g.names) for g in groups}
    assert got == {
        ("conv.*", 0.1, 1e-4): ["conv.weight"],
        ("conv.* (bn/bias)", 0.1, 0.0): ["conv.bias"],          # conv.* came first
        ("*.bias", 2.0, 0.0): ["fc.bias"],
        ("default", 1.0, 1e-4): ["fc.weight"],
        ("default (bn/bias)", 1.0, 0.0): ["bn.beta", "bn.gamma"],
    }
    names = [n for g in groups for n in g.names]
    assert sorted(names) == sorted(p for p in named_parameters(TinyNet()) if "moving" not in p)
    assert len(names) == len(set(names))                          # exactly one group each


def test_param_group_errors_name_the_rule():
    named = named_parameters(TinyNet())
    with pytest.raises(ConfigError, match=r"param_groups\[1\]: pattern 'head\.\*' matches no"):
        resolve_param_groups(named, [RULES[0], {"pattern": "head.*"}])
    with pytest.raises(ConfigError, match=r"taken by earlier rules \['\*'\] \(first match wins\)"):
        resolve_param_groups(named, [{"pattern": "*"}, {"pattern": "fc.*"}])
    with pytest.raises(ConfigError, match="unknown keys \\['lr'\\]"):
        resolve_param_groups(named, [{"pattern": "fc.*", "lr": 0.1}])


def test_group_learning_rates_are_the_schedule_times_the_multiplier():
    net = TinyNet()
    lrs = build_lr_schedule("cosine", 0.1, 4, 1)
    groups = resolve_param_groups(named_parameters(net), RULES, 0.0)
    opt = build_optimizer("sgd", None, lrs, groups=groups)
    assert [g.lr_mult for g in groups] == [0.1, 2.0, 1.0]
    mult = {"conv.weight": 0.1, "conv.bias": 0.1, "fc.bias": 2.0, "fc.weight": 1.0, "bn.gamma": 1.0,
            "bn.beta": 1.0}
    assert len(opt.parameters) == len(mult)
    for param, lr in zip(opt.parameters, opt.learning_rate):   # MindSpore keeps one LR per parameter
        np.testing.assert_allclose(lr.learning_rate.asnumpy(), lrs * mult[param.name], rtol=1e-6)


# ------------------------------------------------------------------ loss parts, host syncs
class PartsLoss(nn.Cell):
    """Total = cross-entropy; a second part (a big weight penalty) is logged, never trained on."""

    part_names = ("ce", "penalty")

    def __init__(self, net):
        super().__init__()
        self.ce = nn.CrossEntropyLoss()
        self.w = net.fc.weight

    def construct(self, logits, y):
        ce = self.ce(logits, y)
        return ce, (ce, 1000.0 * (self.w * self.w).sum())


def _run(loss_of, out, log_interval=1, groups=None, data=None):
    seed_everything(0)
    net = TinyNet()
    opt = build_optimizer("sgd", None, 0.1, groups=resolve_param_groups(named_parameters(net), groups))
    records = []

    class Keep(Callback):
        def on_log(self, trainer, record):
            records.append(record)

    t = Trainer(net, loss_of(net), opt, output_dir=out, log_interval=log_interval,
                callbacks=[LogCallback(log_interval, out / "train_log.jsonl"), Keep()])
    t.fit(data or tiny_data(n=32), epochs=1)
    return t, records


def test_parts_are_logged_and_only_the_total_is_backpropagated(tmp_path, monkeypatch):
    frozen = [{"pattern": "conv.*", "lr_mult": 0.0}]
    plain, _ = _run(lambda net: nn.CrossEntropyLoss(), tmp_path / "a", groups=frozen)
    calls = []
    original = ms.Tensor.asnumpy

    def counting(self):
        if "mindspore" not in sys._getframe(1).f_code.co_filename:  # not graph compilation's folding
            calls.append(1)
        return original(self)

    monkeypatch.setattr(ms.Tensor, "asnumpy", counting)
    t, records = _run(PartsLoss, tmp_path / "b", log_interval=4, groups=frozen)
    monkeypatch.undo()
    # 8 steps, a log every 4: one read of the device statistics per window and one at the end,
    # not 2-3 per step
    assert len(calls) == 3 and t.host_syncs == 3
    for k, v in state_dict(plain.network).items():    # the penalty part changed nothing
        np.testing.assert_allclose(v, state_dict(t.network)[k], atol=1e-6, err_msg=k)
    initial = state_dict(_seeded_net())
    np.testing.assert_array_equal(state_dict(t.network)["conv.weight"], initial["conv.weight"])  # lr x0
    assert not np.allclose(state_dict(t.network)["fc.weight"], initial["fc.weight"])
    lines = [json.loads(s) for s in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [r["global_step"] for r in lines] == [4, 8]
    for r in lines:
        assert set(r["parts"]) == {"ce", "penalty"}
        assert r["parts"]["ce"] == pytest.approx(r["loss"], rel=1e-6)
        assert r["parts"]["penalty"] > 10 * r["loss"]
    assert records[0]["parts"] == lines[0]["parts"]


def _seeded_net():
    seed_everything(0)
    return TinyNet()


def test_first_non_finite_step_is_found_on_the_device(tmp_path):
    x = np.random.default_rng(0).standard_normal((32, 3, 8, 8)).astype(np.float32)
    x[8:12] = np.nan                                   # batch 3 (global step 3) is poisoned
    y = np.zeros(32, np.int32)
    data = ds.NumpySlicesDataset({"x": x, "y": y}, shuffle=False).batch(4)
    with pytest.raises(TrainingError, match="non-finite loss at epoch 1, global step 3;"):
        _run(lambda net: nn.CrossEntropyLoss(), tmp_path, log_interval=4, data=data)


# ------------------------------------------------------------------ iterations, resume
def _trainer(out, callbacks=(), lr=None, opt="momentum", guard=None):
    seed_everything(0)
    net = TinyNet()
    lrs = build_lr_schedule("multistep", 0.05, 1, 10, milestones=[6]) if lr is None else lr
    optim = build_optimizer(opt, net.trainable_params(), lrs)
    return Trainer(net, nn.CrossEntropyLoss(), optim, callbacks=list(callbacks), output_dir=out,
                   lr_schedule=lrs, log_interval=2, resume_guard=guard)


def _ckpt(out):
    return CheckpointCallback(out / "checkpoints", "tiny", interval=0, keep=2, interval_iters=2)


def _scores(holder):
    scores = {1: 0.5, 2: 0.9, 3: 0.7}
    return EvalCallback(lambda net: {"acc": scores[holder[0].epoch]}, holder[1] / "checkpoints",
                        metric="acc", interval=1)


def _full_run(out):
    holder = [None, out]
    t = _trainer(out, [_scores(holder), _ckpt(out)])
    holder[0] = t
    return t.fit(tiny_data(), epochs=99, iters=10)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 10-iteration run (4 steps per epoch) and one stopped by SIGTERM at step 9
    (mid epoch 3, after epoch 2's evaluation scored best)."""
    root = tmp_path_factory.mktemp("iters")
    full = _full_run(root / "full")
    holder = [None, root / "cut"]
    cut = _trainer(root / "cut", [_scores(holder), _ckpt(root / "cut"), SignalAt(9)])
    holder[0] = cut
    with pytest.raises(TrainingInterrupted):
        cut.fit(tiny_data(), epochs=99, iters=10)
    return full, root


def test_iterations_stop_mid_epoch_and_checkpoint_every_n(runs):
    full, root = runs
    assert (full.global_step, full.epochs, full.total_steps) == (10, 3, 10)
    files = sorted(p.name for p in (root / "full" / "checkpoints").glob("*.ckpt"))
    assert files == ["best.ckpt", "last.ckpt", "tiny-it0000008.ckpt", "tiny-it0000010.ckpt"]
    assert int(read_checkpoint(root / "full/checkpoints/tiny-it0000010.ckpt")["train_state.global_step"]) == 10
    np.testing.assert_allclose(full.lr_schedule[[0, 5, 6, 9]], [0.05, 0.05, 0.005, 0.005], rtol=1e-6)


def test_mid_epoch_resume_equals_uninterrupted_with_best_and_kept_files(runs):
    full, root = runs
    cut = root / "cut"
    assert sorted(p.name for p in (cut / "checkpoints").glob("tiny-*")) == [
        "tiny-it0000006.ckpt", "tiny-it0000008.ckpt"]
    holder = [None, cut]
    resumed = _trainer(cut, [_scores(holder), _ckpt(cut)])
    holder[0] = resumed
    resumed.fit(tiny_data(), epochs=99, iters=10, start_from=cut / "checkpoints" / "interrupted.ckpt")
    assert resumed.global_step == 10
    for k, v in state_dict(full.network).items():
        np.testing.assert_allclose(state_dict(resumed.network)[k], v, atol=1e-6, err_msg=k)
    # the pre-interruption iteration checkpoint was pruned like the others
    assert sorted(p.name for p in (cut / "checkpoints").glob("tiny-*")) == [
        "tiny-it0000008.ckpt", "tiny-it0000010.ckpt"]
    # epoch 3 scored 0.7 < 0.9 of epoch 2 (before the interruption): best.ckpt is still epoch 2's
    assert json.loads((cut / "checkpoints" / "best.json").read_text())["epoch"] == 2
    best_full, best_cut = (read_checkpoint(d / "checkpoints/best.ckpt") for d in (root / "full", cut))
    for k, v in best_full.items():
        np.testing.assert_array_equal(best_cut[k], v, err_msg=k)
    history = json.loads((cut / "checkpoints" / "eval_history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_resume_applies_the_current_lr_schedule_at_the_saved_step(runs, tmp_path):
    _, root = runs
    ckpt = root / "cut" / "checkpoints" / "interrupted.ckpt"
    seen = []

    class Lr(Callback):
        def on_log(self, trainer, record):
            seen.append((record["global_step"], record["lr"]))

    new_lr = build_lr_schedule("constant", 0.2, 1, 12)    # another LR and another length
    t = _trainer(tmp_path, [Lr()], lr=new_lr)
    t.fit(tiny_data(), epochs=99, iters=12, start_from=ckpt)
    assert t.global_step == 12 and seen[0] == (10, pytest.approx(0.2))
    assert int(t.optimizer.global_step.asnumpy()[0]) == 12


def test_resume_refuses_what_it_cannot_honour(runs, tmp_path):
    _, root = runs
    ckpt = root / "cut" / "checkpoints" / "interrupted.ckpt"
    saved = _trainer(tmp_path / "g", guard={"optim.name": "momentum"})
    saved.save_resumable(tmp_path / "g.ckpt")
    other = _trainer(tmp_path / "x", guard={"optim.name": "adam"}, opt="adam")
    with pytest.raises(CheckpointError, match="cannot resume with optim.name=adam: .* optim.name=momentum"):
        other.fit(tiny_data(), epochs=1, start_from=tmp_path / "g.ckpt")
    with pytest.raises(CheckpointError, match="check optim.name"):
        _trainer(tmp_path / "y", opt="adam").fit(tiny_data(), epochs=1, start_from=ckpt)
    # 4 steps per epoch when saved, 2 now (batch 8): the position in the epoch is ambiguous
    with pytest.raises(CheckpointError, match="saved with 4 steps per epoch, now 2: train.batch_size"):
        _trainer(tmp_path / "z").fit(tiny_data(batch=8), epochs=99, iters=10, start_from=ckpt)


def test_sigterm_during_the_final_evaluation_saves_and_exits_143(tmp_path):
    def evaluate(net):
        os.kill(os.getpid(), signal.SIGTERM)
        return {"acc": 1.0}

    t = _trainer(tmp_path, [EvalCallback(evaluate, tmp_path / "checkpoints", "acc")])
    with pytest.raises(TrainingInterrupted) as exc:
        t.fit(tiny_data(), epochs=1)
    assert exc.value.exit_code == 143
    state = read_checkpoint(tmp_path / "checkpoints" / "interrupted.ckpt")
    assert int(state["train_state.global_step"]) == 4 and float(state["train_state.best_value"]) == 1.0


def test_lr_schedule_in_iterations_from_config():
    cfg = load_config(ENGINE_DEFAULTS, None, ["train.iters=100", "lr.schedule=multistep", "lr.milestones=[60,80]",
                                              "lr.warmup_iters=10", "lr.warmup_init_lr=0.0", "optim.lr=0.1"])
    lr = lr_schedule_from_config(cfg, steps_per_epoch=7)
    assert len(lr) == 100
    np.testing.assert_allclose(lr[[0, 5, 10, 59, 60, 79, 80, 99]],
                               [0.0, 0.05, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-5)
    with pytest.raises(ConfigError, match="lr.warmup_iters, not lr.warmup_epochs"):
        lr_schedule_from_config(load_config(ENGINE_DEFAULTS, None, ["train.iters=100", "lr.warmup_epochs=1"]), 7)
    by_epoch = load_config(ENGINE_DEFAULTS, None, ["train.epochs=2", "lr.warmup_iters=4", "optim.lr=0.1"])
    np.testing.assert_allclose(lr_schedule_from_config(by_epoch, 7)[:5], [0, 0.025, 0.05, 0.075, 0.1], rtol=1e-5)


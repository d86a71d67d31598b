"""The engine from a config: output-folder rules, strict pretrained loading with its report,
parameter groups in the log, and checkpoint writing that leaves no temporary files."""
import errno
import json
import logging
import os
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest

from common.checkpoint import CheckpointError, read_checkpoint, save_checkpoint, state_dict
from common.config import ENGINE_DEFAULTS, ConfigError, load_config
from common.engine.builder import build_trainer, check_output_dir, check_sink, load_pretrained, run_training
from common.engine.distributed import DistInfo
from common.engine.state import CheckpointWriteError, clean_orphan_tmp_files, safe_save
from tests.engine_utils import TinyNet, tiny_data

ms.set_device("CPU")


def _cfg(out, *overrides):
    return load_config(ENGINE_DEFAULTS, None, [f"output_dir={out}", *overrides])


def test_a_fresh_run_refuses_a_non_empty_output_dir(tmp_path):
    check_output_dir(_cfg(tmp_path / "new"))          # missing: fine
    (tmp_path / "old").mkdir()
    check_output_dir(_cfg(tmp_path / "old"))          # empty: fine
    (tmp_path / "old" / "train_log.jsonl").write_text("{}\n")
    with pytest.raises(ConfigError, match=r"already holds a run \(train_log.jsonl\): continue it with "
                                          r"--resume CKPT.*train.overwrite=true"):
        check_output_dir(_cfg(tmp_path / "old"))
    check_output_dir(_cfg(tmp_path / "old", "train.overwrite=true"))
    check_output_dir(_cfg(tmp_path / "old", f"train.resume={tmp_path / 'x.ckpt'}"))
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["train_log.jsonl"]
    with pytest.raises(ConfigError, match="train.sink=true .* needs device GPU or Ascend"):
        check_sink(_cfg(tmp_path, "train.sink=true"))
    check_sink(_cfg(tmp_path, "train.sink=true", "device=Ascend"))
    check_sink(_cfg(tmp_path, "train.sink=true", "device=GPU", "train.sink_size=5"))
    with pytest.raises(ConfigError, match="train.sink_size 0: expected -1"):
        check_sink(_cfg(tmp_path, "train.sink=true", "device=GPU", "train.sink_size=0"))


def _headless_weights(tmp_path):
    ms.set_seed(3)
    weights = {k: v for k, v in state_dict(TinyNet()).items() if not k.startswith("fc.")}
    return save_checkpoint(weights, tmp_path / "pre.ckpt"), weights


def test_pretrained_is_strict_unless_ignored(tmp_path):
    path, weights = _headless_weights(tmp_path)
    with pytest.raises(CheckpointError, match=r"2 network tensors would keep their initial values: "
                                              r"fc.weight, fc.bias.*train.pretrained_ignore"):
        load_pretrained(TinyNet(), path)
    net = TinyNet()
    report = load_pretrained(net, path, ignore=["fc.*", "head.*"])
    assert "allowed by train.pretrained_ignore ['fc.*', 'head.*'] (2): fc.weight, fc.bias" in report
    assert "patterns matching no network key: ['head.*']" in report
    np.testing.assert_array_equal(state_dict(net)["conv.weight"], weights["conv.weight"])


def test_overwrite_replaces_the_old_run_and_a_failing_start_writes_nothing(tmp_path, caplog):
    path, _ = _headless_weights(tmp_path)
    bad = tmp_path / "bad"
    with pytest.raises(CheckpointError):
        build_trainer(_cfg(bad, f"train.pretrained={path}"), TinyNet(), ms.nn.CrossEntropyLoss(), 4, DistInfo())
    assert not bad.exists()

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "model-e009.ckpt").write_text("old")
    (out / "train_log.jsonl").write_text('{"old": 1}\n')
    cfg = _cfg(out, "train.overwrite=true", f"train.pretrained={path}", "train.pretrained_ignore=['fc.*']",
               "train.log_interval=2", "optim.param_groups=[{pattern: 'conv.*', lr_mult: 0.5}]")
    caplog.set_level(logging.INFO, logger="zoo")
    logging.getLogger("zoo").propagate = True
    trainer = build_trainer(cfg, TinyNet(), ms.nn.CrossEntropyLoss(), 4, DistInfo(), model_name="tiny")
    assert "param group 'conv.*': 2 tensors" in caplog.text and "lr x0.5" in caplog.text
    assert (out / "checkpoints" / "model-e009.ckpt").exists()   # nothing removed before the start
    run_training(trainer, tiny_data(), cfg)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt", "tiny-e001.ckpt"]
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["global_step"] for r in records] == [2, 4]
    assert "fc.weight, fc.bias" in (out / "pretrained_report.txt").read_text()
    assert load_config(ENGINE_DEFAULTS, out / "config.yaml").optim.param_groups == [
        {"pattern": "conv.*", "lr_mult": 0.5}]
    assert json.loads((out / "train_summary.json").read_text())["global_step"] == 4


def test_orphan_temporary_checkpoints_of_dead_runs_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True,
                          text=True).stdout.strip()
    orphan = tmp_path / f".last.tmp{dead}.tmp"
    live = tmp_path / f".last.tmp{os.getpid()}.ckpt"
    for p in (orphan, live, tmp_path / "last.ckpt"):
        p.write_bytes(b"x" * 10)
    assert clean_orphan_tmp_files(tmp_path) == [orphan]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "last.ckpt"])


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    save_checkpoint({"w": np.ones(3, np.float32)}, target)

    def full_disk(items, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ms, "save_checkpoint", full_disk)
    with pytest.raises(CheckpointWriteError) as exc:
        safe_save({"w": np.zeros(3, np.float32)}, target)
    assert str(exc.value).startswith(f"disk full while writing checkpoint {target}")
    assert "\n" not in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]          # tmp removed
    np.testing.assert_array_equal(read_checkpoint(target)["w"], np.ones(3))     # old one intact

"""Learning proofs: the quick CPU recipes learn the synthetic tasks (slow; run in CI's slow tier).

The numbers are recorded with their commands in models/<name>/README.md.
"""
import json
import subprocess
import sys
import time

import pytest

from common.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def _run(args, cwd, timeout):
    proc = subprocess.run([sys.executable, *args], check=False, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_ddrnet23_slim_reaches_90_top1_on_synthetic_imagenet(tmp_path):
    data = tmp_path / "data"
    _run(["-m", "common.data.synthetic", "--format", "imagenet", "--out", str(data), "--num", "400",
          "--num-val", "100", "--size", "96", "--seed", "0"], REPO_ROOT, 120)
    cfg = str(REPO_ROOT / "configs/ddrnet/ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml")
    start = time.time()
    _run([str(REPO_ROOT / "models/ddrnet/train.py"), "--config", cfg, f"output_dir={tmp_path / 'run'}",
          f"data.root={data}"], tmp_path, 15 * 60)
    minutes = (time.time() - start) / 60
    _run([str(REPO_ROOT / "models/ddrnet/eval.py"), "--config", cfg, f"output_dir={tmp_path / 'run'}",
          f"data.root={data}", "--ckpt", str(tmp_path / "run/checkpoints/last.ckpt")], tmp_path, 300)
    result = json.loads((tmp_path / "run/eval_results.json").read_text())
    print(f"ddrnet23_slim synthetic: top-1 {result['top1']:.3f} after {minutes:.1f} min of training")
    assert result["num_samples"] == 100
    assert result["top1"] >= 0.90
    assert minutes <= 15


def test_u2netp_reaches_090_max_f_on_synthetic_sod(tmp_path):
    data = tmp_path / "data"
    _run(["-m", "common.data.synthetic", "--format", "sod", "--out", str(data), "--num", "160",
          "--num-val", "24", "--size", "160", "--seed", "0"], REPO_ROOT, 120)
    cfg = str(REPO_ROOT / "configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml")
    common = [f"output_dir={tmp_path / 'run'}", f"data.train_root={data / 'train'}",
              f"test.root={data / 'test'}"]
    start = time.time()
    _run([str(REPO_ROOT / "models/u2net/train.py"), "--config", cfg, *common], tmp_path, 15 * 60)
    minutes = (time.time() - start) / 60
    _run([str(REPO_ROOT / "models/u2net/eval.py"), "--config", cfg, *common, "--ckpt",
          str(tmp_path / "run/checkpoints/last.ckpt")], tmp_path, 300)
    result = json.loads((tmp_path / "run/eval_results.json").read_text())
    print(f"u2netp synthetic: max-F {result['max_f']:.3f} MAE {result['mae']:.3f} after {minutes:.1f} min")
    assert result["num_images"] == 24
    assert result["max_f"] >= 0.90
    assert minutes <= 15


def test_ras_loss_falls_and_adaptive_f_passes_060_on_synthetic_sod(tmp_path):
    """A shortened RAS quick recipe (the full one is in models/ras/README.md)."""
    data = tmp_path / "data"
    _run(["-m", "common.data.synthetic", "--format", "sod", "--out", str(data), "--num", "64",
          "--num-val", "12", "--size", "128", "--seed", "0"], REPO_ROOT, 120)
    cfg = str(REPO_ROOT / "configs/ras/ras_1xb8_synthetic_quick-cpu.yaml")
    common = [f"output_dir={tmp_path / 'run'}", f"data.train_root={data / 'train'}",
              f"test.root={data / 'test'}", "data.size=96", "test.size=96"]
    _run([str(REPO_ROOT / "models/ras/train.py"), "--config", cfg, *common, "train.epochs=6",
          "train.log_interval=4"], tmp_path, 5 * 60)
    _run([str(REPO_ROOT / "models/ras/eval.py"), "--config", cfg, *common, "--ckpt_file",
          str(tmp_path / "run/checkpoints/last.ckpt")], tmp_path, 300)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run/train_log.jsonl").read_text().splitlines()
              if '"loss"' in line]
    result = json.loads((tmp_path / "run/eval_results.json").read_text())
    print(f"ras synthetic (shortened): loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
          f"mean adaptive F {result['mean_image_adaptive_f']:.3f}")
    assert len(losses) >= 4 and losses[-1] < 0.6 * losses[0]
    assert result["num_images"] == 12
    assert result["mean_image_adaptive_f"] >= 0.60

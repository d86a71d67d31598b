"""U-2-Net recipes, loss, and the real entry points end to end on a tiny synthetic SOD set."""
import json
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from common.config import load_config
from common.paths import REPO_ROOT
from models.u2net.src.config import DEFAULTS
from models.u2net.src.loss import MultiBCELoss

ms.set_device("CPU")
CONFIGS = REPO_ROOT / "configs" / "u2net"


def test_paper_and_old_port_recipes():
    paper = load_config(DEFAULTS, CONFIGS / "u2net_1xb12_duts-tr_600k-it_crop288.yaml")
    assert (paper.model.name, paper.train.batch_size, paper.optim.name, paper.optim.lr) == ("u2net", 12, "adam", 1e-3)
    assert (paper.data.resize, paper.data.crop, paper.data.hflip, paper.data.vflip) == (320, 288, True, False)
    assert paper.lr.schedule == "constant" and paper.optim.weight_decay == 0.0
    assert paper.train.iters == 600_000 and paper.ckpt.interval_iters == 50_000   # the paper's count
    small = load_config(DEFAULTS, CONFIGS / "u2netp_1xb12_duts-tr_600k-it_crop288.yaml")
    assert small.model.name == "u2netp" and small.optim.lr == paper.optim.lr
    old = load_config(DEFAULTS, CONFIGS / "u2net_8xb16_duts-tr_ascend_oldport.yaml")
    assert (old.train.batch_size, old.optim.lr, old.amp.init_scale) == (16, 4e-3, 8192.0)
    assert old.data.vflip and old.data.rot90
    assert not old.train.iters and old.train.epochs == 682            # the old port counted epochs


def test_loss_is_the_sum_of_seven_named_bce_terms():
    rng = np.random.default_rng(0)
    logits = [rng.standard_normal((2, 1, 8, 8)).astype(np.float32) for _ in range(7)]
    mask = (rng.random((2, 1, 8, 8)) > 0.5).astype(np.float32)
    total, parts = MultiBCELoss()(tuple(Tensor(x) for x in logits), Tensor(mask))
    expected = []
    for x in logits:  # the authors' form: BCELoss on sigmoid probabilities, mean per output
        p = 1 / (1 + np.exp(-x.astype(np.float64)))
        expected.append(float(np.mean(-(mask * np.log(p) + (1 - mask) * np.log(1 - p)))))
    assert MultiBCELoss.part_names == ("d0", "d1", "d2", "d3", "d4", "d5", "d6")
    assert [float(v.asnumpy()) for v in parts] == pytest.approx(expected, rel=1e-5)
    assert float(total.asnumpy()) == pytest.approx(sum(expected), rel=1e-5)


def _run(args, cwd, ok=True):
    proc = subprocess.run([sys.executable, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=900)
    if ok:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def tiny_sod(tmp_path_factory):
    data = tmp_path_factory.mktemp("sod")
    _run(["-m", "common.data.synthetic", "--format", "sod", "--out", str(data), "--num", "16",
          "--num-val", "4", "--size", "80", "--seed", "3"], REPO_ROOT)
    return data


def test_entry_points_end_to_end(tmp_path, tiny_sod):
    """train -> eval (PNGs + metrics) -> export ONNX -> infer_onnx (same scores) -> predict."""
    cfg = str(CONFIGS / "u2netp_1xb8_synthetic_quick-cpu.yaml")
    common = [f"output_dir={tmp_path / 'run'}", f"data.train_root={tiny_sod / 'train'}",
              f"test.root={tiny_sod / 'test'}", "data.resize=64", "data.crop=64", "test.size=64",
              "export.size=64"]
    _run([str(REPO_ROOT / "models/u2net/train.py"), "--config", cfg, *common, "train.epochs=1",
          "train.max_steps_per_epoch=2"], tmp_path)
    saved = (tmp_path / "run/config.yaml").read_text()
    assert "resize: 64" in saved                      # effective config beside the outputs
    record = json.loads((tmp_path / "run/train_log.jsonl").read_text().splitlines()[-1])
    assert list(record["parts"]) == ["d0", "d1", "d2", "d3", "d4", "d5", "d6"]
    assert sum(record["parts"].values()) == pytest.approx(record["loss"], rel=1e-4)
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    out = _run([str(REPO_ROOT / "models/u2net/eval.py"), "--config", cfg, "--ckpt", str(ckpt), *common],
               tmp_path).stdout
    assert "max_f" in out and "paper metric" in out
    ms_result = json.loads((tmp_path / "run/eval_results.json").read_text())
    assert ms_result["num_images"] == 4
    maps = sorted((tmp_path / "run/pred").glob("*.png"))
    assert len(maps) == 4
    onnx = tmp_path / "run/u2netp.onnx"
    _run([str(REPO_ROOT / "models/u2net/export.py"), "--config", cfg, "--ckpt", str(ckpt), "--format",
          "ONNX", "--file", str(onnx), *common], tmp_path)
    _run([str(REPO_ROOT / "models/u2net/infer_onnx.py"), "--config", cfg, "--onnx", str(onnx), *common],
         tmp_path)
    onnx_result = json.loads((tmp_path / "run/eval_results_onnx.json").read_text())
    for key in ("mae", "max_f", "s_measure"):
        assert onnx_result[key] == pytest.approx(ms_result[key], abs=2e-3), key
    _run([str(REPO_ROOT / "models/u2net/predict.py"), "model.name=u2netp", "--ckpt", str(ckpt), "--input",
          str(tiny_sod / "test/images"), "--out", str(tmp_path / "pred"), "test.size=64", "--cutout"], tmp_path)
    assert len(list((tmp_path / "pred").glob("*_cutout.png"))) == 4


def test_air_export_fails_clearly_on_cpu(tmp_path, tiny_sod):
    from common.checkpoint import save_checkpoint
    from models import create_model

    ckpt = tmp_path / "w.ckpt"
    save_checkpoint(create_model("u2netp"), ckpt)
    proc = _run([str(REPO_ROOT / "models/u2net/export.py"), "--ckpt", str(ckpt), "--format", "AIR",
                 f"output_dir={tmp_path}", "export.size=64"], tmp_path, ok=False)
    assert proc.returncode != 0 and "AIR export needs the Ascend backend" in proc.stderr
    assert not list(tmp_path.glob("*.air"))


def test_bad_inputs_fail_with_clear_messages(tmp_path, tiny_sod):
    empty = tmp_path / "empty" / "images"
    empty.mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    proc = _run([str(REPO_ROOT / "models/u2net/train.py"), f"data.train_root={tmp_path / 'empty'}",
                 f"output_dir={tmp_path / 'run'}"], tmp_path, ok=False)
    assert proc.returncode == 2 and "empty" in proc.stderr
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_sod / "train", broken)
    bad_image = sorted((broken / "images").iterdir())[2]
    bad_image.write_bytes(b"\x89PNG truncated")
    proc = _run([str(REPO_ROOT / "models/u2net/train.py"), f"data.train_root={broken}",
                 f"output_dir={tmp_path / 'run2'}"], tmp_path, ok=False)
    assert proc.returncode == 2 and str(bad_image) in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.yaml").write_text("{}")
    proc = _run([str(REPO_ROOT / "models/u2net/train.py"), f"data.train_root={tiny_sod / 'train'}",
                 f"output_dir={tmp_path / 'old'}"], tmp_path, ok=False)
    assert proc.returncode == 2 and "already holds a run" in proc.stderr and "train.overwrite=true" in proc.stderr
    assert [p.name for p in (tmp_path / "old").iterdir()] == ["config.yaml"]
    proc = _run([str(REPO_ROOT / "models/u2net/train.py"), "optim.lrr=0.1"], tmp_path, ok=False)
    assert proc.returncode == 2 and "optim.lr" in proc.stderr
    proc = _run([str(REPO_ROOT / "models/u2net/eval.py"), "--ckpt", str(tmp_path / "none.ckpt")],
                tmp_path, ok=False)
    assert proc.returncode == 2 and "none.ckpt" in proc.stderr


@pytest.mark.slow
def test_sigterm_mid_epoch_and_resume_equal_an_uninterrupted_run(tmp_path, tiny_sod):
    """The U2NETP quick recipe with 2 data workers: SIGTERM inside epoch 2, --resume (the
    consumed batches are skipped without decoding) ends with the uninterrupted run's weights."""
    import signal
    import time

    from common.checkpoint import read_checkpoint

    cfg = str(CONFIGS / "u2netp_1xb8_synthetic_quick-cpu.yaml")

    def args(out):
        return [str(REPO_ROOT / "models/u2net/train.py"), "--config", cfg, f"output_dir={out}",
                f"data.train_root={tiny_sod / 'train'}", "data.resize=64", "data.crop=48",
                "train.batch_size=4", "train.num_workers=2", "train.epochs=2", "train.log_interval=1"]

    _run(args(tmp_path / "full"), tmp_path)
    log_path = tmp_path / "cut.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, *args(tmp_path / "cut")], cwd=tmp_path, stdout=log,
                                stderr=subprocess.STDOUT)
        deadline = time.time() + 600
        while "(iter 5/8)" not in log_path.read_text():
            assert proc.poll() is None and time.time() < deadline, log_path.read_text()[-2000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=300) == 143
    ckpt = tmp_path / "cut/checkpoints/interrupted.ckpt"
    stopped = int(read_checkpoint(ckpt)["train_state.global_step"])
    assert 5 <= stopped < 8                                        # inside epoch 2
    _run(args(tmp_path / "cut") + ["--resume", str(ckpt)], tmp_path)
    full = read_checkpoint(tmp_path / "full/checkpoints/last.ckpt")
    resumed = read_checkpoint(tmp_path / "cut/checkpoints/last.ckpt")
    assert int(resumed["train_state.global_step"]) == int(full["train_state.global_step"]) == 8
    weights = [k for k in full if not k.startswith(("train_state.", "optimizer."))]
    assert len(weights) > 100
    for k in weights:
        np.testing.assert_allclose(resumed[k], full[k], atol=1e-6, err_msg=k)

"""DDRNet recipe, training step with Mixup, export parity, and the real entry points end to end."""
import json
import re
import subprocess
import sys

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from common.checkpoint import save_checkpoint
from common.config import load_config
from common.data.transforms_cls import MixupCutmix
from common.engine.builder import lr_schedule_from_config
from common.engine.callbacks import Callback
from common.engine.optim import build_optimizer
from common.engine.trainer import Trainer, seed_everything
from common.export import export_model, onnx_session, run_onnx
from common.paths import REPO_ROOT
from common.tasks.classification import build_eval_dataset
from models import create_model
from models.ddrnet.src.config import DEFAULTS
from models.ddrnet.src.loss import SoftTargetCrossEntropy

ms.set_device("CPU")
CONFIGS = REPO_ROOT / "configs" / "ddrnet"


def test_recipe_lr_at_given_steps():
    """0.1 x 1024/256 = 0.4 after 10 warm-up epochs from 1e-6, cosine to 1e-5 at epoch 300."""
    cfg = load_config(DEFAULTS, CONFIGS / "ddrnet23_8xb128_imagenet_300e_ascend.yaml")
    steps = 1251  # ImageNet: 1,281,167 / (8 x 128) rounded down
    lr = lr_schedule_from_config(cfg, steps, world_size=8)
    assert len(lr) == 300 * steps
    assert lr[0] == pytest.approx(1e-6)
    assert lr[5 * steps] == pytest.approx(1e-6 + (0.4 - 1e-6) * 0.5, rel=1e-5)
    assert lr[10 * steps] == pytest.approx(0.4, rel=1e-6)
    mid = 10 * steps + 145 * steps           # half-way through the cosine part
    assert lr[mid] == pytest.approx(1e-5 + 0.5 * (0.4 - 1e-5), rel=1e-4)
    assert lr[-1] == pytest.approx(1e-5, rel=1e-2)
    assert cfg.optim.name == "nesterov" and cfg.optim.no_decay_bn_bias
    assert cfg.amp.level == "O2" and cfg.amp.loss_scale == "dynamic"
    assert cfg.optim.clip_grad_norm == 5.0 and cfg.model.drop_path_rate == 0.1
    assert (cfg.data.mixup, cfg.data.cutmix, cfg.data.switch_prob) == (0.8, 1.0, 0.5)
    gpu = load_config(DEFAULTS, CONFIGS / "ddrnet23_8xb64_imagenet_300e_gpu.yaml")
    assert lr_schedule_from_config(gpu, steps, world_size=8)[10 * steps] == pytest.approx(0.2, rel=1e-6)


def test_mixup_training_steps_lower_the_loss(tmp_path):
    seed_everything(0)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8, 3, 64, 64)).astype(np.float32)
    labels = np.arange(8, dtype=np.int64) % 4
    mixed, targets = MixupCutmix(4, 0.8, 1.0, 1.0, 0.5, 0.1)(images, labels, rng)
    assert targets.shape == (8, 4) and np.allclose(targets.sum(1), 1.0)
    net = create_model("ddrnet23_slim", num_classes=4)  # no drop-path: a deterministic comparison
    loss_fn = SoftTargetCrossEntropy()
    import mindspore.dataset as ds
    data = ds.NumpySlicesDataset({"x": np.concatenate([mixed] * 4),
                                  "y": np.concatenate([targets] * 4).astype(np.float32)},
                                 shuffle=False).batch(8)
    losses = []

    class Record(Callback):
        def on_log(self, trainer, record):
            losses.append(record["loss"])

    opt = build_optimizer("adamw", net.trainable_params(), 1e-3, weight_decay=0.05)
    Trainer(net, loss_fn, opt, output_dir=tmp_path, callbacks=[Record()], log_interval=1).fit(data, epochs=1)
    # the same mixed batch four times (batch statistics, so train-mode losses compare)
    assert len(losses) == 4 and losses[-1] < losses[0]


@pytest.mark.parametrize("fmt", ["ONNX", "MINDIR"])
def test_export_parity(tmp_path, fmt):
    net = create_model("ddrnet23_slim", num_classes=10)
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64)).astype(np.float32)
    result = export_model(net, x, fmt, tmp_path / "ddr", atol=1e-4)
    assert result.path.exists() and result.max_diff <= 1e-4
    if fmt == "ONNX":  # another batch size through the dynamic axis
        x2 = np.random.default_rng(2).standard_normal((3, 3, 64, 64)).astype(np.float32)
        net.set_train(False)
        got = run_onnx(onnx_session(result.path), x2)[0]
        np.testing.assert_allclose(got, net(Tensor(x2)).asnumpy(), atol=1e-4)


def _run(args, cwd):
    proc = subprocess.run([sys.executable, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


def test_entry_points_end_to_end(tmp_path):
    """train -> eval -> export -> infer_onnx -> predict on a tiny synthetic ImageNet set."""
    data = tmp_path / "data"
    _run(["-m", "common.data.synthetic", "--format", "imagenet", "--out", str(data), "--num", "40",
          "--num-val", "10", "--size", "64", "--num-classes", "4"], REPO_ROOT)
    cfg = str(CONFIGS / "ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml")
    common = [f"output_dir={tmp_path / 'run'}", f"data.root={data}", "model.num_classes=4",
              "data.image_size=64", "train.batch_size=8", "data.eval_batch_size=4"]
    _run([str(REPO_ROOT / "models/ddrnet/train.py"), "--config", cfg, *common, "train.epochs=1",
          "train.max_steps_per_epoch=2"], tmp_path)
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    _run([str(REPO_ROOT / "models/ddrnet/eval.py"), "--config", cfg, "--ckpt", str(ckpt), *common], tmp_path)
    ms_result = json.loads((tmp_path / "run/eval_results.json").read_text())
    assert ms_result["num_samples"] == 10          # 10 images, batch 4: the remainder counts
    onnx = tmp_path / "run/ddr.onnx"
    _run([str(REPO_ROOT / "models/ddrnet/export.py"), "--config", cfg, "--ckpt", str(ckpt),
          "--format", "ONNX", "--file", str(onnx), *common], tmp_path)
    _run([str(REPO_ROOT / "models/ddrnet/infer_onnx.py"), "--config", cfg, "--onnx", str(onnx), *common],
         tmp_path)
    onnx_result = json.loads((tmp_path / "run/eval_results_onnx.json").read_text())
    assert onnx_result["top1"] == ms_result["top1"] and onnx_result["top5"] == ms_result["top5"]
    out = _run([str(REPO_ROOT / "models/ddrnet/predict.py"), "--config", cfg, "--ckpt", str(ckpt),
                "--input", str(data / "val"), "--out", str(tmp_path / "pred"), *common], tmp_path)
    assert len(list((tmp_path / "pred").rglob("*_top5.jpg"))) == 10  # val/<class>/ kept
    assert "n00000000" in out                       # class names from the training folders


def test_eval_rejects_a_checkpoint_of_another_variant(tmp_path):
    ckpt = tmp_path / "w.ckpt"
    save_checkpoint(create_model("ddrnet23_slim", num_classes=4), ckpt)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "models/ddrnet/eval.py"), "--ckpt", str(ckpt),
                           "model.name=ddrnet23", "model.num_classes=4"], check=False, capture_output=True,
                          text=True,
                          cwd=tmp_path)
    assert proc.returncode != 0
    assert "layer1.0.conv1.weight" in proc.stderr and "shape mismatch" in proc.stderr


def test_real_imagenet_samples_get_standard_indices_through_the_eval_pipeline(fixtures):
    """tench 0, tabby 281, toilet tissue 999 via DDRNet's own eval dataset and class list."""
    root = fixtures / "imagenet_sample_images"
    cfg = load_config(DEFAULTS, None, [f"data.root={root}", "data.val_dir=val",
                                       f"data.class_list={root / 'synsets_index_from_filenames.txt'}"])
    dataset, source = build_eval_dataset(cfg.data, batch_size=4)
    labels = [int(v) for _, batch in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True)
              for v in batch]
    assert len(labels) == 10                       # 10 images, batches of 4: nothing dropped
    by_file = {source[i]["path"].split("/")[-1]: int(source[i]["label"]) for i in range(len(source))}
    assert by_file["n01440764_tench.JPEG"] == 0
    assert by_file["n02123045_tabby.JPEG"] == 281
    assert by_file["n15075141_toilet_tissue.JPEG"] == 999
    assert sorted(labels) == sorted(by_file.values())
    from common.tasks.classification import class_names
    assert class_names(cfg.data, 1000)[281] == "tabby"


def test_sigterm_saves_a_resumable_checkpoint_and_resume_finishes(tmp_path):
    """A real SIGTERM from outside stops train.py after the current step with a resumable
    checkpoint and exit code 143; --resume then completes the run."""
    import signal
    import time

    data = tmp_path / "data"
    _run(["-m", "common.data.synthetic", "--format", "imagenet", "--out", str(data), "--num", "64",
          "--num-val", "4", "--size", "64", "--num-classes", "4"], REPO_ROOT)
    cfg = str(CONFIGS / "ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml")
    common = [f"output_dir={tmp_path / 'run'}", f"data.root={data}", "model.num_classes=4",
              "data.image_size=64", "train.batch_size=4", "train.log_interval=1", "train.epochs=3",
              "data.eval_batch_size=4"]
    with open(tmp_path / "log.txt", "w") as log:
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "models/ddrnet/train.py"), "--config", cfg,
                                 *common], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while "step 3/16" not in (tmp_path / "log.txt").read_text():
            assert proc.poll() is None and time.time() < deadline, (tmp_path / "log.txt").read_text()[-2000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 143
    text = (tmp_path / "log.txt").read_text()
    ckpt = tmp_path / "run/checkpoints/interrupted.ckpt"
    assert ckpt.is_file() and "resumable checkpoint" in text
    _run([str(REPO_ROOT / "models/ddrnet/train.py"), "--config", cfg, *common, "--resume", str(ckpt)], tmp_path)
    summary = json.loads((tmp_path / "run/train_summary.json").read_text())
    assert summary["epochs"] == 3 and summary["global_step"] == 3 * 16


def test_a_class_folder_beyond_num_classes_is_one_line_naming_the_file(tmp_path):
    data = tmp_path / "data"
    _run(["-m", "common.data.synthetic", "--format", "imagenet", "--out", str(data), "--num", "8",
          "--num-val", "4", "--size", "32", "--num-classes", "4"], REPO_ROOT)
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "models/ddrnet/train.py"), "--config",
                           str(CONFIGS / "ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml"),
                           f"output_dir={tmp_path / 'run'}", f"data.root={data}", "model.num_classes=3",
                           "data.image_size=32", "train.batch_size=4", "train.epochs=1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert re.search(r"n00000003/n00000003_\d+\.JPEG: label value 3 is outside 0\.\.2 \(num_classes 3\)",
                     proc.stdout + proc.stderr), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "IndexError" not in proc.stderr

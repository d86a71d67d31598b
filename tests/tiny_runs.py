"""Tiny synthetic runs of a registered model through the shared runner (test_runner, the 310 flows)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import load_config
from common.paths import REPO_ROOT
from common.runner.commands import main
from models import get_spec, list_models

METRIC_KEYS = {"sod": {"max_f", "mae", "s_measure", "mean_image_adaptive_f"},
               "classification": {"top1", "top5", "num_samples"},
               "segmentation": {"miou", "per_class_iou"},
               "detection": {"AP", "AP50"}}


def tiny(name, tmp_path):
    """(spec, data folder, argv) of ``name``'s quick recipe on its tiny synthetic set."""
    spec = get_spec(name)
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "common.data.synthetic", *spec.quick.tiny_synthetic,
                    "--out", str(data), "--seed", "0"], cwd=REPO_ROOT, check=True, capture_output=True)
    keys = [f"{k}={data / v}" for k, v in spec.quick.data_keys.items()]
    overrides = [f"model.name={name}", f"output_dir={tmp_path / 'run'}", "mode=pynative", *keys,
                 *spec.quick.tiny, "train.epochs=1", "train.max_steps_per_epoch=2", "train.batch_size=2",
                 "train.num_workers=1", "train.log_interval=1", "train.overwrite=true"]
    return spec, data, ["--config", str(REPO_ROOT / spec.quick.config), *overrides]


def run(command, spec, argv):
    """``command`` of ``spec`` in this process; asserts it did not exit with an error."""
    try:
        main(command, spec, [str(a) for a in argv])
    except SystemExit as exc:
        assert exc.code in (0, None), f"{command} exited with {exc.code}"


def metrics(path, task):
    result = json.loads(Path(path).read_text())
    assert METRIC_KEYS[task] <= set(result), (path, sorted(result))
    return result


def _quick_variant(name):
    spec = get_spec(name)
    return load_config(spec.defaults, REPO_ROOT / spec.quick.config).model.name == name


def every_model():
    """Every registered model as pytest params: each folder's quick-recipe variant as is, the other
    variants (the same code path) in the extended tier, for CI's time budget."""
    return [n if _quick_variant(n) else pytest.param(n, marks=pytest.mark.extended) for n in list_models()]

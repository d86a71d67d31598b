"""Launchers: argument handling and the commands they would run (DRY_RUN=1), per launcher."""
import os
import subprocess

import pytest

from common.paths import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"
U2_CFG = "configs/u2net/u2net_8xb16_duts-tr_ascend_oldport.yaml"


def _sh(script, *args, **env):
    full_env = dict(os.environ, DRY_RUN="1", **env)
    return subprocess.run(["bash", str(SCRIPTS / script), *args], cwd=REPO_ROOT, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_msrun_launch_uses_the_device_count_given():
    proc = _sh("run_distribute_train.sh", "u2net", "8", U2_CFG, "Ascend", "train.epochs=2")
    assert proc.returncode == 0, proc.stderr
    cmd = proc.stdout.strip().splitlines()[-1]
    assert cmd.startswith("+ msrun --worker_num=8 --local_worker_num=8")
    assert "models/u2net/train.py --config " + U2_CFG in cmd
    assert "device=Ascend train.epochs=2" in cmd


def test_mpirun_and_rank_table_launches(tmp_path):
    proc = _sh("run_distribute_train.sh", "ddrnet23", "4", "configs/ddrnet/ddrnet23_8xb64_imagenet_300e_gpu.yaml",
               "GPU", LAUNCHER="mpirun")
    assert proc.returncode == 0, proc.stderr
    assert "mpirun --allow-run-as-root -n 4" in proc.stdout and "models/ddrnet/train.py" in proc.stdout
    table = tmp_path / "hccl_2p.json"
    table.write_text("{}")
    proc = _sh("run_distribute_train.sh", "u2net", "2", U2_CFG, "Ascend", LAUNCHER="ranktable",
               RANK_TABLE_FILE=str(table))
    assert proc.returncode == 0, proc.stderr
    assert "DEVICE_ID=0 RANK_ID=0 RANK_SIZE=2" in proc.stdout
    assert "DEVICE_ID=1 RANK_ID=1 RANK_SIZE=2" in proc.stdout


@pytest.mark.parametrize("script, args, env, message", [
    ("run_distribute_train.sh", ["u2net", "eight", U2_CFG], {}, "positive integer"),
    ("run_distribute_train.sh", ["nosuchnet", "2", U2_CFG], {}, "unknown model 'nosuchnet'"),
    ("run_distribute_train.sh", ["u2net", "2", "missing.yaml"], {}, "config file not found"),
    ("run_distribute_train.sh", ["u2net", "2", U2_CFG], {"LAUNCHER": "ranktable"}, "RANK_TABLE_FILE"),
    ("run_distribute_train.sh", ["u2net", "2", U2_CFG], {"LAUNCHER": "slurm"}, "unknown LAUNCHER"),
    ("run_standalone_train.sh", ["u2net"], {}, "usage"),
    ("run_eval.sh", ["u2net", U2_CFG, "missing.ckpt"], {}, "checkpoint not found"),
    ("run_infer_onnx.sh", ["u2net", U2_CFG, "missing.onnx"], {}, "ONNX file not found"),
])
def test_bad_arguments_fail_clearly(script, args, env, message):
    proc = _sh(script, *args, **env)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_standalone_and_export_commands():
    proc = _sh("run_standalone_train.sh", "u2netp", "configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml",
               "train.epochs=1")
    assert proc.returncode == 0, proc.stderr
    assert "models/u2net/train.py" in proc.stdout and "device=CPU train.epochs=1" in proc.stdout
    proc = _sh("run_export.sh", "ddrnet", "configs/ddrnet/ddrnet23_8xb128_imagenet_300e_ascend.yaml", "x.ckpt", "AIR")
    assert proc.returncode == 0 and "--format AIR" in proc.stdout

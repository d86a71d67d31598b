import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from common.engine.distributed import detect_launcher
from common.paths import REPO_ROOT


@pytest.mark.parametrize("env, expected", [
    ({}, None),
    ({"MS_ROLE": "MS_WORKER", "MS_WORKER_NUM": "2"}, "msrun"),
    ({"OMPI_COMM_WORLD_SIZE": "4"}, "mpirun"),
    ({"RANK_TABLE_FILE": "/x/hccl.json", "RANK_SIZE": "8"}, "ranktable"),
    ({"RANK_TABLE_FILE": "/x/hccl.json", "RANK_SIZE": "1"}, None),
])
def test_launcher_detection(env, expected):
    assert detect_launcher(env) == expected


@pytest.mark.slow
def test_msrun_two_workers_end_with_identical_weights_and_rank0_evaluates(tmp_path):
    msrun = shutil.which("msrun")
    assert msrun, "msrun is installed with mindspore"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), GLOG_v="3")
    cmd = [msrun, "--worker_num=2", "--local_worker_num=2", "--master_addr=127.0.0.1",
           "--master_port=8129", f"--log_dir={tmp_path / 'logs'}", "--join=True",
           "--cluster_time_out=120", str(REPO_ROOT / "tests" / "dist_train_script.py"), str(tmp_path)]
    proc = subprocess.run(cmd, check=False, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.log"))
    assert proc.returncode == 0, logs[-3000:]
    r0, r1 = (np.load(tmp_path / f"rank{r}.npz") for r in (0, 1))
    assert int(r0["size"]) == 2 and int(r1["size"]) == 2
    assert not np.array_equal(r0["first_batch"], r1["first_batch"])  # each rank reads its shard
    # distributed evaluation: rank 0 evaluated each epoch, rank 1 waited (no deadlock, no eval)
    assert (int(r0["evals"]), int(r1["evals"])) == (2, 0)
    assert [h["epoch"] for h in json.loads((tmp_path / "ev" / "eval_history.json").read_text())] == [1, 2]
    assert abs(float(r0["finished"]) - float(r1["finished"])) < 2.5   # both left the last barrier together
    trainable = [k for k in r0.files if k not in ("first_batch", "size", "evals", "finished")
                 and "moving" not in k]
    for k in trainable:
        np.testing.assert_allclose(r0[k], r1[k], atol=1e-7, err_msg=k)
    assert "[rank 1]" in logs

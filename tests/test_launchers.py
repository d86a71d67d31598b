"""Launchers for real: the rank-table supervisor with stand-in workers (fast), and msrun training
of U-2-NetP on CPU (slow): two ranks end to end, two simulated servers, a killed worker."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from common.paths import REPO_ROOT

LAUNCH = REPO_ROOT / "scripts" / "run_distribute_train.sh"
QUICK_CFG = REPO_ROOT / "configs" / "u2net" / "u2netp_1xb8_synthetic_quick-cpu.yaml"
CLEAN_ENV = ("DEVICE_TARGET", "DEVICE_ID", "LAUNCHER", "RANK_TABLE_FILE", "SERVER_ID", "NODE_RANK",
             "MASTER_ADDR", "LOCAL_WORKER_NUM", "WORKER_NUM", "DRY_RUN", "RANK_ID", "RANK_SIZE")

# Stands in for the Python interpreter: helper scripts run for real; a "training" worker records
# its environment, logs steps, ignores SIGTERM (as a rank blocked in a collective would) and
# fails on request.
FAKE_PYTHON = r"""#!/usr/bin/env bash
case "$1" in */scripts/*.py) exec {python} "$@";; esac
echo $$ > "$PWD/pid"
echo "RANK_ID=$RANK_ID DEVICE_ID=$DEVICE_ID RANK_SIZE=$RANK_SIZE" \
     "RANK_TABLE_FILE=$RANK_TABLE_FILE PWD=$PWD" > env.txt
echo "ARGS $*" >> env.txt
trap '' TERM
for i in $(seq 1 "${{STEPS:-600}}"); do
    echo "step $i"
    if [ "$RANK_ID" = "${{FAIL_RANK:-none}}" ] && [ "$i" = 3 ]; then
        echo "Traceback (most recent call last):" >&2
        echo "RuntimeError: rank $RANK_ID lost its device" >&2
        echo "[INFO] cleanup done" >&2
        exit 3
    fi
    sleep 0.5
done
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update(GLOG_v="3", PYTHONPATH=str(REPO_ROOT), **{k: str(v) for k, v in extra.items()})
    return env


def _rank_table(tmp_path, n=2):
    conf = tmp_path / "hccn.conf"
    conf.write_text("".join(f"address_{i}=192.168.{i}.1\n" for i in range(n)))
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "hccl_tools.py"), "--device_num", f"[0,{n})",
                    "--hccn_conf", str(conf), "--server_ip", "10.9.9.9", "--output_dir", str(tmp_path)],
                   check=True, capture_output=True, timeout=60)
    return tmp_path / f"hccl_{n}p_{''.join(map(str, range(n)))}_10.9.9.9.json"


def _fake_python(tmp_path):
    path = tmp_path / "fake_python"
    path.write_text(FAKE_PYTHON.format(python=sys.executable))
    path.chmod(0o755)
    return path


def _start_rank_table(tmp_path, **env):
    return subprocess.Popen(["bash", str(LAUNCH), "u2netp", str(_rank_table(tmp_path)), str(QUICK_CFG),
                             "train.epochs=1"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(PYTHON=_fake_python(tmp_path), LOG_DIR=tmp_path / "logs",
                                                STOP_GRACE=2, **env))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead too
        return f.read().split(")")[-1].split()[0] != "Z"


def _wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_rank_table_ranks_get_their_own_dirs_and_env(tmp_path):
    proc = _start_rank_table(tmp_path, STEPS=2)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "all 2 workers finished" in out
    table = tmp_path / "hccl_2p_01_10.9.9.9.json"
    for rank in (0, 1):
        rank_dir = tmp_path / "logs" / f"rank_{rank}"
        env_line, args = (rank_dir / "env.txt").read_text().splitlines()
        assert env_line == (f"RANK_ID={rank} DEVICE_ID={rank} RANK_SIZE=2 RANK_TABLE_FILE={table} "
                            f"PWD={rank_dir}")
        train = REPO_ROOT / "models" / "u2net" / "train.py"
        assert args == f"ARGS {train} --config {QUICK_CFG} model.name=u2netp train.epochs=1"
        assert (rank_dir / "log.txt").read_text().splitlines() == ["step 1", "step 2"]


def test_rank_table_failing_worker_ends_the_job(tmp_path):
    """Rank 1 fails; rank 0 ignores SIGTERM (blocked in a collective) and must still be stopped."""
    start = time.time()
    proc = _start_rank_table(tmp_path, FAIL_RANK=1)
    _, err = proc.communicate(timeout=60)
    elapsed = time.time() - start
    assert proc.returncode == 1
    assert elapsed < 60
    assert "error: rank 1 died (exit code 3)" in err
    log = tmp_path / "logs" / "rank_1" / "log.txt"
    assert f"Last error line of {log}: RuntimeError: rank 1 lost its device" in err
    survivor = int((tmp_path / "logs" / "rank_0" / "pid").read_text())
    assert not _alive(survivor)


def test_rank_table_killed_worker_ends_the_job(tmp_path):
    proc = _start_rank_table(tmp_path)
    pid_files = [tmp_path / "logs" / f"rank_{r}" / "pid" for r in (0, 1)]
    _wait_for(lambda: all(p.exists() and p.read_text().strip() for p in pid_files), 30, "both workers")
    time.sleep(1.0)  # a few steps in
    victim, survivor = int(pid_files[1].read_text()), int(pid_files[0].read_text())
    os.kill(victim, signal.SIGKILL)
    killed = time.time()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and time.time() - killed < 60
    assert "error: rank 1 died (killed by signal 9 (KILL))" in err
    assert re.search(r"Last error line of \S+rank_1/log\.txt: step \d+", err)  # no error printed: last line
    assert not _alive(survivor)


# ---------------------------------------------------------------- msrun, real training (slow)

TINY = ["data.resize=40", "data.crop=32", "test.size=32", "train.epochs=1", "train.batch_size=2",
        "train.max_steps_per_epoch=2", "train.num_workers=1", "train.log_interval=1", "mode=pynative"]


@pytest.fixture(scope="module")
def sod_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("sod")
    subprocess.run([sys.executable, "-m", "common.data.synthetic", "--format", "sod", "--out", str(root),
                    "--num", "8", "--num-val", "2", "--size", "48"], check=True, capture_output=True,
                   cwd=REPO_ROOT, env=_env(), timeout=120)
    return root


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_args(sod_data, out_dir, *extra):
    return ["bash", str(LAUNCH), "u2netp", "2", str(QUICK_CFG), f"data.train_root={sod_data / 'train'}",
            f"test.root={sod_data / 'test'}", f"output_dir={out_dir}", *TINY, *extra]


def _load_ckpt(path):
    import mindspore as ms

    return {k: v.asnumpy() if hasattr(v, "asnumpy") else v for k, v in ms.load_checkpoint(str(path)).items()}


@pytest.fixture(scope="module")
def two_rank_run(sod_data, tmp_path_factory):
    """``run_distribute_train.sh u2netp 2 <quick config>`` with msrun on this machine."""
    work = tmp_path_factory.mktemp("e2e")
    start = time.time()
    proc = subprocess.run(_train_args(sod_data, work / "out"), cwd=work, check=False, capture_output=True,
                          text=True, timeout=600,
                          env=_env(LOG_DIR=work / "logs", MASTER_PORT=_free_port(), CLUSTER_TIME_OUT=300))
    return work, proc, time.time() - start


@pytest.mark.slow
def test_msrun_two_ranks_end_to_end(two_rank_run, sod_data):
    work, proc, seconds = two_rank_run
    logs = {r: (work / "logs" / f"worker_{r}.log") for r in (0, 1)}
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    text = {r: p.read_text() for r, p in logs.items()}
    assert "--worker_num=2 --local_worker_num=2" in proc.stdout
    for rank in (0, 1):  # each rank trained its steps, in its own process and log
        assert f"Start worker process with rank id:{rank}" in proc.stdout
        assert f"[rank {rank}] epoch 1/1 step 2/2" in text[rank] and f"[rank {1 - rank}]" not in text[rank]
    # only rank 0 writes: its log names the checkpoint, rank 1's saves nothing
    assert re.search(r"\[rank 0\] saved \S+u2netp-e001\.ckpt", text[0]) and "saved" not in text[1]
    ckpts = sorted(p.name for p in (work / "out" / "checkpoints").glob("*.ckpt"))
    assert "u2netp-e001.ckpt" in ckpts
    print(f"two-rank launch: {seconds:.0f} s")
    # the checkpoint evaluates with eval.py (--ckpt stays an alias of --ckpt_file)
    ev = subprocess.run([sys.executable, str(REPO_ROOT / "models/u2net/eval.py"), "--config", str(QUICK_CFG),
                         "--ckpt", str(work / "out" / "checkpoints" / "u2netp-e001.ckpt"),
                         f"test.root={sod_data / 'test'}", "test.size=32", f"output_dir={work / 'eval'}"],
                        cwd=work, check=False, capture_output=True, text=True, timeout=300, env=_env())
    assert ev.returncode == 0, ev.stderr[-3000:]
    assert re.search(r"^max_f\s+0\.\d{4}", ev.stdout, re.MULTILINE) and "max_f_pr_curve" in ev.stdout
    (results,) = [line.split("results: ", 1)[1] for line in ev.stdout.splitlines()
                  if line.startswith("results: ")]
    scores = json.loads((work / results).read_text())
    assert scores["num_images"] == 2 and 0 <= scores["max_f"] <= 1


@pytest.mark.slow
def test_msrun_two_servers_on_one_host_train_in_lockstep(two_rank_run, sod_data, tmp_path):
    """Two launcher invocations, one worker each, two in total, master 127.0.0.1: rank 0 ends
    with the same weights as rank 0 of the one-server two-worker run, which needs rank 1's
    gradients in every step."""
    ref_work, ref_proc, _ = two_rank_run
    assert ref_proc.returncode == 0, "the one-server run failed (see test_msrun_two_ranks_end_to_end)"
    port = _free_port()
    procs = []
    for node in (0, 1):
        env = _env(LOG_DIR=tmp_path / f"logs{node}", MASTER_ADDR="127.0.0.1", MASTER_PORT=port,
                   NODE_RANK=node, LOCAL_WORKER_NUM=1, CLUSTER_TIME_OUT=300)
        procs.append(subprocess.Popen(_train_args(sod_data, tmp_path / "out"), cwd=tmp_path, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        if node == 0:  # node 1 must find node 0's scheduler listening, as on a real cluster
            def listening():
                with socket.socket() as s:
                    return s.connect_ex(("127.0.0.1", port)) == 0
            _wait_for(listening, 120, "node 0's scheduler")
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for node, p in enumerate(procs):
        assert p.returncode == 0, f"node {node}:\n{outputs[node][-3000:]}"
    rank0 = (tmp_path / "logs0" / "worker_0.log").read_text()
    rank1 = (tmp_path / "logs1" / "worker_1.log").read_text()
    assert "[rank 0] epoch 1/1 step 2/2" in rank0 and "[rank 1] epoch 1/1 step 2/2" in rank1
    assert "--worker_num=2 --local_worker_num=1" in outputs[1] and "--node_rank=1" in outputs[1]
    ours = _load_ckpt(tmp_path / "out" / "checkpoints" / "u2netp-e001.ckpt")
    ref = _load_ckpt(ref_work / "out" / "checkpoints" / "u2netp-e001.ckpt")
    assert sorted(ours) == sorted(ref)
    weights = [k for k in ours if k.startswith(("stage", "side", "outconv"))]
    assert len(weights) > 100
    for key in ours:  # weights, BatchNorm statistics, optimizer moments, step counters
        if isinstance(ours[key], np.ndarray):
            np.testing.assert_allclose(ours[key], ref[key], rtol=0, atol=1e-6, err_msg=key)
        else:
            assert ours[key] == ref[key], key


def _worker_pid(rank, tag):
    """pid of the msrun worker of ``rank`` started with env ZOO_TEST_TAG=tag."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if env.get(b"ZOO_TEST_TAG") == tag.encode() and env.get(b"RANK_ID") == str(rank).encode() \
                and env.get(b"MS_ROLE") == b"MS_WORKER" and b"train.py" in cmd:
            return int(entry)
    return None


@pytest.mark.slow
def test_msrun_killed_worker_ends_the_job(sod_data, tmp_path):
    tag = str(tmp_path)
    proc = subprocess.Popen(_train_args(sod_data, tmp_path / "out", "train.epochs=50"), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(LOG_DIR=tmp_path / "logs", MASTER_PORT=_free_port(),
                                     CLUSTER_TIME_OUT=300, ZOO_TEST_TAG=tag))
    log1 = tmp_path / "logs" / "worker_1.log"
    _wait_for(lambda: log1.exists() and "[rank 1] epoch 1/50 step 1/2" in log1.read_text(), 400,
              "rank 1's first training step")
    victim = _worker_pid(1, tag)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    killed = time.time()
    _, err = proc.communicate(timeout=120)
    seconds = time.time() - killed
    print(f"launcher exited {seconds:.1f} s after the kill")
    assert proc.returncode == 1 and seconds < 60
    assert f"error: rank 1 (pid {victim}) died (killed by signal 9 (KILL))" in err
    assert f"Last error line of {tmp_path / 'logs' / 'worker_1.log'}: " in err
    assert _worker_pid(0, tag) is None  # the survivor was stopped too

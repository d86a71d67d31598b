"""Launchers: argument handling and the commands they would run (DRY_RUN=1), model-name
resolution, device resolution, rank tables (hccl_tools.py) and multi-server msrun commands."""
import json
import os
import shlex
import subprocess
import sys

import pytest

from common.paths import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"
U2_CFG = "configs/u2net/u2net_8xb16_duts-tr_ascend_oldport.yaml"
QUICK_CFG = "configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml"
DDR_ASCEND = "configs/ddrnet/ddrnet23_8xb128_imagenet_300e_ascend.yaml"
DDR_GPU = "configs/ddrnet/ddrnet23_8xb64_imagenet_300e_gpu.yaml"
NO_ENV = ("DEVICE_TARGET", "DEVICE_ID", "LAUNCHER", "RANK_TABLE_FILE", "SERVER_ID", "NODE_RANK",
          "MASTER_ADDR", "LOCAL_WORKER_NUM", "WORKER_NUM", "CONFIG", "PREPROCESS", "POSTPROCESS")


def _sh(script, *args, cwd=REPO_ROOT, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in NO_ENV}
    full_env.update(DRY_RUN="1", **env)
    return subprocess.run(["bash", str(SCRIPTS / script), *map(str, args)], cwd=cwd, env=full_env,
                          check=False, capture_output=True, text=True, timeout=60)


def _commands(proc):
    """The commands a dry run printed, each split into words."""
    assert proc.returncode == 0, proc.stderr
    return [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ ")]


def _resolve(name):
    return subprocess.run([sys.executable, str(SCRIPTS / "resolve_model.py"), name], check=False,
                          capture_output=True, text=True, timeout=60)


# ---------------------------------------------------------------- model names

@pytest.mark.parametrize("name, printed", [
    ("u2net", "models/u2net"),            # a folder name (also a registry name): the folder wins
    ("u2netp", "models/u2net u2netp"),
    ("ddrnet", "models/ddrnet"),
    ("ddrnet23_slim", "models/ddrnet ddrnet23_slim"),
])
def test_resolve_model_exact_names(name, printed):
    proc = _resolve(name)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == printed


@pytest.mark.parametrize("name", ["u2netzz", "u2", "ddrnet23x", "U2NETP"])
def test_resolve_model_rejects_anything_inexact(name):
    proc = _resolve(name)
    assert proc.returncode == 2
    assert f"unknown model '{name}'" in proc.stderr
    # both kinds of valid names are listed
    assert "ddrnet, " in proc.stderr and "ddrnet23_slim" in proc.stderr and "u2netp" in proc.stderr


def test_static_registry_equals_the_live_registry():
    """The launchers read registrations from source (no MindSpore import): it must agree with the
    registry that create_model uses."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        import resolve_model
    finally:
        sys.path.remove(str(SCRIPTS))
    from models import _REGISTRY, list_models

    static, unparsed = resolve_model.static_registry()
    assert unparsed == [] and sorted(static) == list_models()
    assert all(_REGISTRY[n].__module__ == f"models.{folder}" for n, folder in static.items())


def test_prefix_of_a_folder_fails_in_the_launcher():
    proc = _sh("run_distribute_train.sh", "u2netzz", "2", QUICK_CFG)
    assert proc.returncode == 2
    assert "unknown model 'u2netzz'" in proc.stderr and "+ msrun" not in proc.stdout


def test_registry_name_selects_the_variant():
    (cmd,) = _commands(_sh("run_standalone_train.sh", "u2netp", U2_CFG, "train.epochs=1"))
    assert cmd[1].endswith("models/u2net/train.py") and cmd[-2:] == ["model.name=u2netp", "train.epochs=1"]
    (cmd,) = _commands(_sh("run_standalone_train.sh", "u2net", QUICK_CFG))
    assert not any(a.startswith("model.name=") for a in cmd)  # folder: the config's variant stays


# ---------------------------------------------------------------- device resolution

def test_distributed_launch_keeps_the_configs_device():
    """The issue's case: the Ascend config must not be overridden by a launcher default."""
    (cmd,) = _commands(_sh("run_distribute_train.sh", "ddrnet23", "8", DDR_ASCEND))
    assert cmd[:3] == ["msrun", "--worker_num=8", "--local_worker_num=8"]
    assert "--device_target" not in cmd and not any(a.startswith("device=") for a in cmd)
    assert cmd[cmd.index("--config") + 1] == str(REPO_ROOT / DDR_ASCEND)


@pytest.mark.parametrize("script, args", [
    ("run_standalone_train.sh", ["u2net", QUICK_CFG]),
    ("run_distribute_train.sh", ["u2net", "2", QUICK_CFG]),
    ("run_eval.sh", ["u2net", QUICK_CFG, "CKPT"]),
])
def test_device_flag_only_when_given(script, args, tmp_path):
    (tmp_path / "x.ckpt").write_bytes(b"")
    args = [str(tmp_path / "x.ckpt") if a == "CKPT" else a for a in args]
    (cmd,) = _commands(_sh(script, *args, "train.epochs=2"))
    assert "--device_target" not in cmd
    (cmd,) = _commands(_sh(script, *args, "ascend", "train.epochs=2"))
    assert cmd[cmd.index("--device_target") + 1] == "Ascend" and cmd[-1] == "train.epochs=2"
    (cmd,) = _commands(_sh(script, *args, DEVICE_TARGET="gpu"))
    assert cmd[cmd.index("--device_target") + 1] == "GPU"


def test_bad_device_target_env_fails():
    proc = _sh("run_standalone_train.sh", "u2net", QUICK_CFG, DEVICE_TARGET="tpu")
    assert proc.returncode == 2 and "DEVICE_TARGET must be CPU, GPU or Ascend, got 'tpu'" in proc.stderr


def test_standalone_passes_device_id_and_resume():
    (cmd,) = _commands(_sh("run_standalone_train.sh", "u2net", QUICK_CFG, "GPU", "--resume", "a.ckpt",
                           DEVICE_ID="3"))
    assert cmd[cmd.index("--device_id") + 1] == "3"
    assert cmd[-2:] == ["--resume", "a.ckpt"]


# ---------------------------------------------------------------- msrun, several servers

def test_msrun_several_servers():
    env = {"MASTER_ADDR": "10.0.0.5", "NODE_RANK": "1", "LOCAL_WORKER_NUM": "8", "MASTER_PORT": "9000"}
    (cmd,) = _commands(_sh("run_distribute_train.sh", "u2net", "16", U2_CFG, **env))
    for flag in ("--worker_num=16", "--local_worker_num=8", "--master_addr=10.0.0.5", "--node_rank=1",
                 "--master_port=9000"):
        assert flag in cmd


@pytest.mark.parametrize("env, message", [
    ({"LOCAL_WORKER_NUM": "3"}, "LOCAL_WORKER_NUM=3 must divide NUM_WORKERS 16"),
    ({"LOCAL_WORKER_NUM": "8", "NODE_RANK": "2"}, "NODE_RANK=2 must lie in [0, 2)"),
    ({"WORKER_NUM": "8"}, "WORKER_NUM=8 differs from NUM_WORKERS 16"),
])
def test_msrun_bad_server_counts(env, message):
    proc = _sh("run_distribute_train.sh", "u2net", "16", U2_CFG, **env)
    assert proc.returncode == 2 and message in proc.stderr


def test_gpu_launcher_msrun_and_mpirun():
    (cmd,) = _commands(_sh("run_distribute_train_gpu.sh", "ddrnet23", "4", DDR_GPU, "train.epochs=1"))
    assert cmd[:2] == ["msrun", "--worker_num=4"] and cmd[-1] == "train.epochs=1"
    assert cmd[cmd.index("--device_target") + 1] == "GPU" and "model.name=ddrnet23" in cmd
    (cmd,) = _commands(_sh("run_distribute_train_gpu.sh", "ddrnet", "4", DDR_GPU, LAUNCHER="mpirun"))
    assert cmd[:4] == ["mpirun", "--allow-run-as-root", "-n", "4"]
    assert cmd[cmd.index("--device_target") + 1] == "GPU"
    proc = _sh("run_distribute_train_gpu.sh", "ddrnet", "4", DDR_GPU, LAUNCHER="ranktable")
    assert proc.returncode == 2 and "LAUNCHER must be msrun or mpirun" in proc.stderr


# ---------------------------------------------------------------- rank tables

def _hccn_conf(path, n=8):
    lines = ["# written by the test"] + [f"address_{i}=192.168.{i}.10" for i in range(n)]
    lines += [f"netmask_{i}=255.255.255.0" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _hccl(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPTS / "hccl_tools.py"), *map(str, args)], cwd=cwd,
                          check=False, capture_output=True, text=True, timeout=60)


def test_hccl_tools_writes_the_old_ports_table(tmp_path):
    conf = _hccn_conf(tmp_path / "hccn.conf")
    proc = _hccl("--device_num", "[0,8)", "--hccn_conf", conf, "--server_ip", "10.1.2.3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = json.loads((tmp_path / "hccl_8p_01234567_10.1.2.3.json").read_text())
    assert table["version"] == "1.0" and table["server_count"] == "1" and table["status"] == "completed"
    (server,) = table["server_list"]
    assert server["server_id"] == "10.1.2.3" and server["host_nic_ip"] == "reserve"
    assert server["device"][5] == {"device_id": "5", "device_ip": "192.168.5.10", "rank_id": "5"}
    assert [d["rank_id"] for d in server["device"]] == [str(i) for i in range(8)]
    # the upper four chips: ranks restart at 0, device ids keep the chip numbers
    proc = _hccl("--device_num", "[4,8)", "--hccn_conf", conf, "--server_ip", "10.1.2.3", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    devices = json.loads((tmp_path / "hccl_4p_4567_10.1.2.3.json").read_text())["server_list"][0]["device"]
    pairs = [(d["device_id"], d["rank_id"]) for d in devices]
    assert pairs == [("4", "0"), ("5", "1"), ("6", "2"), ("7", "3")]


def test_hccl_tools_detects_the_server_ip(tmp_path):
    proc = _hccl("--device_num", "[0,2)", "--hccn_conf", _hccn_conf(tmp_path / "hccn.conf", 2), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (written,) = tmp_path.glob("hccl_2p_01_*.json")
    server_id = json.loads(written.read_text())["server_list"][0]["server_id"]
    assert written.name == f"hccl_2p_01_{server_id}.json" and server_id.count(".") == 3


@pytest.mark.parametrize("args, message", [
    (["--device_num", "[0,9)"], "0 <= first < last <= 8"),
    (["--device_num", "[2,6)"], "crossing chips 3/4 must be [0,8)"),
    (["--device_num", "0-8"], 'must look like "[0,8)"'),
    (["--device_num", "[0,4)", "--hccn_conf", "HCCN2"], "no address_2= line for device 2"),
    (["--device_num", "[0,4)", "--hccn_conf", "missing.conf"], "cannot read missing.conf"),
])
def test_hccl_tools_errors(args, message, tmp_path):
    _hccn_conf(tmp_path / "hccn2.conf", 2)
    args = [str(tmp_path / "hccn2.conf") if a == "HCCN2" else a for a in args]
    proc = _hccl(*args, "--server_ip", "1.2.3.4", cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr


def _two_server_table(tmp_path):
    conf = _hccn_conf(tmp_path / "hccn.conf", 2)
    for ip in ("10.0.0.1", "10.0.0.2"):
        proc = _hccl("--device_num", "[0,2)", "--hccn_conf", conf, "--server_ip", ip, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    proc = _hccl("--merge", "hccl_2p_01_10.0.0.1.json", "hccl_2p_01_10.0.0.2.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "hccl_4p_2s.json"


def test_hccl_tools_merge(tmp_path):
    table = json.loads(_two_server_table(tmp_path).read_text())
    assert table["server_count"] == "2"
    layout = [(s["server_id"], [(d["device_id"], d["rank_id"]) for d in s["device"]])
              for s in table["server_list"]]
    assert layout == [("10.0.0.1", [("0", "0"), ("1", "1")]), ("10.0.0.2", [("0", "2"), ("1", "3")])]


def test_rank_table_in_the_device_count_position(tmp_path):
    conf = _hccn_conf(tmp_path / "hccn.conf", 3)
    proc = _hccl("--device_num", "[0,3)", "--hccn_conf", conf, "--server_ip", "10.0.0.9", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = tmp_path / "hccl_3p_012_10.0.0.9.json"
    proc = _sh("run_distribute_train.sh", "ddrnet23", table, DDR_ASCEND, "train.epochs=1",
               LOG_DIR=str(tmp_path / "logs"))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("+ ")]
    assert proc.returncode == 0, proc.stderr
    assert len(lines) == 3  # the device count comes from the table
    for rank, line in enumerate(lines):
        assert f"cd {tmp_path}/logs/rank_{rank} && " in line
        assert f"DEVICE_ID={rank} RANK_ID={rank} RANK_SIZE=3 RANK_TABLE_FILE={table} " in line
        assert f"> {tmp_path}/logs/rank_{rank}/log.txt" in line
        assert "models/ddrnet/train.py --config " + str(REPO_ROOT / DDR_ASCEND) in line
        assert "--device_target" not in line and "model.name=ddrnet23 train.epochs=1" in line


def test_rank_table_with_two_servers_starts_only_local_ranks(tmp_path):
    table = _two_server_table(tmp_path)
    proc = _sh("run_distribute_train.sh", "u2net", table, U2_CFG, SERVER_ID="10.0.0.2",
               LOG_DIR=str(tmp_path / "l"))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("+ ")]
    assert proc.returncode == 0, proc.stderr
    assert len(lines) == 2
    assert "DEVICE_ID=0 RANK_ID=2 RANK_SIZE=4 " in lines[0]
    assert "DEVICE_ID=1 RANK_ID=3 RANK_SIZE=4 " in lines[1]
    assert "/l/rank_2 && " in lines[0]
    # without SERVER_ID the host's own IPs decide: none of 10.0.0.x here
    proc = _sh("run_distribute_train.sh", "u2net", table, U2_CFG)
    assert proc.returncode == 2
    assert "match 0 of the table's servers ['10.0.0.1', '10.0.0.2']: set SERVER_ID" in proc.stderr


def test_rank_table_from_the_environment_checks_the_count(tmp_path):
    conf = _hccn_conf(tmp_path / "hccn.conf", 2)
    proc = _hccl("--device_num", "[0,2)", "--hccn_conf", conf, "--server_ip", "1.1.1.1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = tmp_path / "hccl_2p_01_1.1.1.1.json"
    proc = _sh("run_distribute_train.sh", "u2net", "2", U2_CFG, LAUNCHER="ranktable",
               RANK_TABLE_FILE=str(table), LOG_DIR=str(tmp_path / "logs"))
    assert proc.returncode == 0 and "DEVICE_ID=1 RANK_ID=1 RANK_SIZE=2" in proc.stdout
    proc = _sh("run_distribute_train.sh", "u2net", "8", U2_CFG, LAUNCHER="ranktable",
               RANK_TABLE_FILE=str(table))
    assert proc.returncode == 2 and "NUM_WORKERS 8 differs from the 2 devices of rank table" in proc.stderr
    (tmp_path / "bad.json").write_text("{}")
    proc = _sh("run_distribute_train.sh", "u2net", tmp_path / "bad.json", U2_CFG)
    assert proc.returncode == 2 and "is not an HCCL rank table" in proc.stderr


# ---------------------------------------------------------------- eval, export, ONNX, 310

def test_eval_export_onnx_commands(tmp_path):
    ckpt, onnx = tmp_path / "x.ckpt", tmp_path / "x.onnx"
    ckpt.write_bytes(b"")
    onnx.write_bytes(b"")
    (cmd,) = _commands(_sh("run_eval.sh", "u2netp", QUICK_CFG, ckpt, "test.size=64"))
    assert cmd[1].endswith("models/u2net/eval.py")
    assert cmd[2:] == ["--config", QUICK_CFG, "--ckpt_file", str(ckpt), "model.name=u2netp", "test.size=64"]
    (cmd,) = _commands(_sh("run_export.sh", "ddrnet", DDR_ASCEND, ckpt, "mindir", "out/ddr"))
    assert cmd[2:] == ["--config", DDR_ASCEND, "--ckpt_file", str(ckpt), "--file_format", "MINDIR",
                       "--file_name", "out/ddr"]
    (cmd,) = _commands(_sh("run_export.sh", "ddrnet23", DDR_ASCEND, ckpt, "AIR", "export.batch_size=2"))
    assert cmd[-4:] == ["--file_format", "AIR", "model.name=ddrnet23", "export.batch_size=2"]
    (cmd,) = _commands(_sh("run_infer_onnx.sh", "u2net", QUICK_CFG, onnx))
    assert cmd[1].endswith("models/u2net/infer_onnx.py")
    assert cmd[2:] == ["--config", QUICK_CFG, "--onnx_file", str(onnx)]


def test_infer_310_model_form(tmp_path):
    model, data = tmp_path / "u2netp.mindir", tmp_path / "DUTS-TE"
    model.write_bytes(b"")
    data.mkdir()
    proc = _sh("run_infer_310.sh", "u2netp", model, data, "1", "lite_cpu", cwd=tmp_path,
               CONFIG=str(REPO_ROOT / QUICK_CFG))
    pre, build, app, post = _commands(proc)
    cfg = ["--config", str(REPO_ROOT / QUICK_CFG)]
    assert pre[1].endswith("models/u2net/preprocess.py")
    assert pre[2:] == [*cfg, "--data_path", str(data), "--output_dir", "preprocess_Result",
                       "model.name=u2netp"]
    assert build[-1] == "lite"
    assert app[app.index("--model_path") + 1] == str(model) and app[app.index("--device_id") + 1] == "1"
    assert app[app.index("--input_dir") + 1] == "preprocess_Result"
    assert post[1].endswith("models/u2net/postprocess.py")
    assert post[2:] == [*cfg, "--data_path", str(data), "--data_dir", "preprocess_Result",
                        "--result_dir", "result_Files", "model.name=u2netp"]
    # without CONFIG the model's defaults apply: no --config at all
    pre, _, _, post = _commands(_sh("run_infer_310.sh", "ddrnet", model, data, cwd=tmp_path))
    assert "--config" not in pre and "--config" not in post and pre[1].endswith("models/ddrnet/preprocess.py")
    # key=value overrides, anywhere after MODEL, reach both scripts; positionals keep their places
    pre, _, app, post = _commands(_sh("run_infer_310.sh", "u2netp", model, "test.size=64", data, "2",
                                      "output_dir=/tmp/x", cwd=tmp_path))
    assert pre[-3:] == ["model.name=u2netp", "test.size=64", "output_dir=/tmp/x"]
    assert post[-3:] == pre[-3:] and app[app.index("--device_id") + 1] == "2"


def test_infer_310_file_form_refuses_overrides(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    proc = _sh("run_infer_310.sh", model, tmp_path, "test.size=64", cwd=tmp_path)
    assert proc.returncode != 0 and "overrides need the model form" in proc.stderr


def test_infer_310_file_form_still_runs_custom_commands(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"")
    proc = _sh("run_infer_310.sh", model, tmp_path / "in", cwd=tmp_path, PREPROCESS="echo pre $DATA_DIR",
               POSTPROCESS="echo post $RESULT_DIR")
    pre, _, app, post = _commands(proc)
    assert pre == ["bash", "-c", "echo pre $DATA_DIR"] and post == ["bash", "-c", "echo post $RESULT_DIR"]
    assert app[app.index("--input_dir") + 1] == str(tmp_path / "in")


@pytest.mark.parametrize("script, args, env, message", [
    ("run_distribute_train.sh", ["u2net", "eight", U2_CFG], {}, "positive integer or an HCCL rank table"),
    ("run_distribute_train.sh", ["nosuchnet", "2", U2_CFG], {}, "unknown model 'nosuchnet'"),
    ("run_distribute_train.sh", ["u2net", "2", "missing.yaml"], {}, "config file not found"),
    ("run_distribute_train.sh", ["u2net", "2", U2_CFG], {"LAUNCHER": "ranktable"}, "RANK_TABLE_FILE"),
    ("run_distribute_train.sh", ["u2net", "2", U2_CFG], {"LAUNCHER": "slurm"}, "unknown LAUNCHER"),
    ("run_distribute_train.sh", ["u2net", "missing.json", U2_CFG], {}, "rank table not found: missing.json"),
    ("run_standalone_train.sh", ["u2net"], {}, "usage"),
    ("run_eval.sh", ["u2net", U2_CFG, "missing.ckpt"], {}, "checkpoint not found"),
    ("run_export.sh", ["u2net", U2_CFG, "missing.ckpt", "ONNX"], {}, "checkpoint not found"),
    ("run_export.sh", ["u2net", U2_CFG, "x.ckpt", "PTH"], {}, "FORMAT must be MINDIR, ONNX or AIR"),
    ("run_infer_onnx.sh", ["u2net", U2_CFG, "missing.onnx"], {}, "ONNX file not found"),
    ("run_infer_310.sh", ["u2netzz", "m.mindir", "."], {}, "unknown model 'u2netzz'"),
    ("run_infer_310.sh", ["u2netp", "m.mindir", "nowhere"], {}, "DATA_PATH not found: nowhere"),
    ("run_infer_310.sh", ["u2netp", "m.mindir", "."], {"CONFIG": "no.yaml"},
     "config file (CONFIG) not found"),
])
def test_bad_arguments_fail_clearly(script, args, env, message):
    proc = _sh(script, *args, **env)
    assert proc.returncode == 2
    assert message in proc.stderr


# ---------------------------------------------------------------- CI

@pytest.mark.parametrize("ci, outcome, code", [("", "1 skipped", 0), ("true", "1 error", 1)])
def test_missing_fixtures_skip_locally_and_fail_under_ci(ci, outcome, code, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(ZOO_SHARED_DIR=str(tmp_path / "no_shared"), CI=ci)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_metrics_sod.py::test_fixture_dataset_scores"], cwd=REPO_ROOT, env=env,
                          check=False, capture_output=True, text=True, timeout=120)
    assert outcome in proc.stdout and proc.returncode == code, proc.stdout[-2000:]
    assert f"oracle fixtures not found at {tmp_path / 'no_shared' / 'fixtures'}" in proc.stdout


def test_ci_runs_ruff_pinned():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert "python -m ruff check ." in ci
    assert ci.index("ruff check") < ci.index("python -m pytest")
    pins = [line for line in (REPO_ROOT / "requirements-test.txt").read_text().splitlines()
            if line.startswith("ruff")]
    assert len(pins) == 1 and pins[0].startswith("ruff==")


def test_data_recipe_benchmark_times_both_pipelines_and_refuses_a_set_smaller_than_a_batch(tmp_path):
    script = [sys.executable, str(REPO_ROOT / "scripts" / "benchmark_data_recipe.py")]
    small = subprocess.run(script + ["--images", "4", "--batch", "8"], check=False, capture_output=True, text=True)
    assert small.returncode == 2 and "--images 4 is fewer than one batch of 8" in small.stderr
    bad = subprocess.run(script + ["--images", "4", "--batch", "4", "--size", "64", "--pipelines", "mindspore",
                                   "--out", str(tmp_path / "bad"), "data.python_workers=fibers"],
                         check=False, capture_output=True, text=True, cwd=REPO_ROOT)
    assert bad.returncode != 0 and "data.python_workers 'fibers'" in bad.stderr  # overrides reach the config
    subprocess.run(script + ["--images", "8", "--batch", "4", "--size", "64", "--workers", "1", "--repeat", "2",
                             "--out", str(tmp_path)], check=True, capture_output=True, cwd=REPO_ROOT)
    rows = json.loads((tmp_path / "data_recipe.json").read_text())["rows"]
    assert [(r["pipeline"], r["workers"], len(r["runs"])) for r in rows] == [("numpy", 1, 2), ("mindspore", 1, 2)]
    assert all(r["images_per_s"] > 0 for r in rows)
    table = (tmp_path / "data_recipe.md").read_text()
    assert "| numpy | 1 |" in table and "| mindspore | 1 |" in table and (tmp_path / "data_recipe.png").stat().st_size

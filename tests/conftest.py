import os
import shutil
import subprocess
import sys

import pytest

from common.paths import REPO_ROOT, fixtures_dir, shared_dir

os.environ.setdefault("GLOG_v", "3")  # keep MindSpore's C++ logging quiet in test output


def _shared_or_skip(path, what):
    """``path`` when it is a folder; else skip with a reason, or fail under CI=true, where a
    missing oracle must not turn the checks against it into silent skips."""
    if not path.is_dir():
        message = f"{what} not found at {path} (expected ../shared beside the repo, or $ZOO_SHARED_DIR)"
        if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def fixtures():
    """Path to ../shared/fixtures; tests that need it skip with a reason when it is absent
    (and fail when CI=true)."""
    return _shared_or_skip(fixtures_dir(), "oracle fixtures")


@pytest.fixture(scope="session")
def reference_keys():
    return _shared_or_skip(shared_dir() / "reference" / "state_dict_keys", "reference key tables")


@pytest.fixture(scope="session")
def lite_app():
    """The C++ inference app built against MindSpore Lite (installed on first use), or a skip
    naming what is missing."""
    from common import infer310

    if shutil.which("cmake") is None or shutil.which("c++") is None:
        pytest.skip("cmake and a C++ compiler are needed to build ascend310_infer")
    try:
        infer310.lite_env(install=True)
    except infer310.LiteUnavailable as exc:
        pytest.skip(str(exc))
    return infer310.build_app("lite")


@pytest.fixture
def pynative():
    """Run a test in PyNative mode on CPU and restore the previous mode afterwards."""
    import mindspore as ms

    ms.set_device("CPU")
    old = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=old)


def _infer_310(args, cwd, timeout, **env):
    proc = subprocess.run(["bash", str(REPO_ROOT / "scripts/run_infer_310.sh"), *map(str, args)], check=False,
                          cwd=cwd, env=dict(os.environ, THREADS="2", **env), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture
def run_infer_310(lite_app):
    """``run(model_file, data_dir, cwd, postprocess, preprocess=None)``: scripts/run_infer_310.sh
    in its file form with the Lite CPU backend and the given PREPROCESS / POSTPROCESS commands;
    asserts success."""
    def run(model_file, data_dir, cwd, postprocess, preprocess=None, timeout=1200):
        env = {"POSTPROCESS": postprocess, **({"PREPROCESS": preprocess} if preprocess else {})}
        return _infer_310([model_file, data_dir, "0", "lite_cpu"], cwd, timeout, **env)

    return run


@pytest.fixture
def run_infer_310_model(lite_app):
    """``run(model, model_file, data_path, cwd, config, overrides, data_dir)``: the old ports' one-call
    form, ``run_infer_310.sh MODEL FILE DATA_PATH 0 lite_cpu key=value ...``; asserts success."""
    def run(model, model_file, data_path, cwd, config, overrides, data_dir, timeout=1200):
        return _infer_310([model, model_file, data_path, "0", "lite_cpu", *overrides], cwd, timeout,
                          CONFIG=str(config), DATA_DIR=str(data_dir))

    return run


_CHILD_ENV = "ZOO_TEST_CHILD"


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A test marked ``own_process`` runs in a fresh Python process: MindSpore keeps compiled
    graphs and host buffers for the life of a process, and the whole-model runs of every
    registered model (RefineNet alone holds 1.4 GB of Adam state) would add up in one pytest
    process until the kernel's OOM killer ends it (seen: 14 GB after four models)."""
    if pyfuncitem.get_closest_marker("own_process") is None or os.environ.get(_CHILD_ENV):
        return None
    base = pyfuncitem.funcargs.get("tmp_path")
    base = base / "child" if base is not None else None
    cmd = [sys.executable, "-m", "pytest", pyfuncitem.nodeid, "-q", "-o", "addopts=", "-p", "no:cacheprovider"]
    if base is not None:
        cmd += ["--basetemp", str(base)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=dict(os.environ, **{_CHILD_ENV: "1"}),
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or " passed" not in proc.stdout:
        pytest.fail(f"{pyfuncitem.nodeid} failed in its own process (exit {proc.returncode}):\n"
                    f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}", pytrace=False)
    return True

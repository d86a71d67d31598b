import os
import shutil

import pytest

from common.paths import fixtures_dir, shared_dir

os.environ.setdefault("GLOG_v", "3")  # keep MindSpore's C++ logging quiet in test output


@pytest.fixture(scope="session")
def fixtures():
    """Path to ../shared/fixtures; tests that need it skip with a reason when it is absent."""
    path = fixtures_dir()
    if not path.is_dir():
        pytest.skip(f"oracle fixtures not found at {path} (expected ../shared/fixtures beside the repo)")
    return path


@pytest.fixture(scope="session")
def reference_keys():
    path = shared_dir() / "reference" / "state_dict_keys"
    if not path.is_dir():
        pytest.skip(f"reference key tables not found at {path}")
    return path


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

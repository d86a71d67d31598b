import os

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

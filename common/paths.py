"""Well-known locations: the repository root and the shared oracle fixtures."""
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir():
    """``../shared`` beside the repository, or ``$ZOO_SHARED_DIR`` when set."""
    return Path(os.environ.get("ZOO_SHARED_DIR", REPO_ROOT.parent / "shared"))


def fixtures_dir():
    return shared_dir() / "fixtures"


def configs_dir():
    return REPO_ROOT / "configs"

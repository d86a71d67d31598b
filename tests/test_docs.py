"""Every config path, script and flag that a README or an entry point's --help names exists."""
import re
import subprocess
import sys
from functools import cache

import pytest

from common.config import ConfigError, load_config
from common.paths import REPO_ROOT
from common.runner.args import build_parser
from common.tasks import get_task
from models import get_spec

PATH = re.compile(r"(?<![\w/.-])((?:configs|scripts|models|ascend310_infer|common|tests)/[\w/.-]+"
                  r"\.(?:yaml|sh|py|md|txt|json))")
ENTRY = re.compile(r"models/(\w+)/(\w+)\.py")
SCRIPT = re.compile(r"scripts/(\w+)\.py")
FLAG = re.compile(r"(?<![\w-])(--[a-z][\w.-]*)")
COMMANDS = ("train", "eval", "export", "infer_onnx", "predict", "preprocess", "postprocess")


def documents():
    docs = [REPO_ROOT / "README.md", REPO_ROOT / "ascend310_infer" / "README.md",
            *sorted((REPO_ROOT / "models").glob("*/README.md"))]
    docs += sorted(p for p in (REPO_ROOT / "models").glob("*/*.py") if p.name != "__init__.py")
    docs += sorted((REPO_ROOT / "scripts").glob("*.py")) + sorted((REPO_ROOT / "scripts").glob("*.sh"))
    return docs


def logical_lines(text):
    """Lines with shell continuations (trailing backslash) joined."""
    return text.replace("\\\n", " ").splitlines()


@cache
def entry_flags(folder, command):
    spec = get_spec(folder)
    if command == "convert_weights":
        return {"--src", "--variant", "--out", "--ckpt_file", "--help"}
    extra = get_task(spec.task).predict_arguments if command == "predict" else []
    parser = build_parser(command, "", extra)
    return {s for action in parser._actions for s in action.option_strings}


@cache
def script_help(name):
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / f"{name}.py"), "--help"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"scripts/{name}.py --help failed: {proc.stderr[-500:]}"
    return proc.stdout


def _config_key_ok(folder, flag):
    try:
        load_config(get_spec(folder).defaults, None, [f"{flag[2:]}=0"])
    except ConfigError as exc:
        return "unknown config key" not in str(exc)
    return True


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_named_paths_exist(doc):
    missing = sorted({m for m in PATH.findall(doc.read_text()) if not (REPO_ROOT / m).exists()})
    assert not missing, f"{doc.relative_to(REPO_ROOT)} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", documents(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_flags_of_named_commands_exist(doc):
    bad = []
    for line in logical_lines(doc.read_text()):
        entry, script = ENTRY.search(line), SCRIPT.search(line)
        if entry and (entry.group(2) in COMMANDS or entry.group(2) == "convert_weights"):
            flags = entry_flags(entry.group(1), entry.group(2))
            bad += [(f, line.strip()) for f in FLAG.findall(line[entry.end():])
                    if f not in flags and not ("." in f and _config_key_ok(entry.group(1), f))]
        elif script and not entry:
            text = script_help(script.group(1))
            bad += [(f, line.strip()) for f in FLAG.findall(line[script.end():]) if f not in text]
    assert not bad, f"{doc.relative_to(REPO_ROOT)}: unknown flags {bad}"


@pytest.mark.parametrize("folder", sorted({get_spec(n).folder for n in __import__("models").list_models()}))
def test_entry_point_help_runs(folder):
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "models" / folder / "eval.py"), "--help"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "--ckpt_file" in proc.stdout and "--device_target" in proc.stdout

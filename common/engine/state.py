"""Resumable training state: what a checkpoint holds beside the weights, how it is checked on
resume, and safe writing (one-line errors, no temporary files left behind).

The LR schedule is not stored: a resumed run recomputes it from the current config and applies
it at the saved optimizer step, so ``optim.lr=...`` or ``train.epochs=...`` with ``--resume``
take effect from the resumed position. Changes that cannot be honoured are refused naming the
key (``optim.name``, ``train.ema_decay``, or a changed number of steps per epoch mid-epoch).
"""
import errno
import logging
import os
import re
import shutil
from pathlib import Path

from common.checkpoint import CheckpointError, save_checkpoint

log = logging.getLogger("zoo")

_TMP = re.compile(r"^\..+\.tmp(\d+)\.")
# optimizer entries rebuilt from the current config instead of restored
_SCHEDULE_PREFIX = "optimizer.learning_rate"


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (full disk, permissions); the message is one line."""


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_orphan_tmp_files(directory):
    """Remove ``.name.tmp<PID>.*`` files that dead processes left in ``directory``; returns them."""
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        match = _TMP.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d temporary checkpoint file(s) of killed runs in %s", len(removed), directory)
    return removed


def _own_tmp_files(path):
    path = Path(path)
    if not path.parent.is_dir():
        return []
    prefix = f".{path.stem}.tmp{os.getpid()}"
    return [p for p in path.parent.iterdir() if p.name.startswith(prefix)]


def safe_save(params, path, extra=None):
    """``save_checkpoint`` that removes its temporary files on any failure and reports a full
    disk or an unwritable folder as a one-line :class:`CheckpointWriteError`."""
    try:
        return save_checkpoint(params, path, extra)
    except (OSError, RuntimeError) as exc:
        for tmp in _own_tmp_files(path):
            tmp.unlink(missing_ok=True)
        text = str(exc).strip().splitlines()
        first = text[0] if text else type(exc).__name__
        if getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in str(exc):
            raise CheckpointWriteError(f"disk full while writing checkpoint {path}: free space in "
                                       f"{Path(path).parent} and resume from the last checkpoint") from None
        raise CheckpointWriteError(f"cannot write checkpoint {path}: {first}") from None


def is_schedule_key(key):
    return key.startswith(_SCHEDULE_PREFIX)


def explain_missing(missing):
    """Config key most likely responsible for state entries missing from a checkpoint."""
    if any(k.startswith("ema.") for k in missing):
        return "train.ema_decay (the checkpoint has no weight EMA)"
    if any(k.startswith("optimizer.") for k in missing):
        return "optim.name (the checkpoint holds another optimizer's state)"
    return "model.* (the checkpoint holds another network)"


def check_resume_guard(path, params, guard):
    """Refuse a resume whose config changed a key the saved state depends on."""
    for key, value in guard.items():
        saved = params.get(f"train_state.cfg.{key}")
        if saved is not None and str(saved) != str(value):
            raise CheckpointError(f"{path}: cannot resume with {key}={value}: the checkpoint was written "
                             f"with {key}={saved} and its state depends on it; keep {key}={saved} "
                             f"or start a new run (train.pretrained=... loads weights only)")


def remove_paths(paths):
    """Delete files and folders (a previous run's artifacts under ``train.overwrite``)."""
    for path in map(Path, paths):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()

"""The one exception type the data package raises for bad inputs."""
import re


class DatasetError(ValueError):
    """A dataset file or folder is missing, unreadable, or not in the expected format.

    Messages name the file or folder at fault and say what was expected.
    """


_WRAPPED = re.compile(r"DatasetError: ([^\n]+)")


def dataset_error_from(exc):
    """The :class:`DatasetError` raised inside a MindSpore pipeline worker, recovered from the
    multi-page RuntimeError MindSpore wraps it in (None when it is not one of ours)."""
    found = _WRAPPED.findall(str(exc))
    found = [m for m in found if not m.startswith("Traceback")]
    return DatasetError(found[-1].strip()) if found else None

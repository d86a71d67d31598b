"""One module per task (SOD, classification, segmentation, detection): the single scoring and
prediction path that eval.py, infer_onnx.py, the 310 postprocess and predict.py share.

A task is an object with the methods of :class:`common.tasks.base.Task`; ``get_task(name)``
returns it. Task modules are imported on first use so that one task does not pull in the
libraries of the others.
"""
import importlib

_TASKS = {"sod": "common.tasks.sod", "classification": "common.tasks.classification",
          "segmentation": "common.tasks.segmentation", "detection": "common.tasks.detection"}


def get_task(name):
    if name not in _TASKS:
        raise KeyError(f"unknown task '{name}', expected one of {sorted(_TASKS)}")
    return importlib.import_module(_TASKS[name]).TASK


def task_names():
    return sorted(_TASKS)

"""Evaluation metrics shared by every model: one implementation per metric.

Each metric streams (``update`` per image or batch, ``result`` for the split) and each module
has a command line scoring a folder of predictions, e.g. ``python -m common.metrics.sod``.
Names are resolved on first use so that importing one metric does not pull in the libraries of
the others (OpenCV and SciPy for SOD, pycocotools for COCO).
"""
import importlib

from common.metrics._cli import MetricFileNotFoundError, MetricInputError, write_json

_EXPORTS = {
    "SODMetric": "sod",
    "image_adaptive_f": "sod",
    "SegmentationMetric": "segmentation",
    "CocoDetectionMetric": "detection",
    "coco_evaluate": "detection",
    "VOCDetectionMetric": "detection_voc",
    "TopKAccuracy": "classification",
}

__all__ = ["CocoDetectionMetric", "MetricFileNotFoundError", "MetricInputError", "SODMetric",
           "SegmentationMetric", "TopKAccuracy", "VOCDetectionMetric", "coco_evaluate", "image_adaptive_f",
           "write_json"]
assert set(__all__) == {"MetricInputError", "MetricFileNotFoundError", "write_json", *_EXPORTS}


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)

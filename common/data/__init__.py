"""Dataset readers, transforms, synthetic datasets and the MindSpore pipeline builder.

Readers are random-access (``len``, ``[i]`` -> dict of numpy arrays) and decode lazily; transforms
are ``t(sample, rng)`` callables (see ``transforms``); ``loader.build_dataset`` batches them with
MindSpore. Sample keys: "image" (HxWx3 uint8 RGB), "mask" (HxW uint8 label map), "boxes" (N, 4)
float32 x1y1x2y2 with "labels"/"difficult"/"iscrowd", "label" (int32 class).
"""
from .classification import ImageFolderDataset, read_class_list
from .detection import CocoDetection, TxtDetection, VOCDetection
from .errors import DatasetError
from .loader import ConcatSource, build_dataset
from .sod import SODDataset
from .voc_seg import VOC_CLASSES, VOC_SEG_CLASSES, VOCSegDataset

__all__ = [
    "VOC_CLASSES",
    "VOC_SEG_CLASSES",
    "CocoDetection",
    "ConcatSource",
    "DatasetError",
    "ImageFolderDataset",
    "SODDataset",
    "TxtDetection",
    "VOCDetection",
    "VOCSegDataset",
    "build_dataset",
    "read_class_list",
]

"""Throughput of each model's training input chain, per worker (one process, one thread).

    python scripts/benchmark_data.py [--num 32] [--runs 5] [--seed 0]

Writes small synthetic datasets (at roughly the real datasets' image sizes) to a temporary folder,
then times decode alone and decode + the training transforms over ``--num`` images, ``--runs``
times, and prints the medians. Divide a training step's images by these numbers to see how many
workers keep a device fed.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from common.data import CocoDetection, ImageFolderDataset, SODDataset, VOCSegDataset
from common.data.synthetic import generate
from common.data.transforms import (
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    Resize,
    ToCHW,
)
from common.data.transforms_cls import imagenet_train_transform
from common.data.transforms_det import Expand, MinIoURandomCrop, PhotometricDistort


def chains(root):
    """(model, chain description, source, transform) for each model's training recipe."""
    voc = root / "voc/VOCdevkit/VOC2012"
    return [
        ("U-2-Net (SOD)", "resize 320, crop 288, flip",
         SODDataset(root / "sod/train"),
         Compose([Resize(320), RandomCrop(288), RandomHorizontalFlip(), Normalize(), ToCHW()])),
        ("RefineNet (VOC seg)", "scale 0.5-2, crop 513, flip",
         VOCSegDataset(voc, voc / "ImageSets/Segmentation/train.txt"),
         Compose([RandomScale((0.5, 2.0)), RandomCrop(513, mask_fill=255), RandomHorizontalFlip(),
                  Normalize(), ToCHW()])),
        ("RefineDet (COCO det)", "photometric, expand, min-IoU crop, resize 320",
         CocoDetection(root / "coco/train2017", root / "coco/annotations/instances_train2017.json"),
         Compose([PhotometricDistort(), Expand(), MinIoURandomCrop(), Resize((320, 320)),
                  RandomHorizontalFlip(), Normalize(), ToCHW()])),
        ("DDRNet (ImageNet cls)", "RRC 224, RandAugment m9, erasing 0.25",
         ImageFolderDataset(root / "imagenet/train"), imagenet_train_transform(224)),
    ]


def time_run(source, transform, num, seed):
    start = time.perf_counter()
    for i in range(num):
        sample = source[i % len(source)]
        if transform is not None:
            transform(sample, np.random.default_rng([seed, i]))
    return num / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num", type=int, default=32, help="images per timed run")
    parser.add_argument("--runs", type=int, default=5, help="timed runs; the median is reported")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)  # a worker is one thread; OpenCV would otherwise use every core
    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        root = Path(tmp)
        # typical sizes: DUTS ~400x300, VOC 500x375, COCO 640x480, ImageNet ~500x375
        for fmt, size in (("sod", 300), ("voc", 375), ("coco", 480), ("imagenet", 375)):
            generate(fmt, root / fmt, args.num, 0, size=size, seed=args.seed)
        print(f"{args.num} images per run, median of {args.runs} runs, one thread, "
              f"synthetic data in {root}\n")
        header = f"{'model':<22} {'training chain':<46} {'decode img/s':>12} {'decode+aug img/s':>17}"
        print(header)
        print("-" * len(header))
        for model, desc, source, transform in chains(root):
            time_run(source, transform, min(4, args.num), args.seed)  # warm-up (imports, caches)
            decode = statistics.median(time_run(source, None, args.num, args.seed)
                                       for _ in range(args.runs))
            full = statistics.median(time_run(source, transform, args.num, args.seed)
                                     for _ in range(args.runs))
            print(f"{model:<22} {desc:<46} {decode:>12.1f} {full:>17.1f}")


if __name__ == "__main__":
    main()

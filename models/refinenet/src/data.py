"""RefineNet training data: VOC / SBD list files (common/data/voc_seg.py) or the seed's MindRecord
files (common/data/mindrecord.py, written by ``python -m common.data.voc_tools to-mindrecord``).

Augmentation (the seed's recipe): random scale in ``data.scale_range`` (0.5-2.0 as the seed's
README says; its code used 3.0), pad to the crop with the ImageNet mean colour (image) and the
ignore label 255 (mask), random crop ``data.crop`` (513), random horizontal flip, ImageNet
normalisation on a [0, 1] scale (0 in the padding, as at test time). Labels stay at full
resolution as int32; the loss upsamples the 1/4-size logits to them.
"""
from pathlib import Path

import numpy as np

from common.data.loader import build_dataset
from common.data.mindrecord import decode_seg_row, read_seg_mindrecord
from common.data.transforms import (
    IMAGENET_MEAN,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    ToCHW,
)
from common.data.voc_seg import IGNORE_INDEX, VOCSegDataset

MEAN_PIXEL = tuple(round(255 * m) for m in IMAGENET_MEAN)  # normalises to ~0, like the test padding


class MaskToInt32:
    def __call__(self, sample, rng=None):
        out = dict(sample)
        out["mask"] = np.ascontiguousarray(sample["mask"], dtype=np.int32)
        return out


def train_transform(crop=513, scale_range=(0.5, 2.0), hflip=True, ignore_index=IGNORE_INDEX):
    steps = [RandomScale(scale_range), RandomCrop(crop, image_fill=MEAN_PIXEL, mask_fill=ignore_index)]
    if hflip:
        steps.append(RandomHorizontalFlip())
    return Compose(steps + [Normalize(), ToCHW(), MaskToInt32()])


def train_list(data_cfg):
    return data_cfg.train_list or Path(data_cfg.root) / "ImageSets" / "Segmentation" / "train.txt"


def _mindrecord_dataset(data_cfg, transform, batch_size, dist, num_workers, seed):
    """The seed's path: MindDataset rows decoded and augmented in a map (randomness from a
    generator seeded per worker process, not per sample as in the list-file path)."""
    files = data_cfg.mindrecord
    shard = {} if not dist.distributed else {"num_shards": dist.size, "shard_id": dist.rank}
    dataset = read_seg_mindrecord(files, shuffle=True, num_parallel_workers=num_workers, **shard)
    rng = np.random.default_rng([seed, dist.rank])

    def decode(file_name, data, label):
        sample = transform(decode_seg_row(file_name, data, label), rng)
        return sample["image"], sample["mask"]

    dataset = dataset.map(decode, input_columns=["file_name", "data", "label"],
                          output_columns=["image", "mask"], num_parallel_workers=1)
    return dataset.project(["image", "mask"]).batch(batch_size, drop_remainder=True)


def build_train_dataset(data_cfg, num_classes, batch_size, dist, num_workers=2, seed=0):
    """(image (B, 3, crop, crop) float32, mask (B, crop, crop) int32) batches."""
    transform = train_transform(data_cfg.crop, tuple(data_cfg.scale_range), data_cfg.hflip)
    if data_cfg.mindrecord:
        return _mindrecord_dataset(data_cfg, transform, batch_size, dist, num_workers, seed)
    source = VOCSegDataset(data_cfg.root, train_list(data_cfg))
    shard = {} if not dist.distributed else {"num_shards": dist.size, "shard_id": dist.rank}
    return build_dataset(source, transform, ["image", "mask"], batch_size, shuffle=True,
                         num_workers=num_workers, seed=seed, label_checks={"mask": num_classes},
                         ignore_label=IGNORE_INDEX, verify=data_cfg.verify, **shard)

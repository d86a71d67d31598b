"""RAS input pipelines (the seed's recipe: random horizontal flip, random rotation within 10
degrees, resize to 352, ImageNet normalisation) and the test preprocessing.

The old MindSpore port normalised with the ImageNet statistics twice, in training and at test
time, so its published weights expect that input; ``data.oldport_double_normalise`` reproduces it
(off by default: normalisation is applied exactly once).
"""
import cv2
import numpy as np

from common.data.loader import build_dataset
from common.data.sod import SODDataset
from common.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Compose,
    MaskToUnit,
    Normalize,
    RandomHorizontalFlip,
    RandomRotation,
    Resize,
    ToCHW,
)

_MEAN = np.asarray(IMAGENET_MEAN, np.float32)
_STD = np.asarray(IMAGENET_STD, np.float32)


class RenormaliseLikeOldPort:
    """A second ImageNet normalisation of an already normalised image (the old port's bug)."""

    def __call__(self, sample, rng=None):
        out = dict(sample)
        out["image"] = (sample["image"] - _MEAN) / _STD
        return out


def train_transform(size, hflip=True, rotate=10.0, double_normalise=False):
    steps = [RandomHorizontalFlip()] if hflip else []
    if rotate:
        steps.append(RandomRotation(rotate, image_fill=0, mask_fill=0))
    steps += [Resize(size), Normalize()]
    if double_normalise:
        steps.append(RenormaliseLikeOldPort())
    return Compose(steps + [ToCHW(), MaskToUnit()])


def preprocess(image, size, double_normalise=False):
    """HxWx3 uint8 -> (1, 3, H, W) float32: bilinear resize to ``size`` = (H, W), /255, ImageNet
    mean/std (twice with ``double_normalise``)."""
    x = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
    x = (x - _MEAN) / _STD
    if double_normalise:
        x = (x - _MEAN) / _STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def build_train_dataset(data_cfg, batch_size, dist, num_workers=2, seed=0):
    source = SODDataset(data_cfg.train_root)
    transform = train_transform(data_cfg.size, data_cfg.hflip, data_cfg.rotate,
                                data_cfg.oldport_double_normalise)
    shard = {} if not dist.distributed else {"num_shards": dist.size, "shard_id": dist.rank}
    return build_dataset(source, transform, ["image", "mask"], batch_size, shuffle=True,
                         num_workers=num_workers, seed=seed, verify=data_cfg.verify, **shard)

"""ImageNet training pipeline for DDRNet (DeiT-style recipe of the seed).

``data.pipeline`` picks how the same recipe runs: ``numpy`` (our seeded transforms, every
sample's augmentation a function of (seed, epoch, index); the tests and resumed runs rely on it)
or ``mindspore`` (MindSpore's C++ operators where they match the recipe, see
``common.data.native_cls``; ``data.python_workers`` runs the Python rest in threads or processes).
"""
from pathlib import Path

from common.data.classification import ImageFolderDataset
from common.data.loader import build_dataset
from common.data.native_cls import imagenet_train_native
from common.data.transforms_cls import MixupCutmix, imagenet_train_transform
from common.tasks.classification import class_list


def numpy_pipeline(data_cfg, num_classes, seed):
    transform = imagenet_train_transform(data_cfg.image_size, data_cfg.auto_augment or None,
                                         data_cfg.re_prob, data_cfg.interpolation,
                                         scale=data_cfg.crop_scale)
    mix = MixupCutmix(num_classes, data_cfg.mixup, data_cfg.cutmix, data_cfg.mixup_prob,
                      data_cfg.switch_prob, data_cfg.label_smoothing)
    return {"transform": transform, "per_batch_map": mix}


def mindspore_pipeline(data_cfg, num_classes, seed):
    return imagenet_train_native(
        num_classes, seed, data_cfg.image_size, data_cfg.auto_augment or None, data_cfg.re_prob,
        data_cfg.interpolation, scale=data_cfg.crop_scale, mixup_alpha=data_cfg.mixup,
        cutmix_alpha=data_cfg.cutmix, mix_prob=data_cfg.mixup_prob, switch_prob=data_cfg.switch_prob,
        label_smoothing=data_cfg.label_smoothing, python_workers=data_cfg.python_workers)


PIPELINES = {"numpy": numpy_pipeline, "mindspore": mindspore_pipeline}


def build_train_dataset(data_cfg, num_classes, batch_size, dist, num_workers=2, seed=0):
    if data_cfg.pipeline not in PIPELINES:
        raise ValueError(f"data.pipeline {data_cfg.pipeline!r}: expected one of {', '.join(PIPELINES)}")
    pipeline = PIPELINES[data_cfg.pipeline](data_cfg, num_classes, seed)
    source = ImageFolderDataset(Path(data_cfg.root) / data_cfg.train_dir, class_list(data_cfg))
    shard = {} if not dist.distributed else {"num_shards": dist.size, "shard_id": dist.rank}
    return build_dataset(source, column_names=["image", "label"], batch_size=batch_size, shuffle=True,
                         num_workers=num_workers, seed=seed, label_checks={"label": num_classes},
                         ignore_label=None, verify=data_cfg.verify, **pipeline, **shard)

"""ImageNet pipelines for DDRNet (DeiT-style recipe of the seed) and the class list."""
from pathlib import Path

from common.data.classification import ImageFolderDataset
from common.data.loader import build_dataset
from common.data.transforms_cls import (MixupCutmix, imagenet_eval_transform,
                                        imagenet_train_transform)


def class_list(data_cfg):
    """Class order: the given list file, else the sorted folders of the training split (so a
    validation folder that lacks some classes keeps the training indices)."""
    if data_cfg.class_list:
        return data_cfg.class_list
    train = Path(data_cfg.root) / data_cfg.train_dir
    return sorted(p.name for p in train.iterdir() if p.is_dir()) if train.is_dir() else None


def build_train_dataset(data_cfg, num_classes, batch_size, dist, num_workers=2, seed=0):
    source = ImageFolderDataset(Path(data_cfg.root) / data_cfg.train_dir, class_list(data_cfg))
    transform = imagenet_train_transform(data_cfg.image_size, data_cfg.auto_augment or None,
                                         data_cfg.re_prob, data_cfg.interpolation)
    mix = MixupCutmix(num_classes, data_cfg.mixup, data_cfg.cutmix, data_cfg.mixup_prob,
                      data_cfg.switch_prob, data_cfg.label_smoothing)
    shard = {} if not dist.distributed else {"num_shards": dist.size, "shard_id": dist.rank}
    return build_dataset(source, transform, ["image", "label"], batch_size, shuffle=True,
                         num_workers=num_workers, seed=seed, per_batch_map=mix, **shard)


def build_eval_dataset(data_cfg, batch_size, split_dir=None, num_workers=2):
    """The whole split in order: no shuffling and no dropped remainder."""
    root = Path(data_cfg.root) / (split_dir or data_cfg.val_dir)
    source = ImageFolderDataset(root, class_list(data_cfg))
    transform = imagenet_eval_transform(data_cfg.image_size, data_cfg.crop_pct, data_cfg.interpolation)
    return build_dataset(source, transform, ["image", "label"], batch_size, shuffle=False,
                         num_workers=num_workers, drop_remainder=False), source

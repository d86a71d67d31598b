"""ImageNet training pipeline for DDRNet (DeiT-style recipe of the seed)."""
from pathlib import Path

from common.data.classification import ImageFolderDataset
from common.data.loader import build_dataset
from common.data.transforms_cls import MixupCutmix, imagenet_train_transform
from common.tasks.classification import class_list


def build_train_dataset(data_cfg, num_classes, batch_size, dist, num_workers=2, seed=0):
    source = ImageFolderDataset(Path(data_cfg.root) / data_cfg.train_dir, class_list(data_cfg))
    transform = imagenet_train_transform(data_cfg.image_size, data_cfg.auto_augment or None,
                                         data_cfg.re_prob, data_cfg.interpolation,
                                         scale=data_cfg.crop_scale)
    mix = MixupCutmix(num_classes, data_cfg.mixup, data_cfg.cutmix, data_cfg.mixup_prob,
                      data_cfg.switch_prob, data_cfg.label_smoothing)
    shard = {} if not dist.distributed else {"num_shards": dist.size, "shard_id": dist.rank}
    return build_dataset(source, transform, ["image", "label"], batch_size, shuffle=True,
                         num_workers=num_workers, seed=seed, per_batch_map=mix,
                         label_checks={"label": num_classes}, ignore_label=None, **shard)

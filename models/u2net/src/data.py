"""U-2-Net input pipelines (authors' recipe: resize 320, random crop 288, horizontal flip)."""
from common.data.loader import build_dataset
from common.data.sod import SODDataset
from common.data.transforms import (
    Compose,
    MaskToUnit,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation90,
    RandomVerticalFlip,
    Resize,
    ToCHW,
)


def train_transform(resize, crop, hflip=True, vflip=False, rot90=False):
    steps = [Resize(resize)]
    if crop and crop < resize:
        steps.append(RandomCrop(crop, mask_fill=0))
    table = [(hflip, RandomHorizontalFlip()), (vflip, RandomVerticalFlip()),
             (rot90, RandomRotation90())]
    steps += [t for enabled, t in table if enabled]
    # authors' ToTensorLab(flag=0): image / max(image), then ImageNet mean/std
    steps += [Normalize(divide_by_max=True), ToCHW(), MaskToUnit()]
    return Compose(steps)


def build_train_dataset(data_cfg, batch_size, dist, num_workers=2, seed=0):
    source = SODDataset(data_cfg.train_root)
    transform = train_transform(data_cfg.resize, data_cfg.crop, data_cfg.hflip, data_cfg.vflip,
                                data_cfg.rot90)
    shard = {} if not dist.distributed else {"num_shards": dist.size, "shard_id": dist.rank}
    return build_dataset(source, transform, ["image", "mask"], batch_size, shuffle=True,
                         num_workers=num_workers, seed=seed, verify=data_cfg.verify, **shard)

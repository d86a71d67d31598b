"""Typed defaults of every DDRNet entry point; configs/ddrnet/*.yaml override them."""
from common.config import Opt
from common.runner.args import model_defaults

DEFAULTS = model_defaults("classification", {
    "output_dir": "outputs/ddrnet",
    "model": {
        "name": "ddrnet23",          # ddrnet23 | ddrnet23_slim | ddrnet39
        "num_classes": 1000,
        "drop_path_rate": 0.1,
        "numerics": "authors",       # authors | oldport (the old MindSpore port's published weights)
    },
    "data": {
        "root": "data/imagenet",     # holds train/<wnid>/ and val/<wnid>/
        "train_dir": "train",
        "val_dir": "val",
        # "index wnid name" or LOC_synset_mapping.txt; default: the sorted train folders
        "class_list": Opt(str),
        "pipeline": "numpy",         # numpy (seeded, reproducible) | mindspore (C++ operators)
        "python_workers": "threads", # mindspore pipeline: RandAugment/erasing in threads | processes
        "image_size": 224,
        "crop_pct": 0.875,           # eval: resize short side to image_size / crop_pct, center crop
        "interpolation": "bicubic",
        "crop_scale": [0.08, 1.0],   # train: RandomResizedCrop area fraction (timm's --scale)
        "auto_augment": "rand-m9-mstd0.5-inc1",
        "re_prob": 0.25,             # random erasing
        "mixup": 0.8,
        "cutmix": 1.0,
        "mixup_prob": 1.0,
        "switch_prob": 0.5,
        "label_smoothing": 0.1,
        "eval_batch_size": 64,
    },
})

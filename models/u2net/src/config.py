"""Typed defaults of every U-2-Net entry point; configs/u2net/*.yaml override them."""
from common.runner.args import model_defaults

DEFAULTS = model_defaults("sod", {
    "output_dir": "outputs/u2net",
    "model": {
        "name": "u2netp",            # u2net | u2netp
        "in_channels": 3,
        "numerics": "authors",       # authors | oldport (the old MindSpore port's published weights)
    },
    "data": {
        "train_root": "data/synthetic_sod/train",   # images/ + masks/ (DUTS-TR layout works too)
        "resize": 320,               # authors: RescaleT(320)
        "crop": 288,                 # authors: RandomCrop(288)
        "hflip": True,               # authors: horizontal flip
        "vflip": False,              # old MindSpore port only
        "rot90": False,              # old MindSpore port only
    },
    "test": {"size": 320},           # authors' test resize
})

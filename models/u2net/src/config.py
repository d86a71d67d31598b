"""Typed defaults of every U-2-Net entry point; configs/u2net/*.yaml override them."""
from common.config import Opt, with_engine_defaults

DEFAULTS = with_engine_defaults({
    "output_dir": "outputs/u2net",
    "model": {
        "name": "u2netp",            # u2net | u2netp
        "in_channels": 3,
    },
    "data": {
        "train_root": "data/synthetic_sod/train",   # images/ + masks/ (DUTS-TR layout works too)
        "val_root": Opt(str),                       # evaluated during training when set
        "resize": 320,               # authors: RescaleT(320)
        "crop": 288,                 # authors: RandomCrop(288)
        "hflip": True,               # authors: horizontal flip
        "vflip": False,              # old MindSpore port only
        "rot90": False,              # old MindSpore port only
    },
    "test": {
        "root": "data/synthetic_sod/test",          # images/ + masks/ (DUTS-TE, ECSSD, ...)
        "size": 320,                 # authors' test resize
        "batch_size": 1,
        "pred_dir": Opt(str),        # where saliency PNGs go (default: <output_dir>/pred)
        "max_images": Opt(int),
    },
    "export": {
        "size": 320,
        "batch_size": 1,
        "format": "ONNX",
        "file": Opt(str),
        "atol": 1e-4,
    },
})

"""Export DDRNet to ONNX / MINDIR / AIR with a parity check against MindSpore.

    python models/ddrnet/export.py --config CONFIG --ckpt CKPT [--format ONNX|MINDIR|AIR] [--file OUT]
"""
from pathlib import Path

import numpy as np

from common.checkpoint import load_weights
from common.cli import run_main
from common.config import args_and_config
from common.engine.builder import setup_device
from common.export import EXPORT_ARGUMENTS, export_or_exit
from models import create_model
from models.ddrnet.src.config import DEFAULTS


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, EXPORT_ARGUMENTS)
    setup_device(cfg.device, cfg.mode)
    net = create_model(cfg.model.name, num_classes=cfg.model.num_classes)
    print(load_weights(net, args.ckpt, strict=True).summary())
    size = cfg.data.image_size
    x = np.random.default_rng(0).standard_normal((cfg.export.batch_size, 3, size, size))
    out = args.file or cfg.export.file or str(Path(cfg.output_dir) / f"{cfg.model.name}_{size}")
    return export_or_exit(net, x.astype(np.float32), args.format or cfg.export.format, out,
                          atol=cfg.export.atol)


if __name__ == "__main__":
    run_main(main)

"""Export U-2-Net to ONNX / MINDIR / AIR with a parity check against MindSpore.

    python models/u2net/export.py --config CONFIG --ckpt CKPT [--format ONNX|MINDIR|AIR] [--file OUT]

The exported graph takes a normalised (N, 3, S, S) image batch (S = export.size) and returns
the fused sigmoid saliency map (N, 1, S, S); ``--all-outputs`` keeps the six side maps too.
"""
from pathlib import Path

import numpy as np

from common.checkpoint import load_weights
from common.cli import run_main
from common.config import args_and_config
from common.engine.builder import setup_device
from common.export import EXPORT_ARGUMENTS, export_or_exit
from models import create_model
from models.u2net.src.config import DEFAULTS
from models.u2net.src.evaluate import FusedOutput


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, EXPORT_ARGUMENTS + [
        (("--all-outputs",), {"action": "store_true", "help": "export all 7 maps"})])
    setup_device(cfg.device, cfg.mode)
    fmt = (args.format or cfg.export.format).upper()
    net = create_model(cfg.model.name, in_channels=cfg.model.in_channels)
    print(load_weights(net, args.ckpt, strict=True).summary())
    net = net if args.all_outputs else FusedOutput(net)
    size, batch = cfg.export.size, cfg.export.batch_size
    x = np.random.default_rng(0).standard_normal((batch, cfg.model.in_channels, size, size))
    out = args.file or cfg.export.file or str(Path(cfg.output_dir) / f"{cfg.model.name}_{size}")
    return export_or_exit(net, x.astype(np.float32), fmt, out, atol=cfg.export.atol)


if __name__ == "__main__":
    run_main(main)

"""Export U-2-Net to ONNX / MINDIR / AIR with a parity check against MindSpore.

    python models/u2net/export.py --config CONFIG --ckpt CKPT [--format ONNX|MINDIR|AIR] [--file OUT]

The exported graph takes a normalised (N, 3, S, S) image batch (S = export.size) and returns
the fused sigmoid saliency map (N, 1, S, S); ``--all-outputs`` keeps the six side maps too.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from common.checkpoint import load_weights
from common.cli import run_main
from common.config import load_config
from common.engine.builder import setup_device
from common.export import ExportError, export_model
from models import create_model
from models.u2net.src.config import DEFAULTS
from models.u2net.src.evaluate import FusedOutput


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--format", help="ONNX | MINDIR | AIR (default: export.format)")
    parser.add_argument("--file", help="output path (default: <output_dir>/<model>.<ext>)")
    parser.add_argument("--all-outputs", action="store_true", help="export all 7 maps")
    args, rest = parser.parse_known_args(argv)
    cfg = load_config(DEFAULTS, args.config, rest)
    setup_device(cfg.device, cfg.mode)
    fmt = (args.format or cfg.export.format).upper()
    net = create_model(cfg.model.name, in_channels=cfg.model.in_channels)
    print(load_weights(net, args.ckpt, strict=True).summary())
    net = net if args.all_outputs else FusedOutput(net)
    size, batch = cfg.export.size, cfg.export.batch_size
    x = np.random.default_rng(0).standard_normal((batch, cfg.model.in_channels, size, size))
    out = args.file or cfg.export.file or str(Path(cfg.output_dir) / f"{cfg.model.name}_{size}")
    try:
        result = export_model(net, x.astype(np.float32), fmt, out, atol=cfg.export.atol,
                              input_names=["image"])
    except ExportError as exc:
        sys.exit(f"error: {exc}")
    print(f"exported {result.path} (max abs diff vs MindSpore {result.max_diff:.2e}, "
          f"dynamic batch: {result.dynamic_batch})")
    return result


if __name__ == "__main__":
    run_main(main)

"""Export DDRNet to ONNX / MINDIR / AIR with a parity check against MindSpore.

    python models/ddrnet/export.py --config CONFIG --ckpt CKPT [--format ONNX|MINDIR|AIR] [--file OUT]
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
from models.ddrnet.src.config import DEFAULTS


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--format", help="ONNX | MINDIR | AIR (default: export.format)")
    parser.add_argument("--file", help="output path (default: <output_dir>/<model>.<ext>)")
    args, rest = parser.parse_known_args(argv)
    cfg = load_config(DEFAULTS, args.config, rest)
    setup_device(cfg.device, cfg.mode)
    net = create_model(cfg.model.name, num_classes=cfg.model.num_classes)
    print(load_weights(net, args.ckpt, strict=True).summary())
    size = cfg.data.image_size
    x = np.random.default_rng(0).standard_normal((cfg.export.batch_size, 3, size, size))
    out = args.file or cfg.export.file or str(Path(cfg.output_dir) / f"{cfg.model.name}_{size}")
    try:
        result = export_model(net, x.astype(np.float32), (args.format or cfg.export.format), out,
                              atol=cfg.export.atol, input_names=["image"])
    except ExportError as exc:
        sys.exit(f"error: {exc}")
    print(f"exported {result.path} (max abs diff vs MindSpore {result.max_diff:.2e}, "
          f"dynamic batch: {result.dynamic_batch})")
    return result


if __name__ == "__main__":
    run_main(main)

"""Convert the authors' U-2-Net weights to a MindSpore checkpoint.

    python models/u2net/convert_weights.py --src u2netp.pth  --variant u2netp --out u2netp.ckpt
    python models/u2net/convert_weights.py --src u2netp.onnx --variant u2netp --out u2netp.ckpt

``.pth`` / ``.pt``: the authors' PyTorch state dict (read without torch). ``.onnx``: an export
with BatchNorm folded into the convolutions (e.g. rembg's u2netp.onnx); BatchNorms become identity.
"""
import argparse
import sys

from common.checkpoint import CheckpointError, save_checkpoint
from common.torch_pickle import TorchFileError
from models.u2net.src.convert import CONVERTERS, VARIANTS, convert, summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", required=True, help=f"weights file ({', '.join(sorted(CONVERTERS))})")
    parser.add_argument("--variant", required=True, choices=VARIANTS)
    parser.add_argument("--out", required=True, help="output .ckpt or .safetensors")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        net, report = convert(args.src, args.variant)
        path = save_checkpoint(net, args.out)
    except (CheckpointError, TorchFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary(net, report, args.variant, args.src))
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Saliency maps for images with a U-2-Net checkpoint.

    python models/u2net/predict.py --model u2netp --ckpt u2netp.ckpt --input photo.jpg --out results/
    python models/u2net/predict.py --model u2net --ckpt u2net.ckpt --input images/ --out results/ --cutout

Writes per image ``<name>.png`` (8-bit saliency map at the image size), ``<name>_compare.png``
(image | map) and, with ``--cutout``, ``<name>_cutout.png`` (RGBA, the map as alpha). Images that
cannot be read are named and skipped, and the exit status is then non-zero.
"""
import argparse
import sys

import mindspore as ms

from common.checkpoint import CheckpointError, load_weights
from models import create_model
from models.u2net.src.inference import ImageReadError, list_images, predict_files

MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="u2net", choices=["u2net", "u2netp"])
    parser.add_argument("--ckpt", required=True, help="checkpoint (.ckpt / .safetensors), loaded strictly")
    parser.add_argument("--input", required=True, help="an image or a folder of images")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--size", type=int, default=320, help="network input size (default 320)")
    parser.add_argument("--cutout", action="store_true", help="also write RGBA cut-outs")
    parser.add_argument("--mode", default="graph", choices=sorted(MODES),
                        help="MindSpore execution mode (graph compiles once, then runs faster)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.size <= 0:
        print(f"error: --size must be positive, got {args.size}", file=sys.stderr)
        return 2
    if args.size % 32:
        print(f"warning: --size {args.size} is not a multiple of 32; the network pads like the "
              "authors' ceil-mode pooling", file=sys.stderr)
    ms.set_device("CPU")
    ms.set_context(mode=MODES[args.mode])
    try:
        files = list_images(args.input)
        net = create_model(args.model)
        print(load_weights(net, args.ckpt, strict=True).summary())
    except (CheckpointError, ImageReadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    net.set_train(False)
    written, failed = predict_files(net, files, args.out, size=args.size, with_cutout=args.cutout)
    print(f"wrote outputs for {len(written)} of {len(files)} images to {args.out}")
    for message in failed.values():
        print(f"error: {message}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

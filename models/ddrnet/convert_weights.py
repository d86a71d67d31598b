"""Convert DDRNet weights to a checkpoint of ours.

    python models/ddrnet/convert_weights.py --src DDRNet23_imagenet.pth --variant ddrnet23 \
        --out ddrnet23_imagenet.ckpt

``--src`` is the authors' PyTorch file (.pth/.pt/.tar) or a MindSpore checkpoint
(.ckpt/.safetensors, e.g. the old port's). The layout is detected from the key names. Prints a
load report; exits with status 1 naming the keys when the weights do not fit ``--variant``.
"""
import argparse
import sys
from pathlib import Path

import mindspore as ms

from common.checkpoint import (
    CheckpointError,
    load_weights,
    read_checkpoint,
    read_torch_state_dict,
    save_checkpoint,
    split_state,
)
from common.torch_pickle import TorchFileError
from models.ddrnet.src import ARCHS, build_ddrnet
from models.ddrnet.src.convert import KEY_MAPS, detect_layout, missing_stem_biases

MINDSPORE_SUFFIXES = (".ckpt", ".safetensors")


def read_source(path):
    path = Path(path)
    if path.suffix in MINDSPORE_SUFFIXES:
        return read_checkpoint(path)
    return read_torch_state_dict(path)


def convert(params, variant, num_classes=1000, source=None):
    """Build ``variant`` and load ``params`` into it (strict). Returns (net, report, notes)."""
    layout = detect_layout(split_state(params)[0])
    notes = [f"layout: {layout}"]
    if layout == "mindspore":
        notes += [f"{b}: absent (the old port's stem convs have no bias), set to zero"
                  for b in missing_stem_biases(split_state(params)[0])]
    net = build_ddrnet(variant, num_classes=num_classes)
    report = load_weights(net, params, strict=True, key_map=KEY_MAPS[layout])
    if source is not None:
        report.source = str(source)
    return net, report, notes


def fitting_variants(params, num_classes=1000):
    """Registered variants into which ``params`` loads without a missing or mis-shaped key."""
    fits = []
    for variant in ARCHS:
        try:
            convert(params, variant, num_classes)
        except CheckpointError:
            continue
        fits.append(variant)
    return fits


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", required=True, help="authors' .pth or a MindSpore .ckpt/.safetensors")
    parser.add_argument("--variant", required=True, choices=sorted(ARCHS))
    parser.add_argument("--out", required=True, help="output .ckpt or .safetensors")
    parser.add_argument("--num-classes", type=int, default=1000)
    args = parser.parse_args(argv)

    try:
        params = read_source(args.src)
    except (CheckpointError, TorchFileError) as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        net, report, notes = convert(params, args.variant, args.num_classes, args.src)
    except CheckpointError as exc:
        print(f"{args.src} does not fit {args.variant}:\n{exc}", file=sys.stderr)
        others = [v for v in fitting_variants(params, args.num_classes) if v != args.variant]
        if others:
            print(f"it fits: {', '.join(others)}", file=sys.stderr)
        return 1
    print("\n".join(notes))
    print(report.summary())
    print(f"saved {save_checkpoint(net, args.out)}")
    return 0


if __name__ == "__main__":
    ms.set_device("CPU")
    sys.exit(main())

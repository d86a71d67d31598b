"""``convert_weights.py``: another layout's weights (the authors' PyTorch file, an old MindSpore
port's checkpoint, ...) -> a checkpoint of ours, for every model.

The source is read by suffix (``.pth/.pt/.tar`` without torch, ``.ckpt/.safetensors``, plus any
reader the model's spec adds, e.g. U-2-Net's BatchNorm-folded ONNX), its layout detected by the
spec's ``detect_layout`` and mapped by the matching key map, then loaded strictly: every missing,
unexpected or mis-shaped key is named and nothing is written.
"""
import argparse
import sys
from pathlib import Path

from common.checkpoint import CheckpointError, load_weights, read_checkpoint, save_checkpoint, split_state
from common.config import load_config
from common.torch_pickle import TorchFileError, read_torch_state_dict

READERS = {".pth": read_torch_state_dict, ".pt": read_torch_state_dict, ".tar": read_torch_state_dict,
           ".ckpt": read_checkpoint, ".safetensors": read_checkpoint}


def read_source(spec, path, net):
    """{name: array} of ``path``; spec readers take (path, net) and return names of ours."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    if suffix in spec.read_weights:
        return spec.read_weights[suffix](path, net), "ours"
    if suffix not in READERS:
        known = sorted(set(READERS) | set(spec.read_weights))
        raise CheckpointError(f"{path}: unknown weight file suffix '{path.suffix}', expected one of {known}")
    params = READERS[suffix](path)
    layout = spec.detect_layout(split_state(params)[0]) if spec.detect_layout else "ours"
    return params, layout


def convert(spec, src, variant, overrides=()):
    """Build ``variant`` and load ``src`` into it strictly. Returns (net, report, notes): notes
    name the layout and what the model's ``convert_notes`` hook says about the conversion."""
    cfg = load_config(spec.defaults, None, [f"model.name={variant}", *overrides])
    net = spec.build_net(cfg)
    params, layout = read_source(spec, src, net)
    report = load_weights(net, params, strict=True, key_map=spec.key_maps.get(layout))
    report.source = str(src)
    hook = spec.hooks.get("convert_notes")
    return net, report, [f"layout: {layout}", *(hook(params, layout) if hook else [])]


def fitting_variants(spec, src, overrides=()):
    fits = []
    for variant in spec.variants:
        try:
            convert(spec, src, variant, overrides)
        except CheckpointError:
            continue
        fits.append(variant)
    return fits


def convert_main(spec, argv=None):
    parser = argparse.ArgumentParser(
        description=f"Convert weights of another layout into a checkpoint of models/{spec.folder}.",
        allow_abbrev=False,
        epilog="key=value config overrides (e.g. model.num_classes=21) apply to the network.")
    parser.add_argument("--src", required=True, help="weights file (.pth/.pt/.tar, .ckpt/.safetensors"
                        + "".join(f", {s}" for s in spec.read_weights) + ")")
    parser.add_argument("--variant", required=True, choices=sorted(spec.variants))
    parser.add_argument("--out", "--output", dest="out", required=True,
                        help="output .ckpt or .safetensors")
    args, overrides = parser.parse_known_args(argv)
    try:
        net, report, notes = convert(spec, args.src, args.variant, overrides)
    except (CheckpointError, TorchFileError) as exc:
        print(f"error: {args.src} does not fit {args.variant}:\n{exc}", file=sys.stderr)
        if isinstance(exc, CheckpointError) and "does not fit" in str(exc):
            others = [v for v in fitting_variants(spec, args.src, overrides) if v != args.variant]
            if others:
                print(f"it fits: {', '.join(others)}", file=sys.stderr)
        return 1
    print("\n".join(notes))
    print(report.summary())
    trainable = sum(int(p.size) for p in net.trainable_params())
    print(f"{args.variant}: {trainable:,} trainable parameters")
    print(f"saved {save_checkpoint(net, args.out)}")
    return 0

"""Convert a PyTorch state dict (.pth) into a MindSpore checkpoint.

    python -m common.tools.convert_torch --src X.pth --out X.ckpt [--map MODEL]

Without ``--map`` every tensor is kept and BatchNorm fields are renamed. With ``--map MODEL``
the registered model is built, its own key map (if it registers one) is applied and the result
is checked strictly against the network: missing, unexpected or mis-shaped keys fail by name.
This is the one place in common/ that reaches the model registry, through importlib, so that
common/ never imports models/ at module level.
"""
import argparse
import importlib
import sys

from common.checkpoint import (
    CheckpointError,
    load_weights,
    save_checkpoint,
    state_dict,
    torch_to_mindspore_names,
)
from common.torch_pickle import TorchFileError, read_torch_state_dict


def convert(src, dst, model=None, entry=None):
    params = torch_to_mindspore_names(read_torch_state_dict(src, entry=entry))
    if model is None:
        save_checkpoint(params, dst)
        return f"{src}: {len(params)} tensors written to {dst} (no model check; use --map MODEL)"
    registry = importlib.import_module("models")
    net = registry.create_model(model)
    key_map = registry.torch_key_map(model)
    report = load_weights(net, params, strict=True, key_map=key_map)
    save_checkpoint(state_dict(net), dst)
    return report.summary() + f"\nwritten to {dst}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", required=True, help="PyTorch checkpoint (.pth / .pt)")
    parser.add_argument("--out", "--dst", dest="dst", required=True, help="output .ckpt or .safetensors")
    parser.add_argument("--map", dest="model", help="registered model to map and check against")
    parser.add_argument("--entry", help="sub-dict holding the weights (e.g. state_dict)")
    args = parser.parse_args(argv)
    try:
        print(convert(args.src, args.dst, args.model, args.entry))
    except (CheckpointError, TorchFileError, KeyError) as exc:
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()

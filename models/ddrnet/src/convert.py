"""Key maps from other DDRNet checkpoint layouts to ours.

Our parameter names are the authors' PyTorch names with MindSpore's BatchNorm fields, so:

- authors' PyTorch state dict (ydhongHIT/DDRNet, possibly saved from ``nn.DataParallel`` with
  ``module.`` prefixes or wrapped in ``{"state_dict": ...}``): rename BN ``weight/bias/
  running_mean/running_var`` to ``gamma/beta/moving_mean/moving_variance``, drop
  ``num_batches_tracked``.
- old MindSpore port (mindspore-ai/models ``research/cv/DDRNet``): same names behind a ``model.``
  prefix, plus optimizer state. Its two stem convolutions were built without bias; a zero bias
  is the same function, so those two entries are added as zeros. Caveat: that port trained with
  MindSpore's TF-style ``same`` padding and legacy bilinear resize, so its weights give slightly
  different outputs (and accuracy) under our PyTorch-style padding and half-pixel resize.

Each map is a plain function {name: array} -> {name: array}, usable as ``key_map`` of
``common.checkpoint.load_weights`` (which also strips wrapper prefixes and optimizer state).
"""
import numpy as np

from common.checkpoint import split_state, strip_prefixes, torch_to_mindspore_names, unwrap_torch_checkpoint

STEM_BIASES = ("conv1.0.bias", "conv1.3.bias")


def detect_layout(params):
    """'authors' for PyTorch names (BN ``running_mean``), 'mindspore' for MindSpore BN names
    (ours or the old port's)."""
    keys = list(params)
    if any(k.endswith((".running_mean", ".running_var")) for k in keys):
        return "authors"
    if any(k.endswith((".moving_mean", ".moving_variance")) for k in keys):
        return "mindspore"
    raise ValueError("cannot tell the checkpoint layout: no BatchNorm statistics "
                     "(running_mean or moving_mean) among its keys, e.g. "
                     f"{keys[:5]}")


def authors_to_ours(state_dict):
    """Authors' PyTorch state dict -> our names (BN fields renamed, prefixes stripped)."""
    state_dict = strip_prefixes(unwrap_torch_checkpoint(state_dict), ("module.",))
    return torch_to_mindspore_names(state_dict)


def missing_stem_biases(params):
    """Stem biases the checkpoint lacks (the old port's stem convs had none)."""
    names = set(strip_prefixes(params))
    return [b for b in STEM_BIASES if b not in names and b.replace(".bias", ".weight") in names]


def old_port_to_ours(params):
    """Old MindSpore port checkpoint -> our names: optimizer state and ``model.`` prefix
    dropped, zero biases added for the stem convolutions."""
    weights, _ = split_state(params)
    weights = strip_prefixes(weights)
    for bias in missing_stem_biases(weights):
        out_channels = np.shape(weights[bias.replace(".bias", ".weight")])[0]
        weights[bias] = np.zeros((out_channels,), np.float32)
    return weights


# Layout -> key map; our own checkpoints go through the old-port map unchanged.
KEY_MAPS = {"authors": authors_to_ours, "mindspore": old_port_to_ours}

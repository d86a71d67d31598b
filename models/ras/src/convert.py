"""Key maps from other RAS checkpoint layouts to ours.

- ``authors``: a state dict of ShuhanChen/RAS-pytorch ``v1`` (``RAS.v1.30.pth``), maybe saved
  from ``nn.DataParallel`` (``module.``) or wrapped in ``{"state_dict": ...}``. Our names are
  theirs, so only BatchNorm fields are renamed and ``num_batches_tracked`` dropped.
- ``oldport``: the old MindSpore port (mindspore-ai/models ``research/cv/ras``, ``BoneModel``),
  saved from its training wrapper: ``network.`` prefix, optimizer entries (``moment1.``,
  ``moment2.``, ``beta1_power``, ...), shortcut ``down_sample_layer``, ``mscm.conv`` /
  ``mscm.conv_end`` for our ``mscm.convert`` / ``mscm.score`` and ``raK.conv.N`` for
  ``raK.convs.N``. Caveats: that port used TF-style ``same`` max-pool padding, nearest (GPU) or
  legacy bilinear (Ascend) resizing and ImageNet normalisation applied twice, so its weights
  give somewhat different maps under our network and preprocessing.
- ``ours``: our own checkpoints (wrapper prefixes and optimizer state removed).

``torchvision_backbone_to_ours`` maps an ImageNet ResNet-50 (torchvision names) onto
``resnet.*``, the authors' initialisation of the backbone; load it with
``load_weights(net, sd, key_map=torchvision_backbone_to_ours, ignore_missing=HEAD_PREFIXES)``.

Every map is a plain function {name: array} -> {name: array}, usable as ``key_map`` of
``common.checkpoint.load_weights``.
"""
import re

from common.backbones.resnet import torchvision_resnet_key_map
from common.checkpoint import (
    CheckpointError,
    split_state,
    strip_prefixes,
    torch_to_mindspore_names,
    unwrap_torch_checkpoint,
)

HEAD_PREFIXES = ("mscm.", "ra1.", "ra2.", "ra3.", "ra4.")
# (pattern, replacement) applied in order to the old port's names (after its prefix is removed).
OLD_PORT_RENAMES = (
    (re.compile(r"^resnet\.(layer[1-4]\.0)\.down_sample_layer\."), r"resnet.\1.downsample."),
    (re.compile(r"^mscm\.conv\."), "mscm.convert."),
    (re.compile(r"^mscm\.conv_end\."), "mscm.score."),
    (re.compile(r"^(ra[1-4])\.conv\.([0246])\."), r"\1.convs.\2."),
)


def detect_layout(params):
    """'authors' (PyTorch BatchNorm names), 'oldport' (the old MindSpore port's names) or 'ours'."""
    keys = list(strip_prefixes(split_state(unwrap_torch_checkpoint(params))[0]))
    if any(k.endswith((".running_mean", ".running_var", ".num_batches_tracked")) for k in keys):
        return "authors"
    old = ("down_sample_layer.", "mscm.conv.", "mscm.conv_end.")
    if any(s in k for k in keys for s in old) or any(re.match(r"ra[1-4]\.conv\.", k) for k in keys):
        return "oldport"
    if any(k.endswith(".moving_mean") for k in keys) and any(k.startswith("mscm.score.") for k in keys):
        return "ours"
    raise CheckpointError("cannot tell the RAS checkpoint layout: expected PyTorch BatchNorm names "
                          "(running_mean), the old port's (down_sample_layer, mscm.conv_end) or ours "
                          f"(moving_mean, mscm.score); first keys: {keys[:5]}")


def authors_to_ours(state_dict):
    """Authors' PyTorch state dict -> our names (BN fields renamed, ``module.`` stripped)."""
    state_dict = strip_prefixes(unwrap_torch_checkpoint(state_dict), ("module.",))
    return torch_to_mindspore_names(state_dict)


def old_port_to_ours(params):
    """Old MindSpore port checkpoint -> our names (optimizer state and ``network.`` dropped)."""
    weights, _ = split_state(params)
    out = {}
    for key, value in strip_prefixes(weights).items():
        for pattern, repl in OLD_PORT_RENAMES:
            key = pattern.sub(repl, key)
        out[key] = value
    return out


def ours_to_ours(params):
    """Our own checkpoints: only wrapper prefixes and optimizer state are removed."""
    return strip_prefixes(split_state(params)[0])


def torchvision_backbone_to_ours(state_dict):
    """torchvision ImageNet ResNet-50 -> ``resnet.*`` (classifier ``fc`` dropped)."""
    params = torchvision_resnet_key_map(strip_prefixes(unwrap_torch_checkpoint(state_dict), ("module.",)))
    return {f"resnet.{k}": v for k, v in params.items()}


KEY_MAPS = {"authors": authors_to_ours, "oldport": old_port_to_ours, "ours": ours_to_ours}


def to_ours(params):
    """Map ``params`` of any known layout to our names (the layout chosen by :func:`detect_layout`)."""
    return KEY_MAPS[detect_layout(params)](params)

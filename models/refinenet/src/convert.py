"""Key maps from other RefineNet-101 checkpoint layouts to ours, and ImageNet backbone loading.

Our names are DrSleep's (refinenet-pytorch ``rf101``) with MindSpore's BatchNorm fields:

- ``authors``: DrSleep's PyTorch state dict, possibly behind ``module.`` (``nn.DataParallel``)
  and ``segmenter.`` (light-weight-refinenet's ``{"segmenter": ..., "epoch_start": ...}``
  training checkpoints): BN ``weight/bias/running_mean/running_var`` renamed, prefixes and
  ``num_batches_tracked`` dropped.
- ``old_port``: mindspore-ai/models ``research/cv/RefineNet``. Same backbone names and MindSpore BN
  fields, but its residual conv units are a ``CellList`` of ``SequentialCell([ReLU, conv, ReLU,
  conv])`` (``adapt_stage1_b.0.layers.{i}.{1,3}``) and its pooling convs a ``CellList``
  (``mflow_conv_g1_pool.0.layers.{i}``). Wrapper prefixes (``network.``) and optimizer state
  (``moments.``, ``learning_rate``, ``global_step``) are dropped. Caveat: that port trained with
  TF-style ``same`` max-pools (stem and CRP) and resized its logits to the input inside the
  network, so its weights give slightly different outputs here.
- ``mindspore``: our own checkpoints (names unchanged).
- ``imagenet_torch`` / ``imagenet_mindspore``: a backbone-only ResNet-101 (torchvision, which is
  what DrSleep's ``imagenet=True`` loads, or the MindSpore model zoo's, whose projection shortcut
  is ``down_sample_layer``). Its names land on our top-level ``conv1``/``bn1``/``layer*``; load it
  with :func:`load_imagenet_backbone` (the decoder stays at its initialisation). The old port
  loaded the zoo checkpoint non-strictly into ``downsample`` names, so its four projection
  shortcuts silently kept their random initialisation; here a missing backbone key is an error.

Every map is a plain function {name: array} -> {name: array}, usable as ``key_map`` of
``common.checkpoint.load_weights``.
"""
import re

from common.backbones import mindspore_modelzoo_resnet_key_map, torchvision_resnet_key_map
from common.checkpoint import load_weights, split_state, strip_prefixes, torch_to_mindspore_names

BACKBONE_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
DECODER_PREFIXES = ("p_ims1d2_outl", "adapt_stage", "mflow_conv_g", "clf_conv.")
_WRAPPERS = ("segmenter.", "module.", "state_dict.", "model.", "network.", "net.")
_BN_TO_TORCH = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
                "moving_variance": "running_var"}
# old port: RCU unit i = SequentialCell([ReLU, conv, ReLU, conv]); CRP stage i = conv
_OLD_RCU = re.compile(r"^((?:adapt_stage|mflow_conv_g)\d_b)\.0\.layers\.(\d+)\.([13])\.(weight|bias)$")
_OLD_CRP = re.compile(r"^(mflow_conv_g\d_pool)\.0\.layers\.(\d+)\.weight$")


def _strip_prefixes(params, prefixes=_WRAPPERS):
    return strip_prefixes(params, prefixes)


def _weights(params):
    return _strip_prefixes(split_state(params)[0])


def detect_layout(params):
    """One of ``KEY_MAPS``' layouts, from the BatchNorm field names and the decoder names."""
    keys = list(_weights(params))
    torch_bn = any(k.endswith((".running_mean", ".running_var")) for k in keys)
    ms_bn = any(k.endswith((".moving_mean", ".moving_variance")) for k in keys)
    if not (torch_bn or ms_bn):
        raise ValueError("cannot tell the checkpoint layout: no BatchNorm statistics "
                         f"(running_mean or moving_mean) among its keys, e.g. {keys[:5]}")
    decoder = [k for k in keys if k.startswith(DECODER_PREFIXES)]
    if not decoder:
        return "imagenet_torch" if torch_bn else "imagenet_mindspore"
    if torch_bn:
        return "authors"
    return "old_port" if any(_OLD_RCU.match(k) or _OLD_CRP.match(k) for k in decoder) else "mindspore"


def authors_to_ours(state_dict):
    """DrSleep's PyTorch state dict -> our names."""
    return torch_to_mindspore_names(_strip_prefixes(state_dict))


def ours_to_authors(params):
    """Our names -> DrSleep's (BN fields back to PyTorch's; ``num_batches_tracked`` not added)."""
    bn = {k[: -len(".moving_mean")] for k in params if k.endswith(".moving_mean")}
    out = {}
    for key, value in params.items():
        module, _, leaf = key.rpartition(".")
        out[f"{module}.{_BN_TO_TORCH[leaf]}" if module in bn and leaf in _BN_TO_TORCH else key] = value
    return out


def _old_port_name(key):
    m = _OLD_RCU.match(key)
    if m:
        block, unit, conv, leaf = m.groups()
        suffix = "_conv" if conv == "1" else "_conv_relu_varout_dimred"
        return f"{block}.0.{int(unit) + 1}{suffix}.{leaf}"
    m = _OLD_CRP.match(key)
    if m:
        return f"{m.group(1)}.0.{int(m.group(2)) + 1}_outvar_dimred.weight"
    return key


def old_port_to_ours(params):
    """Old MindSpore port checkpoint (or ours) -> our names."""
    return {_old_port_name(k): v for k, v in _weights(params).items()}


def imagenet_backbone_key_map(params):
    """Backbone-only ResNet-101 checkpoint (torchvision / DrSleep's ``imagenet=True`` file, or the
    MindSpore model zoo's) -> our top-level backbone names; the classifier is dropped."""
    weights = _weights(params)
    if any(k.endswith(".running_mean") for k in weights):
        return torchvision_resnet_key_map(weights)
    return mindspore_modelzoo_resnet_key_map(weights)


def load_imagenet_backbone(net, source, strict=True):
    """Load an ImageNet ResNet checkpoint (path or dict) into a RefineNet's backbone.

    Strict for the backbone: a missing, unexpected or mis-shaped backbone key raises
    ``CheckpointError``; only the decoder (``DECODER_PREFIXES``) may stay untouched.
    Returns the ``LoadReport``.
    """
    return load_weights(net, source, strict=strict, key_map=imagenet_backbone_key_map,
                        ignore_missing=DECODER_PREFIXES)


KEY_MAPS = {"authors": authors_to_ours, "old_port": old_port_to_ours, "mindspore": old_port_to_ours,
            "imagenet_torch": imagenet_backbone_key_map, "imagenet_mindspore": imagenet_backbone_key_map}
# Layouts that hold only the backbone: load them with ignore_missing=DECODER_PREFIXES.
BACKBONE_LAYOUTS = ("imagenet_torch", "imagenet_mindspore")

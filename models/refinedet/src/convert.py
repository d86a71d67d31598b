"""Key maps from other RefineDet / backbone checkpoint layouts to ours, and a loader that picks one.

Layouts (:func:`detect_layout`):

- ``luuuyi``: luuuyi/RefineDet.PyTorch ``.pth`` (``vgg.0.weight`` .. ``tcb2.10.bias``, maybe behind
  ``module.``). Our VGG-16 names are theirs, so the map only unwraps.
- ``vgg16_reducedfc``: the ImageNet VGG-16 with fc6/fc7 as convolutions used to pretrain SSD /
  RefineDet (keys ``0.weight`` .. ``33.bias``) -> ``vgg.*``; the new layers keep their init.
- ``torchvision_resnet``: a torchvision ResNet-101 state dict -> ``backbone.*`` (BatchNorm fields
  renamed, ``fc`` dropped); the new layers keep their init.
- ``mindspore``: our own checkpoints (identity).
- ``old_port``: the old MindSpore port (mindspore-ai/models ``research/cv/RefineDet``). Refused:
  that network is a different architecture, its tensors have no counterpart here.
"""
import re
from pathlib import Path

from common.backbones import torchvision_resnet_key_map
from common.checkpoint import (
    CheckpointError,
    load_weights,
    read_checkpoint,
    read_torch_state_dict,
    split_state,
    strip_prefixes,
    torch_to_mindspore_names,
)

_PREFIXES = ("module.", "network.", "model.", "net.")
# Layers RefineDet adds to an ImageNet backbone: left at their init when loading a backbone.
NEW_LAYER_PREFIXES = ("conv4_3_L2Norm.", "conv5_3_L2Norm.", "extras.", "arm_", "odm_", "tcb0.", "tcb1.", "tcb2.")
# Names only the old port's network has (its SSD-style MultiBox heads, TCB and VGG blocks).
_OLD_PORT_MARKERS = ("multi_box.multi_loc_layers.", "multi_box.multi_cls_layers.", "tcb.deconv", "tcb.tcb0.",
                     "backbone.b6_1.", "backbone.b6_2.", "backbone.b1.")
_REDUCEDFC_KEY = re.compile(r"^\d+\.(weight|bias)$")
OLD_PORT_MESSAGE = (
    "{source}: this is a checkpoint of the old MindSpore port (mindspore-ai/models research/cv/RefineDet). "
    "Its network is not the published RefineDet (SSD-MobileNetV2-style depthwise heads with BatchNorm, VGG "
    "convs without bias, a different TCB layout; 35,480,324 parameters), so its weights cannot be loaded "
    "into this faithful RefineDet. Start from ImageNet weights (vgg16_reducedfc / torchvision ResNet-101) "
    "or luuuyi/RefineDet.PyTorch weights instead.")


class ConversionError(CheckpointError):
    """The source weights cannot be mapped onto the requested RefineDet."""


def _strip_prefixes(params, prefixes=_PREFIXES):
    return strip_prefixes(params, prefixes)


def detect_layout(params):
    """Name of the layout of ``params`` ({name: array}): one of luuuyi, vgg16_reducedfc,
    torchvision_resnet, mindspore, old_port. Raises ValueError naming a few keys otherwise."""
    weights, _ = split_state(params)
    keys = list(_strip_prefixes(weights))
    if not keys:
        raise ValueError("cannot tell the checkpoint layout: it holds no weights")
    if any(marker in k for k in keys for marker in _OLD_PORT_MARKERS):
        return "old_port"
    if all(_REDUCEDFC_KEY.match(k) for k in keys) and "31.weight" in keys:
        return "vgg16_reducedfc"
    if "conv1.weight" in keys and "layer1.0.conv1.weight" in keys:
        return "torchvision_resnet"
    if any(k.startswith(("vgg.", "backbone.", "tcb0.")) for k in keys):
        # MindSpore BatchNorm names mean ours; otherwise PyTorch names (luuuyi's, equal to ours
        # for VGG-16, whose RefineDet has no BatchNorm at all).
        if any(k.endswith((".moving_mean", ".moving_variance", ".gamma", ".beta")) for k in keys):
            return "mindspore"
        return "luuuyi"
    raise ValueError(f"cannot tell the RefineDet checkpoint layout from keys such as {keys[:6]} "
                     "(expected vgg.*/tcb0.* (luuuyi or ours), backbone.* (ours), 0.weight..33.bias "
                     "(vgg16_reducedfc) or conv1/layer1.. (torchvision ResNet))")


def luuuyi_to_ours(state_dict):
    """luuuyi/RefineDet.PyTorch state dict -> ours: names already equal, ``module.`` removed."""
    return torch_to_mindspore_names(_strip_prefixes(state_dict, ("module.",)))


def vgg16_reducedfc_to_ours(state_dict):
    """ImageNet ``vgg16_reducedfc.pth`` (``0.weight`` .. ``33.bias``) -> ``vgg.*``."""
    return {f"vgg.{k}": v for k, v in torch_to_mindspore_names(state_dict).items()}


def torchvision_resnet101_to_ours(state_dict):
    """torchvision ResNet-101 state dict -> ``backbone.*`` (BN renamed, ``fc`` dropped)."""
    return {f"backbone.{k}": v for k, v in torchvision_resnet_key_map(state_dict).items()}


def ours_to_ours(params):
    return dict(params)


def refuse_old_port(params, source="<state dict>"):
    """Key map for the old port's checkpoints: always fails, saying why."""
    raise ConversionError(OLD_PORT_MESSAGE.format(source=source))


KEY_MAPS = {"luuuyi": luuuyi_to_ours, "vgg16_reducedfc": vgg16_reducedfc_to_ours,
            "torchvision_resnet": torchvision_resnet101_to_ours, "mindspore": ours_to_ours,
            "old_port": refuse_old_port}
# Layouts that only hold a backbone, and which backbone.
BACKBONE_LAYOUTS = {"vgg16_reducedfc": "vgg16", "torchvision_resnet": "resnet101"}


def read_weights(source):
    """{name: array} from a dict, a .ckpt / .safetensors file or a PyTorch .pth / .pt file."""
    if isinstance(source, dict):
        return dict(source)
    path = Path(source)
    if path.suffix in (".pth", ".pt", ".pkl", ".bin"):
        return read_torch_state_dict(path)
    return read_checkpoint(path)


def load_refinedet_weights(net, source, strict=True):
    """Load ``source`` (path or {name: array}) of any layout above into ``net`` (a RefineDet).

    Backbone-only layouts leave the layers RefineDet adds at their initial values. Returns the
    :class:`common.checkpoint.LoadReport`; raises :class:`ConversionError` for the old port's
    checkpoints and for a backbone that does not match ``net``'s.
    """
    label = "<state dict>" if isinstance(source, dict) else str(source)
    params = read_weights(source)
    layout = detect_layout(params)
    if layout == "old_port":
        refuse_old_port(params, label)
    ignore = ()
    if layout in BACKBONE_LAYOUTS:
        if BACKBONE_LAYOUTS[layout] != net.backbone_name:
            raise ConversionError(f"{label}: {layout} weights are for a {BACKBONE_LAYOUTS[layout]} backbone, "
                                  f"the network has {net.backbone_name}")
        ignore = NEW_LAYER_PREFIXES
    try:
        report = load_weights(net, params, strict=strict, key_map=KEY_MAPS[layout], ignore_missing=ignore)
    except ConversionError:
        raise
    except CheckpointError as exc:
        raise ConversionError(f"{label} ({layout} layout) does not fit RefineDet ({net.backbone_name}, "
                              f"{net.num_classes} classes): {exc}") from exc
    report.source = f"{label} ({layout} layout)"
    return report

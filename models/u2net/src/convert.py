"""Convert the authors' U-2-Net weights into our parameter names.

Two sources:
- the authors' PyTorch state dicts (``u2net.pth`` / ``u2netp.pth``): our names equal theirs, so
  only the BatchNorm fields are renamed (``common.checkpoint.torch_to_mindspore_names``);
- an ONNX export with BatchNorm folded into the convolutions (e.g. rembg's ``u2netp.onnx``): its
  conv initializers are mostly anonymous, so convs are matched by execution order, which in the
  authors' forward equals their definition order and hence our parameter order. Every match is
  checked (weight shape, dilation, padding, a following ReLU exactly for REBNCONV convs, named
  initializers landing on the same-named layer, every initializer used once); the BatchNorms are
  set to identity.
"""
from pathlib import Path

import numpy as np
from mindspore import nn

from common.checkpoint import (
    CheckpointError,
    load_weights,
    named_parameters,
    read_torch_state_dict,
    state_dict,
    torch_to_mindspore_names,
)
from models.u2net.src.u2net import REBNCONV, build_u2net

VARIANTS = ("u2net", "u2netp")


class ConversionError(CheckpointError):
    """The source weights do not fit the requested network."""


def _expected_shapes(variant):
    return {k: tuple(p.shape) for k, p in named_parameters(build_u2net(variant)).items()}


def guess_variant(shapes):
    """Name of the variant whose parameter shapes equal ``shapes`` ({name: shape}), else None."""
    for variant in VARIANTS:
        if _expected_shapes(variant) == {k: tuple(v) for k, v in shapes.items()}:
            return variant
    return None


def _fit_or_raise(net, params, source, variant):
    """Strict load of ``params`` into ``net``; on failure name the keys and the likely variant."""
    try:
        return load_weights(net, params, strict=True)
    except CheckpointError as exc:
        guess = guess_variant({k: np.shape(v) for k, v in params.items()})
        hint = (f"\n  the file looks like variant '{guess}', not '{variant}'"
                if guess and guess != variant else "")
        raise ConversionError(f"{source}: weights do not fit {variant}: {exc}{hint}") from exc


# ---------------------------------------------------------------- PyTorch state dict
def convert_torch_state_dict(torch_sd, net, variant="u2net", source="<state dict>"):
    """Load an authors' PyTorch state dict ({name: array}) into ``net`` strictly.

    Returns the load report. Fails naming missing / unexpected / mis-shaped keys.
    """
    return _fit_or_raise(net, torch_to_mindspore_names(torch_sd), source, variant)


def convert_torch_file(path, net, variant="u2net"):
    return convert_torch_state_dict(read_torch_state_dict(path), net, variant, source=str(path))


# ---------------------------------------------------------------- BN-folded ONNX
def _onnx_convs(model):
    """Conv nodes in graph order as dicts: node, wname/weight, bname/bias, attrs, next (consumer ops)."""
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    convs = []
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        if len(node.input) != 3 or node.input[1] not in inits or node.input[2] not in inits:
            raise ConversionError(f"ONNX Conv '{node.name}' lacks constant weight and bias inputs "
                                  f"({list(node.input)}); is BatchNorm folded and bias present?")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        convs.append({"node": node.name or node.output[0],
                      "wname": node.input[1], "weight": numpy_helper.to_array(inits[node.input[1]]),
                      "bname": node.input[2], "bias": numpy_helper.to_array(inits[node.input[2]]),
                      "attrs": attrs, "next": consumers.get(node.output[0], [])})
    return convs, set(inits)


def _our_convs(net):
    """[(prefix, conv cell, is REBNCONV conv)] in definition order."""
    rebn = {f"{name}.conv_s1" for name, cell in net.cells_and_names() if isinstance(cell, REBNCONV)}
    out = []
    for name, cell in net.cells_and_names():
        if isinstance(cell, nn.Conv2d):
            out.append((name, cell, name in rebn))
    return out


def _conv_problems(ours, theirs):
    """Differences between one of our convs and one ONNX conv, as strings (empty when they match)."""
    name, cell, is_rebn = ours
    problems = []
    wshape = tuple(cell.weight.shape)
    if tuple(theirs["weight"].shape) != wshape:
        problems.append(f"weight {tuple(theirs['weight'].shape)} vs {name}.weight {wshape}")
    dil = list(theirs["attrs"].get("dilations", [1, 1]))
    if dil != list(cell.dilation[-2:]):
        problems.append(f"dilation {dil} vs {list(cell.dilation[-2:])}")
    pads = list(theirs["attrs"].get("pads", [0, 0, 0, 0]))
    want_pads = [cell.padding[0], cell.padding[2], cell.padding[1], cell.padding[3]]
    if pads != want_pads:
        problems.append(f"pads {pads} vs {want_pads}")
    if is_rebn != (theirs["next"] == ["Relu"]):
        problems.append(f"followed by {theirs['next']} (expected {'Relu' if is_rebn else 'no Relu'})")
    named = theirs["wname"].rsplit(".", 1)[0]
    if theirs["wname"].endswith(".weight") and named != name:
        problems.append(f"initializer '{theirs['wname']}' lands on {name}")
    return problems


def onnx_to_params(model, net, variant="u2netp", source="<onnx>"):
    """{our parameter name: array} from a BN-folded ONNX model, BatchNorms set to identity."""
    theirs, all_inits = _onnx_convs(model)
    ours = _our_convs(net)
    problems = []
    if len(theirs) != len(ours):
        problems.append(f"{len(theirs)} Conv nodes in the ONNX graph, {len(ours)} convs in {variant}")
    for i, (o, t) in enumerate(zip(ours, theirs)):
        for p in _conv_problems(o, t):
            problems.append(f"conv #{i} ({t['node']}): {p}")
    used = [t["wname"] for t in theirs] + [t["bname"] for t in theirs]
    if len(set(used)) != len(used):
        problems.append("an initializer feeds several convs")
    unused = sorted(all_inits - set(used))
    if unused:
        problems.append(f"{len(unused)} initializers map to no conv: {unused[:10]}")
    if problems:
        guess = None
        if len(theirs) == len(ours):
            for other in VARIANTS:
                if other != variant and not any(
                        _conv_problems(o, t) for o, t in zip(_our_convs(build_u2net(other)), theirs)):
                    guess = other
        hint = f"\n  the file looks like variant '{guess}', not '{variant}'" if guess else ""
        more = f"\n  ... (+{len(problems) - 20} more)" if len(problems) > 20 else ""
        shown = "\n  ".join(problems[:20]) + more
        raise ConversionError(f"{source}: ONNX graph does not fit {variant}:\n  {shown}{hint}")

    params = {}
    for (name, _, _), t in zip(ours, theirs):
        params[f"{name}.weight"] = t["weight"].astype(np.float32)
        params[f"{name}.bias"] = t["bias"].astype(np.float32)
    for name, cell in net.cells_and_names():
        if isinstance(cell, REBNCONV):
            bn, c = cell.bn_s1, cell.bn_s1.num_features
            eps = float(bn.eps)
            # y = gamma * (x - mean) / sqrt(var + eps) + beta == x
            params[f"{name}.bn_s1.gamma"] = np.ones(c, np.float32)
            params[f"{name}.bn_s1.beta"] = np.zeros(c, np.float32)
            params[f"{name}.bn_s1.moving_mean"] = np.zeros(c, np.float32)
            params[f"{name}.bn_s1.moving_variance"] = np.full(c, 1.0 - eps, np.float32)
    return params


def convert_onnx_file(path, net, variant="u2netp"):
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ConversionError(f"{path}: cannot read as ONNX ({exc})") from exc
    params = onnx_to_params(model, net, variant, source=str(path))
    return _fit_or_raise(net, params, str(path), variant)


CONVERTERS = {".pth": convert_torch_file, ".pt": convert_torch_file, ".onnx": convert_onnx_file}


def convert_onnx_params(path, net):
    """Reader for the shared converter: our-named params of a BN-folded ONNX file for ``net``."""
    import onnx

    variant = guess_variant({k: p.shape for k, p in named_parameters(net).items()}) or "u2net"
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ConversionError(f"{path}: cannot read as ONNX ({exc})") from exc
    return onnx_to_params(model, net, variant, source=str(path))


def convert(src, variant):
    """Build ``variant`` and load ``src`` (chosen by suffix) into it. Returns (net, report)."""
    src = Path(src)
    if variant not in VARIANTS:
        raise ConversionError(f"unknown variant '{variant}', expected one of {list(VARIANTS)}")
    converter = CONVERTERS.get(src.suffix.lower())
    if converter is None:
        raise ConversionError(f"{src}: unknown weight file suffix '{src.suffix}', expected one of "
                              f"{sorted(CONVERTERS)}")
    if not src.is_file():
        raise ConversionError(f"{src}: file not found")
    net = build_u2net(variant)
    report = converter(src, net, variant)
    return net, report


def summary(net, report, variant, src):
    params = state_dict(net)
    trainable = sum(int(p.size) for p in net.trainable_params())
    bns = sum(isinstance(c, REBNCONV) for _, c in net.cells_and_names())
    note = (f"; BatchNorm was folded into the convs, {bns} BatchNorms set to identity"
            if Path(src).suffix.lower() == ".onnx" else "")
    return (f"{src} -> {variant}: {len(report.loaded)} tensors loaded ({len(params)} in the network), "
            f"{trainable:,} trainable parameters{note}")

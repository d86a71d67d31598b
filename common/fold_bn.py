"""Fold inference-mode BatchNorm into the preceding convolution, for eval, predict and export.

``fold_batchnorm(net)`` rewrites ``net`` in place: each folded ``nn.BatchNorm2d`` becomes
``nn.Identity`` and its convolution gets ``W * s`` and ``(b - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)`` (computed in float64), so the network is the same function with
one operator fewer per pair. The result is for inference only (it is left in eval mode).

A pair is folded only where the BatchNorm's input is known to be the convolution's output:

* ``[..., conv, bn, ...]`` adjacent in a plain ``nn.SequentialCell`` (DDRNet stems,
  projections, compressions and downs; ResNet projections; RefineDet's ResNet TCBs);
* attributes ``conv<S>`` and ``bn<S>`` of one Cell with the same suffix ``S``, the PyTorch naming
  of ``bn<S>(conv<S>(x))`` (``conv1``/``bn1`` of ResNet and DDRNet blocks and stems,
  ``conv_s1``/``bn_s1`` of U-2-Net's REBNCONV).

``conv`` is an ``nn.Conv2d`` (incl. :class:`common.layers.Conv2dSame`) or an ungrouped
``nn.Conv2dTranspose`` with NCHW data; a BatchNorm that always uses batch statistics
(``use_batch_statistics=True``) or whose width differs from the conv's output is left alone.
Neighbours in an ``nn.CellList`` are not folded (a list says nothing about the data flow), so
RefineDet-ResNet's TCBs keep their 15 BatchNorms. A Cell whose ``construct`` used a ``conv<S>``
output besides feeding ``bn<S>`` would break the name rule: tests/test_fold_bn.py checks every
registered model folded against unfolded.
"""
import re
from dataclasses import dataclass, field

import numpy as np
from mindspore import Parameter, Tensor, nn

_PAIR = re.compile(r"^conv(.*)$")


@dataclass
class FoldReport:
    folded: list = field(default_factory=list)    # "conv name <- bn name"
    skipped: list = field(default_factory=list)   # "bn name: reason" (paired, not foldable)
    unpaired: list = field(default_factory=list)  # BatchNorms after no known pattern

    def summary(self):
        text = f"BatchNorm folded into {len(self.folded)} convolutions"
        if self.skipped:
            text += f"; not foldable: {'; '.join(self.skipped)}"
        if self.unpaired:
            text += f"; {len(self.unpaired)} BatchNorms kept (no conv + bn pattern), e.g. {self.unpaired[0]}"
        return text


def _foldable(conv, bn):
    """None when ``bn`` can be folded into ``conv``, else the reason it cannot."""
    if not isinstance(bn, nn.BatchNorm2d):
        return "not a BatchNorm2d"
    if bn.use_batch_statistics:
        return "uses batch statistics in inference"
    if getattr(bn, "format", "NCHW") != "NCHW" or getattr(conv, "data_format", "NCHW") != "NCHW":
        return "not NCHW"
    transposed = isinstance(conv, nn.Conv2dTranspose)
    if transposed and conv.group != 1:
        return "grouped transposed conv"
    if conv.out_channels != bn.num_features:
        return f"{bn.num_features} features after a conv of {conv.out_channels} channels"
    return None


def _fold(conv, bn):
    transposed = isinstance(conv, nn.Conv2dTranspose)
    gamma, beta, mean, var = (p.asnumpy().astype(np.float64)
                              for p in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
    scale = gamma / np.sqrt(var + bn.eps)
    weight = conv.weight.asnumpy().astype(np.float64)
    # output channels: axis 0 of a conv weight, axis 1 of a transposed one (in, out, kh, kw)
    shape = (1, -1, 1, 1) if transposed else (-1, 1, 1, 1)
    dtype = conv.weight.dtype
    conv.weight.set_data(Tensor((weight * scale.reshape(shape)).astype(np.float32), dtype))
    bias = conv.bias.asnumpy().astype(np.float64) if conv.has_bias else np.zeros_like(scale)
    folded = Tensor(((bias - mean) * scale + beta).astype(np.float32), dtype)
    if conv.has_bias:
        conv.bias.set_data(folded)
    else:
        # named like the weight's sibling, so names stay unique in the graph and in exports
        name = conv.weight.name[:-len("weight")] + "bias" if conv.weight.name.endswith("weight") else None
        conv.bias = Parameter(folded, name=name or f"{conv.weight.name}.bias")
        conv.has_bias = True


def _pairs(cell):
    """(conv, bn) attribute names, or positions in a SequentialCell, of ``cell``'s pairs."""
    children = dict(cell.name_cells())
    if type(cell) is nn.SequentialCell:  # a subclass may override construct (e.g. VGG16)
        items = list(cell)
        return [(i, i + 1) for i in range(len(items) - 1)
                if isinstance(items[i], (nn.Conv2d, nn.Conv2dTranspose))
                and isinstance(items[i + 1], nn.BatchNorm2d)]
    pairs = []
    for name, child in children.items():
        match = _PAIR.match(name)
        bn = "bn" + match.group(1) if match else None
        if (match and isinstance(child, (nn.Conv2d, nn.Conv2dTranspose))
                and isinstance(children.get(bn), nn.BatchNorm2d)):
            pairs.append((name, bn))
    return pairs


def fold_batchnorm(net):
    """Fold every conv + BatchNorm pair of ``net`` (see the module docstring) in place.

    Raises RuntimeError when a cell of ``net`` already ran in graph mode (its compiled graph would
    keep the BatchNorms). Returns a :class:`FoldReport`.
    """
    cells = list(net.cells_and_names())
    compiled = [name or type(cell).__name__ for name, cell in cells if cell.compiled]
    if compiled:
        # its graph would keep the BatchNorms and run them on the folded weights
        raise RuntimeError(f"fold_batchnorm: {compiled[0]} already ran in graph mode; fold before its first call")
    net.set_train(False)
    report, kept = FoldReport(), set()
    for prefix, cell in cells:
        sequential = type(cell) is nn.SequentialCell
        children = list(cell) if sequential else dict(cell.name_cells())
        for conv_key, bn_key in _pairs(cell):
            conv, bn = children[conv_key], children[bn_key]
            where = f"{prefix}.{bn_key}" if prefix else bn_key
            reason = _foldable(conv, bn)
            if reason:
                report.skipped.append(f"{where}: {reason}")
                kept.add(where)
                continue
            _fold(conv, bn)
            identity = nn.Identity()
            if sequential:
                cell[bn_key] = identity
            else:
                setattr(cell, bn_key, identity)
            report.folded.append(f"{prefix}.{conv_key} <- {where}" if prefix else f"{conv_key} <- {where}")
    report.unpaired = [name for name, cell in net.cells_and_names()
                       if isinstance(cell, nn.BatchNorm2d) and name not in kept]
    return report

"""The authors' state-dict tables of ../shared/reference (name, shape, numel per line), read for
converter and naming tests. The BatchNorm rename is written out here, independently of the
converters under test."""
import ast

import numpy as np

BN_FIELDS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
             "running_var": "moving_variance"}


def read_table(path):
    """[(authors' name, shape)] in the authors' state-dict order."""
    rows = []
    for line in path.read_text().splitlines():
        name, shape, numel = line.split("\t")
        shape = tuple(ast.literal_eval(shape))
        assert int(np.prod(shape)) == int(numel), line
        rows.append((name, shape))
    return rows


def bn_renamed(rows):
    """The table with MindSpore's BatchNorm fields and without num_batches_tracked."""
    bn = {n.rsplit(".", 1)[0] for n, _ in rows if n.endswith(".running_mean")}
    out = []
    for name, shape in rows:
        module, leaf = name.rsplit(".", 1)
        if leaf == "num_batches_tracked":
            continue
        out.append((f"{module}.{BN_FIELDS[leaf]}" if module in bn else name, shape))
    return out

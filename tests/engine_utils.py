"""A tiny network and dataset for engine tests (importable by multi-process test scripts)."""
import mindspore.dataset as ds
import numpy as np
from mindspore import nn, ops


class TinyNet(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, pad_mode="pad", padding=1, has_bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Dense(4, 2)

    def construct(self, x):
        return self.fc(ops.relu(self.bn(self.conv(x))).mean(axis=(2, 3)))


def tiny_data(n=16, batch=4, seed=0, shard=None):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, 8, 8)).astype(np.float32)
    y = (x[:, 0].mean(axis=(1, 2)) > 0).astype(np.int32)
    kw = {} if shard is None else {"num_shards": shard[1], "shard_id": shard[0]}
    return ds.NumpySlicesDataset({"x": x, "y": y}, shuffle=False, **kw).batch(batch)

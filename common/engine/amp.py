"""Mixed precision with BatchNorm kept in float32, and loss scalers that work on CPU too.

MindSpore's ``TrainOneStepWithLossScaleCell`` checks overflow through an Ascend-only status
op; here overflow is ``not all_finite(grads)``, which every backend runs.
"""
import mindspore as ms
from mindspore import amp, nn, ops

AMP_LEVELS = ("O0", "O1", "O2", "O3")
_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm, nn.GroupNorm,
             nn.LayerNorm)


class _Float32Outputs(nn.Cell):
    """Casts every floating output back to float32 so losses are computed in float32."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def construct(self, *inputs):
        out = self.network(*inputs)
        if isinstance(out, (tuple, list)):
            return tuple(ops.cast(o, ms.float32) for o in out)
        return ops.cast(out, ms.float32)


def apply_amp(network, level):
    """Return ``network`` prepared for ``level`` (O0 = float32 unchanged)."""
    if level not in AMP_LEVELS:
        raise ValueError(f"unknown AMP level '{level}'; expected one of {AMP_LEVELS}")
    if level == "O0":
        return network
    network = amp.auto_mixed_precision(network, level)
    for _, cell in network.cells_and_names():
        if isinstance(cell, _BN_TYPES):
            cell.to_float(ms.float32)
    return _Float32Outputs(network)


class NoLossScaler:
    """Stands in when loss scaling is off, with the same interface as MindSpore's scalers."""

    scale_value = None

    def scale(self, x):
        return x

    def unscale(self, x):
        return x

    def adjust(self, finite):
        return finite


def build_loss_scaler(kind, init_scale=65536.0, scale_factor=2.0, scale_window=1000):
    table = {
        "none": NoLossScaler,
        "fixed": lambda: amp.StaticLossScaler(float(init_scale)),
        "dynamic": lambda: amp.DynamicLossScaler(float(init_scale), int(scale_factor), int(scale_window)),
    }
    if kind not in table:
        raise ValueError(f"unknown loss_scale '{kind}'; expected one of {sorted(table)}")
    return table[kind]()

"""Exponential moving average of weights (timm ModelEmaV2 semantics), updated inside the
compiled step; BatchNorm statistics are averaged too."""
import mindspore as ms
from mindspore import Parameter, ParameterTuple, nn, ops


class WeightEMA(nn.Cell):
    """Shadow copies ``ema.<name>`` of ``named_params``; ``update()`` after each optimizer step."""

    def __init__(self, named_params, decay):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.names = list(named_params)
        self.sources = list(named_params.values())
        self.shadow = ParameterTuple(
            Parameter(p.data.copy(), name=f"ema.{n}", requires_grad=False) for n, p in named_params.items())

    def construct(self):
        for shadow, source in zip(self.shadow, self.sources):
            ops.assign(shadow, shadow * self.decay + ops.cast(source, shadow.dtype) * (1.0 - self.decay))
        return True

    def state(self):
        return {f"ema.{n}": s for n, s in zip(self.names, self.shadow)}

    def swap(self):
        """Exchange live and averaged weights (call again to swap back)."""
        for shadow, source in zip(self.shadow, self.sources):
            live = source.data.copy()
            source.set_data(ms.Tensor(shadow.asnumpy(), dtype=source.dtype))
            shadow.set_data(live)

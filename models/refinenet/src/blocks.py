"""RefineNet's two building blocks, with the parameter names of DrSleep's ``layer_factory``.

The convolutions are attributes named ``1_conv``, ``1_conv_relu_varout_dimred``, ... (RCU) and
``1_outvar_dimred``, ... (CRP), so converted PyTorch weights need only a BatchNorm rename. Both
blocks keep the channel count (their sums need it; RefineNet never changes it inside them).
"""
from mindspore import nn

from common.layers import MaxPool2d, conv2d


def conv3x3(in_channels, out_channels, has_bias=False):
    """3x3, stride 1, padding 1 (DrSleep's ``conv3x3``; PyTorch's default initialisation)."""
    return conv2d(in_channels, out_channels, 3, padding=1, has_bias=has_bias)


class RCUBlock(nn.Cell):
    """``n_blocks`` chained residual conv units, each ``x + conv(relu(conv(relu(x))))``.

    The first conv of a unit has a bias, the second not. The shortcut carries the unit's input
    from before its ReLU, so negative values pass through.
    """

    def __init__(self, channels, n_blocks):
        super().__init__()
        names = []
        for i in range(1, n_blocks + 1):
            first, second = f"{i}_conv", f"{i}_conv_relu_varout_dimred"
            setattr(self, first, conv3x3(channels, channels, has_bias=True))
            setattr(self, second, conv3x3(channels, channels, has_bias=False))
            names.append((first, second))
        self.names = tuple(names)
        self.relu = nn.ReLU()

    def construct(self, x):
        for first, second in self.names:
            y = getattr(self, first)(self.relu(x))
            x = x + getattr(self, second)(self.relu(y))
        return x


class CRPBlock(nn.Cell):
    """Chained residual pooling: ``n_stages`` times (5x5/1 max-pool, 3x3 conv without bias),
    every stage's result added to the input.

    The pool pads with -inf as PyTorch's ``MaxPool2d(5, 1, 2)``: from the second stage on the
    chain carries negative values, where zero padding would change the border outputs.
    """

    def __init__(self, channels, n_stages=4):
        super().__init__()
        self.names = tuple(f"{i}_outvar_dimred" for i in range(1, n_stages + 1))
        for name in self.names:
            setattr(self, name, conv3x3(channels, channels, has_bias=False))
        self.maxpool = MaxPool2d(5, 1, 2)

    def construct(self, x):
        top = x
        for name in self.names:
            top = getattr(self, name)(self.maxpool(top))
            x = x + top
        return x

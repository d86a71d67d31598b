"""The deployed form of U-2-Net: only the fused map, as a probability."""
from mindspore import nn, ops


class FusedOutput(nn.Cell):
    """Only the fused map, as a probability (what eval, export and deployment use)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.logits = bool(getattr(net, "return_logits", False))

    def construct(self, x):
        fused = self.net(x)[0]
        return ops.sigmoid(fused) if self.logits else fused

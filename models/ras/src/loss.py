"""RAS training loss: BCE-with-logits + IoU loss on each of the five outputs (RAS-pytorch v1
``train.py``, ``bce_iou_loss``).

Per output: ``mean(BCE) + mean over images of (1 - (inter + 1) / (union - inter + 1))`` with
``inter = sum(p * g)``, ``union = sum(p + g)`` over H, W and ``p = sigmoid(logits)``. The authors
divide the sum over outputs by the batch size, so the total is on the per-image scale of their logs;
``divide_by_batch=False`` gives the plain sum.
"""
from mindspore import nn, ops


class RASLoss(nn.Cell):
    """``construct(outputs, mask)`` -> ``(total, parts)``; ``outputs`` the network's five logit
    maps (B, 1, H, W), ``mask`` (B, 1, H, W) in [0, 1]. ``parts[k]`` is output k+1's loss (after
    the batch division), so ``sum(parts) == total``."""

    part_names = ("out1", "out2", "out3", "out4", "out5")

    def __init__(self, smooth: float = 1.0, divide_by_batch: bool = True):
        super().__init__()
        self.smooth = smooth
        self.divide_by_batch = divide_by_batch
        self.bce = nn.BCEWithLogitsLoss(reduction="mean")
        self.sigmoid = ops.Sigmoid()

    def iou_loss(self, logits, mask):
        prob = self.sigmoid(logits)
        inter = ops.sum(prob * mask, dim=(2, 3))
        union = ops.sum(prob + mask, dim=(2, 3))
        return ops.mean(1.0 - (inter + self.smooth) / (union - inter + self.smooth))

    def construct(self, outputs, mask):
        scale = 1.0 / mask.shape[0] if self.divide_by_batch else 1.0
        parts = ()
        total = 0.0
        for logits in outputs:
            part = (self.bce(logits, mask) + self.iou_loss(logits, mask)) * scale
            parts = parts + (part,)
            total = total + part
        return total, parts

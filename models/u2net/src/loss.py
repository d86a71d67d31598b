"""Deep supervision loss: the sum of binary cross-entropy over the fused and six side maps."""
from mindspore import nn


class MultiBCELoss(nn.Cell):
    """Sum over outputs of mean BCE, on logits (the authors apply BCELoss to sigmoid maps; the
    logit form is the same function, computed without saturating).

    Returns ``(total, parts)``: ``parts`` are the 7 terms in output order (``d0`` is the fused
    map), logged by the engine; only ``total`` is back-propagated.
    """

    part_names = ("d0", "d1", "d2", "d3", "d4", "d5", "d6")

    def __init__(self):
        super().__init__()
        self.bce = nn.BCEWithLogitsLoss()

    def construct(self, logits, mask):
        parts = tuple(self.bce(out, mask) for out in logits)
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        return total, parts

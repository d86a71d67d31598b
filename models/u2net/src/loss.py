"""Deep supervision loss: the sum of binary cross-entropy over the fused and six side maps."""
from mindspore import nn


class MultiBCELoss(nn.Cell):
    """Sum over outputs of mean BCE, on logits (the authors apply BCELoss to sigmoid maps; the
    logit form is the same function, computed without saturating)."""

    def __init__(self):
        super().__init__()
        self.bce = nn.BCEWithLogitsLoss()

    def construct(self, logits, mask):
        loss = self.bce(logits[0], mask)
        for out in logits[1:]:
            loss = loss + self.bce(out, mask)
        return loss

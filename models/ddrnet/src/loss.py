"""Cross-entropy against soft targets (Mixup / CutMix / label smoothing produce them)."""
from mindspore import nn, ops


class SoftTargetCrossEntropy(nn.Cell):
    def construct(self, logits, target):
        return (-target * ops.log_softmax(logits, axis=-1)).sum(axis=-1).mean()

"""Pixel-wise softmax cross-entropy for RefineNet, as DrSleep trains it.

light-weight-refinenet ``src/train.py`` (the training code refinenet-pytorch points to) upsamples
the 1/4-size logits to the label size (bilinear, ``align_corners=False``), applies
``LogSoftmax`` and ``NLLLoss(ignore_index=255)``: the mean over the pixels whose label is not 255.
We do the same (the labels are not downsampled). An all-ignored batch gives 0 instead of NaN.
"""
from mindspore import nn, ops

from common.layers import resize_bilinear


class RefineNetLoss(nn.Cell):
    """``loss_fn(logits, labels)``: logits (B, C, h, w) float, labels (B, H, W) int32.

    Labels in 0..C-1 score, ``ignore_index`` is excluded from the sum and the count. Static
    shapes only (graph mode): the resize is two matmuls with compile-time matrices.
    """

    def __init__(self, ignore_index: int = 255, align_corners: bool = False):
        super().__init__()
        self.ignore_index = ignore_index
        self.align_corners = align_corners

    def construct(self, logits, labels):
        logits = resize_bilinear(logits, (labels.shape[1], labels.shape[2]), self.align_corners)
        log_p = ops.log_softmax(logits.astype("float32"), axis=1)
        labels = labels.astype("int32")
        valid = (labels != self.ignore_index).astype("float32")
        # an out-of-range index (the ignore label) one-hot encodes to zeros: no gather needed
        target = ops.one_hot(labels, log_p.shape[1], 1.0, 0.0, axis=1)
        nll = -(target * log_p).sum(axis=1) * valid
        return nll.sum() / ops.maximum(valid.sum(), 1.0)

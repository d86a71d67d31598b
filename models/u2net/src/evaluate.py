"""Glue between the U-2-Net network and the shared saliency evaluation loop."""
import numpy as np

from mindspore import Tensor, nn, ops

from common.data.sod import SODDataset
from common.tasks.sod import evaluate_saliency
from models.u2net.src.inference import postprocess, preprocess


class FusedOutput(nn.Cell):
    """Only the fused map, as a probability (what deployment needs)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.logits = bool(getattr(net, "return_logits", False))

    def construct(self, x):
        fused = self.net(x)[0]
        return ops.sigmoid(fused) if self.logits else fused


def saliency_predictor(net):
    fused = FusedOutput(net)

    def predict(batch):
        return fused(Tensor(np.ascontiguousarray(batch, dtype=np.float32))).asnumpy()[:, 0]

    return predict


def make_evaluator(root, size, pred_dir=None, max_images=None):
    """``evaluate(net) -> metrics`` on the SOD set at ``root`` (validated once, up front)."""
    source = SODDataset(root)

    def evaluate(net):
        return evaluate_saliency(saliency_predictor(net), lambda image: preprocess(image, size),
                                 source, pred_dir=pred_dir, max_images=max_images,
                                 postprocess=postprocess)

    return evaluate

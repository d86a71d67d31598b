"""``predict(batch NCHW float32) -> [numpy outputs]`` from a MindSpore Cell or an ONNX session:
the one calling convention every task's scoring loop uses."""
import numpy as np
from mindspore import Tensor


def _flatten(outputs):
    if isinstance(outputs, (tuple, list)):
        return [a for o in outputs for a in _flatten(o)]
    return [outputs.asnumpy() if hasattr(outputs, "asnumpy") else np.asarray(outputs)]


def network_predictor(net):
    net.set_train(False)
    return lambda batch: _flatten(net(Tensor(np.ascontiguousarray(batch, dtype=np.float32))))


def onnx_predictor(session, batch_size=None):
    from common.export import run_onnx

    return lambda batch: run_onnx(session, np.ascontiguousarray(batch, dtype=np.float32), batch_size)

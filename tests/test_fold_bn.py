"""BatchNorm folding (common/fold_bn.py): folded networks compute what the unfolded ones do."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from common import layers as L
from common.fold_bn import fold_batchnorm
from models import create_model, list_models

RNG = np.random.default_rng(0)
# Which BatchNorms stay: RefineDet-ResNet's TCBs are CellLists (see common/fold_bn.py).
KEPT = {"refinedet320_resnet101": 15, "refinedet512_resnet101": 15}
FAST = ("u2netp", "ddrnet23_slim")


def randomise_bn(net, rng=RNG):
    """Random statistics and affine parameters, so that folding has something to fold."""
    for _, cell in net.cells_and_names():
        if isinstance(cell, nn.BatchNorm2d):
            n = cell.num_features
            for p, values in ((cell.moving_mean, rng.normal(0, 0.5, n)), (cell.moving_variance, rng.uniform(0.5, 2, n)),
                              (cell.gamma, rng.uniform(0.5, 1.5, n)), (cell.beta, rng.normal(0, 0.2, n))):
                p.set_data(Tensor(values.astype(np.float32)))


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [a for o in out for a in _flat(o)]
    return [out.asnumpy()]


def _assert_same(got, want, rtol=1e-5):
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        # float32 reassociation: relative to the output's scale (large untrained logits)
        tol = 1e-5 + rtol * float(np.abs(w).max())
        assert np.abs(g - w).max() <= tol, f"output {i}: max diff {np.abs(g - w).max():.3g} > {tol:.3g}"


def _check_model(name, size=64):
    net = create_model(name)
    net.set_train(False)
    randomise_bn(net)
    x = Tensor(RNG.standard_normal((2, 3, size, size)).astype(np.float32))
    want = _flat(net(x))
    total = sum(isinstance(c, nn.BatchNorm2d) for _, c in net.cells_and_names())
    report = fold_batchnorm(net)
    assert len(report.folded) == total - KEPT.get(name, 0) and not report.skipped, report.summary()
    assert len(report.unpaired) == KEPT.get(name, 0)
    names = [p.name for p in net.get_parameters()]
    assert len(names) == len(set(names))  # new biases are named after their conv
    _assert_same(_flat(net(x)), want)


@pytest.mark.parametrize("name", FAST)
def test_folded_model_equals_unfolded(name, pynative):
    _check_model(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if n not in FAST])
def test_folded_model_equals_unfolded_every_model(name, pynative):
    _check_model(name)


class _Patterns(nn.Cell):
    """Each folded pattern (attribute pair, Sequential conv/bn with and without bias, transposed
    conv) and two that must stay (a SequentialCell subclass, batch statistics in inference)."""

    class _Seq(nn.SequentialCell):
        def construct(self, x):  # conv output used twice: folding would be wrong
            y = self[0](x)
            return self[1](y) + y

    def __init__(self):
        super().__init__()
        self.conv1 = L.conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.seq = nn.SequentialCell([L.conv2d(4, 4, 3, padding=1, has_bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                                      L.ConvTranspose2d(4, 4, 2, 2, has_bias=False), nn.BatchNorm2d(4),
                                      L.conv2d_same(4, 4, 3, 2), nn.BatchNorm2d(4)])
        self.custom = self._Seq([L.conv2d(4, 4, 1), nn.BatchNorm2d(4)])
        self.conv2 = L.conv2d(4, 4, 1)
        self.bn2 = nn.BatchNorm2d(4, use_batch_statistics=True)

    def construct(self, x):
        return self.bn2(self.conv2(self.custom(self.seq(self.bn1(self.conv1(x))))))


def test_fold_patterns(pynative):
    net = _Patterns()
    net.set_train(False)
    randomise_bn(net)
    x = Tensor(RNG.standard_normal((2, 3, 9, 10)).astype(np.float32))
    want = _flat(net(x))
    report = fold_batchnorm(net)
    assert report.folded == ["conv1 <- bn1", "seq.0 <- seq.1", "seq.3 <- seq.4", "seq.5 <- seq.6"]
    assert report.skipped == ["bn2: uses batch statistics in inference"]
    assert report.unpaired == ["custom.1"]
    assert isinstance(net.bn1, nn.Identity) and isinstance(net.seq[4], nn.Identity)
    assert net.seq[0].has_bias and net.seq[0].bias.name == "seq.0.bias"
    _assert_same(_flat(net(x)), want)


def test_fold_refuses_a_compiled_network():
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    net = nn.SequentialCell([L.conv2d(3, 4, 1), nn.BatchNorm2d(4)])
    net.set_train(False)
    net(Tensor(np.zeros((1, 3, 4, 4), np.float32)))
    with pytest.raises(RuntimeError, match="already ran in graph mode"):
        fold_batchnorm(net)


def test_folded_graph_and_onnx_export(tmp_path):
    import onnx

    from common.export import export_model

    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    net = create_model("ddrnet23_slim")
    net.set_train(False)
    randomise_bn(net)
    x = RNG.standard_normal((1, 3, 64, 64)).astype(np.float32)
    folded = create_model("ddrnet23_slim")
    ms.load_param_into_net(folded, {p.name: p for p in net.get_parameters()}, strict_load=True)
    fold_batchnorm(folded)
    want = _flat(net(Tensor(x)))
    _assert_same(_flat(folded(Tensor(x))), want)
    result = export_model(folded, x, "ONNX", tmp_path / "folded.onnx")
    assert "BatchNormalization" not in {n.op_type for n in onnx.load(str(result.path)).graph.node}

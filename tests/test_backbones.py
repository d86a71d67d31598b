"""Backbones: exact parameter counts, the authors' names and shapes, feature shapes, options,
and loading torchvision / MindSpore model zoo / RefineDet layouts with a report."""
import ast
import functools

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from common.backbones import (
    create_backbone,
    mindspore_modelzoo_resnet_key_map,
    resnet50,
    resnet101,
    torchvision_resnet_key_map,
    torchvision_vgg16_key_map,
    vgg16,
)
from common.checkpoint import CheckpointError, load_weights, named_parameters
from common.export import export_model, onnx_session

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module", autouse=True)
def _cpu():
    ms.set_device("CPU")


@pytest.fixture(scope="module")
def r50():
    net = resnet50()
    net.set_train(False)
    return net


def _trainable(net):
    return sum(int(np.prod(p.shape)) for p in net.trainable_params())


def _table(path, prefix):
    """{name: shape} of the rows of an authors' key table whose name starts with ``prefix``."""
    rows = {}
    for line in path.read_text().splitlines():
        name, shape, _ = line.split("\t")
        if name.startswith(prefix):
            rows[name] = tuple(ast.literal_eval(shape))
    return rows


def _random_state(shapes):
    return {k: RNG.standard_normal(s).astype(np.float32) if s else np.array(7, np.int64)
            for k, s in shapes.items()}


def _is_resnet_key(name):
    return name.split(".")[0] in ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")


# ---------------------------------------------------------------- sizes and names

def test_parameter_counts(r50):
    # torchvision resnet50 / resnet101 without fc, RefineDet's vgg with fc6/fc7 (DESIGN.md facts)
    assert _trainable(r50) == 23_508_032
    assert _trainable(resnet101()) == 42_500_160
    assert _trainable(vgg16()) == 20_483_904


def test_resnet_names(r50):
    names = set(named_parameters(r50))
    for name in ("conv1.weight", "bn1.gamma", "bn1.moving_variance", "layer1.0.conv1.weight",
                 "layer1.0.downsample.0.weight", "layer1.0.downsample.1.moving_mean",
                 "layer4.2.conv3.weight", "layer4.2.bn3.beta"):
        assert name in names
    assert not any(n.startswith("fc.") for n in names)
    assert "layer1.1.downsample.0.weight" not in names


def test_vgg_names_match_refinedet(reference_keys):
    want = _table(reference_keys / "refinedet320_voc21_state_dict_keys.tsv", "vgg.")
    assert len(want) == 30
    got = {"vgg." + k: tuple(p.shape) for k, p in named_parameters(vgg16()).items()}
    assert got == want


def test_resnet101_names_match_torchvision_layout(reference_keys):
    # RefineNet-101's backbone (DrSleep) is torchvision's ResNet-101; BN fields renamed.
    rows = {k: s for k, s in _table(reference_keys / "rf101_voc21_state_dict_keys.tsv", "").items()
            if _is_resnet_key(k)}
    want = {k: tuple(v.shape) for k, v in torchvision_resnet_key_map(_random_state(rows)).items()}
    got = {k: tuple(p.shape) for k, p in named_parameters(resnet101()).items()}
    assert got == want


# ---------------------------------------------------------------- forward shapes and options

def test_resnet50_features_odd_input(r50):
    # hand-computed with PyTorch's conv/pool size rule: 65 -> 33 (conv1) -> 17 (pool) -> 9 -> 5 -> 3
    feats = r50(Tensor(RNG.standard_normal((1, 3, 65, 65)).astype(np.float32)))
    assert [f.shape for f in feats] == [(1, 64, 33, 33), (1, 256, 17, 17), (1, 512, 9, 9),
                                        (1, 1024, 5, 5), (1, 2048, 3, 3)]
    assert [i["channels"] for i in r50.feature_info] == [64, 256, 512, 1024, 2048]
    assert [i["reduction"] for i in r50.feature_info] == [2, 4, 8, 16, 32]
    assert [i["name"] for i in r50.feature_info] == ["relu", "layer1", "layer2", "layer3", "layer4"]


@pytest.mark.slow
def test_resnet50_features_320(r50):
    feats = r50(Tensor(RNG.standard_normal((1, 3, 320, 320)).astype(np.float32)))
    assert [f.shape[2:] for f in feats] == [(160, 160), (80, 80), (40, 40), (20, 20), (10, 10)]


def test_resnet_graph_mode_out_indices():
    net = resnet50(out_indices=(1, 2, 3, 4))
    net.set_train(False)
    assert [i["name"] for i in net.feature_info] == ["layer1", "layer2", "layer3", "layer4"]
    x = Tensor(RNG.standard_normal((2, 3, 64, 64)).astype(np.float32))
    eager = [f.asnumpy() for f in net(x)]
    ms.set_context(mode=ms.GRAPH_MODE)
    try:
        graph = [f.asnumpy() for f in net(x)]
    finally:
        ms.set_context(mode=ms.PYNATIVE_MODE)
    assert [g.shape for g in graph] == [(2, 256, 16, 16), (2, 512, 8, 8), (2, 1024, 4, 4), (2, 2048, 2, 2)]
    for e, g in zip(eager, graph):
        np.testing.assert_allclose(g, e, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("output_stride, reductions, dilations", [
    (16, [2, 4, 8, 16, 16], (1, 1, 1, 2)),  # torchvision: first dilated block keeps the old dilation
    (8, [2, 4, 8, 8, 8], (1, 2, 2, 4)),
])
def test_resnet_output_stride(output_stride, reductions, dilations):
    net = resnet50(output_stride=output_stride)
    net.set_train(False)
    assert [i["reduction"] for i in net.feature_info] == reductions
    assert _trainable(net) == 23_508_032
    d = [net.layer3[0].conv2.dilation, net.layer3[1].conv2.dilation,
         net.layer4[0].conv2.dilation, net.layer4[1].conv2.dilation]
    assert [x[-1] for x in d] == list(dilations)
    feats = net(Tensor(RNG.standard_normal((1, 3, 64, 64)).astype(np.float32)))
    assert [f.shape[2] for f in feats] == [64 // r for r in reductions]


def test_resnet_stride_in_1x1():
    net = resnet50(stride_in_1x1=True, out_indices=(2,))
    assert net.layer2[0].conv1.stride[-1] == 2 and net.layer2[0].conv2.stride[-1] == 1
    assert resnet50().layer2[0].conv2.stride[-1] == 2
    feats = net(Tensor(RNG.standard_normal((1, 3, 64, 64)).astype(np.float32)))
    assert feats[0].shape == (1, 512, 8, 8)


def test_resnet_frozen_bn():
    net = resnet50(frozen_bn=True, out_indices=(1,))
    assert not any(n.endswith((".gamma", ".beta")) for n in (p.name for p in net.trainable_params()))
    conv_names = ("conv1.weight", "conv2.weight", "conv3.weight", "downsample.0.weight")
    assert _trainable(net) == sum(int(np.prod(p.shape)) for n, p in named_parameters(net).items()
                                  if n.endswith(conv_names))
    x = Tensor(RNG.standard_normal((2, 3, 32, 32)).astype(np.float32))
    net.set_train(True)
    train = net(x)[0].asnumpy()
    net.set_train(False)
    np.testing.assert_allclose(train, net(x)[0].asnumpy(), atol=1e-6)  # stored statistics both times


def test_resnet_bn_momentum():
    # PyTorch momentum 0.1: one training step moves the running mean 10 % towards the batch mean
    bn = resnet50().bn1
    bn.set_train(True)
    x = RNG.standard_normal((4, 64, 3, 3)).astype(np.float32) + 5
    bn(Tensor(x))
    np.testing.assert_allclose(bn.moving_mean.asnumpy(), 0.1 * x.mean((0, 2, 3)), rtol=1e-5)
    assert abs(bn.eps - 1e-5) < 1e-12


def test_vgg_features_and_pool5():
    # 44 -> 22 -> 11 -> pool3 ceil 6 (floor would be 5) -> conv4_3 6 -> 3 -> pool5 2x2: 1, 3x3/1: 3
    x = Tensor(RNG.standard_normal((1, 3, 44, 44)).astype(np.float32))
    for pool5, fc7, red in (("2x2", 1, 32), ("3x3", 3, 16)):
        net = vgg16(pool5=pool5)
        net.set_train(False)
        feats = net(x)
        assert [f.shape for f in feats] == [(1, 512, 6, 6), (1, 512, 3, 3), (1, 1024, fc7, fc7)]
        assert net.feature_info == [{"name": "conv4_3", "channels": 512, "reduction": 8},
                                    {"name": "conv5_3", "channels": 512, "reduction": 16},
                                    {"name": "fc7", "channels": 1024, "reduction": red}]
    assert net[31].dilation[-1] == 3 and net[31].padding == (3, 3, 3, 3)  # fc6


def test_create_backbone():
    assert len(create_backbone("vgg16", out_indices=(2,)).feature_info) == 1
    with pytest.raises(KeyError, match="resnet50"):
        create_backbone("resnet5")
    with pytest.raises(ValueError, match="output_stride"):
        resnet50(output_stride=4)


def test_resnet_onnx_export(tmp_path, r50):
    x = RNG.standard_normal((1, 3, 64, 64)).astype(np.float32)
    result = export_model(r50, x, "ONNX", tmp_path / "r50.onnx", atol=1e-3)
    assert result.path.is_file() and len(result.diffs) == 5 and result.max_diff < 1e-3


def test_vgg_onnx_export(tmp_path):
    # ceil-mode pool3 and the dilated fc6 through ONNX Runtime (compiled in graph mode on export)
    net = vgg16()
    x = RNG.standard_normal((1, 3, 44, 44)).astype(np.float32)
    result = export_model(net, x, "ONNX", tmp_path / "vgg.onnx", atol=1e-3)
    outs = onnx_session(result.path).run(None, {"x": x})
    assert [o.shape for o in outs] == [(1, 512, 6, 6), (1, 512, 3, 3), (1, 1024, 1, 1)]


# ---------------------------------------------------------------- key maps and loading

def test_key_maps_pure():
    sd = {"fc.weight": 1, "fc.bias": 2, "bn1.running_mean": 3, "bn1.weight": 4, "bn1.num_batches_tracked": 5,
          "conv1.weight": 6, "layer1.0.downsample.1.running_var": 7, "layer1.0.downsample.1.running_mean": 8}
    assert torchvision_resnet_key_map(sd).keys() == {"bn1.moving_mean", "bn1.gamma", "conv1.weight",
                                                     "layer1.0.downsample.1.moving_variance",
                                                     "layer1.0.downsample.1.moving_mean"}
    assert "fc.weight" in torchvision_resnet_key_map(sd, keep_fc=True)
    zoo = {"network.layer1.0.down_sample_layer.1.gamma": 1, "backbone.conv1.weight": 2,
           "network.end_point.weight": 3}
    assert mindspore_modelzoo_resnet_key_map(zoo) == {"layer1.0.downsample.1.gamma": 1, "conv1.weight": 2}
    assert mindspore_modelzoo_resnet_key_map(zoo, keep_fc=True)["fc.weight"] == 3
    assert torchvision_vgg16_key_map({"features.0.weight": 1, "classifier.0.weight": 2}) == {"0.weight": 1}


def _torchvision_r101_state(reference_keys):
    rows = {k: s for k, s in _table(reference_keys / "rf101_voc21_state_dict_keys.tsv", "").items()
            if _is_resnet_key(k)}
    sd = _random_state(rows)
    sd["fc.weight"] = RNG.standard_normal((1000, 2048)).astype(np.float32)
    sd["fc.bias"] = np.zeros(1000, np.float32)
    return sd


def test_load_torchvision_resnet101(reference_keys):
    sd = _torchvision_r101_state(reference_keys)
    net = resnet101()
    report = load_weights(net, sd, key_map=torchvision_resnet_key_map)
    assert not report.missing and not report.unexpected and not report.mismatched
    assert len(report.loaded) == len(named_parameters(net))
    np.testing.assert_array_equal(net.layer3[22].bn2.moving_variance.asnumpy(),
                                  sd["layer3.22.bn2.running_var"])
    np.testing.assert_array_equal(net.layer2[0].downsample[1].gamma.asnumpy(),
                                  sd["layer2.0.downsample.1.weight"])


def test_load_reports_missing_and_renamed_keys(reference_keys):
    sd = _torchvision_r101_state(reference_keys)
    del sd["layer3.5.bn2.running_var"]
    sd["layer2.0.shortcut.0.weight"] = sd.pop("layer2.0.downsample.0.weight")
    net = resnet101()
    with pytest.raises(CheckpointError) as err:
        load_weights(net, sd, key_map=torchvision_resnet_key_map)
    for name in ("layer3.5.bn2.moving_variance", "layer2.0.downsample.0.weight",
                 "layer2.0.shortcut.0.weight"):
        assert name in str(err.value)
    report = load_weights(net, sd, strict=False, key_map=torchvision_resnet_key_map)
    assert sorted(report.missing) == ["layer2.0.downsample.0.weight", "layer3.5.bn2.moving_variance"]
    assert report.unexpected == ["layer2.0.shortcut.0.weight"]


def test_load_ras_resnet50_with_prefix(reference_keys, r50):
    # RAS (v1) keeps its torchvision ResNet-50 under "resnet."
    sd = _random_state(_table(reference_keys / "RAS_v1_state_dict_keys.tsv", "resnet."))
    key_map = functools.partial(torchvision_resnet_key_map, prefix="resnet.")
    report = load_weights(r50, sd, key_map=key_map)
    assert report.ok and len(report.loaded) == len(named_parameters(r50))


def test_load_mindspore_modelzoo_resnet50(reference_keys, r50):
    # The zoo's ResNet (official/cv/ResNet): MindSpore BN fields, shortcut "down_sample_layer",
    # classifier "end_point", training wrapper prefix "network." and optimizer state.
    torch_rows = _table(reference_keys / "RAS_v1_state_dict_keys.tsv", "resnet.")
    bn_fields = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
                 "running_var": "moving_variance"}
    bn_modules = {k.rsplit(".", 1)[0] for k in torch_rows if k.endswith("running_mean")}
    zoo = {}
    for key, shape in torch_rows.items():
        module, leaf = key[len("resnet."):].rsplit(".", 1)
        if leaf == "num_batches_tracked":
            continue
        if "resnet." + module in bn_modules:
            leaf = bn_fields[leaf]
        name = f"network.{module}.{leaf}".replace(".downsample.", ".down_sample_layer.")
        zoo[name] = RNG.standard_normal(shape).astype(np.float32)
    zoo["network.end_point.weight"] = np.zeros((1001, 2048), np.float32)
    zoo["network.end_point.bias"] = np.zeros(1001, np.float32)
    zoo["moments.network.conv1.weight"] = np.zeros((64, 3, 7, 7), np.float32)
    zoo["learning_rate"] = np.array(0.1, np.float32)
    zoo["global_step"] = np.array(100, np.int32)
    report = load_weights(r50, zoo, key_map=mindspore_modelzoo_resnet_key_map)
    assert report.ok and len(report.loaded) == len(named_parameters(r50))
    np.testing.assert_array_equal(r50.layer1[0].downsample[0].weight.asnumpy(),
                                  zoo["network.layer1.0.down_sample_layer.0.weight"])


def test_load_refinedet_vgg(reference_keys):
    sd = _random_state(_table(reference_keys / "refinedet320_voc21_state_dict_keys.tsv", "vgg."))
    net = vgg16()
    report = load_weights(net, sd, key_map=lambda d: {k[len("vgg."):]: v for k, v in d.items()})
    assert report.ok and len(report.loaded) == 30
    np.testing.assert_array_equal(net[33].weight.asnumpy(), sd["vgg.33.weight"])

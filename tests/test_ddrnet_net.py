"""DDRNet classifiers: structure against the authors' tables, drop-path placement, gradients,
and the weight converters."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import nn, ops

from common.checkpoint import (
    CheckpointError,
    load_weights,
    named_parameters,
    read_checkpoint,
    save_checkpoint,
)
from common.runner.convert import convert, fitting_variants
from common.runner.convert import convert_main as _convert_main
from models import create_model, list_models
from models.ddrnet.src import BasicBlock, Bottleneck, DropPath
from models.ddrnet.src.convert import authors_to_ours, detect_layout, missing_stem_biases, old_port_to_ours
from models.ddrnet.src.spec import SPEC
from tests import reference_tables

# Trainable parameter counts of the authors' classification models (ydhongHIT/DDRNet).
AUTHORS_PARAMS = {"ddrnet23": 28_216_616, "ddrnet23_slim": 7_574_664, "ddrnet39": 40_130_344}
TABLES = {"ddrnet23": "DDRNet_23_state_dict_keys.tsv",
          "ddrnet23_slim": "DDRNet_23_slim_state_dict_keys.tsv"}
BN_FIELDS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
             "running_var": "moving_variance"}


def read_table(reference_keys, variant):
    return reference_tables.read_table(reference_keys / TABLES[variant])


def mindspore_names(rows):
    return reference_tables.bn_renamed(rows)


def synthetic_authors_state(reference_keys, variant, seed=0):
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in read_table(reference_keys, variant):
        if name.endswith("num_batches_tracked"):
            state[name] = np.array(1234, np.int64)
        else:
            state[name] = rng.standard_normal(shape).astype(np.float32)
            if name.endswith("running_var"):
                state[name] = np.abs(state[name]) + 0.1
    return state


def synthetic_old_port_state(reference_keys, variant, seed=1):
    """What the old MindSpore port saves: our names behind ``model.``, no stem conv biases,
    plus optimizer state."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in mindspore_names(read_table(reference_keys, variant)):
        if name in ("conv1.0.bias", "conv1.3.bias"):
            continue
        value = rng.standard_normal(shape).astype(np.float32)
        state[f"model.{name}"] = value
        if not name.endswith(("moving_mean", "moving_variance")):
            state[f"moment1.model.{name}"] = np.zeros_like(value)
            state[f"moment2.model.{name}"] = np.zeros_like(value)
    state["learning_rate"] = np.array(0.1, np.float32)
    state["global_step"] = np.array([5004], np.int32)
    return state


def tensor(*shape, seed=0):
    return ms.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def test_registered():
    assert {"ddrnet23", "ddrnet23_slim", "ddrnet39"} <= set(list_models())


@pytest.mark.parametrize("variant", sorted(AUTHORS_PARAMS))
def test_parameter_count(variant):
    net = create_model(variant)
    count = sum(int(np.prod(p.shape)) for p in net.trainable_params())
    assert count == AUTHORS_PARAMS[variant]


@pytest.mark.parametrize("variant", sorted(TABLES))
def test_names_and_shapes_equal_authors(variant, reference_keys):
    expected = mindspore_names(read_table(reference_keys, variant))
    ours = [(n, tuple(p.shape)) for n, p in named_parameters(create_model(variant)).items()]
    assert dict(ours) == dict(expected)
    assert len(ours) == len(expected)

    def module_order(rows):  # within a BN MindSpore lists statistics first; compare modules
        return list(dict.fromkeys(n.rsplit(".", 1)[0] for n, _ in rows))

    assert module_order(ours) == module_order(expected)


def test_ddrnet39_structure():
    names = named_parameters(create_model("ddrnet39"))
    # Stage 3 in two fused halves of 3 blocks; stage 1..4 blocks 3, 4, 6, 3; last block of a
    # stage has no parameters of its own to tell, so count blocks by their first conv.
    blocks = {}
    for n in names:
        if n.endswith(".conv1.weight") and n.startswith("layer"):
            stage = n.split(".")[0]
            blocks[stage] = blocks.get(stage, 0) + 1
    assert blocks == {"layer1": 3, "layer2": 4, "layer3_1": 3, "layer3_2": 3, "layer4": 3,
                      "layer3_1_": 3, "layer3_2_": 3, "layer4_": 3, "layer5_": 1, "layer5": 1}
    assert tuple(names["compression3_2.0.weight"].shape) == (128, 256, 1, 1)
    assert tuple(names["down3_1.0.weight"].shape) == (256, 128, 3, 3)


def test_batchnorm_momentum_mindspore_convention():
    """Running stats move 10 % toward the batch (PyTorch momentum 0.1), in every BN including
    the bottlenecks' bn3 (the old port gave those PyTorch's 0.1 in MindSpore's convention)."""
    net = create_model("ddrnet23_slim")
    bns = {n: c for n, c in net.cells_and_names() if isinstance(c, nn.BatchNorm2d)}
    assert len(bns) == 45
    for name in ("conv1.1", "layer5.0.bn3", "layer5_.0.bn3"):
        bn = bns[name]
        bn.set_train(True)
        channels = bn.moving_mean.shape[0]
        bn(ms.Tensor(np.full((2, channels, 3, 3), 10.0, np.float32)))
        np.testing.assert_allclose(bn.moving_mean.asnumpy(), 1.0, rtol=1e-6, err_msg=name)
    assert len({c.momentum for c in bns.values()}) == 1


def test_output_shape_slim():
    net = create_model("ddrnet23_slim")
    net.set_train(False)
    for size in (224, 256):
        assert net(tensor(1, 3, size, size)).shape == (1, 1000)


def test_any_size_divisible_by_32_and_num_classes():
    net = create_model("ddrnet23_slim", num_classes=10, in_channels=1)
    net.set_train(False)
    assert net(tensor(2, 1, 64, 96)).shape == (2, 10)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["ddrnet23", "ddrnet39"])
def test_output_shape_full(variant):
    net = create_model(variant)
    net.set_train(False)
    for size in (224, 256):
        assert net(tensor(1, 3, size, size)).shape == (1, 1000)


def _zero_last_bn(block):
    bn = block.bn3 if isinstance(block, Bottleneck) else block.bn2
    bn.gamma.set_data(ops.zeros(bn.gamma.shape, ms.float32))
    bn.beta.set_data(ops.zeros(bn.beta.shape, ms.float32))


@pytest.mark.parametrize("block_cls,no_relu", [(BasicBlock, False), (BasicBlock, True),
                                               (Bottleneck, False)])
def test_drop_path_acts_on_residual_branch_only(block_cls, no_relu):
    inplanes = 8 * block_cls.expansion  # no projection: the shortcut is the input itself
    block = block_cls(inplanes, 8, no_relu=no_relu, drop_path=0.5)
    _zero_last_bn(block)  # residual branch outputs exactly 0
    block.set_train(True)
    x = tensor(16, inplanes, 6, 6)
    expected = x.asnumpy() if no_relu else np.maximum(x.asnumpy(), 0)
    for _ in range(3):  # drop-path is random; a shortcut drop would show on some of 16 samples
        np.testing.assert_allclose(block(x).asnumpy(), expected, atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2])
def test_drop_path_near_one_returns_shortcut(stride):
    block = BasicBlock(8, 16, stride=stride, drop_path=1 - 1e-6)
    block.set_train(True)
    x = tensor(4, 8, 8, 8)
    shortcut = block.downsample(x).asnumpy()  # train-mode BN: depends on the batch only
    np.testing.assert_allclose(block(x).asnumpy(), np.maximum(shortcut, 0), atol=1e-5)


def test_drop_path_schedule():
    net = create_model("ddrnet23_slim", drop_path_rate=0.1)
    rates = {name: c.drop_prob for name, c in net.cells_and_names() if isinstance(c, DropPath)}
    step = 0.1 / 7  # linear over the 8 low-resolution blocks
    assert rates["layer1.0.drop_path"] == 0.0
    assert rates["layer2.1.drop_path"] == pytest.approx(3 * step)
    assert rates["layer4.1.drop_path"] == pytest.approx(0.1)
    assert rates["layer3_.0.drop_path"] == rates["layer3.0.drop_path"] == pytest.approx(4 * step)
    assert rates["layer5.0.drop_path"] == rates["layer5_.0.drop_path"] == pytest.approx(0.1)


def test_drop_path_identity_in_eval():
    net = create_model("ddrnet23_slim", drop_path_rate=0.5)
    plain = create_model("ddrnet23_slim")
    ms.load_param_into_net(plain, {k: ms.Parameter(p.asnumpy(), name=k)
                                   for k, p in named_parameters(net).items()})
    x = tensor(2, 3, 64, 64)
    net.set_train(False)
    plain.set_train(False)
    first, second = net(x).asnumpy(), net(x).asnumpy()
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, plain(x).asnumpy(), rtol=1e-5, atol=1e-5)
    net.set_train(True)  # and it is active in training
    assert not np.allclose(net(x).asnumpy(), net(x).asnumpy())


def test_backward_every_parameter_gets_gradient():
    net = create_model("ddrnet23_slim", num_classes=10)
    net.set_train(True)
    params = net.trainable_params()
    x, labels = tensor(2, 3, 64, 64), ms.Tensor(np.array([1, 7], np.int32))
    loss_fn = nn.CrossEntropyLoss()

    def forward(inputs, targets):
        return loss_fn(net(inputs), targets)

    loss, grads = ms.value_and_grad(forward, None, params)(x, labels)
    assert np.isfinite(loss.asnumpy())
    names = list(named_parameters(net))
    trainable = [n for n in names if not n.endswith(("moving_mean", "moving_variance"))]
    assert len(grads) == len(params) == len(trainable)
    for name, grad in zip(trainable, grads):
        g = grad.asnumpy()
        assert np.all(np.isfinite(g)), name
        if name in ("conv1.0.bias", "conv1.3.bias"):
            continue  # followed by train-mode BN, which subtracts the batch mean: gradient 0
        assert np.abs(g).max() > 0, f"no gradient reaches {name}"


# ------------------------------------------------------------------ converters

@pytest.mark.parametrize("variant", sorted(TABLES))
def test_authors_state_dict_maps_completely(variant, reference_keys):
    state = synthetic_authors_state(reference_keys, variant)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}}  # DataParallel save
    mapped = authors_to_ours(wrapped)
    net = create_model(variant)
    assert set(mapped) == set(named_parameters(net))
    report = load_weights(net, mapped)
    assert report.ok and len(report.loaded) == len(named_parameters(net))
    params = named_parameters(net)
    np.testing.assert_array_equal(params["layer4_.1.bn2.gamma"].asnumpy(),
                                  state["layer4_.1.bn2.weight"])
    np.testing.assert_array_equal(params["last_layer.1.moving_variance"].asnumpy(),
                                  state["last_layer.1.running_var"])
    np.testing.assert_array_equal(params["conv1.0.bias"].asnumpy(), state["conv1.0.bias"])
    np.testing.assert_array_equal(params["linear.weight"].asnumpy(), state["linear.weight"])


def convert_main(argv):
    return _convert_main(SPEC, argv)


def test_convert_reports_wrong_variant_by_key(reference_keys, tmp_path):
    src = tmp_path / "authors.ckpt"
    save_checkpoint({k: v for k, v in synthetic_authors_state(reference_keys, "ddrnet23_slim").items()
                     if not k.endswith("num_batches_tracked")}, src)
    with pytest.raises(CheckpointError) as err:
        convert(SPEC, src, "ddrnet23")
    message = str(err.value)
    assert "conv1.0.weight" in message and "(32, 3, 3, 3)" in message and "(64, 3, 3, 3)" in message
    assert fitting_variants(SPEC, src) == ["ddrnet23_slim"]


def test_old_port_key_map(reference_keys):
    state = synthetic_old_port_state(reference_keys, "ddrnet23")
    assert detect_layout(state) == "mindspore"
    assert missing_stem_biases(state) == ["conv1.0.bias", "conv1.3.bias"]
    mapped = old_port_to_ours(state)
    net = create_model("ddrnet23")
    assert set(mapped) == set(named_parameters(net))
    np.testing.assert_array_equal(mapped["conv1.3.bias"], np.zeros(64, np.float32))
    np.testing.assert_array_equal(mapped["layer5.0.bn3.gamma"], state["model.layer5.0.bn3.gamma"])


def test_convert_cli_old_port_checkpoint(reference_keys, tmp_path, capsys):
    state = synthetic_old_port_state(reference_keys, "ddrnet23_slim")
    src, out = tmp_path / "old.ckpt", tmp_path / "ours.ckpt"
    save_checkpoint(state, src)
    assert convert_main(["--src", str(src), "--variant", "ddrnet23_slim", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "loaded 229 tensors" in printed and "conv1.0.bias" in printed
    converted = read_checkpoint(out)
    assert set(converted) == set(named_parameters(create_model("ddrnet23_slim")))
    np.testing.assert_array_equal(converted["down5.4.moving_mean"], state["model.down5.4.moving_mean"])

    assert convert_main(["--src", str(src), "--variant", "ddrnet23", "--out",
                         str(tmp_path / "bad.ckpt")]) == 1
    err = capsys.readouterr().err
    assert "does not fit ddrnet23" in err and "conv1.0.weight" in err
    assert "it fits: ddrnet23_slim" in err
    assert not (tmp_path / "bad.ckpt").exists()

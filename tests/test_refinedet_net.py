"""RefineDet networks: the authors' names, shapes and counts, anchors, TCB, init, export, key maps."""
import ast

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

import models
import models.refinedet
from common.checkpoint import CheckpointError, load_weights, named_parameters, state_dict
from models.refinedet.src import build_refinedet, feature_map_sizes, num_anchors
from models.refinedet.src.convert import (
    ConversionError,
    detect_layout,
    load_refinedet_weights,
    luuuyi_to_ours,
    refuse_old_port,
)

# Trainable parameters of luuuyi/RefineDet.PyTorch's RefineDet320 (VGG-16), counted in PyTorch.
VGG_PARAMS = {21: 34_440_884, 81: 36_100_484}
# Ours for the ResNet-101 variants (sfzhang15's Caffe layout), re-derived in resnet_count() below.
RESNET_PARAMS = {21: 75_815_348, 81: 82_451_588}
TABLE = "refinedet320_voc21_state_dict_keys.tsv"
RNG = np.random.default_rng(0)

pytestmark = pytest.mark.usefixtures("pynative")


@pytest.fixture(scope="module")
def vgg21():
    return build_refinedet("refinedet320_vgg16", 21)


@pytest.fixture(scope="module")
def vgg81():
    """Shared by tests that only load backbone weights into it or expect a refusal."""
    return build_refinedet("refinedet320_vgg16", 81)


@pytest.fixture(scope="module")
def resnet81():
    return build_refinedet("refinedet320_resnet101", 81)


def _read_table(path):
    rows = {}
    for line in path.read_text().splitlines():
        key, shape, numel = line.split("\t")
        shape = tuple(ast.literal_eval(shape))
        assert int(np.prod(shape)) == int(numel), line
        rows[key] = shape
    return rows


def _count(net):
    return sum(int(p.size) for p in net.trainable_params())


# ---------------------------------------------------------------- structure and counts
def test_vgg_parameter_count_equals_authors(vgg21, vgg81):
    assert _count(vgg21) == VGG_PARAMS[21] and _count(vgg81) == VGG_PARAMS[81]


def test_names_and_shapes_equal_luuuyi_table(vgg21, reference_keys):
    want = _read_table(reference_keys / TABLE)
    assert sum(int(np.prod(s)) for s in want.values()) == VGG_PARAMS[21]
    got = {k: tuple(p.shape) for k, p in named_parameters(vgg21).items()}
    assert got == want
    assert list(got) == list(want)  # same definition order


def resnet_count(num_classes):
    """Trainable parameters of the ResNet-101 variant, layer by layer from the Caffe layout."""
    def bn(c):
        return 2 * c

    def bottleneck(cin, planes):  # 1x1, 3x3, 1x1 (no bias, BN each) + projection shortcut
        out = 4 * planes
        return cin * planes + bn(planes) + 9 * planes * planes + bn(planes) + planes * out + bn(out) \
            + cin * out + bn(out)

    def conv3(cin, cout, bias=True):
        return 9 * cin * cout + (cout if bias else 0)

    backbone = 42_500_160  # torchvision ResNet-101 without fc (44,549,160 - 2,049,000)
    res6 = bottleneck(2048, 128)
    sources = (512, 1024, 2048, 512)
    inter = sum(bottleneck(c, 256) for c in sources) + 4 * bottleneck(256, 256)
    tcb = sum(conv3(c, 256, False) + bn(256) + conv3(256, 256, False) + bn(256)  # tcb0
              + conv3(256, 256, False) + bn(256) for c in sources)  # tcb2
    tcb += 3 * (256 * 256 * 4 + bn(256))  # tcb1: 2x2 deconv + BN
    heads = 4 * (conv3(1024, 12) + conv3(1024, 6) + conv3(1024, 12) + conv3(1024, 3 * num_classes))
    return backbone + res6 + inter + tcb + heads


def test_resnet_parameter_count(resnet81):
    assert resnet_count(81) == RESNET_PARAMS[81] and resnet_count(21) == RESNET_PARAMS[21]
    assert _count(resnet81) == RESNET_PARAMS[81]
    # Only the ODM classifier depends on the class count: 4 heads x 3 anchors x 60 classes x (9 x 1024 + 1).
    assert RESNET_PARAMS[81] - RESNET_PARAMS[21] == 4 * 3 * 60 * (9 * 1024 + 1)


def test_resnet_layout(resnet81):
    params = named_parameters(resnet81)
    assert params["extras.0.conv1.weight"].shape == (128, 2048, 1, 1)  # res6 on C5
    assert params["extras.0.conv3.weight"].shape == (512, 128, 1, 1)
    assert params["extras.0.downsample.0.weight"].shape == (512, 2048, 1, 1)
    assert [params[f"arm_inter.{i}.downsample.0.weight"].shape[1] for i in range(4)] == [512, 1024, 2048, 512]
    assert [params[f"arm_loc.{i}.weight"].shape for i in range(4)] == [(12, 1024, 3, 3)] * 4
    assert params["odm_conf.3.weight"].shape == (243, 1024, 3, 3)
    assert params["tcb1.1.gamma"].shape == (256,) and "tcb1.0.bias" not in params  # deconv + BN
    assert not any("L2Norm" in k for k in params)


# ---------------------------------------------------------------- anchors and outputs
def test_feature_map_sizes_and_anchor_counts():
    for backbone in ("vgg16", "resnet101"):
        assert feature_map_sizes(320, backbone) == [(40, 40), (20, 20), (10, 10), (5, 5)]
        assert feature_map_sizes(512, backbone) == [(64, 64), (32, 32), (16, 16), (8, 8)]
        assert feature_map_sizes((64, 128), backbone) == [(8, 16), (4, 8), (2, 4), (1, 2)]
        assert num_anchors(320, backbone) == 6_375 and num_anchors(512, backbone) == 16_320
    with pytest.raises(ValueError, match="cannot run at input height 300"):
        feature_map_sizes(300)  # 38, 19, 9, 5: the TCB cannot add 10 to 9


def _forward(net, size, batch=1):
    net.set_train(False)
    x = ms.Tensor(RNG.standard_normal((batch, 3) + size).astype(np.float32))
    return [o.asnumpy() for o in net(x)]


def test_vgg_outputs_at_64(vgg21):
    out = _forward(vgg21, (64, 64), batch=2)
    assert [o.shape for o in out] == [(2, 255, 4), (2, 255, 2), (2, 255, 4), (2, 255, 21)]
    assert all(np.isfinite(o).all() for o in out)
    assert not np.allclose(out[1].sum(-1), 1.0)  # logits, not softmax


def test_levels_feed_the_anchor_generator_and_loss(vgg21):
    """Non-square input: the generator's anchors (from our level sizes) line up with the heads,
    and the outputs go straight into the RefineDet loss."""
    from common.detection import AnchorGenerator, RefineDetLoss

    gen = AnchorGenerator()
    for size in (64, 320, 512, (64, 128), (512, 320)):
        assert gen.feature_map_sizes(size) == feature_map_sizes(size, "vgg16")
    anchors = gen.generate((64, 128), feature_map_sizes((64, 128)))
    assert anchors.shape == (3 * (8 * 16 + 4 * 8 + 2 * 4 + 1 * 2), 4)
    vgg21.set_train(False)
    out = vgg21(ms.Tensor(RNG.standard_normal((2, 3, 64, 128)).astype(np.float32)))
    assert [tuple(o.shape) for o in out] == [(2, 510, 4), (2, 510, 2), (2, 510, 4), (2, 510, 21)]
    boxes = np.zeros((2, 3, 4), np.float32)
    boxes[:, 0] = [0.1, 0.2, 0.5, 0.9]
    labels = np.array([[3, 0, 0], [7, 0, 0]], np.int32)
    mask = np.array([[1, 0, 0], [1, 0, 0]], np.float32)
    total, parts = RefineDetLoss(21, anchors)(out, ms.Tensor(boxes), ms.Tensor(labels), ms.Tensor(mask))
    assert np.isfinite(float(total.asnumpy())) and float(total.asnumpy()) > 0 and len(parts) == 4


def test_resnet_outputs_at_64(resnet81):
    out = _forward(resnet81, (64, 64), batch=2)
    assert [o.shape for o in out] == [(2, 255, 4), (2, 255, 2), (2, 255, 4), (2, 255, 81)]
    assert all(np.isfinite(o).all() for o in out)


@pytest.mark.extended
@pytest.mark.slow
def test_outputs_at_320_and_512(vgg21, resnet81):
    out = _forward(vgg21, (320, 320))
    assert [o.shape for o in out] == [(1, 6_375, 4), (1, 6_375, 2), (1, 6_375, 4), (1, 6_375, 21)]
    out = _forward(build_refinedet("refinedet512_vgg16"), (512, 512))
    assert [o.shape[1] for o in out] == [16_320] * 4 and out[3].shape[2] == 81
    out = _forward(resnet81, (320, 320))
    assert [o.shape for o in out] == [(1, 6_375, 4), (1, 6_375, 2), (1, 6_375, 4), (1, 6_375, 81)]


def test_heads_are_flattened_in_nhwc_order(vgg21):
    """Anchor a of the coarsest level at (row i, col j) reads channels 4a..4a+3 of arm_loc.3 there."""
    vgg21.set_train(False)
    x = ms.Tensor(RNG.standard_normal((1, 3, 64, 64)).astype(np.float32))
    sources = vgg21._sources(x)  # 64 -> 8, 4, 2, 1 per side
    fc7_map = vgg21.arm_loc[2](sources[2]).asnumpy()[0]  # (12, 2, 2)
    arm_loc = vgg21(x)[0].asnumpy()[0]
    start = 3 * (64 + 16)  # anchors of the two finer levels
    for i in range(2):
        for j in range(2):
            for a in range(3):
                np.testing.assert_allclose(arm_loc[start + (i * 2 + j) * 3 + a], fc7_map[4 * a:4 * a + 4, i, j],
                                           rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- initialisation
def test_l2norm_and_new_layer_init(vgg21):
    params = {k: p.asnumpy() for k, p in named_parameters(vgg21).items()}
    assert (params["conv4_3_L2Norm.weight"] == 10).all() and (params["conv5_3_L2Norm.weight"] == 8).all()
    for name in ("extras.1", "arm_loc.2", "odm_conf.0", "tcb0.6", "tcb1.0", "tcb2.10"):
        w, b = params[f"{name}.weight"], params[f"{name}.bias"]
        assert not b.any(), name
        # Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), fans as torch (dims 1 and 0)
        rf = int(np.prod(w.shape[2:]))
        a = np.sqrt(6.0 / (w.shape[1] * rf + w.shape[0] * rf))
        assert np.abs(w).max() <= a * (1 + 1e-6) and np.abs(w).max() > 0.95 * a, name  # float32 bound
        assert abs(w.std() - a / np.sqrt(3)) < 0.05 * a, name


def test_vgg_from_scratch_init_is_torchvision_kaiming_fan_out(vgg21):
    """VGG convs: N(0, 2 / fan_out), zero bias (torchvision's VGG init), so a from-scratch VGG
    passes its signal on; the framework default (uniform, a = sqrt(5)) would shrink it ~6x per layer."""
    params = named_parameters(vgg21)
    for index in (0, 21, 28, 31, 33):  # conv1_1, conv4_3, conv5_3, fc6, fc7
        w, b = params[f"vgg.{index}.weight"].asnumpy(), params[f"vgg.{index}.bias"].asnumpy()
        fan_out, sigma = w.shape[0] * int(np.prod(w.shape[2:])), 5 / np.sqrt(w.size)  # 5 standard errors
        want = np.sqrt(2.0 / fan_out)
        assert not b.any(), index
        assert abs(w.std() / want - 1) < sigma * np.sqrt(0.5) and abs(w.mean()) < sigma * want, index


def test_resnet_new_bn_convs_are_gaussian_001(resnet81):
    w = named_parameters(resnet81)["tcb0.0.weight"].asnumpy()
    assert abs(w.std() - 0.01) < 5e-4 and abs(w.mean()) < 5e-4
    assert (named_parameters(resnet81)["odm_conf.0.bias"].asnumpy() == 0).all()


# ---------------------------------------------------------------- TCB
def test_tcb_adds_transposed_conv_of_level_above(vgg21):
    """Level 2 (fc7): relu(conv(relu(tcb0 chunk(fc7) + deconv2x2(P6)))), deconv written out in numpy."""
    vgg21.set_train(False)
    x = ms.Tensor(RNG.standard_normal((1, 3, 128, 128)).astype(np.float32))
    sources = vgg21._sources(x)  # 16, 8, 4, 2
    above = vgg21._tcb_level(3, sources[3], sources[3])  # P6: (1, 256, 2, 2)
    a = sources[2]
    for k in (6, 7, 8):
        a = vgg21.tcb0[k](a)
    w = vgg21.tcb1[2].weight.asnumpy()  # (in, out, 2, 2) as torch's ConvTranspose2d
    p = above.asnumpy()[0]
    up = np.einsum("cij,cokl->oikjl", p, w).reshape(256, 4, 4) + vgg21.tcb1[2].bias.asnumpy()[:, None, None]
    s = ms.Tensor(np.maximum(a.asnumpy() + up[None], 0))
    want = np.maximum(vgg21.tcb2[7](s).asnumpy(), 0)
    got = vgg21._tcb_level(2, sources[2], above).asnumpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_top_level_reaches_finer_odm_outputs_only_through_tcb(vgg21):
    """Changing the top TCB level's last conv moves the ODM outputs of every level, not the ARM's."""
    vgg21.set_train(False)
    x = ms.Tensor(RNG.standard_normal((1, 3, 64, 64)).astype(np.float32))
    before = [o.asnumpy() for o in vgg21(x)]
    conv = vgg21.tcb2[10]
    old = conv.bias.asnumpy().copy()
    conv.bias.set_data(ms.Tensor(old + 0.5))
    try:
        after = [o.asnumpy() for o in vgg21(x)]
    finally:
        conv.bias.set_data(ms.Tensor(old))
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert np.abs(after[2][0, :192] - before[2][0, :192]).max() > 1e-4  # finest level (8x8x3)


# ---------------------------------------------------------------- export
def test_vgg_exports_to_onnx_at_64(vgg21, tmp_path):
    from common.export import export_model

    x = RNG.standard_normal((1, 3, 64, 64)).astype(np.float32)
    result = export_model(vgg21, x, "ONNX", tmp_path / "refinedet.onnx", atol=1e-4)
    assert len(result.diffs) == 4 and max(result.diffs) <= 1e-4 and result.dynamic_batch


@pytest.mark.slow
def test_vgg_exports_to_onnx_at_320(tmp_path):
    from common.export import export_model

    net = build_refinedet("refinedet320_vgg16", 81)
    x = RNG.standard_normal((1, 3, 320, 320)).astype(np.float32)
    result = export_model(net, x, "ONNX", tmp_path / "refinedet320.onnx", atol=1e-4)
    assert len(result.diffs) == 4 and max(result.diffs) <= 1e-4


@pytest.mark.slow
def test_resnet_exports_to_onnx_at_64(tmp_path):
    from common.export import export_model

    net = build_refinedet("refinedet320_resnet101", 21)
    # Fresh BN statistics (mean 0, var 1) let ResNet-101 activations grow ~1e4x in eval mode;
    # damp each residual branch so the parity check measures the export, not float32 range.
    for name, cell in net.cells_and_names():
        if name.endswith("bn3") and isinstance(cell, nn.BatchNorm2d):
            cell.gamma.set_data(ms.Tensor(np.full(cell.gamma.shape, 0.2, np.float32)))
    x = RNG.standard_normal((1, 3, 64, 64)).astype(np.float32)
    result = export_model(net, x, "ONNX", tmp_path / "refinedet_r101.onnx", atol=1e-4)
    assert len(result.diffs) == 4 and max(result.diffs) <= 1e-4 and result.dynamic_batch


# ---------------------------------------------------------------- key maps
def _table_state(reference_keys):
    return {k: RNG.standard_normal(s).astype(np.float32) for k, s in _read_table(reference_keys / TABLE).items()}


def test_luuuyi_state_dict_round_trip(reference_keys):
    torch_sd = _table_state(reference_keys)
    wrapped = {f"module.{k}": v for k, v in torch_sd.items()}  # saved from nn.DataParallel
    assert detect_layout(torch_sd) == detect_layout(wrapped) == "luuuyi"
    assert set(luuuyi_to_ours(wrapped)) == set(torch_sd)
    net = build_refinedet("refinedet320_vgg16", 21)
    report = load_refinedet_weights(net, wrapped)
    assert report.ok and len(report.loaded) == len(torch_sd) == 98
    got = state_dict(net)
    assert set(got) == set(torch_sd)
    for k, v in torch_sd.items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)
    assert detect_layout(got) == "luuuyi"  # ours equal luuuyi's names for VGG-16


def test_luuuyi_pth_file_loads(reference_keys, tmp_path):
    torch = pytest.importorskip("torch")
    torch_sd = _table_state(reference_keys)
    path = tmp_path / "RefineDet320_VOC_final.pth"
    torch.save({f"module.{k}": torch.from_numpy(v) for k, v in torch_sd.items()}, path)
    net = build_refinedet("refinedet320_vgg16", 21)
    report = load_refinedet_weights(net, path)
    assert report.ok and len(report.loaded) == 98 and report.source == f"{path} (luuuyi layout)"
    np.testing.assert_array_equal(state_dict(net)["tcb1.2.weight"], torch_sd["tcb1.2.weight"])


def test_wrong_class_count_fails_naming_the_heads(vgg81, reference_keys):
    with pytest.raises(ConversionError, match="odm_conf.0.weight"):
        load_refinedet_weights(vgg81, _table_state(reference_keys))


def test_vgg16_reducedfc_loads_backbone_only(vgg81, reference_keys):
    table = _read_table(reference_keys / TABLE)
    imagenet = {k[len("vgg."):]: RNG.standard_normal(s).astype(np.float32)
                for k, s in table.items() if k.startswith("vgg.")}
    assert {"0.weight", "31.weight", "33.bias"} <= set(imagenet) and len(imagenet) == 30
    assert detect_layout(imagenet) == "vgg16_reducedfc"
    net = vgg81
    before = state_dict(net)
    report = load_refinedet_weights(net, imagenet)
    assert len(report.loaded) == 30 and not report.unexpected
    after = state_dict(net)
    for k, v in imagenet.items():
        np.testing.assert_array_equal(after[f"vgg.{k}"], v)
    for k in ("conv4_3_L2Norm.weight", "tcb1.0.weight", "odm_conf.3.weight"):
        np.testing.assert_array_equal(after[k], before[k])


def test_torchvision_resnet_loads_into_backbone(resnet81, vgg81):
    rename = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
    torch_sd = {}
    for k, p in named_parameters(resnet81).items():
        if k.startswith("backbone."):
            module, leaf = k[len("backbone."):].rsplit(".", 1)
            torch_sd[f"{module}.{rename.get(leaf, leaf)}"] = RNG.standard_normal(p.shape).astype(np.float32)
            if leaf == "moving_mean":
                torch_sd[f"{module}.num_batches_tracked"] = np.array(7, np.int64)
    torch_sd["fc.weight"] = np.zeros((1000, 2048), np.float32)
    torch_sd["fc.bias"] = np.zeros((1000,), np.float32)
    assert detect_layout(torch_sd) == "torchvision_resnet"
    report = load_refinedet_weights(resnet81, torch_sd)
    n_backbone = sum(k.startswith("backbone.") for k in named_parameters(resnet81))
    assert report.ok and len(report.loaded) == n_backbone == len(torch_sd) - 2 - 104  # fc, num_batches_tracked
    got = state_dict(resnet81)
    np.testing.assert_array_equal(got["backbone.layer3.22.bn2.moving_variance"], torch_sd["layer3.22.bn2.running_var"])
    np.testing.assert_array_equal(got["backbone.conv1.weight"], torch_sd["conv1.weight"])
    with pytest.raises(ConversionError, match="resnet101 backbone, the network has vgg16"):
        load_refinedet_weights(vgg81, torch_sd)


OLD_PORT_KEYS = {  # names of mindspore-ai/models research/cv/RefineDet (VGG-16), behind its wrapper
    "network.backbone.b1.0.weight": (64, 3, 3, 3),
    "network.backbone.b6_2.0.weight": (512, 256, 3, 3),
    "network.backbone.fc6.weight": (1024, 512, 3, 3),
    "network.arm.multi_box.multi_loc_layers.0.0.weight": (512, 1, 3, 3),
    "network.arm.multi_box.multi_loc_layers.0.1.gamma": (512,),
    "network.odm.multi_box.multi_cls_layers.3.3.weight": (243, 256, 1, 1),
    "network.tcb.tcb0.0.weight": (256, 512, 3, 3),
    "network.tcb.deconv0.0.weight": (256, 256, 2, 2),
    "moment1.network.backbone.b1.0.weight": (64, 3, 3, 3),
    "global_step": (1,),
}


def test_old_port_checkpoint_is_refused_with_reason(vgg81, tmp_path):
    from common.checkpoint import save_checkpoint

    params = {k: np.zeros(s, np.float32) for k, s in OLD_PORT_KEYS.items()}
    assert detect_layout(params) == "old_port"
    path = save_checkpoint(params, tmp_path / "refinedet_ascend_v1100_coco2017_research_cv_acc28.69.ckpt")
    net = vgg81
    with pytest.raises(ConversionError) as err:
        load_refinedet_weights(net, path)
    msg = str(err.value)
    assert "old MindSpore port" in msg and "cannot be loaded" in msg and path.name in msg
    with pytest.raises(CheckpointError, match="old MindSpore port"):  # also as a plain key_map
        load_weights(net, params, key_map=refuse_old_port)


def test_unknown_layout_names_keys():
    with pytest.raises(ValueError, match="fpn.inner.weight"):
        detect_layout({"fpn.inner.weight": np.zeros(3)})


# ---------------------------------------------------------------- registry
def test_registry_variants_and_default_classes():
    names = {"refinedet320_vgg16", "refinedet512_vgg16", "refinedet320_resnet101", "refinedet512_resnet101"}
    assert names <= set(models.list_models())
    net = models.create_model("refinedet512_vgg16", num_classes=None)
    assert net.num_classes == 81 and net.image_size == 512
    assert named_parameters(net)["odm_conf.0.weight"].shape == (243, 256, 3, 3)
    assert net.feature_map_sizes() == [(64, 64), (32, 32), (16, 16), (8, 8)]
    with pytest.raises(ValueError, match="unknown RefineDet variant"):
        build_refinedet("refinedet300_vgg16")

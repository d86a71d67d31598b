"""RefineNet-101 training side: the seed's recipes as configs, encoder / decoder learning rates
through parameter groups, the training pipeline (real VOC samples keep their 255 borders) and,
in the slow tier, a learning proof on a synthetic VOC-format set."""
import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from common.config import Config, load_config
from common.paths import REPO_ROOT
from models import get_spec

CONFIGS = REPO_ROOT / "configs" / "refinenet"
SPEC = get_spec("refinenet101")
DECODER = ("p_ims1d2_outl*", "adapt_stage*", "mflow_conv_g*", "clf_conv.*")


@pytest.mark.parametrize("name, device, batch, lr, stage_list", [
    ("refinenet101_8xb32_sbd-aug_200e_ascend_stage1.yaml", "Ascend", 32, 0.0032, "train_aug.txt"),
    ("refinenet101_8xb32_voc-train_200e_ascend_stage2.yaml", "Ascend", 32, 0.00032, "train.txt"),
    ("refinenet101_1xb32_sbd-aug_200e_ascend_stage1.yaml", "Ascend", 32, 0.0015, "train_aug.txt"),
    ("refinenet101_1xb16_sbd-aug_200e_gpu_stage1.yaml", "GPU", 16, 0.001, "train_aug.txt"),
    ("refinenet101_8xb8_sbd-aug_200e_gpu_stage1.yaml", "GPU", 8, 0.004, "train_aug.txt"),
])
def test_seed_recipes(name, device, batch, lr, stage_list):
    cfg = load_config(SPEC.defaults, CONFIGS / name)
    assert (cfg.device, cfg.train.batch_size, cfg.optim.lr) == (device, batch, lr)
    assert cfg.data.train_list.endswith(stage_list)
    assert (cfg.optim.name, cfg.optim.momentum, cfg.optim.weight_decay) == ("momentum", 0.9, 0.0005)
    assert (cfg.data.crop, cfg.data.scale_range, cfg.data.hflip) == (513, [0.5, 2.0], True)
    assert (cfg.amp.level, cfg.amp.loss_scale, cfg.amp.init_scale) == ("O2", "fixed", 1024.0)
    assert cfg.lr.schedule == "cosine" and cfg.train.epochs == 200 and cfg.model.frozen_bn
    assert cfg.test.flip and cfg.test.size == 513 and cfg.eval.metric == "miou"
    # stage 1 starts the decoder from its init; stage 2 loads a whole stage-1 checkpoint
    assert cfg.train.pretrained_ignore == (list(DECODER) if "stage1" in name else [])


def test_poly_recipe():
    cfg = load_config(SPEC.defaults, CONFIGS / "refinenet101_1xb16_sbd-aug_200e_gpu_poly_stage1.yaml")
    assert (cfg.lr.schedule, cfg.lr.power, cfg.optim.lr) == ("poly", 0.9, 0.001)


@pytest.fixture(scope="module")
def net():
    return SPEC.build_net(load_config(SPEC.defaults, None))


def test_encoder_and_decoder_groups_take_the_configured_learning_rates(net):
    from common.checkpoint import named_parameters
    from common.engine.builder import lr_schedule_from_config
    from common.engine.optim import build_optimizer
    from common.engine.param_groups import resolve_param_groups

    cfg = load_config(SPEC.defaults, CONFIGS / "refinenet101_8xb32_sbd-aug_200e_ascend_stage1.yaml",
                      ["train.epochs=2"])
    cfg.optim.param_groups = [{"pattern": p, "lr_mult": 10.0} for p in DECODER]  # DrSleep's 10x decoder
    lr = lr_schedule_from_config(cfg, steps_per_epoch=5)
    groups = resolve_param_groups(named_parameters(net), cfg.optim.param_groups, cfg.optim.weight_decay,
                                  cfg.optim.no_decay_bn_bias)
    opt = build_optimizer(cfg.optim.name, None, lr, momentum=0.9, groups=groups)
    lrs = {p.name: rate.learning_rate.asnumpy() for p, rate in zip(opt.parameters, opt.learning_rate)}
    assert lrs["layer1.0.conv1.weight"][0] == pytest.approx(0.0032)          # encoder: optim.lr
    assert lrs["conv1.weight"][-1] < 0.0032 * 0.05                             # cosine towards 0
    for name in ("clf_conv.weight", "p_ims1d2_outl1_dimred.weight", "mflow_conv_g4_pool.0.1_outvar_dimred.weight",
                 "adapt_stage2_b.0.1_conv.weight"):
        assert lrs[name][0] == pytest.approx(0.032), name
    assert all(name.startswith(("conv1", "bn1", "layer")) for name, v in lrs.items() if v[0] == pytest.approx(0.0032))
    wd = {p.name: g.weight_decay for g in groups for p in g.params}
    assert wd["layer1.0.conv1.weight"] == 0.0005 and wd["bn1.gamma"] == 0.0


def test_stage1_pretrained_path_loads_a_zoo_resnet101_with_its_projection_shortcuts(net):
    from common.checkpoint import CheckpointError, named_parameters, state_dict
    from common.engine.builder import load_pretrained

    cfg = load_config(SPEC.defaults, CONFIGS / "refinenet101_1xb32_sbd-aug_200e_ascend_stage1.yaml")
    rng = np.random.default_rng(0)
    backbone = {n: rng.standard_normal(p.shape).astype(np.float32) for n, p in named_parameters(net).items()
                if n.startswith(("conv1.", "bn1.", "layer"))}
    zoo = {n.replace(".downsample.", ".down_sample_layer."): v for n, v in backbone.items()}
    zoo["end_point.weight"] = np.zeros((1001, 2048), np.float32)   # the zoo's classifier, dropped
    report = load_pretrained(net, zoo, cfg.train.pretrained_ignore, SPEC.pretrained_key_map)
    got = state_dict(net)
    for name in ("layer1.0.downsample.0.weight", "layer4.0.downsample.1.moving_variance", "conv1.weight"):
        np.testing.assert_array_equal(got[name], backbone[name])
    assert "clf_conv.weight" in report and "allowed by train.pretrained_ignore" in report
    without_shortcuts = {k: v for k, v in zoo.items() if ".down_sample_layer." not in k}
    with pytest.raises(CheckpointError, match="downsample"):
        load_pretrained(net, without_shortcuts, cfg.train.pretrained_ignore, SPEC.pretrained_key_map)


def test_real_voc_samples_keep_their_ignore_border_through_the_training_pipeline(fixtures):
    from common.data.voc_seg import VOCSegDataset
    from models.refinenet.src.data import train_transform

    root = fixtures / "openagi_datum_voc" / "seg" / "voc"
    source = VOCSegDataset(root, root / "train.txt")
    sample = next(source[i] for i in range(len(source)) if source[i]["name"] == "2007_000032")
    assert sample["image"].shape == (281, 500, 3) and set(np.unique(sample["mask"])) == {0, 1, 15, 255}
    border = sample["mask"] == 255
    assert 0 < border.mean() < 0.2
    # scale 1, no flip: the label is kept exactly and the padding up to the crop is ignore
    out = train_transform(513, (1.0, 1.0), hflip=False)(sample, np.random.default_rng(0))
    assert out["image"].shape == (3, 513, 513) and out["mask"].dtype == np.int32
    top, left = np.argwhere(out["mask"] != 255).min(axis=0)
    crop = out["mask"][top:top + 281, left:left + 500]
    np.testing.assert_array_equal(crop, sample["mask"])
    assert (out["mask"] == 255).sum() == 513 * 513 - 281 * 500 + border.sum()
    padded = np.ones((513, 513), bool)
    padded[top:top + 281, left:left + 500] = False
    assert np.abs(out["image"][:, padded]).max() < 0.02      # the mean colour: ~0 after normalising
    # random scale 0.5-2.0: nearest-neighbour labels, no new values, the border survives
    for seed in range(3):
        mask = train_transform(513, (0.5, 2.0))(sample, np.random.default_rng(seed))["mask"]
        assert set(np.unique(mask)) <= {0, 1, 15, 255} and (mask == 255).any()


def test_train_dataset_batches_from_a_voc_list(tmp_path):
    from models.refinenet.src.data import build_train_dataset

    subprocess.run([sys.executable, "-m", "common.data.synthetic", "--format", "voc", "--num", "4", "--num-val", "1",
                    "--size", "40", "--num-classes", "3", "--out", str(tmp_path)], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    data = Config({"root": str(tmp_path / "VOCdevkit" / "VOC2012"), "train_list": None, "mindrecord": None,
                   "crop": 48, "scale_range": [0.5, 2.0], "hflip": True, "verify": True})
    dist = SimpleNamespace(distributed=False, size=1, rank=0)
    ds = build_train_dataset(data, 4, 2, dist, num_workers=1)
    images, masks = next(ds.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert images.shape == (2, 3, 48, 48) and images.dtype == np.float32
    assert masks.shape == (2, 48, 48) and masks.dtype == np.int32
    assert set(np.unique(masks)) <= {0, 1, 2, 3, 255}
    # the seed's MindRecord path gives the same columns
    from common.data.mindrecord import write_seg_mindrecord

    files = write_seg_mindrecord(data.root, tmp_path / "VOCdevkit/VOC2012/ImageSets/Segmentation/train.txt",
                                 tmp_path / "train.mindrecord")
    record = Config({**data, "mindrecord": str(files[0])})
    images, masks = next(build_train_dataset(record, 4, 2, dist, num_workers=1)
                         .create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert images.shape == (2, 3, 48, 48) and masks.shape == (2, 48, 48) and masks.dtype == np.int32
    assert set(np.unique(masks)) <= {0, 1, 2, 3, 255}
    with pytest.raises(Exception, match="outside|class"):  # 3 classes + background need num_classes >= 4
        next(build_train_dataset(data, 2, 2, dist, num_workers=1).create_tuple_iterator(num_epochs=1))


@pytest.mark.slow
def test_quick_recipe_learns(tmp_path):
    """Loss falls and held-out mIoU passes 0.4 on a synthetic VOC set, within 5 minutes: 40 steps of
    batch 4 (measured 2026-12-01: 48 steps gave mIoU 0.935 in 292 s; 24 steps of batch 8 only 0.42,
    after a loss spike at the end of the warm-up). Two epochs, no epoch checkpoints: each epoch's
    1.4 GB checkpoint with the Adam state costs about 14 s."""
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "common.data.synthetic", "--format", "voc", "--num", "80", "--num-val",
                    "8", "--size", "64", "--num-classes", "2", "--seed", "0", "--out", str(data)],
                   cwd=REPO_ROOT, check=True, capture_output=True)
    root = data / "VOCdevkit" / "VOC2012"
    run = tmp_path / "run"
    common = [f"data.root={root}", f"test.root={root}", f"output_dir={run}", "model.num_classes=3",
              "data.crop=64", "test.size=64"]
    cfg = str(CONFIGS / "refinenet101_1xb8_synthetic-voc_quick-cpu.yaml")
    subprocess.run([sys.executable, "models/refinenet/train.py", "--config", cfg, *common, "train.epochs=2",
                    "train.batch_size=4", "lr.warmup_epochs=0.25", "ckpt.interval=0", "train.log_interval=1"],
                   cwd=REPO_ROOT, check=True, timeout=1500)
    losses = [json.loads(line)["loss"] for line in (run / "train_log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4]), losses
    subprocess.run([sys.executable, "models/refinenet/eval.py", "--config", cfg, *common, "--ckpt_file",
                    str(run / "checkpoints" / "last.ckpt")], cwd=REPO_ROOT, check=True, timeout=300)
    result = json.loads((run / "eval_results.json").read_text())
    assert result["miou"] > 0.4, result
    with Image.open(next((run / "pred").glob("*.png"))) as img:
        assert img.mode == "P"

"""RefineDet training: targets from the readers and MindRecord, the recipes as configs, one step
lowering every loss part, and (slow) learning on synthetic shapes."""
import json
import subprocess
import sys
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from common.config import load_config
from common.data.detection import CocoDetection
from common.engine.distributed import DistInfo
from common.engine.param_groups import resolve_param_groups
from common.paths import REPO_ROOT
from models import get_spec
from models.refinedet.src.data import ToDetectionTargets, train_transform

SPEC = get_spec("refinedet320_vgg16")
QUICK = REPO_ROOT / SPEC.quick.config


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    out = tmp_path_factory.mktemp("coco")
    subprocess.run([sys.executable, "-m", "common.data.synthetic", "--format", "coco", "--out", str(out), "--num", "10",
                    "--num-val", "2", "--size", "64", "--num-classes", "3"], cwd=REPO_ROOT, check=True,
                   capture_output=True)
    return out


def _cfg(coco, *overrides):
    return load_config(SPEC.defaults, QUICK, [f"data.root={coco / 'train2017'}", "data.size=64",
                                              f"data.ann_file={coco / 'annotations/instances_train2017.json'}",
                                              "train.batch_size=2", "train.num_workers=1", *overrides])


def test_targets_are_the_annotations_normalised_by_the_image_size(coco):
    doc = json.loads((coco / "annotations/instances_train2017.json").read_text())
    source = CocoDetection(coco / "train2017", coco / "annotations/instances_train2017.json")
    image = doc["images"][0]
    anns = [a for a in doc["annotations"] if a["image_id"] == image["id"]]
    assert anns
    cats = sorted(c["id"] for c in doc["categories"])
    out = train_transform(64, "caffe", photometric=False, expand_ratio=1.0, min_iou_crop=False,
                          hflip=False)(source[0], np.random.default_rng(0))
    w, h = image["width"], image["height"]
    expected = [[a["bbox"][0] / w, a["bbox"][1] / h, (a["bbox"][0] + a["bbox"][2]) / w,
                 (a["bbox"][1] + a["bbox"][3]) / h] for a in anns]
    np.testing.assert_allclose(out["gt_boxes"], expected, atol=1e-6)
    assert out["gt_labels"].tolist() == [cats.index(a["category_id"]) + 1 for a in anns]
    assert out["image"].shape == (3, 64, 64) and out["image"].dtype == np.float32


def test_crowd_boxes_are_not_training_targets():
    sample = {"image": np.zeros((10, 20, 3), np.uint8), "boxes": np.array([[0, 0, 10, 5], [2, 2, 20, 10]], np.float32),
              "labels": np.array([3, 1], np.int32), "iscrowd": np.array([True, False])}
    out = ToDetectionTargets("caffe")(sample)
    np.testing.assert_allclose(out["gt_boxes"], [[0.1, 0.2, 1.0, 1.0]])
    assert out["gt_labels"].tolist() == [1]


def _first_batch(dataset):
    return next(dataset.create_tuple_iterator(output_numpy=True, num_epochs=1))


def _check_batch(batch, counts, max_boxes):
    image, boxes, labels, mask = batch
    assert image.shape == (2, 3, 64, 64) and boxes.shape == (2, max_boxes, 4)
    assert labels.shape == (2, max_boxes) and mask.shape == (2, max_boxes) and labels.dtype == np.int32
    real = mask > 0.5
    assert set(real.sum(1).tolist()) <= counts and real.any()
    assert np.all((labels[real] >= 1) & (labels[real] <= 3)) and np.all(labels[~real] == 0)
    assert np.all((boxes >= 0) & (boxes <= 1)) and np.all(boxes[~real] == 0)
    assert np.all(boxes[real][:, 2:] > boxes[real][:, :2])


def test_training_batches_have_padded_targets_from_the_reader_and_from_mindrecord(coco, tmp_path):
    from common.data.mindrecord import write_det_mindrecord

    doc = json.loads((coco / "annotations/instances_train2017.json").read_text())
    counts = {sum(a["image_id"] == im["id"] for a in doc["annotations"]) for im in doc["images"]}
    off = ["data.photometric=false", "data.min_iou_crop=false", "data.hflip=false", "data.max_boxes=7"]
    cfg = _cfg(coco, *off)
    _check_batch(_first_batch(SPEC.build_train_data(cfg, DistInfo())), counts, 7)

    record = tmp_path / "train.mindrecord"
    write_det_mindrecord(CocoDetection(coco / "train2017", coco / "annotations/instances_train2017.json"), record)
    cfg = _cfg(coco, *off, "data.format=mindrecord", f"data.root={record}")
    dataset = SPEC.build_train_data(cfg, DistInfo())
    _check_batch(_first_batch(dataset), counts, 7)


def test_recipes_load_and_the_paper_ones_train_biases_at_twice_the_lr_without_decay():
    configs = sorted((REPO_ROOT / "configs/refinedet").glob("*.yaml"))
    assert len(configs) >= 6
    net = SPEC.build_net(load_config(SPEC.defaults, None, ["model.num_classes=21"]))
    named = {p.name: p for p in net.trainable_params()}
    biases = {n for n in named if n.endswith(".bias")}
    paper = 0
    for path in configs:
        cfg = load_config(SPEC.defaults, path, [])
        if not cfg.optim.param_groups:
            continue
        paper += 1
        assert (cfg.optim.name, cfg.optim.momentum, cfg.optim.weight_decay, cfg.train.batch_size) == \
            ("momentum", 0.9, 5e-4, 32), path.name
        groups = resolve_param_groups(named, cfg.optim.param_groups, cfg.optim.weight_decay,
                                      cfg.optim.no_decay_bn_bias)
        doubled = [g for g in groups if g.lr_mult == 2.0]
        assert len(doubled) == 1 and set(doubled[0].names) == biases and doubled[0].weight_decay == 0.0
        assert all(g.weight_decay == 5e-4 for g in groups if g.lr_mult == 1.0)
    assert paper == 4  # VOC and COCO, 320 and 512
    voc = load_config(SPEC.defaults, REPO_ROOT / "configs/refinedet/refinedet320_vgg16_1xb32_voc0712_120k-it.yaml", [])
    assert (voc.train.iters, voc.lr.milestones, voc.optim.lr) == (120000, [80000, 100000], 1e-3)
    seed = load_config(SPEC.defaults,
                       REPO_ROOT / "configs/refinedet/refinedet320_vgg16_8xb32_coco_500e_ascend-oldport.yaml", [])
    assert (seed.optim.lr, seed.train.epochs, seed.lr.schedule, seed.amp.init_scale) == (0.05, 500, "cosine", 1024.0)


def _parts(net, loss, batch):
    _, parts = loss(net(batch[0]), *batch[1:])
    return np.array([float(p.asnumpy()) for p in parts])


@pytest.mark.usefixtures("pynative")
def test_one_training_step_lowers_every_loss_part(coco):
    ms.set_seed(0)
    cfg = _cfg(coco, "model.num_classes=4", "data.photometric=false", "data.min_iou_crop=false",
               "data.hflip=false", "data.max_boxes=6")
    net, loss = SPEC.build_net(cfg), SPEC.build_loss(cfg)
    batch = [ms.Tensor(a) for a in _first_batch(SPEC.build_train_data(cfg, DistInfo()))]
    optimizer = ms.nn.Adam(net.trainable_params(), learning_rate=2e-5)

    def forward(*args):
        return loss(net(args[0]), *args[1:])[0]

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)
    net.set_train(True)
    before = _parts(net, loss, batch)
    _, grads = grad_fn(*batch)
    optimizer(grads)
    after = _parts(net, loss, batch)
    assert np.all(np.isfinite(before)) and np.all(before > 0)
    assert np.all(after < before), dict(zip(loss.part_names, zip(before, after)))


# ---------------------------------------------------------------- learning (slow)

@pytest.mark.slow
def test_quick_recipe_learns_ap50_above_05(tmp_path):
    """The learning proof (scripts/learning_proof_refinedet.py: the shared train command with the
    quick config, then COCO AP) shortened: 64 px, objects of radius 0.2-0.4 of the side, 200
    images, 140 steps of batch 4 (train.iters, so the warm-up and cosine fit the run). Every loss
    part falls and held-out AP50 passes 0.5 (about 2 minutes on 2 cores; 0.87 measured)."""
    out = tmp_path / "proof"
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "scripts/learning_proof_refinedet.py"), "--out", str(out),
                           "--steps", "140", "--num", "200", "--num-val", "20", "--size", "64", "--radius", "0.2,0.4",
                           "--target", "0.5"], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert (out / "learning_proof.json").is_file(), proc.stderr[-3000:]
    result = json.loads(Path(out / "learning_proof.json").read_text())
    first, last = result["first_parts"], result["last_parts"]
    for name in ("arm_loc", "arm_conf", "odm_loc", "odm_conf"):
        assert last[name] < first[name], (name, first[name], last[name])
    assert result["steps"] == 140 and result["AP50"] > 0.5, result
    assert proc.returncode == 0, proc.stderr[-3000:]

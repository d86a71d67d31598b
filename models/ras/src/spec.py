"""What RAS hands to the shared runner (common/runner): network, loss, data and weight layouts."""
from common.runner.args import model_defaults
from common.runner.spec import ModelSpec, QuickRecipe
from common.tasks.sod import SaliencyOutput
from models import create_model
from models.ras.src.convert import (
    HEAD_PREFIXES,
    KEY_MAPS,
    detect_layout,
    to_ours,
    torchvision_backbone_to_ours,
)
from models.ras.src.data import build_train_dataset, preprocess
from models.ras.src.loss import RASLoss

DEFAULTS = model_defaults("sod", {
    "output_dir": "outputs/ras",
    "model": {
        "name": "ras",
        "in_channels": 3,
        "frozen_bn": False,
        "numerics": "authors",       # authors | oldport (the old MindSpore port's published weights)
    },
    "data": {
        "train_root": "data/synthetic_sod/train",   # images/ + masks/ (DUTS-TR layout works too)
        "size": 352,                 # the seed's training and test size
        "hflip": True,
        "rotate": 10.0,              # degrees, as the seed's cv_random_rotate
        "oldport_double_normalise": False,  # True only for the old port's published weights
    },
    "test": {"size": 352},
    "optim": {"name": "adam", "lr": 5e-5},
})


def build_net(cfg):
    return create_model(cfg.model.name, in_channels=cfg.model.in_channels, frozen_bn=cfg.model.frozen_bn,
                        numerics=cfg.model.numerics)


def pretrained_key_map(params):
    """A whole RAS checkpoint of any known layout, or an ImageNet ResNet-50 (torchvision names)
    for the backbone (with ``train.pretrained_ignore`` covering the heads)."""
    keys = [k.split(".", 1)[-1] for k in params] + list(params)
    if any(k.startswith(HEAD_PREFIXES) for k in keys):
        return to_ours(params)
    return torchvision_backbone_to_ours(params)


SPEC = ModelSpec(
    folder="ras",
    task="sod",
    variants={"ras": 352},
    defaults=DEFAULTS,
    build_net=build_net,
    build_loss=lambda cfg: RASLoss(),
    build_train_data=lambda cfg, dist: build_train_dataset(cfg.data, cfg.train.batch_size, dist,
                                                           cfg.train.num_workers, cfg.seed),
    deploy=lambda net, cfg: SaliencyOutput(net, 0),    # the finest map (the authors' score1)
    paper_metric="mean_image_adaptive_f",
    hooks={"preprocess": lambda image, size, cfg: preprocess(image, size, cfg.data.oldport_double_normalise)},
    key_maps=KEY_MAPS,
    detect_layout=detect_layout,
    pretrained_key_map=pretrained_key_map,
    quick=QuickRecipe(
        config="configs/ras/ras_1xb8_synthetic_quick-cpu.yaml",
        synthetic=("--format", "sod", "--num", "160", "--num-val", "24", "--size", "160", "--seed", "0"),
        data_keys={"data.train_root": "train", "test.root": "test"},
        epochs=12, predict_input="test/images",
        tiny=("data.size=32", "test.size=32"),
        tiny_synthetic=("--format", "sod", "--num", "4", "--num-val", "3", "--size", "40")),
    doc="RAS reverse-attention salient object detection, ResNet-50 (ShuhanChen/RAS-pytorch v1, TIP 2020).",
)

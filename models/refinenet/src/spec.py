"""What RefineNet-101 hands to the shared runner (common/runner): network, loss, data, weight layouts."""
from common.config import Opt
from common.runner.args import model_defaults
from common.runner.spec import ModelSpec, QuickRecipe
from models import create_model
from models.refinenet.src.convert import KEY_MAPS, detect_layout
from models.refinenet.src.data import build_train_dataset
from models.refinenet.src.loss import RefineNetLoss

DEFAULTS = model_defaults("segmentation", {
    "output_dir": "outputs/refinenet",
    "model": {
        "name": "refinenet101",
        "num_classes": 21,
        "frozen_bn": True,           # DrSleep and the seed train with ImageNet BN statistics
        "dropout": 0.5,
    },
    "data": {
        "root": "data/synthetic_voc/VOCdevkit/VOC2012",   # JPEGImages/ + SegmentationClass/
        "train_list": Opt(str),      # default <root>/ImageSets/Segmentation/train.txt
        "mindrecord": Opt(str),      # the seed's MindRecord file(s) instead of the list (voc_tools)
        "crop": 513,
        "scale_range": [0.5, 2.0],
        "hflip": True,
    },
    "test": {"size": 513},
    "optim": {"name": "momentum", "lr": 0.0015, "momentum": 0.9, "weight_decay": 0.0005},
    "lr": {"schedule": "cosine"},
    "eval": {"metric": "miou"},
})


def build_net(cfg):
    return create_model(cfg.model.name, num_classes=cfg.model.num_classes, frozen_bn=cfg.model.frozen_bn,
                        dropout=cfg.model.dropout)


def pretrained_key_map(params):
    """``train.pretrained`` of any known layout: an ImageNet ResNet-101 (torchvision or MindSpore
    model zoo names, projection shortcuts included) for the backbone, with
    ``train.pretrained_ignore`` covering the decoder, or a whole RefineNet checkpoint (DrSleep's,
    the old port's, ours) e.g. stage 1's weights for stage 2."""
    return KEY_MAPS[detect_layout(params)](params)


SPEC = ModelSpec(
    folder="refinenet",
    task="segmentation",
    variants={"refinenet101": 513},
    defaults=DEFAULTS,
    build_net=build_net,
    build_loss=lambda cfg: RefineNetLoss(ignore_index=255),
    build_train_data=lambda cfg, dist: build_train_dataset(cfg.data, cfg.model.num_classes, cfg.train.batch_size,
                                                           dist, cfg.train.num_workers, cfg.seed),
    paper_metric="miou",
    key_maps=KEY_MAPS,
    detect_layout=detect_layout,
    pretrained_key_map=pretrained_key_map,
    quick=QuickRecipe(
        config="configs/refinenet/refinenet101_1xb8_synthetic-voc_quick-cpu.yaml",
        synthetic=("--format", "voc", "--num", "200", "--num-val", "24", "--size", "96", "--num-classes", "3",
                   "--seed", "0"),
        data_keys={"data.root": "VOCdevkit/VOC2012", "test.root": "VOCdevkit/VOC2012"},
        epochs=6, predict_input="VOCdevkit/VOC2012/JPEGImages",
        tiny=("data.crop=64", "test.size=64", "test.max_images=2", "model.num_classes=4"),
        tiny_synthetic=("--format", "voc", "--num", "4", "--num-val", "2", "--size", "48", "--num-classes", "3")),
    doc="RefineNet-101 semantic segmentation (DrSleep/refinenet-pytorch rf101, VOC 21 classes).",
)

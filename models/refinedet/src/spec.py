"""What RefineDet hands to the shared runner (common/runner): network, loss, data, decoding, layouts.

The deployed graph is the network itself: its four raw heads (arm_loc, arm_conf, odm_loc,
odm_conf) are what eval scores, what is exported and what the 310 app returns. The anchors are
not in the graph: the decoding side rebuilds them from common/detection/anchors.py for the
input size (``anchors_for``), so MindSpore, ONNX Runtime and the 310 outputs go through one
post-processing (common/detection/postprocess.py).
"""
from functools import lru_cache

from common.detection import AnchorGenerator, RefineDetLoss, RefineDetPostProcess
from common.runner.args import model_defaults
from common.runner.spec import ModelSpec, QuickRecipe
from models import create_model
from models.refinedet.src import DEFAULT_NUM_CLASSES, VARIANTS, feature_map_sizes
from models.refinedet.src.convert import KEY_MAPS, detect_layout
from models.refinedet.src.data import build_train_dataset, normalisation_of, preprocess

DEFAULTS = model_defaults("detection", {
    "output_dir": "outputs/refinedet",
    "model": {
        "name": "refinedet320_vgg16",
        "num_classes": DEFAULT_NUM_CLASSES,   # with background: 81 COCO, 21 VOC
        "frozen_bn": False,                   # ResNet-101 only
        "stride_in_1x1": False,               # ResNet-101 only (Caffe ResNet)
    },
    "data": {
        "format": "coco",            # coco | voc | txt | mindrecord (root = the .mindrecord file(s))
        "root": "data/synthetic_coco/train2017",   # images; VOC: the VOC2007 folder
        "extra_roots": [],           # more sets read with the same ann_file (VOC2012 beside VOC2007)
        "ann_file": "data/synthetic_coco/annotations/instances_train2017.json",  # VOC: image set
        "size": None,                # training input S; default: the variant's (320 / 512)
        "normalise": "auto",         # auto (vgg16: caffe, resnet101: imagenet) | caffe | imagenet
        "photometric": True,
        "expand_ratio": 4.0,         # zoom-out canvas up to this factor (1 = off)
        "min_iou_crop": True,
        "hflip": True,
    },
    "loss": {"overlap": 0.5, "neg_pos_ratio": 3, "neg_filter": 0.99},
    "test": {
        "score_threshold": 0.01,     # per class
        "pre_nms_top_k": 1000,       # per class
        "nms_threshold": 0.45,
        "keep_top_k": 500,           # per image
        "neg_filter": 0.99,          # anchors with ARM background probability above it are dropped
    },
    "optim": {"name": "momentum", "lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4},
})

VARIANCES = (0.1, 0.2)


def backbone_of(cfg):
    return VARIANTS[cfg.model.name][0]


def train_size(cfg):
    return cfg.data.size or VARIANTS[cfg.model.name][1]


@lru_cache(maxsize=8)
def anchors_for(size, backbone="vgg16"):
    """(A, 4) cx,cy,w,h anchors of a square input ``size``: sizes 32/64/128/256 on steps
    8/16/32/64, ratios 1, 2, 1/2, on the network's own feature-map sizes."""
    return AnchorGenerator().generate(size, feature_map_sizes(size, backbone))


def build_net(cfg):
    extra = {} if backbone_of(cfg) == "vgg16" else {"frozen_bn": cfg.model.frozen_bn,
                                                    "stride_in_1x1": cfg.model.stride_in_1x1}
    return create_model(cfg.model.name, num_classes=cfg.model.num_classes, **extra)


def build_loss(cfg):
    return RefineDetLoss(cfg.model.num_classes, anchors_for(train_size(cfg), backbone_of(cfg)), VARIANCES,
                         cfg.loss.overlap, cfg.loss.neg_pos_ratio, cfg.loss.neg_filter)


def _square(size):
    size = tuple(size) if not isinstance(size, int) else (size, size)
    if size[0] != size[1]:
        raise ValueError(f"RefineDet is evaluated at square sizes here, got {size}")
    return size[0]


@lru_cache(maxsize=8)
def _postprocess(size, backbone, num_classes, score_threshold, pre_nms_top_k, nms_threshold, keep_top_k,
                 neg_filter):
    return RefineDetPostProcess(anchors_for(size, backbone), VARIANCES, num_classes, score_threshold,
                                pre_nms_top_k, nms_threshold, keep_top_k, neg_filter)


def postprocessor(cfg, size):
    t = cfg.test
    return _postprocess(_square(size), backbone_of(cfg), cfg.model.num_classes, t.score_threshold,
                        t.pre_nms_top_k, t.nms_threshold, t.keep_top_k, t.neg_filter)


def decode(outputs, image_size, cfg):
    """The four raw heads of one image (batch 1) -> boxes in original-image pixels, scores, labels."""
    arm_loc, arm_conf, odm_loc, odm_conf = (o[0] if o.ndim == 3 else o for o in outputs[:4])
    size = cfg.test.size or VARIANTS[cfg.model.name][1]
    # the anchor count tells the input size of an ONNX file scored at another size
    if len(arm_loc) != len(anchors_for(size, backbone_of(cfg))):
        raise ValueError(f"the heads hold {len(arm_loc)} anchors but {size}x{size} inputs give "
                         f"{len(anchors_for(size, backbone_of(cfg)))}: set test.size to the network's input")
    return postprocessor(cfg, size)(arm_loc, arm_conf, odm_loc, odm_conf, tuple(image_size))


def pretrained_key_map(params):
    """train.pretrained of any known layout (luuuyi .pth, vgg16_reducedfc, torchvision ResNet-101,
    ours); with a backbone-only file, ``train.pretrained_ignore`` lists the new layers."""
    return KEY_MAPS[detect_layout(params)](params)


def set_input_size(cfg, size):
    cfg.test.size = _square(size)
    return cfg


SPEC = ModelSpec(
    folder="refinedet",
    task="detection",
    variants={name: size for name, (_, size) in VARIANTS.items()},
    defaults=DEFAULTS,
    build_net=build_net,
    build_loss=build_loss,
    build_train_data=lambda cfg, dist: build_train_dataset(cfg, train_size(cfg), backbone_of(cfg), dist),
    paper_metric="AP",
    hooks={"preprocess": lambda image, size, cfg: preprocess(image, size,
                                                             normalisation_of(cfg.data, backbone_of(cfg))),
           "postprocess": decode, "set_input_size": set_input_size},
    key_maps=KEY_MAPS,
    detect_layout=detect_layout,
    pretrained_key_map=pretrained_key_map,
    quick=QuickRecipe(
        config="configs/refinedet/refinedet320_vgg16_1xb4_synthetic-coco_quick-cpu.yaml",
        synthetic=("--format", "coco", "--num", "600", "--num-val", "60", "--size", "128",
                   "--num-classes", "3", "--radius", "0.1,0.3", "--seed", "0"),
        data_keys={"data.root": "train2017", "data.ann_file": "annotations/instances_train2017.json",
                   "test.root": "val2017", "test.ann_file": "annotations/instances_val2017.json"},
        epochs=2, predict_input="val2017",  # 1 epoch already gave held-out AP50 0.87 (README)
        tiny=("data.size=64", "test.size=64", "model.num_classes=4"),
        tiny_synthetic=("--format", "coco", "--num", "4", "--num-val", "3", "--size", "64", "--num-classes", "3")),
    doc="RefineDet single-shot refinement detector, VGG-16 / ResNet-101 at 320 / 512 (Zhang et al., CVPR 2018).",
)

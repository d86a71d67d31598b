"""What U-2-Net hands to the shared runner (common/runner): its network, loss, data and hooks."""
from common.checkpoint import torch_to_mindspore_names
from common.runner.spec import ModelSpec, QuickRecipe
from common.tasks.sod import SaliencyOutput
from models import create_model
from models.u2net.src.config import DEFAULTS
from models.u2net.src.convert import convert_onnx_params
from models.u2net.src.data import build_train_dataset
from models.u2net.src.inference import postprocess, preprocess
from models.u2net.src.loss import MultiBCELoss


def build_net(cfg):
    return create_model(cfg.model.name, in_channels=cfg.model.in_channels, return_logits=True,
                        numerics=cfg.model.numerics)


def build_train_data(cfg, dist):
    return build_train_dataset(cfg.data, cfg.train.batch_size, dist, cfg.train.num_workers, cfg.seed)


def detect_layout(params):
    return "authors" if any(k.endswith(".running_mean") for k in params) else "ours"


SPEC = ModelSpec(
    folder="u2net",
    task="sod",
    variants={"u2net": 320, "u2netp": 320},
    defaults=DEFAULTS,
    build_net=build_net,
    build_loss=lambda cfg: MultiBCELoss(),
    build_train_data=build_train_data,
    deploy=lambda net, cfg: SaliencyOutput(net, 0),  # the fused map; build_net gives logits
    paper_metric="max_f",
    hooks={"preprocess": lambda image, size, cfg: preprocess(image, size[0]),
           "postprocess": postprocess},
    key_maps={"authors": torch_to_mindspore_names},
    detect_layout=detect_layout,
    read_weights={".onnx": convert_onnx_params},
    quick=QuickRecipe(
        config="configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml",
        synthetic=("--format", "sod", "--num", "160", "--num-val", "24", "--size", "160", "--seed", "0"),
        data_keys={"data.train_root": "train", "test.root": "test"},
        epochs=8, predict_input="test/images",
        tiny=("data.resize=40", "data.crop=32", "test.size=32"),
        tiny_synthetic=("--format", "sod", "--num", "4", "--num-val", "3", "--size", "40")),
    doc="U-2-Net / U-2-NetP salient object detection (xuebinqin/U-2-Net).",
)

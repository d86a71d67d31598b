"""What DDRNet hands to the shared runner (common/runner): its network, loss, data and key maps."""
from common.checkpoint import split_state
from common.runner.spec import ModelSpec, QuickRecipe
from models import create_model
from models.ddrnet.src.config import DEFAULTS
from models.ddrnet.src.convert import KEY_MAPS, detect_layout, missing_stem_biases
from models.ddrnet.src.data import build_train_dataset
from models.ddrnet.src.loss import SoftTargetCrossEntropy


def build_net(cfg):
    return create_model(cfg.model.name, num_classes=cfg.model.num_classes,
                        drop_path_rate=cfg.model.drop_path_rate, numerics=cfg.model.numerics)


def build_train_data(cfg, dist):
    return build_train_dataset(cfg.data, cfg.model.num_classes, cfg.train.batch_size, dist,
                               cfg.train.num_workers, cfg.seed)


def convert_notes(params, layout):
    if layout != "mindspore":
        return []
    return [f"{b}: absent (the old port's stem convs have no bias), set to zero"
            for b in missing_stem_biases(split_state(params)[0])]


SPEC = ModelSpec(
    folder="ddrnet",
    task="classification",
    variants={"ddrnet23": 224, "ddrnet23_slim": 224, "ddrnet39": 224},
    defaults=DEFAULTS,
    build_net=build_net,
    build_loss=lambda cfg: SoftTargetCrossEntropy(),
    build_train_data=build_train_data,
    paper_metric="top1",
    hooks={"convert_notes": convert_notes},
    key_maps=KEY_MAPS,
    detect_layout=detect_layout,
    quick=QuickRecipe(
        config="configs/ddrnet/ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml",
        synthetic=("--format", "imagenet", "--num", "400", "--num-val", "100", "--size", "96", "--seed", "0"),
        data_keys={"data.root": "."}, epochs=12, predict_input="val",
        tiny=("data.image_size=64", "model.num_classes=4", "data.eval_batch_size=2"),
        tiny_synthetic=("--format", "imagenet", "--num", "8", "--num-val", "4", "--size", "64",
                        "--num-classes", "4")),
    doc="DDRNet ImageNet classifiers (ydhongHIT/DDRNet classification/).",
)

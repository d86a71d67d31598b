"""Train DDRNet on ImageNet-layout data (train/<wnid>/, val/<wnid>/).

    python models/ddrnet/train.py --config configs/ddrnet/ddrnet23_8xb128_imagenet_300e.yaml [key=value ...]
"""
from common.cli import run_main
from common.config import config_from_args
from common.engine.builder import build_trainer, run_training, setup_run
from models import create_model
from models.ddrnet.src.config import DEFAULTS
from models.ddrnet.src.data import build_eval_dataset, build_train_dataset
from models.ddrnet.src.evaluate import make_evaluator
from models.ddrnet.src.loss import SoftTargetCrossEntropy


def main(argv=None):
    cfg = config_from_args(DEFAULTS, __doc__, argv)
    dist = setup_run(cfg)
    net = create_model(cfg.model.name, num_classes=cfg.model.num_classes,
                       drop_path_rate=cfg.model.drop_path_rate)
    dataset = build_train_dataset(cfg.data, cfg.model.num_classes, cfg.train.batch_size, dist,
                                  cfg.train.num_workers, cfg.seed)
    val, _ = build_eval_dataset(cfg.data, cfg.data.eval_batch_size, num_workers=cfg.train.num_workers)
    trainer = build_trainer(cfg, net, SoftTargetCrossEntropy(), dataset.get_dataset_size(), dist,
                            make_evaluator(val), model_name=cfg.model.name)
    run_training(trainer, dataset, cfg)


if __name__ == "__main__":
    run_main(main)

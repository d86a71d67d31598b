"""Train U-2-Net / U-2-NetP on an SOD dataset (DUTS-TR layout or the synthetic set).

    python models/u2net/train.py --config configs/u2net/u2netp_1xb12_duts-tr_crop288.yaml [key=value ...]
"""
from common.cli import run_main
from common.config import config_from_args
from common.engine.builder import build_trainer, run_training, setup_run
from models import create_model
from models.u2net.src.config import DEFAULTS
from models.u2net.src.data import build_train_dataset
from models.u2net.src.evaluate import make_evaluator
from models.u2net.src.loss import MultiBCELoss


def main(argv=None):
    cfg = config_from_args(DEFAULTS, __doc__, argv)
    dist = setup_run(cfg)
    net = create_model(cfg.model.name, in_channels=cfg.model.in_channels, return_logits=True)
    dataset = build_train_dataset(cfg.data, cfg.train.batch_size, dist, cfg.train.num_workers, cfg.seed)
    evaluate = None
    if cfg.data.val_root:
        evaluate = make_evaluator(cfg.data.val_root, cfg.test.size, max_images=cfg.test.max_images)
    trainer = build_trainer(cfg, net, MultiBCELoss(), dataset.get_dataset_size(), dist, evaluate,
                            model_name=cfg.model.name)
    run_training(trainer, dataset, cfg)


if __name__ == "__main__":
    run_main(main)

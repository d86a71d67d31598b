"""Evaluate U-2-Net on an SOD test set: saliency PNGs at each image's size + SOD metrics.

    python models/u2net/eval.py --config CONFIG --ckpt CKPT [test.root=DIR] [key=value ...]

The paper reports max F-measure with beta^2 = 0.3 (``max_f``); every other standard SOD metric
is printed and written to <output_dir>/eval_results.json as well.
"""
from pathlib import Path

from common.checkpoint import load_weights
from common.cli import run_main
from common.config import args_and_config
from common.engine.builder import setup_device
from common.tasks.sod import report_results
from models import create_model
from models.u2net.src.config import DEFAULTS
from models.u2net.src.evaluate import make_evaluator


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, [(("--ckpt",), {"required": True, "help": "checkpoint (.ckpt / .safetensors)"})])
    setup_device(cfg.device, cfg.mode)
    net = create_model(cfg.model.name, in_channels=cfg.model.in_channels)
    print(load_weights(net, args.ckpt, strict=True).summary())
    net.set_train(False)
    pred_dir = cfg.test.pred_dir or str(Path(cfg.output_dir) / "pred")
    evaluate = make_evaluator(cfg.test.root, cfg.test.size, pred_dir=pred_dir,
                              max_images=cfg.test.max_images)
    result = evaluate(net)
    report_results(result, "max_f", Path(cfg.output_dir) / "eval_results.json", pred_dir)
    return result


if __name__ == "__main__":
    run_main(main)

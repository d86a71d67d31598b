"""Evaluate DDRNet: resize short side to size/crop_pct (bicubic), center crop, top-1/top-5 over
the whole split (no remainder dropped).

    python models/ddrnet/eval.py --config CONFIG --ckpt CKPT [data.root=DIR] [key=value ...]
"""
from pathlib import Path

from common.checkpoint import load_weights
from common.cli import run_main
from common.config import args_and_config
from common.metrics import write_json
from common.engine.builder import setup_device
from models import create_model
from models.ddrnet.src.config import DEFAULTS
from models.ddrnet.src.data import build_eval_dataset
from models.ddrnet.src.evaluate import evaluate_classifier, network_predictor


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, [(("--ckpt",), {"required": True, "help": "checkpoint (.ckpt / .safetensors)"})])
    setup_device(cfg.device, cfg.mode)
    net = create_model(cfg.model.name, num_classes=cfg.model.num_classes)
    print(load_weights(net, args.ckpt, strict=True).summary())
    dataset, source = build_eval_dataset(cfg.data, cfg.data.eval_batch_size)
    result = evaluate_classifier(network_predictor(net), dataset)
    print(f"top-1 {result['top1']:.4f}  top-5 {result['top5']:.4f}  over {result['num_samples']} "
          f"images of {source.root}")
    write_json(Path(cfg.output_dir) / "eval_results.json", result)
    print(f"results: {Path(cfg.output_dir) / 'eval_results.json'}")
    return result


if __name__ == "__main__":
    run_main(main)

"""Score the C++ app's outputs: saliency PNGs at each image's size + the SOD metrics.

    python models/u2net/postprocess.py --config CONFIG --result_dir result_Files [test.root=DIR]
"""
import argparse
from pathlib import Path

import cv2
from tqdm import tqdm

from common.cli import run_main
from common.config import load_config
from common.data.errors import DatasetError
from common.data.sod import SODDataset
from common.infer310 import read_outputs
from common.metrics.sod import SODMetric
from common.tasks.sod import format_results, write_results
from models.u2net.src.config import DEFAULTS
from models.u2net.src.inference import postprocess


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--result_dir", required=True)
    args, rest = parser.parse_known_args(argv)
    cfg = load_config(DEFAULTS, args.config, rest)
    outputs = read_outputs(args.result_dir)
    source = SODDataset(cfg.test.root)
    samples = {source[i]["name"]: i for i in range(len(source))}
    missing = sorted(set(outputs) - set(samples))
    if missing:
        raise DatasetError(f"{args.result_dir}: outputs without a test image in {cfg.test.root}: {missing[:5]}")
    pred_dir = Path(cfg.test.pred_dir or Path(cfg.output_dir) / "pred_310")
    pred_dir.mkdir(parents=True, exist_ok=True)
    metric = SODMetric()
    for name, tensors in tqdm(outputs.items(), desc="postprocess", unit="img"):
        sample = source[samples[name]]
        pred = postprocess(tensors[0].reshape(tensors[0].shape[-2:]), sample["mask"].shape[:2])
        cv2.imwrite(str(pred_dir / f"{name}.png"), pred)
        metric.update(pred, sample["mask"])
    result = metric.result()
    print(format_results(result, paper_metric="max_f"))
    print(f"saliency maps: {pred_dir}\nresults: {write_results(result, Path(cfg.output_dir) / 'eval_results_310.json')}")
    return result


if __name__ == "__main__":
    run_main(main)

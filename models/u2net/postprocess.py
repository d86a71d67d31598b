"""Score the C++ app's outputs: saliency PNGs at each image's size + the SOD metrics.

    python models/u2net/postprocess.py --config CONFIG --result_dir result_Files [test.root=DIR]
"""
from pathlib import Path

import cv2
from tqdm import tqdm

from common.cli import run_main
from common.config import args_and_config
from common.data.errors import DatasetError
from common.data.sod import SODDataset
from common.infer310 import read_outputs
from common.metrics.sod import SODMetric
from common.metrics import write_json
from common.tasks.sod import format_results
from models.u2net.src.config import DEFAULTS
from models.u2net.src.inference import postprocess


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, [(("--result_dir",), {"required": True})])
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
    write_json(Path(cfg.output_dir) / "eval_results_310.json", result)
    print(f"saliency maps: {pred_dir}\nresults: {Path(cfg.output_dir) / 'eval_results_310.json'}")
    return result


if __name__ == "__main__":
    run_main(main)

"""Score the C++ app's outputs: saliency PNGs at each image's size + the SOD metrics.

    python models/u2net/postprocess.py --config CONFIG --result_dir result_Files [test.root=DIR]
"""
from pathlib import Path

from common.cli import run_main
from common.config import args_and_config
from common.data.errors import DatasetError
from common.data.sod import SODDataset
from common.infer310 import read_outputs
from common.tasks.sod import report_results, score_maps
from models.u2net.src.config import DEFAULTS
from models.u2net.src.inference import postprocess


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, [(("--result_dir",), {"required": True})])
    outputs = read_outputs(args.result_dir)
    source = SODDataset(cfg.test.root)
    index = {name: i for i, name in enumerate(source.names)}
    missing = sorted(set(outputs) - set(index))
    if missing:
        raise DatasetError(f"{args.result_dir}: outputs without a test image in {cfg.test.root}: {missing[:5]}")
    pred_dir = Path(cfg.test.pred_dir or Path(cfg.output_dir) / "pred_310")
    items = ((name, tensors[0], source[index[name]]["mask"]) for name, tensors in outputs.items())
    result = score_maps(items, pred_dir, postprocess, desc="postprocess", total=len(outputs))
    report_results(result, "max_f", Path(cfg.output_dir) / "eval_results_310.json", pred_dir)
    return result


if __name__ == "__main__":
    run_main(main)

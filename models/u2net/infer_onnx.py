"""Evaluate an exported U-2-Net ONNX file with ONNX Runtime: same maps and metrics as eval.py.

    python models/u2net/infer_onnx.py --config CONFIG --onnx FILE [--threads N] [test.root=DIR]
"""
from pathlib import Path

from common.cli import run_main
from common.config import args_and_config
from common.data.sod import SODDataset
from common.export import ONNX_ARGUMENTS, onnx_session, run_onnx
from common.tasks.sod import evaluate_saliency, report_results
from models.u2net.src.config import DEFAULTS
from models.u2net.src.inference import postprocess, preprocess


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, ONNX_ARGUMENTS)
    session = onnx_session(args.onnx, threads=args.threads)
    size = session.get_inputs()[0].shape[-1]
    size = size if isinstance(size, int) else cfg.test.size

    def predict(batch):
        return run_onnx(session, batch)[0][:, 0]

    pred_dir = cfg.test.pred_dir or str(Path(cfg.output_dir) / "pred_onnx")
    result = evaluate_saliency(predict, lambda image: preprocess(image, size), SODDataset(cfg.test.root),
                               pred_dir=pred_dir, max_images=cfg.test.max_images, desc="onnx",
                               postprocess=postprocess)
    report_results(result, "max_f", Path(cfg.output_dir) / "eval_results_onnx.json", pred_dir)
    return result


if __name__ == "__main__":
    run_main(main)

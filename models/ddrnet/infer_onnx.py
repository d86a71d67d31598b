"""Top-1 / top-5 of an exported DDRNet ONNX file with ONNX Runtime (same pipeline as eval.py).

    python models/ddrnet/infer_onnx.py --config CONFIG --onnx FILE [--threads N] [data.root=DIR]
"""
from pathlib import Path

from common.cli import run_main
from common.config import args_and_config
from common.metrics import write_json
from common.export import ONNX_ARGUMENTS, onnx_session, run_onnx
from models.ddrnet.src.config import DEFAULTS
from models.ddrnet.src.data import build_eval_dataset
from models.ddrnet.src.evaluate import evaluate_classifier


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, ONNX_ARGUMENTS)
    session = onnx_session(args.onnx, threads=args.threads)
    dataset, _ = build_eval_dataset(cfg.data, cfg.data.eval_batch_size)
    result = evaluate_classifier(lambda images: run_onnx(session, images)[0], dataset, desc="onnx")
    print(f"top-1 {result['top1']:.4f}  top-5 {result['top5']:.4f}  over {result['num_samples']} images")
    write_json(Path(cfg.output_dir) / "eval_results_onnx.json", result)
    print(f"results: {Path(cfg.output_dir) / 'eval_results_onnx.json'}")
    return result


if __name__ == "__main__":
    run_main(main)

"""Top-1 / top-5 of an exported DDRNet ONNX file with ONNX Runtime (same pipeline as eval.py).

    python models/ddrnet/infer_onnx.py --config CONFIG --onnx FILE [--threads N] [data.root=DIR]
"""
import argparse
import json
from pathlib import Path

from common.cli import run_main
from common.config import load_config
from common.export import onnx_session, run_onnx
from models.ddrnet.src.config import DEFAULTS
from models.ddrnet.src.data import build_eval_dataset
from models.ddrnet.src.evaluate import evaluate_classifier


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--threads", type=int, default=None)
    args, rest = parser.parse_known_args(argv)
    cfg = load_config(DEFAULTS, args.config, rest)
    if not Path(args.onnx).is_file():
        raise FileNotFoundError(f"ONNX file not found: {args.onnx}")
    session = onnx_session(args.onnx, threads=args.threads)
    dataset, _ = build_eval_dataset(cfg.data, cfg.data.eval_batch_size)
    result = evaluate_classifier(lambda images: run_onnx(session, images)[0], dataset, desc="onnx")
    print(f"top-1 {result['top1']:.4f}  top-5 {result['top5']:.4f}  over {result['num_samples']} images")
    out = Path(cfg.output_dir) / "eval_results_onnx.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"results: {out}")
    return result


if __name__ == "__main__":
    run_main(main)

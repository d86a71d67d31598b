"""Quick start: synthetic data -> short training -> evaluation -> ONNX export -> ONNX Runtime
inference -> pictures, through the same entry points a researcher uses.

    python scripts/quickstart.py [--model u2netp|ddrnet23_slim] [--out DIR] [--epochs N]

Runs on CPU in a few minutes and prints where everything went.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sod_steps(out, epochs):
    data = out / "data"
    cfg = ROOT / "configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml"
    common = [f"output_dir={out / 'run'}", f"data.train_root={data / 'train'}",
              f"test.root={data / 'test'}"]
    ckpt = out / "run/checkpoints/last.ckpt"
    onnx = out / "run/u2netp.onnx"
    return [
        ("generate a synthetic SOD dataset (DUTS layout)",
         ["-m", "common.data.synthetic", "--format", "sod", "--out", str(data), "--num", "160",
          "--num-val", "24", "--size", "160", "--seed", "0"]),
        ("train U-2-NetP", ["models/u2net/train.py", "--config", str(cfg), *common,
                            f"train.epochs={epochs}"]),
        ("evaluate (saliency PNGs + SOD metrics)",
         ["models/u2net/eval.py", "--config", str(cfg), "--ckpt", str(ckpt), *common]),
        ("export ONNX (parity-checked)",
         ["models/u2net/export.py", "--config", str(cfg), "--ckpt", str(ckpt), "--format", "ONNX",
          "--file", str(onnx), *common]),
        ("ONNX Runtime inference + the same metrics",
         ["models/u2net/infer_onnx.py", "--config", str(cfg), "--onnx", str(onnx), *common]),
        ("predict: saliency maps, side-by-side pictures and cut-outs",
         ["models/u2net/predict.py", "--model", "u2netp", "--ckpt", str(ckpt), "--input",
          str(data / "test/images"), "--out", str(out / "predict"), "--size", "128", "--cutout"]),
    ], {
        "dataset": data, "checkpoints": out / "run/checkpoints", "training log": out / "run/train_log.jsonl",
        "saliency maps (eval)": out / "run/pred", "metrics": out / "run/eval_results.json",
        "ONNX model": onnx, "ONNX metrics": out / "run/eval_results_onnx.json",
        "pictures": out / "predict",
    }


def _cls_steps(out, epochs):
    data = out / "data"
    cfg = ROOT / "configs/ddrnet/ddrnet23_slim_1xb32_synthetic_quick-cpu.yaml"
    common = [f"output_dir={out / 'run'}", f"data.root={data}"]
    ckpt = out / "run/checkpoints/last.ckpt"
    onnx = out / "run/ddrnet23_slim.onnx"
    return [
        ("generate a synthetic ImageNet-layout dataset",
         ["-m", "common.data.synthetic", "--format", "imagenet", "--out", str(data), "--num", "400",
          "--num-val", "100", "--size", "96", "--seed", "0"]),
        ("train DDRNet-23-slim", ["models/ddrnet/train.py", "--config", str(cfg), *common,
                                  f"train.epochs={epochs}"]),
        ("evaluate top-1 / top-5", ["models/ddrnet/eval.py", "--config", str(cfg), "--ckpt", str(ckpt), *common]),
        ("export ONNX (parity-checked)",
         ["models/ddrnet/export.py", "--config", str(cfg), "--ckpt", str(ckpt), "--format", "ONNX",
          "--file", str(onnx), *common]),
        ("ONNX Runtime inference + the same metrics",
         ["models/ddrnet/infer_onnx.py", "--config", str(cfg), "--onnx", str(onnx), *common]),
        ("predict: top-5 pictures",
         ["models/ddrnet/predict.py", "--config", str(cfg), "--ckpt", str(ckpt), "--input",
          str(data / "val"), "--out", str(out / "predict"), *common]),
    ], {"dataset": data, "checkpoints": out / "run/checkpoints", "metrics": out / "run/eval_results.json",
        "ONNX model": onnx, "pictures": out / "predict"}


RECIPES = {"u2netp": (_sod_steps, 8), "ddrnet23_slim": (_cls_steps, 12)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="u2netp", choices=sorted(RECIPES))
    parser.add_argument("--out", default=None, help="output folder (default outputs/quickstart_<model>)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default per model)")
    args = parser.parse_args(argv)
    build, default_epochs = RECIPES[args.model]
    out = Path(args.out or ROOT / f"outputs/quickstart_{args.model}").resolve()
    steps, products = build(out, args.epochs or default_epochs)
    start = time.time()
    for i, (title, cmd) in enumerate(steps, 1):
        print(f"\n=== [{i}/{len(steps)}] {title}\n$ python {' '.join(cmd)}", flush=True)
        t0 = time.time()
        proc = subprocess.run([sys.executable, *cmd], cwd=ROOT)
        if proc.returncode != 0:
            sys.exit(f"quickstart: step '{title}' failed with exit code {proc.returncode}")
        print(f"--- done in {time.time() - t0:.0f} s")
    print(f"\nquickstart finished in {time.time() - start:.0f} s. Results:")
    for name, path in products.items():
        print(f"  {name:<24} {path}")


if __name__ == "__main__":
    main()

"""Quick start: synthetic data -> short training -> evaluation -> ONNX export -> ONNX Runtime
inference -> pictures, through the same entry points a researcher uses.

    python scripts/quickstart.py [--model NAME] [--out DIR] [--epochs N]

NAME is any registered model with a quick recipe (see `--help`); each runs on CPU in minutes and
prints where everything went. The recipe (config, synthetic data, epochs) comes from the model's
spec (models/<folder>/src/spec.py).
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def steps_for(name, out, epochs):
    from models import get_spec

    spec = get_spec(name)
    quick = spec.quick
    data, run = out / "data", out / "run"
    entry = f"models/{spec.folder}"
    cfg = ["--config", str(ROOT / quick.config), f"model.name={name}", f"output_dir={run}",
           *[f"{key}={data / rel}" for key, rel in quick.data_keys.items()]]
    ckpt, onnx = run / "checkpoints/last.ckpt", run / f"{name}.onnx"
    steps = [
        ("generate a synthetic dataset in the real on-disk layout",
         ["-m", "common.data.synthetic", *quick.synthetic, "--out", str(data)]),
        (f"train {name}", [f"{entry}/train.py", *cfg, f"train.epochs={epochs or quick.epochs}",
                           "train.overwrite=true"]),
        ("evaluate with the paper's metric", [f"{entry}/eval.py", *cfg, "--ckpt_file", str(ckpt)]),
        ("export ONNX (parity-checked)", [f"{entry}/export.py", *cfg, "--ckpt_file", str(ckpt),
                                          "--file_format", "ONNX", "--file_name", str(onnx)]),
        ("ONNX Runtime inference + the same metrics",
         [f"{entry}/infer_onnx.py", *cfg, "--onnx_file", str(onnx)]),
        ("predict: pictures", [f"{entry}/predict.py", *cfg, "--ckpt_file", str(ckpt), "--input",
                               str(data / quick.predict_input), "--output_dir", str(out / "predict")]),
    ]
    products = {"dataset": data, "checkpoints": run / "checkpoints", "training log": run / "train_log.jsonl",
                "metrics": run / "eval_results.json", "ONNX model": onnx,
                "ONNX metrics": run / "eval_results_onnx.json", "pictures": out / "predict"}
    return steps, products


def quick_models():
    from models import get_spec, list_models

    return [n for n in list_models() if get_spec(n).quick is not None]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="u2netp", help="a registered model (default u2netp)")
    parser.add_argument("--out", default=None, help="output folder (default outputs/quickstart_<model>)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default per model)")
    args = parser.parse_args(argv)
    known = quick_models()
    if args.model not in known:
        parser.error(f"--model {args.model!r}: expected one of {known}")
    out = Path(args.out or ROOT / f"outputs/quickstart_{args.model}").resolve()
    steps, products = steps_for(args.model, out, args.epochs)
    start = time.time()
    for i, (title, cmd) in enumerate(steps, 1):
        print(f"\n=== [{i}/{len(steps)}] {title}\n$ python {' '.join(cmd)}", flush=True)
        t0 = time.time()
        proc = subprocess.run([sys.executable, *cmd], cwd=ROOT, check=False)
        if proc.returncode != 0:
            sys.exit(f"quickstart: step '{title}' failed with exit code {proc.returncode}")
        print(f"--- done in {time.time() - t0:.0f} s")
    print(f"\nquickstart finished in {time.time() - start:.0f} s. Results:")
    for name, path in products.items():
        print(f"  {name:<24} {path}")


if __name__ == "__main__":
    main()

"""RefineDet learning proof: ``train.py`` with the quick CPU recipe on synthetic COCO-format
shapes, scored on held-out images with the shared COCO evaluation.

    python scripts/learning_proof_refinedet.py --out outputs/refinedet_proof [--steps N]
        [--num 600] [--num-val 60] [--size 128] [--radius 0.1,0.3] [--target 0.6] [key=value ...]

Writes the data (common.data.synthetic --format coco, 3 classes), runs the shared training
command with configs/refinedet/refinedet320_vgg16_1xb4_synthetic-coco_quick-cpu.yaml (its whole
schedule, or ``train.iters=N`` with ``--steps``; ``key=value`` overrides it), evaluates the
trained network with the detection task (COCO AP over every held-out image) and writes
``<out>/learning_proof.json`` (first / last logged loss parts, steps, seconds, AP, AP50). Exit 0
when AP50 >= --target, else 1.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.paths import REPO_ROOT
from common.runner.args import parse as parse_run
from common.runner.commands import train
from common.runner.predictors import network_predictor
from common.tasks import get_task
from models import get_spec


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=None,
                        help="train this many steps (train.iters) instead of the config's epochs")
    parser.add_argument("--num", type=int, default=600, help="training images")
    parser.add_argument("--num-val", type=int, default=60, help="held-out images")
    parser.add_argument("--size", type=int, default=128, help="image height and network input")
    parser.add_argument("--radius", default="0.1,0.3",
                        help="object radius range MIN,MAX (fractions of the shorter image side), common.data.synthetic")
    parser.add_argument("--target", type=float, default=0.60, help="AP50 to reach")
    return parser.parse_known_args(argv)


def main(argv=None):
    args, overrides = parse(argv)
    if args.steps is not None and args.steps < 1:
        sys.exit(f"--steps must be >= 1, got {args.steps}")
    out = Path(args.out)
    data = out / "data"
    spec = get_spec("refinedet320_vgg16")
    if not (data / "annotations/instances_val2017.json").is_file():
        synthetic = spec.quick.synthetic_with({"--out": data, "--num": args.num, "--num-val": args.num_val,
                                               "--size": args.size, "--radius": args.radius})
        subprocess.run([sys.executable, "-m", "common.data.synthetic", *synthetic], cwd=REPO_ROOT, check=True)
    run = out / "train"
    train_argv = ["--config", str(REPO_ROOT / spec.quick.config), f"output_dir={run}", "train.overwrite=true",
                  f"data.size={args.size}", f"test.size={args.size}",
                  *[f"{k}={data / v}" for k, v in spec.quick.data_keys.items()],
                  *([f"train.iters={args.steps}"] if args.steps else []), *overrides]
    start = time.time()
    trainer = train(spec, train_argv)
    seconds = time.time() - start
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    _, cfg = parse_run(spec, "train", train_argv)
    result = get_task("detection").evaluate(spec, cfg, network_predictor(trainer.network), "eval")
    proof = {"steps": trainer.global_step, "train_seconds": round(seconds, 1),
             "batch_size": cfg.train.batch_size, "lr": cfg.optim.lr, "size": args.size,
             "num_train": args.num, "num_val": args.num_val,
             "first_parts": log[0]["parts"], "last_parts": log[-1]["parts"],
             "AP": result["AP"], "AP50": result["AP50"], "target_AP50": args.target}
    (out / "learning_proof.json").write_text(json.dumps(proof, indent=1))
    print(json.dumps(proof, indent=1))
    return 0 if proof["AP50"] >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())

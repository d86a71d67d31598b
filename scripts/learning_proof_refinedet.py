"""RefineDet learning proof: the quick CPU recipe on synthetic COCO-format shapes, scored on
held-out images with the shared COCO evaluation.

    python scripts/learning_proof_refinedet.py --out outputs/refinedet_proof [--minutes 30 | --steps N]
        [--num 600] [--num-val 60] [--size 128] [--radius 0.1,0.3] [key=value ...]

Writes the data (common.data.synthetic --format coco, 3 classes), trains the network, loss,
data pipeline and optimizer of configs/refinedet/refinedet320_vgg16_1xb4_synthetic-coco_quick-cpu.yaml
for a wall-clock budget or a number of steps (linear warm-up, constant lr, x0.1 for the last
fifth), then evaluates with the detection task (COCO AP over every held-out image) and writes
``<out>/learning_proof.json`` (first / last loss parts, steps, seconds, AP, AP50). Exit 0 when
AP50 >= --target (default 0.60), else 1.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mindspore as ms

from common.config import load_config
from common.engine.builder import setup_device
from common.engine.distributed import DistInfo
from common.paths import REPO_ROOT
from common.runner.predictors import network_predictor
from common.tasks import get_task
from models import get_spec


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget (wall clock)")
    parser.add_argument("--steps", type=int, default=None,
                        help="train this many steps instead of a time budget (reproducible on any machine)")
    parser.add_argument("--num", type=int, default=600, help="training images")
    parser.add_argument("--num-val", type=int, default=60, help="held-out images")
    parser.add_argument("--size", type=int, default=128, help="image height and network input")
    parser.add_argument("--radius", default="0.1,0.3",
                        help="object radius range MIN,MAX (fractions of the shorter image side), common.data.synthetic")
    parser.add_argument("--target", type=float, default=0.60, help="AP50 to reach")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up steps")
    return parser.parse_known_args(argv)


def main(argv=None):
    args, overrides = parse(argv)
    if args.steps is not None and args.steps < 1:
        sys.exit(f"--steps must be >= 1, got {args.steps}")
    out = Path(args.out)
    data = out / "data"
    if not (data / "annotations/instances_val2017.json").is_file():
        subprocess.run([sys.executable, "-m", "common.data.synthetic", "--format", "coco", "--out", str(data),
                        "--num", str(args.num), "--num-val", str(args.num_val), "--size", str(args.size),
                        "--num-classes", "3", "--radius", args.radius, "--seed", "0"], cwd=REPO_ROOT, check=True)
    spec = get_spec("refinedet320_vgg16")
    cfg = load_config(spec.defaults, REPO_ROOT / spec.quick.config, [
        f"output_dir={out}", f"data.size={args.size}", f"test.size={args.size}",
        *[f"{k}={data / v}" for k, v in spec.quick.data_keys.items()], *overrides])
    setup_device(cfg.device, cfg.mode)
    ms.set_seed(cfg.seed)
    net, loss = spec.build_net(cfg), spec.build_loss(cfg)
    dataset = spec.build_train_data(cfg, DistInfo())
    base_lr = cfg.optim.lr
    lr = ms.Parameter(ms.Tensor(base_lr / args.warmup, ms.float32), name="proof_lr", requires_grad=False)
    optimizer = ms.nn.Adam(net.trainable_params(), learning_rate=lr, weight_decay=cfg.optim.weight_decay)

    def forward(image, boxes, labels, mask):
        total, parts = loss(net(image), boxes, labels, mask)
        return total, parts

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters, has_aux=True)

    @ms.jit
    def step(image, boxes, labels, mask):
        (total, parts), grads = grad_fn(image, boxes, labels, mask)
        optimizer(grads)
        return total, parts

    net.set_train(True)
    budget, start, steps, history = args.minutes * 60.0, time.time(), 0, []
    done = False
    while not done:
        for batch in dataset.create_tuple_iterator(num_epochs=1):
            elapsed = time.time() - start
            progress = elapsed / budget if args.steps is None else steps / args.steps
            if progress >= 1:
                done = True
                break
            scale = min(1.0, (steps + 1) / args.warmup) * (0.1 if progress > 0.8 else 1.0)
            lr.set_data(ms.Tensor(base_lr * scale, ms.float32))
            _, parts = step(*batch)
            history.append([float(p.asnumpy()) for p in parts])
            steps += 1
            if steps % 10 == 0:
                recent = np.mean(history[-10:], 0)
                print(f"step {steps} {elapsed:.0f}s " + " ".join(f"{n} {v:.3f}" for n, v in
                                                             zip(loss.part_names, recent)), flush=True)
    seconds = time.time() - start
    window = max(1, min(20, len(history) // 4))
    first, last = np.mean(history[:window], 0), np.mean(history[-window:], 0)
    ms.save_checkpoint(net, str(out / "proof.ckpt"))
    result = get_task("detection").evaluate(spec, cfg, network_predictor(net), "eval")
    proof = {"steps": steps, "train_seconds": round(seconds, 1), "batch_size": cfg.train.batch_size,
             "size": args.size, "num_train": args.num, "num_val": args.num_val,
             "first_parts": dict(zip(loss.part_names, first.tolist())),
             "last_parts": dict(zip(loss.part_names, last.tolist())),
             "AP": result["AP"], "AP50": result["AP50"], "target_AP50": args.target}
    (out / "learning_proof.json").write_text(json.dumps(proof, indent=1))
    print(json.dumps(proof, indent=1))
    return 0 if proof["AP50"] >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())

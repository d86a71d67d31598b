"""Images/s of DDRNet's paper training chain (224 px DeiT recipe: RandomResizedCrop, flip,
RandAugment rand-m9-mstd0.5-inc1, erasing 0.25, Mixup 0.8 / CutMix 1.0, smoothing 0.1) for each
``data.pipeline`` (numpy, mindspore) and worker count, on a synthetic ImageNet-layout folder.

    python scripts/benchmark_data_recipe.py [--config CFG] [--images 256] [--size 500]
        [--batch 32] [--workers 1,2] [--pipelines numpy,mindspore] [--repeat 3] [--out DIR] [key=value ...]

Each cell is the median over ``--repeat`` epochs (a fresh iterator each, as the engine) after one
warm-up epoch. The synthetic images are about ``--size`` px on a side (ImageNet's train images
average about 400 x 350, most are 500 px on the long side). Prints a markdown table, the machine
and the command, and writes data_recipe.md / .json / .png into ``--out``.
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common  # noqa: F401  (first: caps oneDNN's ISA before MindSpore loads)
from common.bench.machine import machine_info

DEFAULT_CONFIG = "configs/ddrnet/ddrnet23_8xb128_imagenet_300e_ascend.yaml"


def epoch_rate(dataset, epoch):
    from common.bench.measure import run_epoch

    start = time.perf_counter()
    images, _ = run_epoch(dataset, epoch)
    return images / (time.perf_counter() - start)


def measure(config, root, num_classes, pipeline, workers, batch, repeat, overrides=()):
    from common.config import load_config
    from common.engine.distributed import DistInfo
    from common.paths import REPO_ROOT
    from models.ddrnet.src.spec import SPEC

    cfg = load_config(SPEC.defaults, REPO_ROOT / config,
                      [f"data.root={root}", f"data.pipeline={pipeline}", f"train.batch_size={batch}",
                       f"train.num_workers={workers}", f"model.num_classes={num_classes}", "data.verify=false",
                       *overrides])
    dataset = SPEC.build_train_data(cfg, DistInfo())
    rates = [epoch_rate(dataset, epoch) for epoch in range(repeat + 1)][1:]
    return {"pipeline": pipeline, "workers": workers, "batch": batch,
            "images_per_s": statistics.median(rates), "runs": rates}


def write_chart(path, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['pipeline']}\n{r['workers']} workers" for r in rows]
    fig, ax = plt.subplots(figsize=(1.2 * len(rows) + 2, 3.2))
    ax.bar(labels, [r["images_per_s"] for r in rows], color="tab:blue")
    ax.set_ylabel("images/s")
    ax.set_title("DDRNet 224 px training chain")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=DEFAULT_CONFIG)
    p.add_argument("--images", type=int, default=256)
    p.add_argument("--size", type=int, default=500)
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--pipelines", default="numpy,mindspore")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--out", default="outputs/benchmark_data_recipe")
    p.add_argument("overrides", nargs="*", help="config overrides, e.g. data.python_workers=processes")
    args = p.parse_args(argv)
    if args.images < args.batch:
        p.error(f"--images {args.images} is fewer than one batch of {args.batch}")
    from common.data.synthetic import generate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        generate("imagenet", tmp, args.images, num_val=args.classes, size=args.size, num_classes=args.classes)
        for pipeline in args.pipelines.split(","):
            for workers in (int(w) for w in args.workers.split(",")):
                rows.append(measure(args.config, tmp, args.classes, pipeline, workers, args.batch, args.repeat,
                                    args.overrides))
                print(f"{pipeline} {workers} workers: {rows[-1]['images_per_s']:.1f} images/s", flush=True)
    info = machine_info()
    command = " ".join(argv if argv is not None else sys.argv[1:])
    header = (f"{info['cpu']} ({info['cores']} cores), MindSpore {info['MindSpore']}, numpy {info['numpy']}, "
              f"{time.strftime('%Y-%m-%d')}; `python scripts/benchmark_data_recipe.py {command}` "
              f"({args.config}, {args.images} synthetic images of about {args.size} px, batch {args.batch}, "
              f"median of {args.repeat} epochs)")
    lines = [header, "", "| data.pipeline | workers | images/s | runs |", "|---|---|---|---|"]
    lines += [f"| {r['pipeline']} | {r['workers']} | {r['images_per_s']:.1f} | "
              f"{', '.join(f'{x:.0f}' for x in r['runs'])} |" for r in rows]
    best = {name: max(r["images_per_s"] for r in rows if r["pipeline"] == name) for name in args.pipelines.split(",")}
    lines += ["", "best images/s: " + ", ".join(f"{k} {v:.1f}" for k, v in best.items())]
    text = "\n".join(lines)
    print("\n" + text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "data_recipe.md").write_text(text + "\n")
    (out / "data_recipe.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    write_chart(out / "data_recipe.png", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Inference latency of the deployed network (BatchNorm folded, as eval/predict/export run it) in
MindSpore graph mode at each jit level, and of its exported MINDIR through ``nn.GraphCell``.

    python scripts/jit_levels.py [--models ddrnet23_slim,ddrnet23,u2netp] [--levels default,O0,O1,O2,mindir]
        [--repeat 15] [--threads 2]

Each model x level runs in its own process (a fresh compile); median ms of ``--repeat`` calls after
a warm-up (``common.bench.measure``), at batch 1 and the model's paper input size, random weights. Prints a markdown table.
"""
import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common  # noqa: F401  (first: caps oneDNN's ISA before MindSpore loads)

LEVELS = ("default", "O0", "O1", "O2", "mindir")


def worker(name, level, repeat, threads, work):
    """``common.bench.measure.mindspore_latency`` at one jit level, or on the exported MINDIR."""
    from common.bench.measure import _deployed, _inputs, _setup_mindspore, inference_config, mindspore_latency
    from common.export import export_model
    from models import get_spec, model_info

    spec = get_spec(name)
    job = {"model": name, "kind": "mindir" if level == "mindir" else "graph", "batches": [1],
           "size": list(model_info(name)["input_size"]), "repeat": repeat, "threads": threads}
    if level == "mindir":
        _setup_mindspore("graph", threads)  # MindSpore takes the thread count once per process
        job["threads"] = None
        cfg = inference_config(spec, name)
        path = export_model(_deployed(spec, cfg), _inputs(spec, cfg, 1, job["size"]), "MINDIR",
                            Path(work) / name).path
        job["files"] = {"mindir": {"1": str(path)}}
    elif level != "default":
        job["jit_level"] = level
    print(f"RESULT {mindspore_latency(spec, job)['rows'][0]['ms']:.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="ddrnet23_slim,ddrnet23,u2netp")
    p.add_argument("--levels", default=",".join(LEVELS))
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--worker", nargs=3, metavar=("MODEL", "LEVEL", "WORK"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1], args.repeat, args.threads, args.worker[2])
        return 0
    levels = args.levels.split(",")
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown:
        p.error(f"--levels {','.join(unknown)}: expected some of {','.join(LEVELS)}")
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.models.split(","):
            row = {}
            for level in levels:
                cmd = [sys.executable, __file__, "--worker", name, level, work, "--repeat", str(args.repeat),
                       "--threads", str(args.threads)]
                run = subprocess.run(cmd, check=False, capture_output=True, text=True)
                found = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")]
                row[level] = float(found[-1].split()[1]) if run.returncode == 0 and found else None
                print(f"{name} {level}: {row[level] if row[level] is not None else 'failed'} ms", flush=True)
            rows.append((name, row))
    print("\n| model | " + " | ".join(levels) + " |\n|---|" + "---|" * len(levels))
    for name, row in rows:
        print(f"| {name} | " + " | ".join("failed" if row[lv] is None else f"{row[lv]:.1f}" for lv in levels) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

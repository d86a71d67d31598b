"""Minimal reproduction for the README's Performance section: MindSpore 2.10's CPU convolution
kernels against PyTorch's on convolutions our models train with (CASES below), no model code.

    python scripts/kernel_repro.py [--cases NAME,...] [--threads N] [--repeat R] [--quick] [--out DIR]

Per case and framework: median ms of --repeat calls after two warm-ups, and GFLOP/s, of fwd (the
convolution, 2*N*Hout*Wout*Cout*Cin*k*k FLOPs), bwd (gradients w.r.t. input and weight from a given
output gradient, twice the FLOPs) and matmul ((N*Hout*Wout x Cin*k*k) @ (Cin*k*k x Cout), the
im2col GEMM of the same FLOPs: the rate the machine attains on that work).
MindSpore runs here in graph mode (ms.jit) under common's ONEDNN_MAX_CPU_ISA=AVX2 cap; PyTorch runs
in a subprocess (--worker torch) without it unless the user set it, like the authors' PyTorch in
scripts/benchmark.py (common/bench/torch_measure.py); without torch its columns show "-". Prints a
header, the tables and a one-line summary (geometric-mean MS/PT ratios); --out DIR also writes
kernel_repro.md and kernel_repro.json. --quick (N=1, H and W / 8) is a smoke run.
"""
import argparse
import importlib.util
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common  # first: caps oneDNN's ISA before MindSpore loads it
from common.bench.machine import machine_info, thread_env
from common.bench.measure import _setup_mindspore, _wait, median_ms  # imports MindSpore only when called
from common.bench.torch_measure import UNCAP_ENV, _setup_torch  # ... and PyTorch

FIELDS = ("name", "n", "cin", "h", "w", "cout", "k", "stride", "pad", "dilation")
# Layers at our training shapes, checked against the networks' code.
CASES = (
    # VGG-16 of RefineDet's quick CPU recipe (batch 4, 128x128); fc6 follows the 2x2 pool5 (stride 32)
    ("vgg16_conv1_2", 4, 64, 128, 128, 64, 3, 1, 1, 1),
    ("vgg16_conv3_2", 4, 256, 32, 32, 256, 3, 1, 1, 1),
    ("vgg16_conv4_2", 4, 512, 16, 16, 512, 3, 1, 1, 1),
    ("vgg16_fc6", 4, 512, 4, 4, 1024, 3, 1, 3, 3),
    # DDRNet-23-slim (planes 32) at 224, batch 4: layer1 (stride 4) and layer2 (stride 8) blocks
    ("ddrnet23s_layer1", 4, 32, 56, 56, 32, 3, 1, 1, 1),
    ("ddrnet23s_layer2", 4, 64, 28, 28, 64, 3, 1, 1, 1),
    # U-2-Net at 320, batch 4: the dilation-2 conv of stage5's RSU4F (stride 16)
    ("u2net_stage5_d2", 4, 256, 20, 20, 256, 3, 1, 2, 2),
)
KINDS = ("fwd", "bwd", "matmul")
FLOP_FACTOR = {"fwd": 1, "bwd": 2, "matmul": 1}  # times the forward FLOPs
COLUMNS = ("case", "shape", "GFLOP", "MS fwd ms", "MS bwd ms", "MS matmul ms", "PT fwd ms", "PT bwd ms",
           "PT matmul ms", "MS/PT fwd", "MS/PT bwd")
FRAMEWORKS = (("mindspore", "MS"), ("torch", "PT"))


def select_cases(text, quick=False):
    """Cases named in ``text`` (comma-separated; all when empty) as dicts, in CASES order;
    ``quick`` makes N 1 and H, W an eighth (at least 1)."""
    known = [row[0] for row in CASES]
    wanted = [n.strip() for n in text.split(",") if n.strip()] if text else known
    for name in wanted:
        if name not in known:
            raise ValueError(f"unknown case '{name}': known cases are {', '.join(known)}")
    cases = [dict(zip(FIELDS, row)) for row in CASES if row[0] in wanted]
    if quick:
        for c in cases:
            c.update(n=1, h=max(1, c["h"] // 8), w=max(1, c["w"] // 8))
    return cases


def out_size(size, c):
    return (size + 2 * c["pad"] - c["dilation"] * (c["k"] - 1) - 1) // c["stride"] + 1


def matmul_dims(c):
    """M, K, N of the im2col GEMM."""
    return c["n"] * out_size(c["h"], c) * out_size(c["w"], c), c["cin"] * c["k"] ** 2, c["cout"]


def gflop(c):
    """Forward GFLOP of the convolution (a multiply-add counts 2), equal to the matmul's."""
    return 2.0 * math.prod(matmul_dims(c)) / 1e9


def arrays(c):
    """Random float32 inputs (seed 0): x, weight, output gradient dy, matmul operands a, b."""
    import numpy as np

    rng = np.random.default_rng(0)
    m, k, n = matmul_dims(c)
    shapes = {"x": (c["n"], c["cin"], c["h"], c["w"]), "w": (c["cout"], c["cin"], c["k"], c["k"]),
              "dy": (c["n"], c["cout"], out_size(c["h"], c), out_size(c["w"], c)), "a": (m, k), "b": (k, n)}
    return {key: rng.standard_normal(s, dtype=np.float32) for key, s in shapes.items()}


def _mindspore_calls(c):
    """Zero-argument calls of fwd, bwd, matmul in graph mode, each waiting for its outputs."""
    import mindspore as ms
    from mindspore import ops

    stride, pad, dilation = c["stride"], c["pad"], c["dilation"]

    def conv(x, w):
        return ops.conv2d(x, w, None, stride, "pad", pad, dilation)

    @ms.jit
    def bwd(x, w, dy):  # compiles to Conv2DBackpropInput + Conv2DBackpropFilter alone
        return ms.grad(conv, grad_position=(0, 1), sens_param=True)(x, w, dy)

    @ms.jit
    def matmul(a, b):
        return ops.matmul(a, b)

    fwd, t = ms.jit(conv), {key: ms.Tensor(v) for key, v in arrays(c).items()}
    return {"fwd": lambda: _wait(fwd(t["x"], t["w"])), "bwd": lambda: _wait(bwd(t["x"], t["w"], t["dy"])),
            "matmul": lambda: _wait(matmul(t["a"], t["b"]))}


def _torch_calls(c):
    import torch

    t = {key: torch.from_numpy(v) for key, v in arrays(c).items()}
    x, w = t["x"].clone().requires_grad_(), t["w"].clone().requires_grad_()  # t's stay without autograd
    geometry = (None, c["stride"], c["pad"], c["dilation"])
    y = torch.nn.functional.conv2d(x, w, *geometry)  # kept: bwd reruns autograd's backward on it
    return {"fwd": lambda: torch.nn.functional.conv2d(t["x"], t["w"], *geometry),
            "bwd": lambda: torch.autograd.grad(y, (x, w), t["dy"], retain_graph=True),
            "matmul": lambda: torch.matmul(t["a"], t["b"])}


CALLS = {"mindspore": _mindspore_calls, "torch": _torch_calls}


def measure(framework, cases, threads, repeat):
    """{case: {kind: median ms}}; two warm-up calls (the first compiles MindSpore's graph)."""
    if framework == "mindspore":
        _setup_mindspore("graph", threads)  # graph mode and MindSpore's CPU thread count
    else:
        _setup_torch(threads)  # drops the AVX2 cap when asked, before torch loads; set_num_threads
    results = {}
    for i, c in enumerate(cases, 1):
        calls = CALLS[framework](c)
        times = results[c["name"]] = {kind: median_ms(calls[kind], repeat, warmup=2) for kind in KINDS}
        done = ", ".join(f"{k} {v:.2f} ms" for k, v in times.items())
        print(f"[{i}/{len(cases)}] {framework} {c['name']}: {done}", file=sys.stderr, flush=True)
    return results


def run_torch_worker(args):
    """(PyTorch's times, its ONEDNN_MAX_CPU_ISA or None) from ``--worker torch`` in a fresh
    process, or (None, why not)."""
    if importlib.util.find_spec("torch") is None:
        return None, "torch not importable"
    env = {**os.environ, **thread_env(args.threads)}
    if common.USER_ONEDNN_MAX_CPU_ISA is None:  # the cap is MindSpore's workaround, not PyTorch's
        env[UNCAP_ENV] = "1"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "torch", "--threads", str(args.threads),
           "--repeat", str(args.repeat), "--cases", ",".join(c["name"] for c in args.selected)]
    proc = subprocess.run(cmd + ["--quick"] * args.quick, stdout=subprocess.PIPE, text=True, env=env,
                          check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        print(f"warning: PyTorch worker exit {proc.returncode}; its columns show '-'", file=sys.stderr)
        return None, f"PyTorch worker failed (exit {proc.returncode})"
    out = json.loads(lines[-1])
    return out["results"], out["isa"]


def _fmt(value, spec):
    return "-" if value is None else spec.format(value)


def _geomean(values):
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def build_rows(cases, ms_times, pt_times):
    rows = []
    for c in cases:
        g, ms, pt = gflop(c), ms_times[c["name"]], (pt_times or {}).get(c["name"])
        times = {"mindspore": ms, "torch": pt}
        rows.append({**c, "gflop": g, **times,
                     "gflops": {fw: t and {k: FLOP_FACTOR[k] * g / (t[k] / 1000) for k in KINDS}
                                for fw, t in times.items()},
                     "ratio": {k: pt and ms[k] / pt[k] for k in ("fwd", "bwd")}})
    return rows


def _table(titles, body):
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def markdown(rows):
    """The ms table (COLUMNS), then the achieved GFLOP/s of each measurement."""
    times, rates = [], []
    for r in rows:
        shape = (f"{r['n']}x{r['cin']}x{r['h']}x{r['w']} -> {r['cout']}, "
                 f"k{r['k']} s{r['stride']} p{r['pad']} d{r['dilation']}")
        times.append([r["name"], shape, f"{r['gflop']:.4g}",
                      *(_fmt((r[fw] or {}).get(k), "{:.3g}") for fw, _ in FRAMEWORKS for k in KINDS),
                      *(_fmt(r["ratio"][k], "{:.2f}") for k in ("fwd", "bwd"))])
        rates.append([r["name"], *(_fmt((r["gflops"][fw] or {}).get(k), "{:.3g}")
                                   for fw, _ in FRAMEWORKS for k in KINDS)])
    titles = ["case"] + [f"{label} {k}" for _, label in FRAMEWORKS for k in KINDS]
    return "\n".join(_table(COLUMNS, times) + ["", "Achieved GFLOP/s:", ""] + _table(titles, rates))


def _count(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1")
    return int(text)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--threads", type=_count, default=2, help="intra-op threads of both frameworks")
    parser.add_argument("--repeat", type=_count, default=5, help="timed calls per measurement (median)")
    parser.add_argument("--quick", action="store_true", help="N=1 and H, W / 8: a smoke run")
    parser.add_argument("--out", help="folder for kernel_repro.md and kernel_repro.json")
    parser.add_argument("--worker", choices=("torch",), help="internal: the PyTorch process, JSON on stdout")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.selected = select_cases(args.cases, args.quick)
    except ValueError as exc:
        parser.error(str(exc))  # exit 2 before anything is imported or measured
    if args.worker:
        results = measure("torch", args.selected, args.threads, args.repeat)
        print(json.dumps({"results": results, "isa": os.environ.get("ONEDNN_MAX_CPU_ISA")}))
        return 0
    # Before MindSpore starts: its thread pools' sizes, its C++ log at errors only unless set.
    os.environ.update({"GLOG_v": "3", **os.environ, **thread_env(args.threads)})
    ms_times = measure("mindspore", args.selected, args.threads, args.repeat)
    pt_times, pt_isa = run_torch_worker(args)  # after MindSpore: never two measurements at once
    rows = build_rows(args.selected, ms_times, pt_times)
    info = machine_info()
    meta = {**info, "threads": args.threads, "repeat": args.repeat, "quick": args.quick,
            "date": time.strftime("%Y-%m-%d"), "mindspore_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
            "torch_isa": pt_isa,
            "command": "python scripts/kernel_repro.py" + (" " + shlex.join(argv) if argv else "")}
    pt_note = (f"not measured: {pt_isa}" if pt_times is None
               else f"ONEDNN_MAX_CPU_ISA={pt_isa}" if pt_isa else "ONEDNN_MAX_CPU_ISA unset")
    header = (f"{meta['date']}, {info['cpu']} ({info['cores']} cores), Python {info['python']}, MindSpore "
              f"{info['MindSpore']} (ONEDNN_MAX_CPU_ISA={meta['mindspore_isa']}), PyTorch {info['PyTorch']} "
              f"({pt_note}), numpy {info['numpy']}; "
              f"{args.threads} threads, median of {args.repeat}; `{meta['command']}`")
    geo = {k: _geomean([r["ratio"][k] for r in rows if r["ratio"][k]]) for k in ("fwd", "bwd")}
    summary = (f"no MS/PT ratios: {pt_isa}" if geo["fwd"] is None else
               f"geometric mean MS/PT over {len(rows)} cases: forward {geo['fwd']:.2f}x, "
               f"backward {geo['bwd']:.2f}x (above 1: MindSpore slower)")
    text = f"{header}\n\n{markdown(rows)}\n\n{summary}\n"
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "kernel_repro.md").write_text(text)
        data = {"meta": meta, "rows": rows, "geomean": geo}
        (out / "kernel_repro.json").write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

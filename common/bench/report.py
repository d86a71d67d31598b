"""Benchmark rows -> markdown table, JSON, PNG chart, the README block and a one-line summary.

A row is a dict: ``model``, ``backend`` (a key of ``BACKENDS``), ``batch``, ``input`` [H, W],
``ms`` (median per forward / step / batch), ``images_per_s``, and where known ``gmacs`` (per
image, inference), ``gflops`` (achieved, 2 x MACs x batch / latency), ``peak_pct`` (of the
measured FP32 peak), ``rss_mb`` (peak RSS of the worker process), ``note``, ``error``.
"""
import json
import math
from pathlib import Path

BACKENDS = {"graph": "MindSpore graph", "pynative": "MindSpore PyNative", "mindir": "MINDIR GraphCell",
            "onnx": "ONNX Runtime", "torch": "authors' PyTorch", "train": "train step",
            "torch_train": "authors' PyTorch train step", "data": "data pipeline"}
INFERENCE = ("graph", "pynative", "mindir", "onnx")  # run on this repository's export
TORCH = ("torch", "torch_train")                      # the authors' PyTorch code (bench/authors_torch)
DEFAULT_BACKENDS = ("graph", "pynative", "mindir", "onnx", "train", "data")
START, END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
COLUMNS = (("model", "model"), ("backend", "backend"), ("batch", "batch"), ("input", "input"),
           ("ms", "ms"), ("images_per_s", "images/s"), ("gmacs", "GMACs/img"), ("gflops", "GFLOP/s"),
           ("peak_pct", "% of peak"), ("rss_mb", "peak RSS MB"), ("note", "note"))
_FORMATS = {"ms": "{:.1f}", "images_per_s": "{:.1f}", "gmacs": "{:.2f}", "gflops": "{:.1f}",
            "peak_pct": "{:.1f}", "rss_mb": "{:.0f}"}


class ReadmeBlockError(ValueError):
    """The README lacks the benchmark markers (or has them out of order)."""


def add_compute(row, macs, peak_gflops):
    """Fill ``gmacs``, ``gflops`` and ``peak_pct`` of an inference row from per-image MACs."""
    if not macs or row.get("ms") is None:
        return row
    row["gmacs"] = macs / 1e9
    row["gflops"] = 2.0 * macs * row["batch"] / (row["ms"] / 1000.0) / 1e9
    if peak_gflops:
        row["peak_pct"] = 100.0 * row["gflops"] / peak_gflops
    return row


def _cell(row, key):
    value = row.get(key)
    if key == "backend":
        return BACKENDS.get(value, str(value))
    if key == "input":
        return "x".join(str(v) for v in value) if value else "-"
    if key == "ms" and row.get("error"):
        return "failed"
    if key == "note" and row.get("error"):
        return str(row["error"]).replace("|", "/")[:160]
    if value is None or value == "":
        return "-"
    return _FORMATS[key].format(value) if key in _FORMATS else str(value)


def markdown_table(rows):
    """One markdown table line per row (model x backend x batch), header first."""
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cell(row, key) for key, _ in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def latency_ratios(rows, num, den):
    """{model: [ms of backend ``num`` / ms of backend ``den``]} over the (batch, input) pairs both
    measured."""
    times = {(r["model"], r["batch"], tuple(r.get("input") or ()), r["backend"]): r["ms"]
             for r in rows if r.get("ms") and not r.get("error")}
    out = {}
    for (m, b, size, backend), ms in times.items():
        if backend == num and (m, b, size, den) in times:
            out.setdefault(m, []).append(ms / times[(m, b, size, den)])
    return out


def _geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def graph_onnx_ratio(rows):
    """Geometric mean over (model, batch) of MindSpore graph ms / ONNX Runtime ms, and the
    number of pairs; (None, 0) without a pair measured by both."""
    ratios = [r for per_model in latency_ratios(rows, "graph", "onnx").values() for r in per_model]
    return (_geomean(ratios), len(ratios)) if ratios else (None, 0)


def per_model_ratio_text(rows, num, den):
    """``"BACKEND / BACKEND latency: model 1.23x, ..."`` (geometric mean over each model's batches),
    or None without a pair."""
    per_model = latency_ratios(rows, num, den)
    if not per_model:
        return None
    return (f"{BACKENDS[num]} / {BACKENDS[den]} latency: "
            + ", ".join(f"{m} {_geomean(v):.2f}x" for m, v in sorted(per_model.items())))


def summary_line(rows, peak_gflops):
    parts = []
    ratio, pairs = graph_onnx_ratio(rows)
    if ratio is not None:
        parts.append(f"MindSpore graph / ONNX Runtime latency {ratio:.2f}x (geometric mean of {pairs} "
                     f"model-batch pair{'s' if pairs != 1 else ''})")
    parts += filter(None, (per_model_ratio_text(rows, "graph", "torch"),
                           per_model_ratio_text(rows, "train", "torch_train")))
    if peak_gflops:
        parts.append(f"FP32 peak {peak_gflops:.1f} GFLOP/s (numpy 2048^3 matmul, best of 7)")
    best = max((r for r in rows if r.get("peak_pct")), key=lambda r: r["peak_pct"], default=None)
    if best is not None:
        parts.append(f"best {best['peak_pct']:.1f}% of it ({best['model']} {BACKENDS[best['backend']]} "
                     f"batch {best['batch']})" + (" - over 100%: the machine's load varied during the run"
                                                  if best["peak_pct"] > 100 else ""))
    failed = sum(1 for r in rows if r.get("error"))
    if failed:
        parts.append(f"{failed} measurement{'s' if failed != 1 else ''} failed")
    return "; ".join(parts) if parts else "nothing measured"


def header_text(meta):
    """Where and how the table was measured (machine, versions, date, exact command)."""
    m = meta["machine"]
    peak = f"{meta['peak_gflops']:.1f} GFLOP/s" if meta.get("peak_gflops") else "not measured"
    return (f"Measured on {m['cpu']} ({m['cores']} cores, {meta['threads']} threads), MindSpore "
            f"{m['MindSpore']}, ONNX Runtime {m['ONNX Runtime']}, numpy {m['numpy']}, on {meta['date']}, "
            f"with `{meta['command']}`. FP32 peak (numpy 2048^3 matmul, best of 7, at the start and the "
            f"end of the run): {peak}.\n\n"
            f"Median of {meta['repeat']} runs after a warm-up. Inference: the deployed network with "
            "random weights at the input shown; `ms` per forward, GMACs per image counted from the "
            "exported ONNX graph (Conv, ConvTranspose, Gemm, MatMul; MatMul includes the export-safe "
            "bilinear resizes), GFLOP/s = 2 x MACs x batch / latency. "
            "Train step: the engine on the quick CPU recipe's batch (ms per step). Data pipeline: the "
            "quick recipe's training transforms on a synthetic set (ms per batch). Peak RSS: the "
            "worker process measuring that backend."
            + (_TORCH_TEXT.format(version=m.get("PyTorch", "?"), sources=_sources_text(meta))
               if meta.get("authors_torch") else ""))


_TORCH_TEXT = (
    " Authors' PyTorch (torch {version}, {sources}): the authors' network imported from their clone, "
    "random weights, eager mode; inference in eval mode under `torch.no_grad()` (BatchNorm not "
    "folded) at the same input, with our export's GMACs where the layers are the same; train step at "
    "the quick recipe's crop and batch: forward, a stand-in loss (the sum of every output's mean, not "
    "the model's loss), backward and an SGD momentum 0.9 update.")


def _sources_text(meta):
    return ", ".join(f"{s['repo']} {s.get('commit') or '(not a git checkout)'}"
                     for s in meta["authors_torch"].values())


def markdown_document(rows, meta):
    return (f"# Benchmark\n\n{header_text(meta)}\n\n{markdown_table(rows)}\n\n"
            f"{summary_line(rows, meta.get('peak_gflops'))}\n")


def find_readme_block(path):
    """(text, start, end) of ``path``: the block lies between ``start`` and ``end``."""
    path = Path(path)
    old = path.read_text()
    start, end = old.find(START), old.find(END)
    if start < 0 or end < start or old.count(START) != 1 or old.count(END) != 1:
        raise ReadmeBlockError(f"{path} needs one '{START}' line followed by one '{END}' line "
                               "around the benchmark table")
    return old, start + len(START), end


def rewrite_readme_block(path, text):
    """Replace what lies between the benchmark markers of ``path`` with ``text``."""
    old, start, end = find_readme_block(path)
    new = old[:start] + "\n" + text.strip("\n") + "\n" + old[end:]
    Path(path).write_text(new)
    return new


def write_json(path, rows, meta):
    Path(path).write_text(json.dumps({**meta, "rows": rows}, indent=1, default=str) + "\n")


def write_chart(path, rows):
    """Bars of images/s (log scale) per model: one panel per inference batch, one for training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.get("images_per_s") and not r.get("error")]
    models = sorted({r["model"] for r in ok})
    infer = (*INFERENCE, "torch")
    panels = [(f"inference, batch {b}", [r for r in ok if r["backend"] in infer and r["batch"] == b])
              for b in sorted({r["batch"] for r in ok if r["backend"] in infer})]
    panels.append(("training step and data pipeline", [r for r in ok if r["backend"] not in infer]))
    panels = [p for p in panels if p[1]] or [("nothing measured", [])]
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(6, 1.6 * len(models) + 3), 3.2 * len(panels)),
                             squeeze=False)
    for ax, (title, panel) in zip(axes[:, 0], panels):
        backends = [b for b in BACKENDS if any(r["backend"] == b for r in panel)]
        width = 0.8 / max(1, len(backends))
        for i, backend in enumerate(backends):
            values = {r["model"]: r["images_per_s"] for r in panel if r["backend"] == backend}
            xs = [j + i * width for j, m in enumerate(models) if m in values]
            ax.bar(xs, [values[m] for m in models if m in values], width, label=BACKENDS[backend])
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(models))], models)
        if panel:
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        ax.set_ylabel("images/s")
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

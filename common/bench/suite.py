"""Command line and orchestration of ``scripts/benchmark.py``: one worker process per model x
backend (clean peak RSS, no MindSpore mode switching, ONNX Runtime and PyTorch without MindSpore
loaded), one progress line per measurement on stderr, then the table, files and summary line."""
import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common.bench import authors_torch, report
from common.bench.machine import machine_info, num_cores, thread_env
from common.paths import REPO_ROOT
from common.runner.spec import replace_flags

BACKEND_ORDER = tuple(report.BACKENDS)


class BenchInputError(ValueError):
    """Unknown model or backend, bad batch list, bad --torch-src: one line, exit 2."""


class WorkerError(RuntimeError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, like the runner's input errors
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)


def build_parser(description=None):
    p = _Parser(prog="scripts/benchmark.py", description=description or __doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", help="comma-separated registry names or model folders (default: every model)")
    p.add_argument("--backends", default=",".join(report.DEFAULT_BACKENDS),
                   help=f"comma-separated, of {','.join(BACKEND_ORDER)} (default: "
                        f"{','.join(report.DEFAULT_BACKENDS)})")
    p.add_argument("--batch", default="1,8", help="inference batch sizes, comma-separated (default 1,8)")
    p.add_argument("--train-batch", type=int, default=4, help="batch of the train step and data pipeline (4)")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads of MindSpore, ONNX Runtime and the BLAS (default: the cores)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per measurement; the median is reported")
    p.add_argument("--size", type=int, default=None,
                   help="square inference input size for every model (default: the registry's)")
    p.add_argument("--out", default="outputs/benchmark", help="folder for benchmark.md/.json/.png")
    p.add_argument("--readme", action="store_true",
                   help="rewrite the block between the benchmark markers of README.md")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per worker process (3600)")
    p.add_argument("--torch-src", metavar="FOLDER=PATH[,...]", default=None,
                   help="roots of clones of the authors' repositories, per model folder (e.g. "
                        "u2net=~/src/U-2-Net): needed by the torch and torch_train backends")
    return p


def _int_list(text, flag):
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchInputError(f"{flag} {text!r}: expected comma-separated positive integers") from None
    if not values or min(values) < 1:
        raise BenchInputError(f"{flag} {text!r}: expected comma-separated positive integers")
    return sorted(set(values))


def parse_backends(text):
    names = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKEND_ORDER]
    if unknown or not names:
        raise BenchInputError(f"unknown backend {', '.join(map(repr, unknown)) or repr(text)}: "
                              f"expected some of {','.join(BACKEND_ORDER)}")
    return [b for b in BACKEND_ORDER if b in names]


def resolve_models(text, registry):
    """Registry names (a model folder stands for its variants), in the registry's order."""
    known = registry.list_models()
    if not text:
        return known
    chosen = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        try:
            spec = registry.get_spec(name)
        except KeyError as exc:
            raise BenchInputError(exc.args[0]) from None
        chosen += [name] if name in known else sorted(spec.variants)
    return [n for n in known if n in chosen]


def synthetic_args(quick_args, num):
    """The quick recipe's ``common.data.synthetic`` arguments with ``--num`` images (and a few
    validation images, which the benchmark never reads)."""
    return replace_flags(quick_args, {"--num": num, "--num-val": 1})


class Suite:
    def __init__(self, args, worker_cmd, work):
        self.args, self.worker_cmd, self.work = args, list(worker_cmd), Path(work)
        self.threads = args.threads or num_cores()
        self.logs = Path(args.out) / "logs"
        self.env = {**os.environ, **thread_env(self.threads)}
        self.env.setdefault("GLOG_v", "3")  # MindSpore's C++ log: errors only
        self.done, self.total = 0, 0
        self.sources, self.unsupported = {}, {}  # --torch-src {folder: root}; {model: why not measured}
        self.compute = {}  # model -> MACs per image (total and per op type), export parity
        self.peaks = []    # FP32 GFLOP/s measured at the start and at the end of the run

    def worker_env(self, kind):
        """The authors' PyTorch runs without the AVX2 cap that ``common`` sets for MindSpore
        (unless the user set it): capping PyTorch too would flatter the comparison."""
        import common
        from common.bench.torch_measure import UNCAP_ENV

        if kind.startswith("torch") and common.USER_ONEDNN_MAX_CPU_ISA is None:
            return {**self.env, UNCAP_ENV: "1"}
        return self.env

    def run_worker(self, job):
        """Run ``job`` in a fresh process; its output goes to logs/<model>_<kind>.log."""
        tag = f"{job.get('model', 'machine')}_{job['kind']}"
        job = {**job, "threads": self.threads, "repeat": self.args.repeat,
               "result": str(self.work / f"{tag}.result.json")}
        job_file = self.work / f"{tag}.job.json"
        job_file.write_text(json.dumps(job))
        log = self.logs / f"{tag}.log"
        with open(log, "w") as out:
            try:
                proc = subprocess.run([*self.worker_cmd, str(job_file)], stdout=out, stderr=subprocess.STDOUT,
                                      env=self.worker_env(job["kind"]), cwd=REPO_ROOT, timeout=self.args.timeout,
                                      check=False)
            except subprocess.TimeoutExpired:
                raise WorkerError(f"no result after {self.args.timeout:.0f} s (log: {log})") from None
        result = Path(job["result"])
        if proc.returncode != 0 or not result.is_file():
            lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
            raise WorkerError(f"{lines[-1] if lines else 'no output'} (exit {proc.returncode}, log: {log})")
        return json.loads(result.read_text())

    def progress(self, row):
        self.done += 1
        what = f"[{self.done}/{self.total}] {row['model']} {row['backend']} batch {row['batch']}"
        if row.get("error"):
            text = f"failed: {row['error']}"
        else:
            text = (f"{row['ms']:.1f} ms, {row['images_per_s']:.1f} images/s, "
                    f"peak RSS {row.get('rss_mb', float('nan')):.0f} MB")
        print(f"{what}: {text}", file=sys.stderr, flush=True)

    def measure(self, model, backend, batches, job):
        """Rows of one worker (one per batch), or error rows when it failed."""
        try:
            result = self.run_worker({**job, "model": model, "kind": backend})
        except WorkerError as exc:
            return self.measure_failed(model, backend, batches, str(exc))
        rows = [{"model": model, "backend": backend, **r, "rss_mb": result["peak_rss_mb"]} for r in result["rows"]]
        for row in rows:
            self.progress(row)
        return rows

    def measure_peak(self, when):
        try:
            gflops = self.run_worker({"kind": "peak"})["gflops"]
        except WorkerError as exc:
            print(f"[peak] {when}: failed: {exc}", file=sys.stderr, flush=True)
            return
        self.peaks.append(gflops)
        print(f"[peak] {when}: FP32 numpy 2048^3 matmul, {self.threads} threads: {gflops:.1f} GFLOP/s",
              file=sys.stderr, flush=True)

    def model_rows(self, model, registry, backends, batches):
        spec, info = registry.get_spec(model), registry.model_info(model)
        size = [self.args.size] * 2 if self.args.size else list(info["input_size"])
        work = self.work / model
        work.mkdir()
        rows, infer, export = [], [b for b in backends if b in report.INFERENCE], None
        base = {"batches": batches, "size": size, "work": str(work)}
        if infer:
            start = time.perf_counter()
            try:
                export = self.run_worker({**base, "model": model, "kind": "export", "mindir": "mindir" in infer})
            except WorkerError as exc:
                for backend in infer:
                    rows += self.measure_failed(model, backend, batches, f"export: {exc}")
            else:
                print(f"[export] {model} {size[0]}x{size[1]}: {export['macs'] / 1e9:.2f} GMACs/image, ONNX "
                      f"parity {export['onnx_max_diff']:.1e}, {time.perf_counter() - start:.0f} s",
                      file=sys.stderr, flush=True)
                self.compute[model] = {"input": size, "macs": export["macs"], "macs_per_op": export["macs_per_op"],
                                       "onnx_max_diff": export["onnx_max_diff"],
                                       "onnx_dynamic_batch": export["dynamic_batch"]}
            for backend in infer if export else ():
                for row in self.measure(model, backend, batches, {**base, "files": export["files"]}):
                    row["input"] = size
                    if backend == "onnx":
                        row["note"] = f"parity {export['onnx_max_diff']:.1e}"
                    row["macs"] = export["macs"]  # GFLOP/s and % of peak once the run's peak is known
                    rows.append(row)
        if "train" in backends or "data" in backends:
            rows += self.train_and_data(model, spec, backends, work)
        for backend in (b for b in report.TORCH if b in backends):
            rows += self.torch_rows(model, spec, backend, batches, size, export)
        shutil.rmtree(work, ignore_errors=True)  # exports of the large models take GBs
        return sorted(rows, key=lambda r: BACKEND_ORDER.index(r["backend"]))  # stable: batches stay in order

    def torch_rows(self, model, spec, backend, batches, size, export):
        """The authors' PyTorch network: inference at the other backends' input (with our export's
        MACs when it ran), or one train step at the quick recipe's crop and classes."""
        if model in self.unsupported:
            batches = batches if backend == "torch" else [self.args.train_batch]
            note = f"not measured: {self.unsupported[model]}"
            print(f"[{backend}] {model}: {note}", file=sys.stderr, flush=True)
            return [{"model": model, "backend": backend, "batch": b, "note": note} for b in batches]
        entry = authors_torch.ENTRIES[model]
        root = self.sources[entry.folder]
        if backend == "torch":
            job = {"batches": batches, "size": size, "authors": authors_torch.build_job(model, root)}
            rows = self.measure(model, backend, batches, job)
            for row in rows:
                row.update(input=size, note=entry.note or None)
                if export and entry.same_macs:
                    row["macs"] = export["macs"]
            return rows
        crop, classes, where = self.quick_crop(model, spec, entry.folder)
        if crop is None:
            crop, where = size, "inference size (no quick-recipe crop)"
        batch = self.args.train_batch
        job = {"batches": [batch], "batch": batch, "size": crop,
               "authors": authors_torch.build_job(model, root, classes)}
        rows = self.measure(model, backend, [batch], job)
        classes_text = (f", {job['authors']['kwargs'][entry.classes]} classes" if entry.classes else
                        f", the authors' classes (not settable; quick recipe {classes})" if classes else "")
        for row in rows:
            row["note"] = (f"{where}{classes_text}, stand-in loss, SGD momentum 0.9"
                           + (f"; {entry.train_note}" if entry.train_note else ""))
        return rows

    def quick_crop(self, model, spec, folder):
        """The quick recipe's training crop [H, W] and number of classes (None when unknown)."""
        from common.bench.measure import quick_config

        try:
            cfg = quick_config(spec, [f"model.name={model}"])
            value = cfg
            for key in authors_torch.TRAIN_SIZE_KEYS[folder].split("."):
                value = value[key]
        except Exception:  # noqa: BLE001 - any config trouble: fall back to the inference size
            return None, None, None
        crop = [int(value)] * 2 if isinstance(value, (int, float)) else [int(v) for v in value]
        classes = cfg["model"].get("num_classes") if "model" in cfg else None
        return crop, classes, "quick-recipe crop"

    def measure_failed(self, model, backend, batches, error):
        """Error rows (one per batch) for a measurement that could not run."""
        rows = [{"model": model, "backend": backend, "batch": b, "error": error} for b in batches]
        for row in rows:
            self.progress(row)
        return rows

    def train_and_data(self, model, spec, backends, work):
        batch = self.args.train_batch
        data = work / "data"
        cmd = [sys.executable, "-m", "common.data.synthetic",
               *synthetic_args(spec.quick.synthetic, max(16, 8 * batch)), "--out", str(data)]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False, env=self.env)
        wanted = [b for b in ("train", "data") if b in backends]
        if proc.returncode != 0:
            error = f"synthetic data: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}"
            return [r for b in wanted for r in self.measure_failed(model, b, [batch], error)]
        overrides = [f"model.name={model}", f"output_dir={work / 'train_run'}", "train.overwrite=true",
                     f"train.batch_size={batch}", *[f"{k}={data / v}" for k, v in spec.quick.data_keys.items()]]
        rows = []
        for backend in wanted:
            for row in self.measure(model, backend, [batch], {"overrides": overrides}):
                if not row.get("error"):
                    row["note"] = ("quick recipe" if backend == "train"
                                   else f"quick recipe, {row['workers']} workers")
                rows.append(row)
        return rows


def main(argv, load_registry, worker_cmd, description=None):
    """``load_registry()`` returns the ``models`` module (list_models, get_spec, model_info);
    ``worker_cmd`` starts a worker process given a job file. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(description).parse_args(argv)
    try:
        backends = parse_backends(args.backends)
        batches = _int_list(args.batch, "--batch")
        for flag, value, least in (("--repeat", args.repeat, 1), ("--train-batch", args.train_batch, 1),
                                   ("--threads", args.threads, 1), ("--size", args.size, 32)):
            if value is not None and value < least:
                raise BenchInputError(f"{flag} {value}: expected an integer >= {least}")
        if args.readme:
            report.find_readme_block(REPO_ROOT / "README.md")  # before hours of measuring
        registry = load_registry()
        models = resolve_models(args.models, registry)
        torch_src = torch_sources(args.torch_src, registry, models, backends)
    except (BenchInputError, report.ReadmeBlockError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run(args, argv, registry, models, backends, batches, worker_cmd, torch_src)


def torch_sources(text, registry, models, backends):
    """``--torch-src`` checked before any measuring: ({folder: root}, {model: why the torch
    backends skip it}); see :func:`common.bench.authors_torch.resolve_sources`."""
    folders = {registry.model_info(name)["folder"] for name in registry.list_models()}
    try:
        wanted = [b for b in backends if b in report.TORCH]
        return authors_torch.resolve_sources(text, folders, models, wanted)
    except authors_torch.TorchSourceError as exc:
        raise BenchInputError(str(exc)) from None


def run(args, argv, registry, models, backends, batches, worker_cmd, torch_src=({}, {})):
    out = Path(args.out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    infer = sum(b in report.INFERENCE for b in backends)
    rows = []
    with tempfile.TemporaryDirectory(prefix="benchmark_") as work:
        suite = Suite(args, worker_cmd, work)
        suite.sources, suite.unsupported = torch_src
        measured = len([m for m in models if m not in suite.unsupported])
        suite.total = (len(models) * (infer * len(batches) + ("train" in backends) + ("data" in backends))
                       + measured * (("torch" in backends) * len(batches) + ("torch_train" in backends)))
        suite.measure_peak("start")
        for model in models:
            rows += suite.model_rows(model, registry, backends, batches)
        suite.measure_peak("end")  # a shared machine's load changes: the better of the two
    peak = max(suite.peaks, default=None)
    for row in rows:
        report.add_compute(row, row.pop("macs", None), peak)
    meta = {"machine": machine_info(), "threads": suite.threads, "repeat": args.repeat,
            "date": datetime.date.today().isoformat(), "peak_gflops": peak, "peak_runs_gflops": suite.peaks,
            "compute": suite.compute,
            **({"authors_torch": authors_torch.sources_meta(models, suite.sources)}
               if any(b in report.TORCH for b in backends) else {}),
            "command": "python scripts/benchmark.py" + (" " + shlex.join(argv) if argv else "")}
    table = report.markdown_table(rows)
    line = report.summary_line(rows, peak)
    meta["summary"] = line
    (out / "benchmark.md").write_text(report.markdown_document(rows, meta))
    report.write_json(out / "benchmark.json", rows, meta)
    report.write_chart(out / "benchmark.png", rows)
    if args.readme:
        block = f"{report.header_text(meta)}\n\n{table}\n\n{line}"
        report.rewrite_readme_block(REPO_ROOT / "README.md", block)
    print(table)
    print(f"\nwrote {out / 'benchmark.md'}, benchmark.json, benchmark.png"
          + (" and the README.md block" if args.readme else ""))
    print(line)
    return 1 if any(r.get("error") for r in rows) else 0

"""One measurement per worker process: ``run_job(job, spec)`` -> result dict (JSON-able).

A job is a dict from :mod:`common.bench.suite`: ``kind`` (peak, export, graph, pynative,
mindir, onnx, train, data; torch and torch_train are :mod:`common.bench.torch_measure`'s),
``model``, ``batches``, ``size`` (H, W), ``repeat``, ``threads``, ``work`` (a folder), and per
kind ``files`` (the export's), ``overrides`` (train / data config), ``authors`` (torch kinds).
Latencies are the median of ``repeat`` timed calls after one warm-up call (graph compile,
session set-up); every call waits for its outputs on the host. Inference runs the deployed
network (``spec.deploy``) of the model's default config (the paper's classes) in eval mode with
random weights; the train step and the data pipeline use the model's quick CPU recipe.
"""
import statistics
import time
from pathlib import Path

import numpy as np

MINDSPORE_INFERENCE = ("graph", "pynative", "mindir")
WITHOUT_SPEC = ("peak", "onnx", "torch", "torch_train")  # never import MindSpore or ``models``


def median_ms(fn, repeat, warmup=1):
    """Median wall time of ``fn()`` in ms over ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, int(repeat))):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def _wait(outputs):
    """Bring every output to the host (the call is then really finished)."""
    if isinstance(outputs, (tuple, list)):
        for out in outputs:
            _wait(out)
    elif hasattr(outputs, "asnumpy"):
        outputs.asnumpy()


def _setup_mindspore(mode, threads):
    import mindspore as ms

    from common.engine.builder import setup_device

    setup_device("CPU", mode)
    if threads:
        ms.device_context.cpu.op_tuning.threads_num(int(threads))


def inference_config(spec, name):
    from common.config import load_config

    return load_config(spec.defaults, None, [f"model.name={name}"])


def quick_config(spec, overrides):
    from common.config import load_config
    from common.paths import REPO_ROOT

    return load_config(spec.defaults, REPO_ROOT / spec.quick.config, list(overrides))


def _inputs(spec, cfg, batch, size):
    from common.tasks import get_task

    if spec.num_inputs != 1:
        raise ValueError(f"models/{spec.folder} takes {spec.num_inputs} inputs; the benchmark feeds one")
    return get_task(spec.task).example_input(spec, cfg, batch, tuple(size))


def _deployed(spec, cfg):
    """The network as eval / predict / export run it (common.runner.commands.load_network)."""
    from common.fold_bn import fold_batchnorm

    net = spec.deploy(spec.build_net(cfg), cfg)
    fold_batchnorm(net)
    net.set_train(False)
    return net


def _latency_rows(run, batches, repeat):
    rows = []
    for batch in batches:
        latency = median_ms(run(batch), repeat)
        rows.append({"batch": batch, "ms": latency, "images_per_s": 1000.0 * batch / latency})
    return rows


# ---------------------------------------------------------------- export + MACs

def export_files(spec, job):
    """ONNX (dynamic batch when the graph takes it, else one file per batch) with its parity
    check, per-image MACs from it, and one MINDIR per batch when ``job["mindir"]``."""
    from common.bench.macs import count_macs
    from common.export import export_model

    _setup_mindspore("graph", job["threads"])
    cfg = inference_config(spec, job["model"])
    net = _deployed(spec, cfg)
    work, size, atol = Path(job["work"]), job["size"], job.get("atol", 1e-3)
    first = export_model(net, _inputs(spec, cfg, 1, size), "ONNX", work / "model", atol=atol)
    onnx = {b: first.path for b in job["batches"]} if first.dynamic_batch else {1: first.path}
    for b in job["batches"]:
        if b not in onnx:
            onnx[b] = export_model(net, _inputs(spec, cfg, b, size), "ONNX", work / f"model_b{b}",
                                   atol=atol, dynamic_batch=False).path
    mindir = {}
    if job.get("mindir"):
        for b in job["batches"]:
            mindir[b] = export_model(net, _inputs(spec, cfg, b, size), "MINDIR", work / f"model_b{b}",
                                     atol=atol).path
    macs, per_op = count_macs(first.path)
    return {"files": {"onnx": {str(b): str(p) for b, p in onnx.items()},
                      "mindir": {str(b): str(p) for b, p in mindir.items()}},
            "macs": macs, "macs_per_op": per_op, "onnx_max_diff": first.max_diff,
            "dynamic_batch": first.dynamic_batch}


# ---------------------------------------------------------------- inference

def mindspore_latency(spec, job):
    """Graph mode (at ``job["jit_level"]`` when given) or PyNative on the deployed network, or the
    MINDIR through ``nn.GraphCell``."""
    import mindspore as ms
    from mindspore import Tensor, nn

    kind = job["kind"]
    _setup_mindspore("pynative" if kind == "pynative" else "graph", job["threads"])
    cfg = inference_config(spec, job["model"])
    net = None if kind == "mindir" else _deployed(spec, cfg)
    if job.get("jit_level"):  # scripts/jit_levels.py
        net.set_jit_config(ms.JitConfig(jit_level=job["jit_level"]))

    def run(batch):
        x = Tensor(_inputs(spec, cfg, batch, job["size"]))
        cell = nn.GraphCell(ms.load(job["files"]["mindir"][str(batch)])) if kind == "mindir" else net
        return lambda: _wait(cell(x))

    return {"rows": _latency_rows(run, job["batches"], job["repeat"])}


def onnx_latency(job):
    """ONNX Runtime on the exported file(s); imports neither MindSpore nor ``models``."""
    from common.onnx_runtime import onnx_session

    sessions = {}

    def run(batch):
        path = job["files"]["onnx"][str(batch)]
        session = sessions.setdefault(path, onnx_session(path, threads=job["threads"]))
        channels = session.get_inputs()[0].shape[1]  # static in every exported graph
        shape = (batch, channels, *job["size"])
        feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
        return lambda: session.run(None, feed)

    return {"rows": _latency_rows(run, job["batches"], job["repeat"])}


# ---------------------------------------------------------------- training

class _StepRecorder:
    """Engine callback keeping each logging window's record (log_interval 1: one per step)."""

    def __init__(self):
        self.records = []

    def on_log(self, trainer, record):
        self.records.append(record)


def train_step(spec, job):
    """Training steps through the engine (``build_trainer`` + ``Trainer.fit``) on one real batch
    of the quick recipe's pipeline, repeated in memory: the step alone, without decoding.
    Each window of the engine's log (one step, read back on the host) gives one time."""
    import mindspore.dataset as ds

    from common.engine.builder import build_trainer
    from common.engine.distributed import DistInfo
    from common.engine.trainer import seed_everything

    cfg = quick_config(spec, [*job["overrides"], "train.epochs=1", "train.log_interval=1"])
    _setup_mindspore(cfg.mode, job["threads"])
    seed_everything(cfg.seed)
    dist = DistInfo()
    pipeline = spec.build_train_data(cfg, dist)
    names = pipeline.get_col_names()
    batch = next(pipeline.create_tuple_iterator(num_epochs=1, output_numpy=True))
    steps = 1 + max(1, int(job["repeat"]))  # the first window holds the compile
    columns = tuple(np.concatenate([np.asarray(c)] * steps) for c in batch)
    size = len(batch[0])
    dataset = ds.NumpySlicesDataset(columns, column_names=names, shuffle=False).batch(size)
    net = spec.build_net(cfg)
    trainer = build_trainer(cfg, net, spec.build_loss(cfg), steps, dist, None, num_inputs=spec.num_inputs,
                            model_name=job["model"], pretrained_key_map=spec.pretrained_key_map)
    recorder = _StepRecorder()
    trainer.callbacks = [recorder]  # no checkpoints or log files: only the step times
    trainer.fit(dataset, 1)
    times = [r["step_time_ms"] for r in recorder.records[1:]]
    if not times:
        raise RuntimeError(f"the engine logged {len(recorder.records)} windows for {steps} steps")
    latency = statistics.median(times)
    return {"rows": [{"batch": size, "ms": latency, "images_per_s": 1000.0 * size / latency,
                      "input": list(batch[0].shape[2:]), "loss": recorder.records[-1]["loss"]}]}


def run_epoch(dataset, epoch):
    """Iterate one epoch of a training pipeline as the engine does (``set_epoch`` on its sampler,
    a fresh iterator); (images, the last batch's first-column H x W)."""
    sampler = getattr(dataset, "epoch_sampler", None)
    if sampler is not None:
        sampler.set_epoch(epoch)
    images, shape = 0, []
    for columns in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True):
        images += columns[0].shape[0]
        shape = list(columns[0].shape[2:])
    return images, shape


def data_pipeline(spec, job):
    """Images/s of ``spec.build_train_data`` (the model's own transform chain and configured
    workers) over whole epochs of a synthetic set; a fresh iterator per epoch, as the engine."""
    from common.engine.distributed import DistInfo

    cfg = quick_config(spec, job["overrides"])
    dataset = spec.build_train_data(cfg, DistInfo())
    batch, steps = dataset.get_batch_size(), dataset.get_dataset_size()
    shape = []

    def epoch(index):
        shape[:] = run_epoch(dataset, index)[1]

    counter = iter(range(10**6))
    latency = median_ms(lambda: epoch(next(counter)), job["repeat"])
    return {"rows": [{"batch": batch, "ms": latency / steps, "images_per_s": 1000.0 * batch * steps / latency,
                      "input": shape, "workers": cfg.train.num_workers, "images": batch * steps}]}


def run_job(job, spec=None):
    """The measurement ``job["kind"]`` names; ``spec`` is needed by all but ``WITHOUT_SPEC``."""
    from common.bench.machine import fp32_peak_gflops

    kind = job["kind"]
    if kind == "peak":
        return {"gflops": fp32_peak_gflops()}
    if kind == "onnx":
        return onnx_latency(job)
    if kind in ("torch", "torch_train"):
        from common.bench import torch_measure

        return (torch_measure.torch_latency if kind == "torch" else torch_measure.torch_train_step)(job)
    table = {"export": export_files, "train": train_step, "data": data_pipeline,
             **dict.fromkeys(MINDSPORE_INFERENCE, mindspore_latency)}
    return table[kind](spec, job)


def worker_main(job_path, resolve_spec):
    """Worker process entry: run the job in ``job_path`` and write its result, with this
    process's peak RSS, to ``job["result"]``. ``resolve_spec(name)`` gives the ModelSpec
    (not called for the peak, ONNX Runtime and PyTorch jobs, which therefore never import MindSpore)."""
    import json

    from common.bench.machine import peak_rss_mb

    job = json.loads(Path(job_path).read_text())
    spec = None if job["kind"] in WITHOUT_SPEC else resolve_spec(job["model"])
    result = run_job(job, spec)
    result["peak_rss_mb"] = peak_rss_mb()
    Path(job["result"]).write_text(json.dumps(result, default=str))
    return 0

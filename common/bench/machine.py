"""What the benchmark records about the machine: CPU, cores, library versions, the FP32 peak of
a large matmul and the peak resident memory of a process."""
import os
import platform
import re
import time
from importlib import metadata
from pathlib import Path

VERSIONED = (("MindSpore", "mindspore"), ("ONNX Runtime", "onnxruntime"), ("numpy", "numpy"),
             ("PyTorch", "torch"))


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The CPU's model name (first ``model name`` line of /proc/cpuinfo), else platform's."""
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path(cpuinfo).read_text(), re.MULTILINE)
    except OSError:
        match = None
    return match.group(1).strip() if match else (platform.processor() or platform.machine())


def num_cores():
    """Cores this process may run on (the affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def versions():
    """{library label: installed version} without importing the libraries."""
    out = {}
    for label, dist in VERSIONED:
        try:
            out[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[label] = "not installed"
    return out


def machine_info():
    return {"cpu": cpu_model(), "cores": num_cores(), "python": platform.python_version(), **versions()}


def fp32_peak_gflops(n=2048, runs=7):
    """Best-of-``runs`` GFLOP/s (2 n^3 / time) of an n x n x n float32 numpy matmul. Threads
    follow the BLAS's own settings (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool, pages
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


def peak_rss_mb(status="/proc/self/status"):
    """This process's peak resident set (VmHWM) in MiB; ru_maxrss where /proc is missing."""
    try:
        match = re.search(r"^VmHWM:\s+(\d+)\s+kB", Path(status).read_text(), re.MULTILINE)
        if match:
            return int(match.group(1)) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def thread_env(threads):
    """Environment variables that cap the BLAS / OpenMP pools of a worker at ``threads``."""
    n = str(int(threads))
    return {"OMP_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}

"""Inference speed of every registered model: MindSpore graph mode vs ONNX Runtime, batch 1.

    python scripts/benchmark_models.py [--models u2netp ddrnet23_slim] [--repeat 7] [--threads 2]

Prints a table of median milliseconds per forward (after a warm-up/compile call) and the ratio
MindSpore / ONNX Runtime measured in the same run. The ONNX file is exported (with its parity
check) into a temporary folder. Timings on a shared machine are noisy: read the ratios.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import mindspore as ms
import numpy as np
from mindspore import Tensor

from common.export import export_model, onnx_session
from models import create_model, list_models, model_info


def _median_ms(fn, repeat):
    fn()  # warm-up (graph compile / session init)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def benchmark(name, repeat, threads, workdir):
    size = model_info(name)["input_size"][0]  # the paper's input size, from the registry
    net = create_model(name)
    net.set_train(False)
    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    tensor = Tensor(x)
    ms_ms = _median_ms(lambda: net(tensor), repeat)
    result = export_model(net, x, "ONNX", Path(workdir) / name, atol=1e-3)
    session = onnx_session(result.path, threads=threads)
    feed = {session.get_inputs()[0].name: x}
    ort_ms = _median_ms(lambda: session.run(None, feed), repeat)
    return size, ms_ms, ort_ms, result.max_diff


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=None, help="registry names (default: all)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    args = parser.parse_args(argv)
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    names = args.models or list_models()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in names:
            rows.append((name, *benchmark(name, args.repeat, args.threads, workdir)))
    print(f"\n{'model':<16}{'input':>8}{'MindSpore ms':>14}{'ONNX RT ms':>12}{'MS/ORT':>8}{'max diff':>10}")
    for name, size, ms_ms, ort_ms, diff in rows:
        print(f"{name:<16}{size:>8}{ms_ms:>14.1f}{ort_ms:>12.1f}{ms_ms / ort_ms:>8.2f}{diff:>10.1e}")
    print(f"(batch 1, median of {args.repeat} runs after one warm-up call)")


if __name__ == "__main__":
    main()

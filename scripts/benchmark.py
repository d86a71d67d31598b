"""Benchmark every registered model on this machine: inference (MindSpore graph mode, PyNative,
the exported MINDIR, ONNX Runtime), a training step, the training data pipeline, peak memory,
MACs and the share of the machine's FP32 peak.

    python scripts/benchmark.py [--models NAME,...] [--backends graph,pynative,mindir,onnx,train,data]
        [--batch 1,8] [--train-batch 4] [--threads N] [--repeat R] [--size S] [--out DIR] [--readme]
        [--torch-src FOLDER=PATH,...]

Two backends outside the default list time the authors' PyTorch code on the same machine: torch
(inference) and torch_train (a train step with a stand-in loss). They import the authors' networks
from clones the user makes, named per model folder by --torch-src (common/bench/authors_torch.py).

Each model x backend runs in its own worker process (its peak RSS is that backend's); the median
of --repeat runs after a warm-up is reported. Prints a markdown table (one row per model x backend
x batch), writes benchmark.md, benchmark.json and benchmark.png into --out (default
outputs/benchmark), and ends with a one-line summary. --readme rewrites the table between the
benchmark markers of README.md. Machines are noisy: compare ratios taken in one run.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before any worker starts MindSpore)
from common.bench import measure, suite


def _registry():
    import models

    return models


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--worker"] and len(argv) == 2:  # a worker process started by the suite
        return measure.worker_main(argv[1], lambda name: _registry().get_spec(name))
    return suite.main(argv, _registry, [sys.executable, str(Path(__file__).resolve()), "--worker"], __doc__)


if __name__ == "__main__":
    sys.exit(main())

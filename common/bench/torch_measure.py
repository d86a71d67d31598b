"""The ``torch`` and ``torch_train`` measurements: the authors' PyTorch network (built by
:func:`common.bench.authors_torch.build_authors_model` from ``job["authors"]``) in eager mode.
Imports neither MindSpore nor ``models``: the worker's peak RSS is PyTorch's.

``torch``        eval mode under ``torch.no_grad()``, per batch of ``job["batches"]`` at ``job["size"]``
``torch_train``  one step at ``job["batch"]`` and ``job["size"]``: forward, a stand-in loss that touches
                 every output (the sum of each output's mean), backward, SGD momentum 0.9 update
Random weights and a random input (seed 0); the median of ``repeat`` calls after one warm-up.
"""
import os

from common.bench.authors_torch import build_authors_model
from common.bench.measure import _latency_rows, median_ms

UNCAP_ENV = "ZOO_BENCH_UNCAP_ISA"  # set by the suite when the AVX2 cap is common's, not the user's


def uncap_isa(environ=None):
    """Drop the AVX2 cap when the suite asked for it: it is MindSpore's workaround, not PyTorch's."""
    environ = os.environ if environ is None else environ
    if environ.pop(UNCAP_ENV, None):
        environ.pop("ONEDNN_MAX_CPU_ISA", None)


def _setup_torch(threads):
    uncap_isa()  # before torch loads oneDNN
    import torch

    torch.set_num_interop_threads(1)  # before any parallel work
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    return torch


def stand_in_loss(outputs):
    """Sum over every tensor of ``outputs`` (nested tuples / lists / dicts) of its float mean."""
    if isinstance(outputs, dict):
        outputs = list(outputs.values())
    if isinstance(outputs, (tuple, list)):
        return sum(stand_in_loss(o) for o in outputs)
    return outputs.float().mean()


def _input(torch, batch, size, channels=3):
    return torch.randn(batch, channels, *size, generator=torch.Generator().manual_seed(0))


def torch_latency(job):
    torch = _setup_torch(job["threads"])
    net = build_authors_model(job["authors"]).eval()

    def run(batch):
        x = _input(torch, batch, job["size"])
        return lambda: net(x)

    with torch.no_grad():
        return {"rows": _latency_rows(run, job["batches"], job["repeat"])}


def torch_train_step(job):
    torch = _setup_torch(job["threads"])
    net = build_authors_model(job["authors"]).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
    batch = int(job["batch"])
    x = _input(torch, batch, job["size"])
    losses = []

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = stand_in_loss(net(x))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    latency = median_ms(step, job["repeat"], warmup=1)
    return {"rows": [{"batch": batch, "ms": latency, "images_per_s": 1000.0 * batch / latency,
                      "input": list(job["size"]), "loss": losses[-1]}]}

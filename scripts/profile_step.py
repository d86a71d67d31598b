"""Where a training step's time goes: forward, loss, loss gradient, and the network's backward.

    python scripts/profile_step.py --model refinedet320_vgg16 [--batch 8] [--repeat 3] [key=value ...]

Takes one real batch of the model's quick CPU recipe (its own training pipeline on a synthetic set
in a temporary folder, or ``data.*=`` overrides pointing at real data) and times, in graph mode,
median of ``--repeat`` calls after a compile call each:

- forward: the network in training mode;
- forward + loss;
- loss gradient only: the gradient of the loss with respect to the network's outputs (matching,
  hard-negative mining, ... for a detector);
- forward + loss + backward: ``value_and_grad`` with respect to every trainable parameter.

The backward's share (the last row minus the second) separates the network's kernels from the
model's own loss code. No optimizer update (the engine's train step adds it; see
``scripts/benchmark.py --backends train``).
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mindspore as ms
from mindspore import Tensor

from common.config import load_config
from common.engine.distributed import DistInfo
from common.paths import REPO_ROOT
from models import get_spec


def _wait(out):
    for t in out if isinstance(out, (tuple, list)) else (out,):
        _wait(t) if isinstance(t, (tuple, list)) else t.asnumpy()


def median_ms(fn, args, repeat):
    _wait(fn(*args))  # compile
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        _wait(fn(*args))
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def one_batch(spec, cfg):
    pipeline = spec.build_train_data(cfg, DistInfo())
    return [Tensor(c) for c in next(pipeline.create_tuple_iterator(num_epochs=1, output_numpy=True))]


def profile(spec, cfg, repeat):
    batch = one_batch(spec, cfg)
    k = int(spec.num_inputs)  # a plain int: graph mode cannot read the spec object
    inputs, targets = batch[:k], batch[k:]
    net, loss = spec.build_net(cfg), spec.build_loss(cfg)
    net.set_train(True)
    has_parts = bool(getattr(loss, "part_names", ()))

    def total(out, *t):
        value = loss(out, *t)
        return value[0] if has_parts else value

    def forward(*x):
        return net(*x)

    def forward_loss(*b):
        return total(net(*b[:k]), *b[k:])

    outputs = ms.jit(forward)(*inputs)
    outputs = tuple(outputs) if isinstance(outputs, (tuple, list)) else (outputs,)
    single, n_out = len(outputs) == 1, len(outputs)

    def loss_of_outputs(*b):
        out = b[0] if single else tuple(b[:n_out])
        return total(out, *b[n_out:])

    loss_grad = ms.value_and_grad(loss_of_outputs, tuple(range(n_out)))
    full_grad = ms.value_and_grad(forward_loss, None, net.trainable_params())
    rows = [("forward", ms.jit(forward), inputs),
            ("forward + loss", ms.jit(forward_loss), batch),
            ("loss gradient only (w.r.t. the outputs)", ms.jit(loss_grad), [*outputs, *targets]),
            ("forward + loss + backward", ms.jit(full_grad), batch)]
    return [(name, median_ms(fn, args, repeat)) for name, fn, args in rows], list(batch[0].shape)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="registry name, e.g. refinedet320_vgg16")
    parser.add_argument("--batch", type=int, default=None, help="default: the quick recipe's")
    parser.add_argument("--repeat", type=int, default=3)
    args, overrides = parser.parse_known_args(argv)
    spec = get_spec(args.model)
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    with tempfile.TemporaryDirectory(prefix="profile_step_") as tmp:
        data = Path(tmp) / "data"
        if not any(o.startswith("data.") for o in overrides):
            subprocess.run([sys.executable, "-m", "common.data.synthetic", *spec.quick.synthetic, "--out", str(data)],
                           cwd=REPO_ROOT, check=True, capture_output=True)
            overrides = [*(f"{k}={data / v}" for k, v in spec.quick.data_keys.items()), *overrides]
        if args.batch:
            overrides.append(f"train.batch_size={args.batch}")
        cfg = load_config(spec.defaults, REPO_ROOT / spec.quick.config,
                          [f"model.name={args.model}", "train.num_workers=1", *overrides])
        rows, shape = profile(spec, cfg, args.repeat)
    full = rows[-1][1]
    print(f"\n{args.model}, input {'x'.join(map(str, shape))}, graph mode, median of {args.repeat}\n")
    print("| part | ms | share of forward + loss + backward |\n|---|---|---|")
    for name, ms_ in rows:
        print(f"| {name} | {ms_:.0f} | {100 * ms_ / full:.0f} % |")
    backward = full - rows[1][1]
    print(f"| backward of the network and loss (last - second) | {backward:.0f} | {100 * backward / full:.0f} % |")
    print(f"\nbackward / forward: {backward / rows[0][1]:.1f}x")


if __name__ == "__main__":
    main()

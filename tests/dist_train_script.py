"""Worker script for the msrun data-parallel test: trains TinyNet on its shard with an
evaluation every epoch (rank 0 evaluates, rank 1 waits at the barrier), saves weights."""
import sys
import time

import mindspore as ms
import numpy as np
from mindspore import nn

from common.checkpoint import state_dict
from common.engine.callbacks import EvalCallback, LogCallback
from common.engine.distributed import init_distributed, setup_logging
from common.engine.optim import build_optimizer
from common.engine.trainer import Trainer, seed_everything
from tests.engine_utils import TinyNet, tiny_data


def main(out_dir):
    ms.set_device("CPU")
    dist = init_distributed()
    setup_logging(dist.rank)
    seed_everything(0)
    net = TinyNet()
    optim = build_optimizer("momentum", net.trainable_params(), 0.1)
    data = tiny_data(n=16, batch=4, shard=(dist.rank, dist.size))
    first = next(data.create_tuple_iterator(output_numpy=True))[0]
    evals = []

    def evaluate(network):
        evals.append(time.time())
        time.sleep(3)  # the other rank must wait at the barrier, not run ahead into the next epoch
        return {"acc": float(len(evals))}

    ev = EvalCallback(evaluate, f"{out_dir}/ev", metric="acc", interval=1)
    Trainer(net, nn.CrossEntropyLoss(), optim, dist=dist, output_dir=out_dir,
            callbacks=[LogCallback(1), ev]).fit(data, epochs=2)
    np.savez(f"{out_dir}/rank{dist.rank}.npz", first_batch=first, size=dist.size, evals=len(evals),
             finished=time.time(), **state_dict(net))


if __name__ == "__main__":
    main(sys.argv[1])

"""Distributed set-up for msrun, mpirun (GPU/NCCL) and Ascend rank-table launches."""
import logging
import os

import mindspore as ms

LAUNCHER_ENV = {
    "msrun": ("MS_WORKER_NUM", "MS_ROLE"),
    "mpirun": ("OMPI_COMM_WORLD_SIZE",),
    "ranktable": ("RANK_TABLE_FILE",),
}


def detect_launcher(env=None):
    """Name of the launcher that started this process, or None for a single process."""
    env = os.environ if env is None else env
    if env.get("MS_ROLE") == "MS_WORKER" or int(env.get("MS_WORKER_NUM", "1") or 1) > 1:
        return "msrun"
    if int(env.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1:
        return "mpirun"
    if env.get("RANK_TABLE_FILE") and int(env.get("RANK_SIZE", "1") or 1) > 1:
        return "ranktable"
    return None


class DistInfo:
    def __init__(self, rank=0, size=1, launcher=None):
        self.rank, self.size, self.launcher = rank, size, launcher

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.size > 1

    def __repr__(self):
        return f"DistInfo(rank={self.rank}, size={self.size}, launcher={self.launcher})"


def init_distributed(force=None):
    """``init()`` plus data-parallel context with gradient averaging when launched in parallel.

    ``force``: True requires a launcher, False never initialises, None detects.
    """
    launcher = detect_launcher()
    if force is False or (force is None and launcher is None):
        return DistInfo()
    if launcher is None:
        raise RuntimeError("distributed run requested but no launcher environment found "
                           "(expected msrun, mpirun or RANK_TABLE_FILE + RANK_SIZE)")
    from mindspore.communication import get_group_size, get_rank, init

    init()
    size, rank = get_group_size(), get_rank()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL,
                                 gradients_mean=True, device_num=size)
    logging.getLogger("zoo").info("distributed: rank %d of %d (%s)", rank, size, launcher)
    return DistInfo(rank, size, launcher)


def setup_logging(rank=0, level=logging.INFO):
    """Log lines carry the rank so interleaved multi-process logs stay readable."""
    logger = logging.getLogger("zoo")
    logger.handlers.clear()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s [rank {rank}] %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def barrier():
    """Block until every rank of the default group arrives (used around rank-0 evaluation).

    An all-reduce of one value read back on the host: MindSpore's Barrier op has no CPU kernel,
    the all-reduce runs on every backend."""
    import numpy as np
    from mindspore import Tensor, ops

    ops.AllReduce()(Tensor(np.ones(1, np.float32))).asnumpy()

"""The ImageNet training chain of ``transforms_cls`` on MindSpore's C++ operators.

``imagenet_train_native`` returns ``build_dataset`` keyword arguments (``transform``, ``maps``,
``batch_maps``) for the same recipe as ``imagenet_train_transform`` + ``MixupCutmix``:

- C++ (``mindspore.dataset``, outside the GIL): RandomResizedCrop with ``Inter.PILCUBIC`` (PIL's
  antialiased bicubic, so the crop matches ours to a few grey levels), the flip, Normalize,
  HWC2CHW, OneHot with label smoothing, and MixUpBatch / CutMixBatch.
- Python (our timm-faithful code, in threads or, with ``python_workers="processes"``, in worker
  processes): RandAugment (MindSpore's is torchvision's, a different op set without timm's
  per-op probability and magnitude noise) and RandomErasing (MindSpore's is Python too).

Decoding stays in the source, so a corrupt file is named in the error as on the numpy path. What
differs from the numpy path: the augmentation's randomness comes from MindSpore's seed and each
worker's generator, so it is not a function of (seed, epoch, index) and a run is not
bit-reproducible (the sample order still is: it is the loader's sampler); CutMixBatch draws a box
per image (timm's "elem" mode) where the numpy path draws one per batch (DeiT's "batch" mode);
MixUpBatch mixes a batch with a shuffled copy of itself (the numpy path: with its reverse).
"""
import os

import numpy as np

from .transforms import IMAGENET_MEAN, IMAGENET_STD

PYTHON_WORKERS = ("threads", "processes")


class WorkerRandomOp:
    """A ``(sample, rng) -> sample`` transform of ours as a ``Dataset.map`` operation on the image
    column. One generator per process, seeded by (seed, pid), shared by its worker threads (numpy
    generators lock their state): it runs on across epochs, where a per-thread seed would replay
    the same draws in every epoch's new thread pool."""

    def __init__(self, transform, seed):
        self.transform, self.seed = transform, int(seed)
        self._rng, self._pid = None, None

    def __call__(self, image):
        if self._pid != os.getpid():  # first call here, or a copy in a worker process
            self._rng, self._pid = np.random.default_rng([self.seed, os.getpid()]), os.getpid()
        return self.transform({"image": image}, self._rng)["image"]

    def __getstate__(self):
        return {"transform": self.transform, "seed": self.seed}

    def __setstate__(self, state):
        self.__init__(state["transform"], state["seed"])


def _mix_op(mixup_alpha, cutmix_alpha, prob, switch_prob):
    import mindspore.dataset.transforms as T
    import mindspore.dataset.vision as V

    ops = []
    if mixup_alpha > 0:
        ops.append(V.MixUpBatch(float(mixup_alpha)))
    if cutmix_alpha > 0:
        ops.append(V.CutMixBatch(V.ImageBatchFormat.NCHW, float(cutmix_alpha), 1.0))
    if not ops or prob <= 0:
        return None
    if len(ops) == 2 and switch_prob != 0.5:
        raise ValueError(f"data.switch_prob {switch_prob}: the mindspore pipeline chooses Mixup or "
                         f"CutMix with equal odds (RandomChoice), so it takes 0.5 only; use "
                         f"data.pipeline=numpy for other values")
    op = ops[0] if len(ops) == 1 else T.RandomChoice(ops)
    return op if prob >= 1 else T.RandomApply([op], float(prob))


def imagenet_train_native(num_classes, seed, size=224, auto_augment="rand-m9-mstd0.5-inc1", erase_p=0.25,
                          interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD,
                          scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), mixup_alpha=0.8, cutmix_alpha=1.0,
                          mix_prob=1.0, switch_prob=0.5, label_smoothing=0.1, python_workers="threads"):
    """``build_dataset`` keyword arguments (``transform``, ``maps``, ``batch_maps``) of the
    DeiT chain on MindSpore's operators; the source must give decoded HWC uint8 RGB images."""
    import mindspore.dataset.transforms as T
    import mindspore.dataset.vision as V
    from mindspore.dataset.vision import Inter

    from .randaugment import RandAugment
    from .transforms_cls import RandomErasing

    if interpolation != "bicubic":
        raise ValueError(f"data.interpolation {interpolation!r}: the mindspore pipeline has PIL's "
                         f"bicubic in C++ (Inter.PILCUBIC) only; use data.pipeline=numpy for others")
    if python_workers not in PYTHON_WORKERS:
        raise ValueError(f"data.python_workers {python_workers!r}: expected one of {', '.join(PYTHON_WORKERS)}")
    size = (size, size) if np.isscalar(size) else tuple(size)
    python = {"python_multiprocessing": python_workers == "processes"}

    maps = [{"operations": [V.RandomResizedCrop(size, tuple(scale), tuple(ratio), Inter.PILCUBIC),
                            V.RandomHorizontalFlip()], "input_columns": ["image"]}]
    if auto_augment:
        augment = RandAugment.from_config(auto_augment, interpolation=interpolation)
        maps.append({"operations": [WorkerRandomOp(augment, seed)], "input_columns": ["image"], **python})
    maps.append({"operations": [V.Normalize([255.0 * m for m in mean], [255.0 * s for s in std])],
                 "input_columns": ["image"]})
    if erase_p > 0:
        erase = RandomErasing(p=erase_p, mode="pixel")
        maps.append({"operations": [WorkerRandomOp(erase, seed + 1)], "input_columns": ["image"], **python})
    maps.append({"operations": [V.HWC2CHW()], "input_columns": ["image"]})
    maps.append({"operations": [T.TypeCast(np.int32), T.OneHot(int(num_classes), float(label_smoothing))],
                 "input_columns": ["label"]})
    mix = _mix_op(mixup_alpha, cutmix_alpha, mix_prob, switch_prob)
    batch_maps = [] if mix is None else [{"operations": [mix], "input_columns": ["image", "label"]}]
    return {"transform": None, "maps": maps, "batch_maps": batch_maps}

"""Batched MindSpore pipelines over the random-access readers.

The transform runs inside the generator source with ``rng = default_rng([seed, epoch, index])``,
so a sample's augmentation depends only on (seed, epoch, index): not on worker count, thread
timing or rank. The epoch reaches the workers through the sampler, which yields
``epoch * len(source) + index``. Shuffling and sharding are done by that sampler too: every rank
draws the same permutation for an epoch and takes its own slice.
"""
import inspect

import numpy as np

from .errors import DatasetError


def shard_indices(num_samples, epoch, shuffle, num_shards, shard_id, seed, even):
    """Indices of one shard for one epoch.

    ``even=True`` gives every shard ``num_samples // num_shards`` samples (the few left over after
    this epoch's shuffle are skipped, so ranks run the same number of steps); ``even=False`` gives
    disjoint shards that together cover every sample once (evaluation).
    """
    if shuffle:
        order = np.random.default_rng([seed, epoch]).permutation(num_samples)
    else:
        order = np.arange(num_samples)
    if even:
        order = order[: num_samples // num_shards * num_shards]
    return order[shard_id::num_shards]


def _make_sampler(num_samples, shuffle, num_shards, shard_id, seed, even, epoch_ref):
    import mindspore.dataset as ds

    class EpochShardSampler(ds.Sampler):
        """Yields ``epoch * n + index``. MindSpore copies the sampler into each new iterator, so
        a loop that makes one iterator per epoch calls ``set_epoch`` first; a single iterator
        over several epochs counts on by itself."""

        def __init__(self):
            self._epoch = epoch_ref[0]
            self._length = len(shard_indices(num_samples, 0, False, num_shards, shard_id, seed, even))
            super().__init__()

        def set_epoch(self, epoch):
            self._epoch = epoch_ref[0] = int(epoch)

        def __iter__(self):
            epoch, self._epoch = self._epoch, self._epoch + 1
            for index in shard_indices(num_samples, epoch, shuffle, num_shards, shard_id, seed, even):
                yield epoch * num_samples + int(index)

        def __len__(self):
            return self._length

    return EpochShardSampler()


class ConcatSource:
    """Several random-access sources read as one (e.g. VOC2007 + VOC2012 trainval for detection)."""

    def __init__(self, sources):
        self.sources = list(sources)
        self.offsets = np.cumsum([0] + [len(s) for s in self.sources])

    def __len__(self):
        return int(self.offsets[-1])

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return self.sources[part][index - int(self.offsets[part])]


class TransformedSource:
    """Random-access source for ``GeneratorDataset``: key ``epoch * n + index`` -> column tuple."""

    def __init__(self, source, transform, column_names, seed):
        self.source, self.transform, self.seed = source, transform, seed
        self.column_names = tuple(column_names)

    def __len__(self):
        return len(self.source)

    def __getitem__(self, key):
        epoch, index = divmod(int(key), len(self.source))
        sample = self.source[index]
        if self.transform is not None:
            sample = self.transform(sample, np.random.default_rng([self.seed, epoch, index]))
        missing = [c for c in self.column_names if c not in sample]
        if missing:
            raise DatasetError(f"columns {missing} not in the transformed sample; "
                               f"it has keys {sorted(sample)}")
        columns = (np.asarray(sample[c]) for c in self.column_names)
        # crops are strided views: hand MindSpore compact arrays (np.ascontiguousarray would turn
        # a 0-d label into shape (1,))
        return tuple(a if a.flags.c_contiguous else a.copy() for a in columns)


def _batch_map(fn, seed, shard_id, num_columns, epoch_ref):
    """Adapt ``fn(*stacked_columns, rng=...)`` to MindSpore's per_batch_map(col lists..., BatchInfo)."""

    def per_batch_map(*args):
        *columns, info = args
        epoch = epoch_ref[0] + info.get_epoch_num()
        # the non-zero last word keeps this stream apart from the per-sample [seed, epoch, index]
        # ones (SeedSequence ignores trailing zeros)
        rng = np.random.default_rng([seed, shard_id, epoch, info.get_batch_num(), 7])
        return tuple(fn(*(np.stack(c) for c in columns), rng=rng))

    # MindSpore counts the parameters of per_batch_map against input_columns
    params = [inspect.Parameter(f"column{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(num_columns)]
    per_batch_map.__signature__ = inspect.Signature(
        params + [inspect.Parameter("batch_info", inspect.Parameter.POSITIONAL_ONLY)])
    return per_batch_map


def build_dataset(source, transform, column_names, batch_size, shuffle=True, num_shards=None,
                  shard_id=None, num_workers=2, drop_remainder=True, seed=0, per_batch_map=None,
                  python_multiprocessing=False, start_epoch=0):
    """Batched ``GeneratorDataset`` of ``column_names`` (keys of the transformed sample), in that order.

    ``num_shards``/``shard_id`` (usually group size / rank) split the data between devices: with
    ``drop_remainder`` the shards are equal-sized, otherwise they partition the data exactly.
    ``per_batch_map(*columns, rng=rng)`` gets the stacked columns of a batch and returns the same
    number of arrays (e.g. ``MixupCutmix``: images, labels -> images, soft targets); its rng is
    seeded by (seed, shard, epoch, batch). ``start_epoch`` lets a resumed run continue the
    shuffle/augmentation sequence instead of replaying epoch 0.
    """
    import mindspore.dataset as ds

    column_names = list(column_names)
    if not column_names:
        raise ValueError("build_dataset: column_names must name at least one sample key")
    if (num_shards is None) != (shard_id is None):
        raise ValueError(f"build_dataset: give both num_shards and shard_id or neither "
                         f"(got num_shards={num_shards}, shard_id={shard_id})")
    num_shards, shard_id = (1, 0) if num_shards is None else (int(num_shards), int(shard_id))
    if not 0 <= shard_id < num_shards:
        raise ValueError(f"build_dataset: shard_id {shard_id} outside 0..{num_shards - 1}")
    if len(source) == 0:
        raise DatasetError(f"build_dataset: the source {source!r} has no samples")
    epoch_ref = [int(start_epoch)]  # shared by the sampler and the batch map
    sampler = _make_sampler(len(source), shuffle, num_shards, shard_id, seed, drop_remainder,
                            epoch_ref)
    if drop_remainder and len(sampler) < batch_size:
        raise DatasetError(f"build_dataset: shard {shard_id} holds {len(sampler)} samples, fewer than one "
                           f"batch of {batch_size}; with drop_remainder=True it would yield nothing")
    dataset = ds.GeneratorDataset(TransformedSource(source, transform, column_names, seed), column_names,
                                  sampler=sampler, num_parallel_workers=num_workers,
                                  python_multiprocessing=python_multiprocessing)
    if per_batch_map is None:
        batched = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:
        batch_map = _batch_map(per_batch_map, seed, shard_id, len(column_names), epoch_ref)
        batched = dataset.batch(batch_size, drop_remainder=drop_remainder, input_columns=column_names,
                                per_batch_map=batch_map, num_parallel_workers=num_workers,
                                python_multiprocessing=False)
    batched.epoch_sampler = sampler  # the training engine calls set_epoch before each epoch
    return batched

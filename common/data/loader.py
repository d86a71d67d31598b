"""Batched MindSpore pipelines over the random-access readers.

The transform runs inside the generator source with ``rng = default_rng([seed, epoch, index])``,
so a sample's augmentation depends only on (seed, epoch, index): not on worker count, thread
timing or rank. The epoch reaches the workers through the sampler, which yields
``epoch * len(source) + index``. Shuffling and sharding are done by that sampler too: every rank
draws the same permutation for an epoch and takes its own slice.
"""
import inspect

import numpy as np

from .batching import PadToFixed
from .errors import DatasetError

SKIP = -1  # sampler key of a consumed sample on resume: the source returns a placeholder
VERIFY_AUTO_MAX = 20000  # data.verify unset: pre-scan sources up to this size (a few seconds)


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
        over several epochs counts on by itself. ``skip_next(k)`` makes the next iterator yield
        ``SKIP`` for its first ``k`` samples: the source returns a placeholder without decoding,
        and the batches keep their numbers (so per-batch randomness is unchanged)."""

        def __init__(self):
            self._epoch = epoch_ref[0]
            self._skip = 0
            self._length = len(shard_indices(num_samples, 0, False, num_shards, shard_id, seed, even))
            super().__init__()

        def set_epoch(self, epoch):
            self._epoch = epoch_ref[0] = int(epoch)
            self._skip = 0

        def skip_next(self, num_samples_):
            self._skip = int(num_samples_)

        def __iter__(self):
            epoch, self._epoch = self._epoch, self._epoch + 1
            skip, self._skip = self._skip, 0
            for k, index in enumerate(shard_indices(num_samples, epoch, shuffle, num_shards, shard_id,
                                                    seed, even)):
                yield SKIP if k < skip else epoch * num_samples + int(index)

        def __len__(self):
            return self._length

    return EpochShardSampler()


def sample_files(source, index):
    """The files sample ``index`` of a reader comes from (for error messages and ``verify``)."""
    if hasattr(source, "sample_files"):
        return list(source.sample_files(index))
    if hasattr(source, "image_paths"):
        masks = getattr(source, "mask_paths", None)
        return [source.image_paths[index]] + ([masks[index]] if masks else [])
    if hasattr(source, "pairs"):
        return list(source.pairs[index])
    if hasattr(source, "samples"):
        return [source.samples[index][0]]
    if hasattr(source, "image_path"):
        return [source.image_path(index)]
    return []


def _where(source, index):
    files = sample_files(source, index)
    return " + ".join(str(f) for f in files) if files else f"sample {index} of {source!r}"


def verify_source(source, progress=True):
    """Fast pre-scan: every file of every sample exists and has a readable image header, and the
    files of one sample (image and mask) have the same size. Raises one :class:`DatasetError`
    naming the first bad files; returns the number of samples checked."""
    from PIL import Image
    from tqdm import tqdm

    problems = []
    indices = range(len(source))
    for index in tqdm(indices, desc="verifying data", unit="sample", disable=not progress, leave=False):
        sizes = []
        for path in sample_files(source, index):
            try:
                with Image.open(path) as img:
                    sizes.append((img.size, path))
            except FileNotFoundError:
                problems.append(f"{path}: file not found")
            except Exception as exc:  # noqa: BLE001  (PIL raises several types for bad headers)
                problems.append(f"{path}: unreadable image header ({type(exc).__name__})")
        if len({size for size, _ in sizes}) > 1:
            problems.append("size mismatch " + ", ".join(f"{p} {w}x{h}" for (w, h), p in sizes))
        if len(problems) >= 5:
            break
    if problems:
        raise DatasetError(f"data.verify found bad samples: {'; '.join(problems[:5])}"
                           f"{' ...' if len(problems) > 5 else ''}")
    return len(source)


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
        part, local = self._locate(index)
        return self.sources[part][local]

    def _locate(self, index):
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return part, index - int(self.offsets[part])

    def sample_files(self, index):
        part, local = self._locate(index)
        return sample_files(self.sources[part], local)


class TransformedSource:
    """Random-access source for ``GeneratorDataset``: key ``epoch * n + index`` -> column tuple.

    Any failure becomes one :class:`DatasetError` line naming the sample's files. ``pad``
    (a :class:`PadToFixed`) pads variable-length columns; ``label_checks`` {column: num_classes}
    refuses labels outside ``0..num_classes-1`` (``ignore_label`` allowed) naming file and value.
    """

    def __init__(self, source, transform, column_names, seed, pad=None, label_checks=None,
                 ignore_label=255):
        self.source, self.transform, self.seed = source, transform, seed
        self.column_names = tuple(column_names)
        self.pad, self.label_checks = pad, dict(label_checks or {})
        self.ignore_label = ignore_label
        self._placeholder = None

    def __len__(self):
        return len(self.source)

    def __getitem__(self, key):
        key = int(key)
        if key == SKIP:  # same shapes as a real sample, made once per worker
            if self._placeholder is None:
                self._placeholder = tuple(np.zeros_like(a) for a in self._load(0, 0))
            return self._placeholder
        epoch, index = divmod(key, len(self.source))
        return self._load(epoch, index)

    def _load(self, epoch, index):
        try:
            sample = self.source[index]
            if self.transform is not None:
                sample = self.transform(sample, np.random.default_rng([self.seed, epoch, index]))
            self._check_labels(sample, index)
            if self.pad is not None:
                sample = self.pad(sample, where=_where(self.source, index))
        except DatasetError as exc:
            raise DatasetError(" ".join(str(exc).split())) from None
        except Exception as exc:  # noqa: BLE001  (any bug on this sample: name its files)
            raise DatasetError(f"{_where(self.source, index)}: {type(exc).__name__}: "
                               f"{' '.join(str(exc).split())}") from None
        missing = [c for c in self.column_names if c not in sample]
        if missing:
            raise DatasetError(f"columns {missing} not in the transformed sample; "
                               f"it has keys {sorted(sample)}")
        columns = (np.asarray(sample[c]) for c in self.column_names)
        # crops are strided views: hand MindSpore compact arrays (np.ascontiguousarray would turn
        # a 0-d label into shape (1,))
        return tuple(a if a.flags.c_contiguous else a.copy() for a in columns)

    def _check_labels(self, sample, index):
        for column, num_classes in self.label_checks.items():
            if column not in sample:
                continue
            values = np.asarray(sample[column])
            bad = values[((values < 0) | (values >= num_classes)) & (values != self.ignore_label)]
            if bad.size:
                raise DatasetError(f"{_where(self.source, index)}: {column} value {bad.flat[0]} is "
                                   f"outside 0..{num_classes - 1} (num_classes {num_classes}"
                                   f"{f', ignore {self.ignore_label}' if self.ignore_label is not None else ''})")


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
                  python_multiprocessing=False, start_epoch=0, pad_columns=None, pad_mask="gt_mask",
                  label_checks=None, ignore_label=255, verify=None, progress=True, maps=(),
                  batch_maps=()):
    """Batched ``GeneratorDataset`` of ``column_names`` (keys of the transformed sample), in that order.

    ``num_shards``/``shard_id`` (usually group size / rank) split the data between devices: with
    ``drop_remainder`` the shards are equal-sized, otherwise they partition the data exactly.
    ``per_batch_map(*columns, rng=rng)`` gets the stacked columns of a batch and returns the same
    number of arrays (e.g. ``MixupCutmix``: images, labels -> images, soft targets); its rng is
    seeded by (seed, shard, epoch, batch). ``start_epoch`` lets a resumed run continue the
    shuffle/augmentation sequence instead of replaying epoch 0.

    ``pad_columns`` {column: (max_rows, *row_shape)} pads variable-length columns (e.g.
    ``{"gt_boxes": (100, 4), "gt_labels": (100,)}``) and adds the ``pad_mask`` column (1 = real
    row), appended to the columns when not listed; rows beyond max_rows are dropped with a
    warning. ``label_checks`` {column: num_classes} refuses out-of-range labels naming the file.
    ``verify`` (``data.verify``): pre-scan every sample's file headers and sizes first; None
    scans sources of up to ``VERIFY_AUTO_MAX`` samples.

    ``maps`` and ``batch_maps`` are keyword dicts of ``Dataset.map`` (``operations``,
    ``input_columns``, ...) applied in order to the samples before batching and to the batches
    after it: MindSpore's C++ operators (``common.data.native_cls``), whose randomness comes from
    ``mindspore.dataset.config.set_seed``, not from the per-sample rng.
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
    pad = None
    if pad_columns:
        rows = {int(shape[0]) for shape in pad_columns.values()}
        if len(rows) != 1:
            raise ValueError(f"build_dataset: pad_columns need one row count, got {pad_columns}")
        pad = PadToFixed({k: tuple(v[1:]) for k, v in pad_columns.items()}, rows.pop(), pad_mask)
        if pad_mask not in column_names:
            column_names.append(pad_mask)
    if verify or (verify is None and len(source) <= VERIFY_AUTO_MAX):
        verify_source(source, progress=progress)
    epoch_ref = [int(start_epoch)]  # shared by the sampler and the batch map
    sampler = _make_sampler(len(source), shuffle, num_shards, shard_id, seed, drop_remainder,
                            epoch_ref)
    if drop_remainder and len(sampler) < batch_size:
        raise DatasetError(f"build_dataset: shard {shard_id} holds {len(sampler)} samples, fewer than one "
                           f"batch of {batch_size}; with drop_remainder=True it would yield nothing")
    generator = TransformedSource(source, transform, column_names, seed, pad, label_checks, ignore_label)
    dataset = ds.GeneratorDataset(generator, column_names,
                                  sampler=sampler, num_parallel_workers=num_workers,
                                  python_multiprocessing=python_multiprocessing)
    for kwargs in maps:
        dataset = dataset.map(**{"num_parallel_workers": num_workers, **kwargs})
    if per_batch_map is None:
        batched = dataset.batch(batch_size, drop_remainder=drop_remainder)
    else:
        batch_map = _batch_map(per_batch_map, seed, shard_id, len(column_names), epoch_ref)
        batched = dataset.batch(batch_size, drop_remainder=drop_remainder, input_columns=column_names,
                                per_batch_map=batch_map, num_parallel_workers=num_workers,
                                python_multiprocessing=False)
    for kwargs in batch_maps:
        batched = batched.map(**{"num_parallel_workers": num_workers, **kwargs})
    batched.epoch_sampler = sampler  # the training engine calls set_epoch before each epoch
    return batched

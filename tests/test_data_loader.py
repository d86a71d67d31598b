"""build_dataset: batched GeneratorDataset pipelines, sharding, and seed/epoch determinism."""
import numpy as np
import pytest

from common.data import ConcatSource, DatasetError, SODDataset, build_dataset
from common.data.loader import shard_indices
from common.data.synthetic import generate
from common.data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip, Resize, ToCHW
from common.data.transforms_cls import MixupCutmix


class IndexSource:
    """Sample i holds its index and a 2x2 image of value i."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"index": np.int32(i), "image": np.full((2, 2), i, np.float32)}


def add_noise(sample, rng):
    out = dict(sample)
    out["noise"] = rng.random(3).astype(np.float32)
    return out


def collect(dataset, epochs=1, column=0):
    it = dataset.create_tuple_iterator(num_epochs=epochs, output_numpy=True)
    return [[batch[column] for batch in it] for _ in range(epochs)]


def test_shard_indices_partition():
    parts = [shard_indices(10, 3, True, 3, k, seed=0, even=False) for k in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    even = [shard_indices(10, 3, True, 3, k, seed=0, even=True) for k in range(3)]
    assert [len(p) for p in even] == [3, 3, 3] and len(set(np.concatenate(even).tolist())) == 9
    epochs = [shard_indices(10, e, True, 1, 0, seed=0, even=False) for e in (0, 1)]
    assert not np.array_equal(*epochs)
    assert shard_indices(5, 4, False, 1, 0, 0, False).tolist() == [0, 1, 2, 3, 4]


def test_concat_source():
    joined = ConcatSource([IndexSource(3), IndexSource(0), IndexSource(2)])
    assert len(joined) == 5
    assert [int(joined[i]["index"]) for i in range(5)] == [0, 1, 2, 0, 1]
    with pytest.raises(IndexError):
        joined[5]


def test_columns_shapes_and_order():
    ds = build_dataset(IndexSource(10), add_noise, ["image", "index", "noise"], batch_size=4, shuffle=False,
                       drop_remainder=False, num_workers=2)
    assert ds.get_dataset_size() == 3
    batches = list(ds.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert [b[0].shape for b in batches] == [(4, 2, 2), (4, 2, 2), (2, 2, 2)]
    assert np.concatenate([b[1] for b in batches]).tolist() == list(range(10))
    assert batches[0][2].shape == (4, 3) and batches[0][0][3, 0, 0] == 3.0


def test_shards_disjoint_and_cover():
    seen = []
    for shard in range(3):
        ds = build_dataset(IndexSource(11), None, ["index"], batch_size=2, num_shards=3, shard_id=shard,
                           drop_remainder=False, seed=4)
        seen.append(np.concatenate(collect(ds)[0]).tolist())
    assert sorted(i for s in seen for i in s) == list(range(11))
    even = []
    for shard in range(3):
        ds = build_dataset(IndexSource(11), None, ["index"], batch_size=3, num_shards=3, shard_id=shard,
                           seed=4)
        even.append(np.concatenate(collect(ds)[0]).tolist())
    assert [len(e) for e in even] == [3, 3, 3] and len({i for e in even for i in e}) == 9


def test_deterministic_across_workers_and_epochs():
    def run(workers):
        ds = build_dataset(IndexSource(12), add_noise, ["index", "noise"], batch_size=4, num_workers=workers,
                           seed=3)
        it = ds.create_tuple_iterator(num_epochs=2, output_numpy=True)
        return [[(b[0].copy(), b[1].copy()) for b in it] for _ in range(2)]

    one, two = run(1), run(2)
    for epoch in range(2):
        for (i1, n1), (i2, n2) in zip(one[epoch], two[epoch]):
            np.testing.assert_array_equal(i1, i2)
            np.testing.assert_array_equal(n1, n2)
    order = [np.concatenate([b[0] for b in one[e]]).tolist() for e in range(2)]
    assert order[0] != order[1] and sorted(order[0]) == list(range(12))  # reshuffled each epoch
    noise = [{int(i): n for b in one[e] for i, n in zip(*b)} for e in range(2)]
    assert not np.array_equal(noise[0][5], noise[1][5])  # a new augmentation each epoch
    other_seed = build_dataset(IndexSource(12), add_noise, ["index", "noise"], batch_size=4, seed=4)
    assert np.concatenate(collect(other_seed)[0]).tolist() != order[0]
    resumed = build_dataset(IndexSource(12), add_noise, ["index", "noise"], batch_size=4, seed=3,
                            start_epoch=1)
    for (i1, n1), (i2, n2) in zip(one[1], resumed.create_tuple_iterator(num_epochs=1, output_numpy=True)):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(n1, n2)


def test_per_batch_map_mixup():
    class LabelSource(IndexSource):
        def __getitem__(self, i):
            return {"image": np.full((3, 4, 4), i, np.float32), "label": np.int32(i % 5)}

    def run():
        ds = build_dataset(LabelSource(8), None, ["image", "label"], batch_size=4,
                           per_batch_map=MixupCutmix(5), seed=1, num_workers=1)
        return list(ds.create_tuple_iterator(num_epochs=1, output_numpy=True))

    a, b = run(), run()
    assert a[0][0].shape == (4, 3, 4, 4) and a[0][1].shape == (4, 5) and a[0][1].dtype == np.float32
    np.testing.assert_allclose(a[0][1].sum(axis=1), 1.0, atol=1e-6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[1], y[1])


def test_missing_column_is_named():
    ds = build_dataset(IndexSource(4), None, ["index", "boxes"], batch_size=2)
    with pytest.raises(Exception, match=r"columns \['boxes'\] not in the transformed sample"):
        collect(ds)


def test_argument_errors():
    with pytest.raises(DatasetError, match="fewer than one batch of 8"):
        build_dataset(IndexSource(10), None, ["index"], batch_size=8, num_shards=2, shard_id=0)
    with pytest.raises(ValueError, match="both num_shards and shard_id"):
        build_dataset(IndexSource(10), None, ["index"], batch_size=2, num_shards=2)
    with pytest.raises(ValueError, match="shard_id 2 outside 0..1"):
        build_dataset(IndexSource(10), None, ["index"], batch_size=2, num_shards=2, shard_id=2)


@pytest.mark.parametrize("multiprocessing", [False, True])
def test_sod_training_pipeline(tmp_path, multiprocessing):
    generate("sod", tmp_path, 6, 1, size=80, seed=0)
    chain = Compose([Resize(72), RandomCrop(64), RandomHorizontalFlip(), Normalize(), ToCHW()])
    ds = build_dataset(SODDataset(tmp_path / "train"), chain, ["image", "mask"], batch_size=3, num_workers=2,
                       python_multiprocessing=multiprocessing)
    batches = list(ds.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(batches) == 2
    image, mask = batches[0]
    assert image.shape == (3, 3, 64, 64) and image.dtype == np.float32
    assert mask.shape == (3, 64, 64) and set(np.unique(mask)) <= {0, 255}


def test_set_epoch_gives_a_new_reproducible_order_per_fresh_iterator():
    """The engine makes one iterator per epoch; set_epoch must change and replay the shuffle."""
    class Src:
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return {"x": np.array([i], np.int32)}

    def order(ds_, epoch):
        ds_.epoch_sampler.set_epoch(epoch)
        return [int(v) for b in ds_.create_tuple_iterator(num_epochs=1, output_numpy=True)
                for v in b[0].reshape(-1)]

    d = build_dataset(Src(), None, ["x"], 4, shuffle=True, num_workers=1)
    e0, e1 = order(d, 0), order(d, 1)
    assert sorted(e0) == sorted(e1) == list(range(8))
    assert e0 != e1
    assert order(d, 1) == e1 and order(d, 0) == e0

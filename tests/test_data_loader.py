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


# ------------------------------------------------------------------ padded targets
class BoxSource:
    """Sample i has i % 4 boxes (0..3) with coordinates i + row / 10 and labels row + 1."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        rows = i % 4
        boxes = (i + np.arange(rows, dtype=np.float32)[:, None] / 10) * np.ones((rows, 4), np.float32)
        return {"image": np.full((3, 4, 4), i, np.float32), "gt_boxes": boxes,
                "gt_labels": np.arange(1, rows + 1, dtype=np.int32), "index": np.int32(i)}


def test_padded_box_batches_have_fixed_shapes_and_the_right_mask():
    ds_ = build_dataset(BoxSource(8), None, ["image", "gt_boxes", "gt_labels", "index"], batch_size=4,
                        shuffle=False, pad_columns={"gt_boxes": (2, 4), "gt_labels": (2,)})
    batches = list(ds_.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(batches) == 2
    for image, boxes, labels, index, mask in batches:
        assert boxes.shape == (4, 2, 4) and labels.shape == (4, 2) and mask.shape == (4, 2)
        assert boxes.dtype == np.float32 and labels.dtype == np.int32 and mask.dtype == np.float32
        for b, i in enumerate(index):
            kept = min(i % 4, 2)                                # 3 boxes -> the first 2 are kept
            np.testing.assert_array_equal(mask[b], [1.0] * kept + [0.0] * (2 - kept))
            np.testing.assert_allclose(boxes[b, :kept, 0], i + np.arange(kept) / 10, rtol=1e-6)
            assert (boxes[b, kept:] == 0).all() and labels[b].tolist() == list(range(1, kept + 1)) + [0] * (2 - kept)


def test_dropped_boxes_are_warned_about_by_sample(caplog):
    import logging

    from common.data.batching import PadToFixed

    logging.getLogger("zoo").propagate = True
    caplog.set_level(logging.WARNING, logger="zoo")
    pad = PadToFixed({"gt_boxes": (4,), "gt_labels": ()}, 2)
    out = pad(BoxSource(8)[3], where="img3.jpg")
    assert out["gt_boxes"].shape == (2, 4) and pad.dropped == 1
    assert "img3.jpg has 3 boxes: keeping the first 2" in caplog.text
    with pytest.raises(ValueError, match="different row counts"):
        pad({"gt_boxes": np.zeros((2, 4)), "gt_labels": np.zeros(3)})


def test_padded_batches_compile_the_step_once():
    import mindspore as ms
    from mindspore.graph import api

    ms.set_device("CPU")
    ds_ = build_dataset(BoxSource(12), None, ["image", "gt_boxes", "gt_labels"], batch_size=2,
                        shuffle=False, pad_columns={"gt_boxes": (3, 4), "gt_labels": (3,)})

    @ms.jit
    def masked_sum(image, boxes, labels, mask):
        return (boxes.sum(-1) * mask).sum() + image.mean() + (labels * mask).sum()

    before = len(api.ms_compile_cache)
    total = sum(float(masked_sum(*b).asnumpy()) for b in ds_.create_tuple_iterator(num_epochs=1))
    assert len(api.ms_compile_cache) - before == 1         # 6 batches of varying box counts, 1 graph
    # per sample: its box coordinates, half its image value (a batch mean of 2), its labels
    expected = sum(BoxSource(12)[i]["gt_boxes"].sum() + i / 2 + sum(range(1, i % 4 + 1)) for i in range(12))
    assert total == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------ resume skips, data errors
def test_skipped_samples_are_not_decoded_and_later_batches_are_unchanged():
    decoded = []

    class Counting(IndexSource):
        def __getitem__(self, i):
            decoded.append(i)
            return super().__getitem__(i)

    d = build_dataset(Counting(12), add_noise, ["index", "noise"], batch_size=2, seed=5, num_workers=1)
    d.epoch_sampler.set_epoch(1)
    full = list(d.create_tuple_iterator(num_epochs=1, output_numpy=True))
    order = np.concatenate([b[0] for b in full]).tolist()
    decoded.clear()
    d.epoch_sampler.set_epoch(1)
    d.epoch_sampler.skip_next(6)                         # 3 consumed batches
    resumed = list(d.create_tuple_iterator(num_epochs=1, output_numpy=True))
    assert len(resumed) == len(full) == 6
    for (i1, n1), (i2, n2) in zip(full[3:], resumed[3:]):
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(n1, n2)
    assert not set(order[:6]) & (set(decoded) - {0})     # only sample 0, once, for the placeholder shape
    assert sorted(set(decoded) - {0}) == sorted(set(order[6:]) - {0}) and decoded.count(0) <= 2


class FileSource(IndexSource):
    """Samples named after files; sample 5 fails to decode, sample 6 has label 7."""

    def __init__(self, n):
        super().__init__(n)
        self.image_paths = [f"/data/img{i}.png" for i in range(n)]

    def __getitem__(self, i):
        if i == 5:
            raise ValueError("broken PNG chunk\nsecond line")
        x = np.full((3, 8, 8), i / 10, np.float32)
        return {"x": x, "y": np.int32(7 if i == 6 else i % 2)}


def test_data_errors_in_training_are_one_line_naming_the_file(tmp_path):
    import mindspore as ms
    from mindspore import nn

    from common.engine.optim import build_optimizer
    from common.engine.trainer import Trainer
    from tests.engine_utils import TinyNet

    ms.set_device("CPU")
    net = TinyNet()
    trainer = Trainer(net, nn.CrossEntropyLoss(), build_optimizer("sgd", net.trainable_params(), 0.1),
                      output_dir=tmp_path)
    data = build_dataset(FileSource(8), None, ["x", "y"], batch_size=2, shuffle=False, num_workers=2,
                         verify=False)
    with pytest.raises(DatasetError) as exc:
        trainer.fit(data, epochs=1)
    assert str(exc.value) == "/data/img5.png: ValueError: broken PNG chunk second line"
    from common.data.loader import TransformedSource

    source = TransformedSource(FileSource(8), None, ["x", "y"], 0, label_checks={"y": 2})
    assert source[4][1] == 0
    with pytest.raises(DatasetError, match=r"^/data/img6.png: y value 7 is outside 0..1 \(num_classes 2"):
        source[6]
    inside = ConcatSource([IndexSource(2), FileSource(8)])     # files named through ConcatSource too
    with pytest.raises(DatasetError, match=r"^/data/img6.png: y value 7"):
        TransformedSource(inside, None, ["x", "y"], 0, label_checks={"y": 2})[8]


def test_verify_finds_unreadable_and_mis_sized_files_before_training(tmp_path, capsys):
    from PIL import Image

    from common.data.loader import verify_source

    generate("sod", tmp_path, 6, 1, size=40, seed=0)
    source = SODDataset(tmp_path / "train")
    assert verify_source(source) == 6
    assert "verifying data" in capsys.readouterr().err            # the progress bar
    w, h = Image.open(source.image_paths[3]).size
    source.image_paths[1].write_bytes(b"not an image")
    Image.new("L", (10, 12)).save(source.mask_paths[3])
    with pytest.raises(DatasetError) as exc:
        build_dataset(source, None, ["image", "mask"], batch_size=2)     # on by default: 6 samples
    msg = str(exc.value)
    assert "\n" not in msg and f"{source.image_paths[1]}: unreadable image header" in msg
    assert f"size mismatch {source.image_paths[3]} {w}x{h}, {source.mask_paths[3]} 10x12" in msg
    build_dataset(source, None, ["image", "mask"], batch_size=2, verify=False)   # off: no scan

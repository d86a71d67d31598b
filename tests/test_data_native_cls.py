"""DDRNet's training chain on MindSpore's C++ operators (data.pipeline=mindspore) against the
seeded numpy chain, which equals timm's recipe (test_data_transforms_cls)."""
import pickle
import threading

import numpy as np
import pytest
from PIL import Image

from common.config import load_config
from common.data.native_cls import WorkerRandomOp, imagenet_train_native
from common.data.transforms import IMAGENET_STD
from common.data.transforms_cls import one_hot_smooth
from common.engine.distributed import DistInfo
from models.ddrnet.src.config import DEFAULTS
from models.ddrnet.src.data import build_train_dataset

NUM_CLASSES = 3


@pytest.fixture(scope="module")
def wide_folder(tmp_path_factory):
    """Images of aspect 2:1: every RandomResizedCrop try at scale 1 fails, so both pipelines fall
    back to the same centre crop (H x 4/3 H) and their outputs can be compared pixel by pixel."""
    root = tmp_path_factory.mktemp("wide")
    yy, xx = np.mgrid[0:60, 0:120].astype(np.float32)
    for c in range(NUM_CLASSES):
        for k in range(4):
            image = np.stack([(xx * (2 + c) + 40 * k) % 256, (yy * 3 + 30 * c) % 256,
                              128 + 100 * np.sin((xx + yy) / (5 + k))], -1)
            (root / "train" / f"n{c:08d}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(root / "train" / f"n{c:08d}" / f"{k}.png")
    return root


def _batches(root, pipeline, seed=7, **overrides):
    import mindspore.dataset as ds

    ds.config.set_seed(seed)  # the engine's seed_everything does this for a run
    items = {"data.root": str(root), "data.pipeline": pipeline, "data.image_size": 32,
             "data.crop_scale": [1.0, 1.0], "data.auto_augment": "", "data.re_prob": 0.0,
             "data.mixup": 0.0, "data.cutmix": 0.0, **overrides}
    cfg = load_config(DEFAULTS, None, [f"{k}={v}" for k, v in items.items()])
    dataset = build_train_dataset(cfg.data, NUM_CLASSES, 4, DistInfo(), num_workers=2, seed=3)
    dataset.epoch_sampler.set_epoch(1)
    return list(dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))


def test_native_chain_equals_the_numpy_chain_up_to_the_flip(wide_folder):
    """Same sample order (the loader's sampler), same crop and PIL bicubic resize, normalisation
    and smoothed labels; the flip is drawn by each pipeline's own generator."""
    ours, native = _batches(wide_folder, "numpy"), _batches(wide_folder, "mindspore")
    assert len(ours) == len(native) == 3
    flipped = 0
    for (image, label), (image_n, label_n) in zip(ours, native):
        assert image_n.shape == image.shape == (4, 3, 32, 32) and image_n.dtype == np.float32
        np.testing.assert_allclose(label_n, label, atol=1e-6)
        for a, b in zip(image, image_n):
            same, mirror = np.abs(a - b).max(), np.abs(a[..., ::-1] - b).max()
            flipped += mirror < same
            # a few grey levels (in normalised units) where C++ and PIL round the bicubic apart
            assert min(same, mirror) < 6 / 255 / min(IMAGENET_STD)
            assert np.abs(a - (b if same <= mirror else b[..., ::-1])).mean() < 0.02
    assert 0 < flipped < 12  # both orientations occur: the flip is live


def test_native_mixup_mixes_each_batch_with_one_lambda(wide_folder):
    """MixUpBatch: every target row is lam x its own smoothed one-hot + (1 - lam) x another row's,
    with one lam per batch, and the rows sum to 1."""
    batches = _batches(wide_folder, "mindspore", seed=11, **{"data.mixup": 0.8, "data.label_smoothing": 0.0})
    mixed = 0
    for _, label in batches:
        np.testing.assert_allclose(label.sum(1), 1.0, atol=1e-5)
        weights = {tuple(np.round(np.sort(row[row > 1e-6]), 4)) for row in label}
        pairs = {w for w in weights if len(w) == 2}
        assert len(pairs) <= 1 and all(len(w) in (1, 2) for w in weights)
        mixed += bool(pairs)
    assert mixed >= 2  # seeded: at least two of the three batches mix rows of different classes


def test_native_labels_without_mixing_are_smoothed_one_hots(wide_folder):
    batches = _batches(wide_folder, "mindspore", **{"data.label_smoothing": 0.2})
    for _, label in batches:
        hard = label.argmax(1)
        np.testing.assert_allclose(label, one_hot_smooth(hard, NUM_CLASSES, 0.2), atol=1e-6)


@pytest.mark.parametrize("overrides, message", [
    ({"data.pipeline": "dali"}, "data.pipeline 'dali'"),
    ({"data.pipeline": "mindspore", "data.interpolation": "bilinear"}, "data.interpolation 'bilinear'"),
    ({"data.pipeline": "mindspore", "data.python_workers": "fibers"}, "data.python_workers 'fibers'"),
    ({"data.pipeline": "mindspore", "data.mixup": 0.8, "data.cutmix": 1.0, "data.switch_prob": 0.3},
     "data.switch_prob 0.3"),
])
def test_bad_pipeline_settings_are_named(wide_folder, overrides, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        _batches(wide_folder, overrides.pop("data.pipeline"), **overrides)


def _add_noise(sample, rng):
    return {"image": sample["image"] + rng.random()}


def test_worker_random_op_pickles_for_process_workers_and_never_replays_its_draws():
    op = WorkerRandomOp(_add_noise, seed=5)
    clone = pickle.loads(pickle.dumps(op))
    assert clone.seed == 5 and clone.transform is _add_noise
    values = []
    for _ in range(2):  # a new thread per call, as a new epoch's thread pool
        thread = threading.Thread(target=lambda: values.append(float(op(np.zeros(1))[0])))
        thread.start()
        thread.join()
    assert len(set(values)) == 2


def test_process_workers_and_randaugment_run_in_the_native_chain(wide_folder):
    """Our RandAugment and erasing in worker processes: the chain delivers normalised CHW batches
    that differ from the un-augmented ones."""
    augmented = _batches(wide_folder, "mindspore", **{"data.python_workers": "processes",
                                                       "data.auto_augment": "rand-m9-mstd0.5-inc1",
                                                       "data.re_prob": 1.0})
    plain = _batches(wide_folder, "mindspore")
    assert [b[0].shape for b in augmented] == [(4, 3, 32, 32)] * 3
    assert all(np.isfinite(b[0]).all() for b in augmented)
    assert np.mean([np.abs(a[0] - p[0]).mean() for a, p in zip(augmented, plain)]) > 0.1


def test_native_arguments_name_their_operators():
    kwargs = imagenet_train_native(10, seed=0, size=224)
    names = [type(op).__name__ for m in kwargs["maps"] for op in m["operations"]]
    assert names == ["RandomResizedCrop", "RandomHorizontalFlip", "WorkerRandomOp", "Normalize",
                     "WorkerRandomOp", "HWC2CHW", "TypeCast", "OneHot"]
    assert type(kwargs["batch_maps"][0]["operations"][0]).__name__ == "RandomChoice"

"""Classification transforms (DeiT / timm recipe): RRC, eval resize-crop, RandAugment, erasing, mixup."""
import numpy as np
import pytest
from PIL import Image

from common.data.randaugment import OPS_INCREASING, OPS_PLAIN, RandAugment, parse_config
from common.data.transforms_cls import (
    MixupCutmix,
    RandomErasing,
    RandomResizedCrop,
    ResizeCenterCrop,
    imagenet_eval_transform,
    imagenet_train_transform,
)


def noise_image(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_rrc_windows_respect_scale_and_ratio():
    rrc = RandomResizedCrop(224)
    for seed in range(50):
        top, left, h, w = rrc.window(300, 400, np.random.default_rng(seed))
        assert 0 <= top and top + h <= 300 and 0 <= left and left + w <= 400
        assert 0.08 * 0.9 <= h * w / (300 * 400) <= 1.0
        assert 3 / 4 * 0.95 <= w / h <= 4 / 3 * 1.05
    out = rrc({"image": noise_image(300, 400), "label": np.int32(3)}, np.random.default_rng(0))
    assert out["image"].shape == (224, 224, 3) and out["image"].dtype == np.uint8 and out["label"] == 3


def test_rrc_fallback_centre_crop():
    # an impossible area range forces the fallback: 100x400 is wider than 4:3, so h=100, w=round(133.3)
    rrc = RandomResizedCrop(32, scale=(2.0, 3.0))
    assert rrc.window(100, 400, np.random.default_rng(0)) == ((100 - 100) // 2, (400 - 133) // 2, 100, 133)


def test_eval_resize_centre_crop_by_hand():
    image = noise_image(375, 500)
    t = ResizeCenterCrop(224, crop_pct=0.875)
    assert t.scale_size == 256
    out = t({"image": image})["image"]
    # short side 375 -> 256, long side int(256 * 500 / 375) = 341; crop left round(58.5) = 58, top 16
    ref = np.asarray(Image.fromarray(image).resize((341, 256), Image.BICUBIC))[16:240, 58:282]
    np.testing.assert_array_equal(out, ref)
    chw = imagenet_eval_transform()({"image": image})["image"]
    assert chw.shape == (3, 224, 224) and chw.dtype == np.float32


def test_randaugment_config_parsing():
    kw = parse_config("rand-m9-mstd0.5-inc1")
    assert kw == {"magnitude": 9.0, "magnitude_std": 0.5, "increasing": True}
    ra = RandAugment.from_config("rand-m9-mstd0.5-inc1")
    assert ra.num_ops == 2 and ra.prob == 0.5 and ra.ops == OPS_INCREASING and len(ra.ops) == 15
    assert RandAugment.from_config("rand-m7-n3-p0.3").ops == OPS_PLAIN
    assert parse_config("rand-m9-mstd101")["magnitude_std"] == float("inf")
    with pytest.raises(ValueError, match="unknown part 'x5'"):
        parse_config("rand-m9-x5")
    with pytest.raises(ValueError, match="must start with 'rand'"):
        parse_config("augmix-m5")


def test_randaugment_ops_by_hand():
    ra = RandAugment(increasing=True)
    rng = np.random.default_rng(0)
    img = Image.fromarray(noise_image(40, 100))
    arr = np.asarray(img)
    # zero magnitude leaves the geometric and enhance ops (factor 1) unchanged
    for name in ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel", "ColorIncreasing",
                 "ContrastIncreasing", "BrightnessIncreasing", "SolarizeIncreasing"):
        np.testing.assert_array_equal(np.asarray(ra.apply_op(img, name, 0.0, rng)), arr, err_msg=name)
    # solarize with threshold 256 - 256 = 0 inverts everything; posterize to 4 - 4 = 0 bits is black
    np.testing.assert_array_equal(np.asarray(ra.apply_op(img, "SolarizeIncreasing", 10.0, rng)), 255 - arr)
    assert not np.asarray(ra.apply_op(img, "PosterizeIncreasing", 10.0, rng)).any()
    np.testing.assert_array_equal(np.asarray(ra.apply_op(img, "PosterizeIncreasing", 5.0, rng)), arr & 0xC0)
    np.testing.assert_array_equal(np.asarray(ra.apply_op(img, "Invert", 10.0, rng)), 255 - arr)
    added = np.asarray(ra.apply_op(img, "SolarizeAdd", 10.0, rng)).astype(int)  # +110 below 128
    np.testing.assert_array_equal(added, np.where(arr < 128, np.minimum(arr.astype(int) + 110, 255), arr))
    # translate at magnitude 10 moves by 0.45 * width = 45 px and fills with the ImageNet mean colour
    shifted = np.asarray(ra.apply_op(img, "TranslateXRel", 10.0, np.random.default_rng(1)))
    left = np.array_equal(shifted[:, :55], arr[:, 45:])
    right = np.array_equal(shifted[:, 45:], arr[:, :55])
    assert left or right
    filler = shifted[:, 55:] if left else shifted[:, :45]
    assert (filler == (124, 116, 104)).all()


def test_randaugment_deterministic_and_changes_images():
    ra = RandAugment.from_config("rand-m9-mstd0.5-inc1")
    sample = {"image": noise_image()}
    a = ra(sample, np.random.default_rng(5))["image"]
    b = ra(sample, np.random.default_rng(5))["image"]
    np.testing.assert_array_equal(a, b)
    changed = sum(not np.array_equal(ra(sample, np.random.default_rng(k))["image"], sample["image"])
                  for k in range(20))
    assert changed >= 10  # two ops at p=0.5: an image is left alone only 1/4 of the time (+ no-op ops)


def test_random_erasing_pixel_mode():
    image = np.full((64, 64, 3), 5.0, np.float32)
    erase = RandomErasing(p=1.0, mode="pixel")
    for seed in range(10):
        out = erase({"image": image}, np.random.default_rng(seed))["image"]
        erased = (out != 5.0).any(axis=2)
        ys, xs = np.nonzero(erased)
        box_area = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert erased.sum() == box_area  # one rectangle
        assert 0.015 <= box_area / 64 ** 2 <= 0.36
        assert abs(out[erased].std() - 1.0) < 0.3 and abs(out[erased].mean()) < 0.3  # N(0, 1) noise
    assert (image == 5.0).all()
    out = RandomErasing(p=0.0)({"image": image}, np.random.default_rng(0))["image"]
    np.testing.assert_array_equal(out, image)


def test_mixup_cutmix_targets():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 3, 16, 16)).astype(np.float32)
    labels = np.array([0, 1, 2, 3])
    plain = MixupCutmix(10, prob=0.0)
    x, t = plain(images, labels, rng)
    np.testing.assert_array_equal(x, images)
    assert t[0, 0] == pytest.approx(0.91) and t[0, 1] == pytest.approx(0.01)  # 1 - 0.1 + 0.1/10, 0.1/10
    mixup = MixupCutmix(10, mixup_alpha=0.8, cutmix_alpha=0.0)
    x, t = mixup(images, labels, np.random.default_rng(3))
    lam = (t[0, 0] - 0.01) / 0.9  # sample 0 mixes with sample 3
    np.testing.assert_allclose(t[0, 3], (1 - lam) * 0.9 + 0.01, atol=1e-6)
    np.testing.assert_allclose(x[0], lam * images[0] + (1 - lam) * images[3], atol=1e-5)
    np.testing.assert_allclose(t.sum(axis=1), 1.0, atol=1e-6)
    cutmix = MixupCutmix(10, mixup_alpha=0.0, cutmix_alpha=1.0)
    for seed in range(5):
        x, t = cutmix(images, labels, np.random.default_rng(seed))
        from_other = (x[1] == images[2]).all(axis=0) & (x[1] != images[1]).any(axis=0)
        lam = (t[1, 1] - 0.01) / 0.9
        assert from_other.mean() == pytest.approx(1 - lam, abs=1e-6)  # lambda corrected to the pasted area


def test_imagenet_train_chain_shapes_and_determinism():
    chain = imagenet_train_transform(64)
    sample = {"image": noise_image(90, 120), "label": np.int32(1)}
    a = chain(sample, np.random.default_rng(9))
    b = chain(sample, np.random.default_rng(9))
    assert a["image"].shape == (3, 64, 64) and a["image"].dtype == np.float32
    np.testing.assert_array_equal(a["image"], b["image"])

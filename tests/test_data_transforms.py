"""Geometric and value transforms keep image, mask and boxes aligned; results checked by hand."""
import cv2
import numpy as np
import pytest

from common.data.synthetic_draw import polygon_mask, shape_polygon
from common.data.transforms import (
    CenterCrop,
    Compose,
    Normalize,
    PadToSize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomRotation,
    RandomRotation90,
    RandomScale,
    RandomVerticalFlip,
    Resize,
    ToCHW,
    rotate90,
)
from common.data.transforms_det import Expand, MinIoURandomCrop, PhotometricDistort

RED = (230, 20, 20)


def rect_sample(h=100, w=200, box=(20, 10, 60, 40), seed=0):
    """Noise image with a red rectangle; mask 7 on it; its box and a second far box."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 120, size=(h, w, 3), dtype=np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = RED
    mask = np.zeros((h, w), np.uint8)
    mask[y1:y2, x1:x2] = 7
    boxes = np.array([box, (w - 30, h - 20, w - 5, h - 2)], np.float32)
    return {"image": image, "mask": mask, "boxes": boxes, "labels": np.array([3, 5], np.int32),
            "difficult": np.array([False, True]), "name": "x"}


def mask_box(mask, value=7):
    ys, xs = np.nonzero(mask == value)
    return [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def assert_mask_on_red(sample, value=7, erode=0):
    on = (sample["mask"] == value).astype(np.uint8)
    if erode:
        on = cv2.erode(on, np.ones((2 * erode + 1,) * 2, np.uint8))
    assert on.sum() > 0
    pixels = sample["image"][on > 0].astype(int)
    assert np.abs(pixels - RED).max() <= 3


class FixedRng:
    """Stand-in Generator whose random() returns a fixed value (forces an op on or off)."""

    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value


def test_horizontal_and_vertical_flip_boxes_by_hand():
    s = rect_sample()
    out = RandomHorizontalFlip(p=1.0)(s, np.random.default_rng(0))
    np.testing.assert_array_equal(out["boxes"][0], [140, 10, 180, 40])  # x -> 200 - x
    assert mask_box(out["mask"]) == [140, 10, 180, 40]
    assert_mask_on_red(out)
    out = RandomVerticalFlip(p=1.0)(s, np.random.default_rng(0))
    np.testing.assert_array_equal(out["boxes"][0], [20, 60, 60, 90])  # y -> 100 - y
    assert_mask_on_red(out)
    assert out["labels"].tolist() == [3, 5] and out["name"] == "x"
    same = RandomHorizontalFlip(p=0.0)(s, np.random.default_rng(0))
    np.testing.assert_array_equal(same["image"], s["image"])


def test_rotate90_boxes_by_hand():
    s = rect_sample()
    out = rotate90(s, 1)  # counter-clockwise: (x, y) -> (y, 200 - x); the image becomes 200 x 100
    assert out["image"].shape == (200, 100, 3)
    np.testing.assert_array_equal(out["boxes"][0], [10, 140, 40, 180])
    assert mask_box(out["mask"]) == [10, 140, 40, 180]
    assert_mask_on_red(out)
    for k in (2, 3):
        out = rotate90(s, k)
        assert mask_box(out["mask"]) == out["boxes"][0].tolist()
        assert_mask_on_red(out)
    np.testing.assert_array_equal(rotate90(rotate90(s, 3), 1)["boxes"], s["boxes"])
    ks = {RandomRotation90()(s, np.random.default_rng(i))["image"].shape for i in range(20)}
    assert ks == {(100, 200, 3), (200, 100, 3)}


def test_crop_shifts_clips_and_drops_boxes():
    s = rect_sample()
    from common.data.transforms import crop_sample
    out = crop_sample(s, top=5, left=30, height=50, width=100)
    # box 20,10,60,40 -> shifted -10,5,30,35 -> clipped 0,5,30,35; the far box lies outside: dropped
    np.testing.assert_array_equal(out["boxes"], [[0, 5, 30, 35]])
    assert out["labels"].tolist() == [3] and out["difficult"].tolist() == [False]
    assert mask_box(out["mask"]) == [0, 5, 30, 35]
    assert_mask_on_red(out)


def test_random_crop_pads_label_with_ignore():
    s = rect_sample(h=50, w=60, box=(5, 5, 25, 25))
    s["boxes"], s["labels"], s["difficult"] = s["boxes"][:1], s["labels"][:1], s["difficult"][:1]
    out = RandomCrop(100, image_fill=0, mask_fill=255)(s, np.random.default_rng(1))
    assert out["image"].shape == (100, 100, 3) and out["mask"].shape == (100, 100)
    assert (out["mask"] == 255).sum() == 100 * 100 - 50 * 60  # padding only
    np.testing.assert_array_equal(out["boxes"], [[5, 5, 25, 25]])  # padded bottom/right: no shift
    # a real crop: the box follows the mask for many random windows
    big = rect_sample()
    for seed in range(10):
        out = RandomCrop((60, 90))(big, np.random.default_rng(seed))
        assert out["image"].shape == (60, 90, 3)
        if (out["mask"] == 7).any():
            assert mask_box(out["mask"]) == out["boxes"][0].tolist()
            assert_mask_on_red(out)


def test_resize_modes_by_hand():
    s = rect_sample()
    out = Resize((50, 50), interpolation="bicubic")(s)
    np.testing.assert_allclose(out["boxes"][0], [5, 5, 15, 20])  # x * 0.25, y * 0.5
    assert out["image"].shape == (50, 50, 3) and set(np.unique(out["mask"])) <= {0, 7}
    assert Resize(50, short_side=True)(s)["image"].shape == (50, 100, 3)
    assert Resize(50, short_side=True, max_size=80)(s)["image"].shape == (40, 80, 3)
    assert Resize((60, 60), keep_ratio=True)(s)["image"].shape == (30, 60, 3)
    out = RandomScale((2.0, 2.0), interpolation="nearest")(s, np.random.default_rng(0))
    np.testing.assert_allclose(out["boxes"][0], [40, 20, 120, 80])
    assert mask_box(out["mask"]) == [40, 20, 120, 80]
    assert_mask_on_red(out)
    with pytest.raises(ValueError, match="unknown interpolation 'cubic'"):
        Resize(10, interpolation="cubic")


def test_random_scale_range():
    s = rect_sample()
    heights = {RandomScale((0.5, 2.0))(s, np.random.default_rng(i))["image"].shape[0] for i in range(30)}
    assert min(heights) >= 50 and max(heights) <= 200 and len(heights) > 10


def test_pad_to_size():
    s = rect_sample()
    out = PadToSize((150, 250), mask_fill=255)(s)
    assert out["image"].shape == (150, 250, 3) and (out["mask"][100:] == 255).all()
    assert (out["image"][:, 200:] == 0).all()
    np.testing.assert_array_equal(out["boxes"][0], [20, 10, 60, 40])
    out = PadToSize((150, 250), center=True)(s)
    np.testing.assert_array_equal(out["boxes"][0], [45, 35, 85, 65])
    assert mask_box(out["mask"]) == [45, 35, 85, 65]
    assert PadToSize(50)(s)["image"].shape == (100, 200, 3)  # never crops


def test_center_crop():
    out = CenterCrop((50, 100))(rect_sample())
    np.testing.assert_array_equal(out["boxes"], [[0, 0, 10, 15]])  # window top 25, left 50


def test_rotation_by_90_equals_rot90():
    s = rect_sample(h=100, w=100, box=(20, 10, 60, 40))
    out = RandomRotation((90, 90), interpolation="nearest")(s, np.random.default_rng(0))
    ref = rotate90(s, 1)
    np.testing.assert_array_equal(out["image"], ref["image"])
    np.testing.assert_array_equal(out["mask"], ref["mask"])
    np.testing.assert_allclose(out["boxes"], ref["boxes"], atol=1e-4)


def test_rotation_box_encloses_rotated_shape():
    s = rect_sample(h=120, w=120, box=(40, 50, 80, 70))
    s["boxes"], s["labels"], s["difficult"] = s["boxes"][:1], s["labels"][:1], s["difficult"][:1]
    out = RandomRotation((30, 30), mask_fill=255)(s, np.random.default_rng(0))
    x1, y1, x2, y2 = mask_box(out["mask"])
    bx = out["boxes"][0]
    assert bx[0] <= x1 + 0.5 and bx[1] <= y1 + 0.5 and bx[2] >= x2 - 0.5 and bx[3] >= y2 - 0.5
    # the enclosing box of a 40x20 rectangle turned by 30 degrees: 40cos30 + 20sin30 = 44.6 wide
    np.testing.assert_allclose(bx[2] - bx[0], 40 * np.cos(np.pi / 6) + 20 * np.sin(np.pi / 6), atol=1e-3)
    assert (out["mask"] == 255).any()  # uncovered corners are ignore
    assert_mask_on_red(out, erode=1)


def test_expand_by_hand():
    s = rect_sample()
    out = Expand(mean=(0, 255, 0), ratio_range=(2, 2), p=1.0)(s, np.random.default_rng(4))
    assert out["image"].shape == (200, 400, 3)
    # locate the original image: the only non-green region of the canvas
    ys, xs = np.nonzero((out["image"] != (0, 255, 0)).any(axis=2))
    top, left = ys.min(), xs.min()
    np.testing.assert_array_equal(out["image"][top:top + 100, left:left + 200], s["image"])
    np.testing.assert_array_equal(out["boxes"], s["boxes"] + [left, top, left, top])
    assert (out["mask"][:top] == 255).all()
    assert Expand(p=0.0)(s, np.random.default_rng(0)) is s


def test_min_iou_crop_matches_a_window_of_the_input():
    base = rect_sample(h=120, w=160, box=(30, 30, 90, 80))
    base["boxes"] = np.array([[30, 30, 90, 80], [100, 90, 150, 115]], np.float32)
    crop = MinIoURandomCrop()
    cropped = 0
    for seed in range(25):
        out = crop(base, np.random.default_rng(seed))
        h, w = out["image"].shape[:2]
        if (h, w) == (120, 160):
            continue
        cropped += 1
        match = cv2.matchTemplate(base["image"], out["image"], cv2.TM_SQDIFF)
        top, left = np.unravel_index(np.argmin(match), match.shape)
        np.testing.assert_array_equal(base["image"][top:top + h, left:left + w], out["image"])
        centres = (base["boxes"][:, :2] + base["boxes"][:, 2:]) / 2
        keep = ((centres[:, 0] > left) & (centres[:, 0] < left + w)
                & (centres[:, 1] > top) & (centres[:, 1] < top + h))
        expected = base["boxes"][keep] - [left, top, left, top]
        expected[:, 0::2] = expected[:, 0::2].clip(0, w)
        expected[:, 1::2] = expected[:, 1::2].clip(0, h)
        np.testing.assert_allclose(out["boxes"], expected)
        assert out["labels"].tolist() == base["labels"][keep].tolist()
        assert len(out["boxes"]) >= 1 and w >= 0.3 * 160 - 1 and h >= 0.3 * 120 - 1
    assert cropped >= 10


def test_photometric_distort_keeps_geometry():
    s = rect_sample()
    out = PhotometricDistort(p=1.0)(s, np.random.default_rng(0))
    assert out["image"].dtype == np.uint8 and out["image"].shape == s["image"].shape
    assert not np.array_equal(out["image"], s["image"])
    np.testing.assert_array_equal(out["boxes"], s["boxes"])
    np.testing.assert_array_equal(out["mask"], s["mask"])
    same = PhotometricDistort(p=0.0)(s, np.random.default_rng(0))
    np.testing.assert_array_equal(same["image"], s["image"])


def test_normalize_and_chw():
    s = {"image": np.full((2, 3, 3), 255, np.uint8)}
    out = Normalize()(s)
    expected = (1 - np.array([0.485, 0.456, 0.406])) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(out["image"][0, 0], expected, rtol=1e-6)
    s = {"image": np.full((2, 3, 3), 200, np.uint8)}
    out = Normalize(mean=(0, 0, 0), std=(1, 1, 1), divide_by_max=True)(s)  # U-2-Net: image / max(image)
    np.testing.assert_allclose(out["image"], 1.0)
    out = Normalize(mean=(100, 100, 100), std=(1, 1, 1), scale=1.0)(s)
    np.testing.assert_allclose(out["image"], 100.0)
    chw = ToCHW()(out)["image"]
    assert chw.shape == (3, 2, 3) and chw.flags["C_CONTIGUOUS"]


def star_sample(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 100, size=(180, 240, 3), dtype=np.uint8)
    mask = polygon_mask(shape_polygon(rng, "star", 120, 90, 60), 180, 240)
    image[mask] = RED
    return {"image": image, "mask": np.where(mask, 7, 0).astype(np.uint8)}


@pytest.mark.parametrize("seed", range(4))
def test_training_chains_keep_mask_on_shape(seed):
    """SOD (U-2-Net) and segmentation (RefineNet) chains on a star: label pixels stay on its colour."""
    sod = Compose([Resize(160, interpolation="nearest"), RandomCrop(128), RandomHorizontalFlip(),
                   RandomVerticalFlip(), RandomRotation90()])
    seg = Compose([RandomScale((0.5, 2.0), interpolation="nearest"), RandomCrop(200, mask_fill=255),
                   RandomHorizontalFlip(), RandomRotation(15, p=1.0, interpolation="nearest")])
    for chain in (sod, seg):
        out = chain(star_sample(seed), np.random.default_rng(seed))
        if (out["mask"] == 7).any():
            assert_mask_on_red(out)


def test_determinism_under_seed():
    chain = Compose([RandomScale((0.5, 1.5)), RandomCrop(80), RandomHorizontalFlip(), PhotometricDistort(),
                     Expand(p=0.5), MinIoURandomCrop(), Resize((64, 64))])
    s = rect_sample()
    a = chain(s, np.random.default_rng(123))
    b = chain(s, np.random.default_rng(123))
    for key in ("image", "mask", "boxes", "labels"):
        np.testing.assert_array_equal(a[key], b[key])
    others = [chain(s, np.random.default_rng(k))["image"] for k in range(5)]
    assert any(not np.array_equal(a["image"], o) for o in others)
    np.testing.assert_array_equal(s["image"], rect_sample()["image"])  # input not modified

"""Synthetic datasets: real formats, exact labels, determinism; VOC tools and MindRecord on them."""
import hashlib
import json

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from common.data import (
    CocoDetection,
    DatasetError,
    ImageFolderDataset,
    SODDataset,
    VOCDetection,
    VOCSegDataset,
    synthetic,
    voc_tools,
)
from common.data.synthetic_draw import class_look


@pytest.fixture(scope="module")
def voc_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("voc")
    synthetic.generate("voc", out, 8, 3, size=128, seed=1, num_classes=5)
    return out / "VOCdevkit/VOC2012"


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("coco")
    synthetic.generate("coco", out, 12, 2, size=128, seed=2, num_classes=12)
    return out


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("fmt", ["sod", "voc", "coco", "imagenet"])
def test_cli_writes_and_is_deterministic(fmt, tmp_path, capsys):
    def run(out, seed):
        synthetic.main(["--format", fmt, "--out", str(tmp_path / out), "--num", "4", "--size", "64",
                        "--seed", str(seed)])

    run("a", 7)
    printed = capsys.readouterr().out
    assert f"wrote synthetic {fmt} dataset to {tmp_path / 'a'}" in printed and "5 images" in printed
    run("b", 7)
    run("c", 8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_sod_layout(tmp_path):
    synthetic.generate("sod", tmp_path, 5, 2, size=80, seed=0)
    assert len(SODDataset(tmp_path / "train")) == 5 and len(SODDataset(tmp_path / "test")) == 2
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["images", "masks"]


def test_voc_segmentation_labels_exact(voc_root):
    ds = VOCSegDataset(voc_root, voc_root / "ImageSets/Segmentation/train.txt")
    assert len(ds) == 8 and len(VOCSegDataset(voc_root, voc_root / "ImageSets/Segmentation/val.txt")) == 3
    assert Image.open(voc_root / "SegmentationClass" / f"{ds[0]['name']}.png").mode == "P"
    seen_void = False
    for i in range(len(ds)):
        s = ds[i]
        values = set(np.unique(s["mask"]).tolist())
        assert values <= {0, 1, 2, 3, 4, 5, 255} and len(values - {0, 255}) >= 1
        seen_void |= 255 in values
        for c in values - {0, 255}:
            inner = cv2.erode((s["mask"] == c).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            colour = np.array(class_look(c - 1)[1])
            # the interior of each class region carries that class's colour (JPEG noise allowed)
            assert np.abs(s["image"][inner].astype(float).mean(axis=0) - colour).max() < 20
    assert seen_void


def test_voc_detection_matches_segmentation(voc_root):
    det = VOCDetection(voc_root, "train")
    seg = VOCSegDataset(voc_root, voc_root / "ImageSets/Segmentation/train.txt")
    difficult = 0
    for i in range(len(det)):
        d, s = det[i], seg[i]
        assert d["name"] == s["name"]
        for c in set(np.unique(s["mask"]).tolist()) - {0, 255}:
            ys, xs = np.nonzero(s["mask"] == c)
            boxes = d["boxes"][d["labels"] == c]
            inside = np.zeros(len(xs), bool)
            for x1, y1, x2, y2 in boxes:
                inside |= (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
            assert inside.all()  # every pixel of class c lies in a box of class c
        widths = np.minimum(d["boxes"][:, 2] - d["boxes"][:, 0], d["boxes"][:, 3] - d["boxes"][:, 1])
        np.testing.assert_array_equal(d["difficult"], widths < 24)
        difficult += d["difficult"].sum()
    assert 0 < difficult < sum(len(det[i]["boxes"]) for i in range(len(det)))  # both flags occur
    assert len(VOCDetection(voc_root, "val")) == 3


def test_coco_valid_and_exact(coco_root):
    ann_file = coco_root / "annotations/instances_train2017.json"
    doc = json.loads(ann_file.read_text())
    assert [c["id"] for c in doc["categories"]] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    ds = CocoDetection(coco_root / "train2017", ann_file)
    assert len(ds) == 12 and ds.cat_ids[10] == 12
    assert ds[9]["boxes"].shape == (0, 4)  # every 10th image is empty and still listed
    coco = ds.coco
    checked = 0
    for index, image_id in enumerate(ds.image_ids):
        s = ds[index]
        for ann, box, label in zip(coco.imgToAnns[image_id], s["boxes"], s["labels"]):
            mask = coco.annToMask(ann).astype(bool)
            ys, xs = np.nonzero(mask)
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            assert mask.sum() == ann["area"]
            colour = np.array(class_look(label - 1)[1])
            inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            assert np.abs(s["image"][inner].astype(float).mean(axis=0) - colour).max() < 20
            checked += 1
    assert checked >= 10
    assert len(CocoDetection(coco_root / "val2017", coco_root / "annotations/instances_val2017.json")) == 2


def test_coco_radius_sets_object_sizes(tmp_path, capsys):
    """--radius MIN,MAX bounds every shape's radius (fraction of the image's shorter side), so a
    box's longer side lies within [MIN, 2.7 MAX] of it (a rotated 2r x 1.8r rectangle's box reaches
    2.69 r; a star or triangle may be narrower than 2 MIN)."""
    synthetic.main(["--format", "coco", "--out", str(tmp_path), "--num", "20", "--num-val", "1", "--size", "128",
                    "--num-classes", "3", "--radius", "0.2,0.3"])
    doc = json.loads((tmp_path / "annotations/instances_train2017.json").read_text())
    side = {im["id"]: min(im["height"], im["width"]) for im in doc["images"]}
    longest = np.array([max(a["bbox"][2:]) / side[a["image_id"]] for a in doc["annotations"]])
    assert len(longest) >= 15 and longest.min() >= 0.2 and longest.max() <= 2.7 * 0.3 + 2 / 96
    default = tmp_path / "default"
    synthetic.generate("coco", default, 20, 1, size=128, seed=0, num_classes=3)
    doc = json.loads((default / "annotations/instances_train2017.json").read_text())
    assert min(max(a["bbox"][2:]) for a in doc["annotations"]) < 0.2 * 96  # the default is smaller
    for bad in ("0.3", "0.3,0.2", "0,0.2", "0.1,0.5", "a,b"):
        with pytest.raises(SystemExit) as err:
            synthetic.main(["--format", "coco", "--out", str(tmp_path / "bad"), "--radius", bad])
        assert err.value.code == 2 and "radius" in capsys.readouterr().err, bad
    with pytest.raises(ValueError, match="radius is a coco option"):
        synthetic.generate("voc", tmp_path / "voc", 2, radius=(0.1, 0.2))


def test_imagenet_layout(tmp_path):
    synthetic.generate("imagenet", tmp_path, 12, 4, size=48, seed=0, num_classes=4)
    ds = ImageFolderDataset(tmp_path / "train")
    assert ds.classes == ["n00000000", "n00000001", "n00000002", "n00000003"]
    assert len(ds) == 12
    assert sorted(int(ds[i]["label"]) for i in range(12)) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    for i in range(4):
        s = ds[i]
        assert s["image"].shape[0] == 48 and f"/{ds.classes[int(s['label'])]}/" in s["path"]
    assert len(ImageFolderDataset(tmp_path / "val")) == 4


def test_voc_tools_sbd_to_png_and_make_lists(voc_root, tmp_path, capsys):
    train = (voc_root / "ImageSets/Segmentation/train.txt").read_text().split()
    val = (voc_root / "ImageSets/Segmentation/val.txt").read_text().split()
    sbd = tmp_path / "sbd"
    (sbd / "cls").mkdir(parents=True)
    sbd_ids = train[:3] + val[:1]  # SBD overlaps VOC train and val
    rng = np.random.default_rng(0)
    labels = {}
    for i in sbd_ids:
        h, w = cv2.imread(str(voc_root / "JPEGImages" / f"{i}.jpg")).shape[:2]
        labels[i] = rng.integers(0, 21, size=(h, w)).astype(np.uint8)
        savemat(sbd / "cls" / f"{i}.mat", {"GTcls": {"Segmentation": labels[i], "CategoriesPresent": [1]}})
    (sbd / "train.txt").write_text("\n".join(sbd_ids[:2]) + "\n")
    (sbd / "val.txt").write_text("\n".join(sbd_ids[2:]) + "\n")

    voc_tools.main(["sbd-to-png", "--sbd-root", str(sbd)])
    png = Image.open(sbd / "cls_png" / f"{sbd_ids[0]}.png")
    assert png.mode == "P"
    np.testing.assert_array_equal(np.array(png), labels[sbd_ids[0]])

    out = tmp_path / "lists"
    voc_tools.main(["make-lists", "--voc-root", str(voc_root.parent.parent), "--out", str(out),
                    "--sbd-root", str(sbd)])
    printed = capsys.readouterr().out
    assert "train_aug.txt: 8 samples" in printed  # (3 SBD in VOC train + 1 SBD in val) + 8 train - val
    first = (out / "train.txt").read_text().splitlines()[0]
    assert first == f"JPEGImages/{train[0]}.jpg SegmentationClass/{train[0]}.png"
    aug = (out / "train_aug.txt").read_text().splitlines()
    assert not any(v in line for v in val for line in aug)
    ds = VOCSegDataset(voc_root, out / "train_aug.txt")
    assert len(ds) == 8 and len(VOCSegDataset(voc_root, out / "val.txt")) == 3
    (sbd / "cls_png" / f"{sbd_ids[0]}.png").unlink()
    (sbd / "train.txt").write_text("\n".join(sbd_ids[:2] + ["2012_x99999"]) + "\n")
    with pytest.raises(DatasetError, match=r"SBD labels missing in .*2012_x99999\.png"):
        voc_tools.make_lists(voc_root, out, sbd)


def test_voc_tools_bad_inputs(tmp_path):
    with pytest.raises(DatasetError, match="no VOC2012 folder with JPEGImages"):
        voc_tools.make_lists(tmp_path, tmp_path / "out")
    with pytest.raises(DatasetError, match=r"no SBD label files found: expected .*cls/\*\.mat"):
        voc_tools.sbd_to_png(tmp_path, tmp_path / "png")
    (tmp_path / "cls").mkdir()
    savemat(tmp_path / "cls" / "a.mat", {"other": np.zeros((2, 2))})
    with pytest.raises(DatasetError, match="a.mat: expected a MATLAB struct 'GTcls'"):
        voc_tools.sbd_to_png(tmp_path, tmp_path / "png")


def test_mindrecord_roundtrip_with_shards(voc_root, tmp_path):
    from common.data.mindrecord import decode_seg_row, read_seg_mindrecord

    list_file = voc_root / "ImageSets/Segmentation/train.txt"
    voc_tools.main(["to-mindrecord", "--voc-root", str(voc_root), "--list", str(list_file),
                    "--out", str(tmp_path / "voc.mindrecord"), "--shard-num", "2"])
    files = sorted(tmp_path.glob("voc.mindrecord?"))
    assert [f.name for f in files] == ["voc.mindrecord0", "voc.mindrecord1"]
    ref = VOCSegDataset(voc_root, list_file)
    expected = {ref[i]["name"]: ref[i] for i in range(len(ref))}
    seen = []
    for shard in range(2):
        dataset = read_seg_mindrecord(files, num_shards=2, shard_id=shard)
        for row in dataset.create_dict_iterator(output_numpy=True, num_epochs=1):
            s = decode_seg_row(row["file_name"], row["data"], row["label"])
            np.testing.assert_array_equal(s["mask"], expected[s["name"]]["mask"])
            np.testing.assert_array_equal(s["image"], expected[s["name"]]["image"])
            seen.append(s["name"])
    assert sorted(seen) == sorted(expected)

"""Readers on the real oracle samples, on synthetic data, and their error messages."""
import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

from common.data import (
    CocoDetection,
    DatasetError,
    ImageFolderDataset,
    SODDataset,
    TxtDetection,
    VOCDetection,
    VOCSegDataset,
)
from common.data.image_io import read_label_map, voc_palette, write_palette_png
from common.data.synthetic import generate

# ---- real fixtures ----------------------------------------------------------------------------

def test_voc_detection_fixture_values(fixtures):
    ds = VOCDetection(fixtures / "openagi_datum_voc/det/voc", "train")  # ImageSets/train.txt
    assert len(ds) == 2 and ds.ids == ["2007_000027", "2007_000032"]
    s = ds[1]
    assert s["image"].shape == (281, 500, 3) and s["image"].dtype == np.uint8
    assert s["orig_size"].tolist() == [281, 500]
    # XML: aeroplane 104,78,375,183 / aeroplane 133,88,197,123 / person 195,180,213,229 / person 26,189,44,238
    # (1-based inclusive) -> edges x1 = xmin - 1, x2 = xmax
    np.testing.assert_array_equal(s["boxes"], [[103, 77, 375, 183], [132, 87, 197, 123],
                                               [194, 179, 213, 229], [25, 188, 44, 238]])
    assert s["labels"].tolist() == [1, 1, 15, 15]  # aeroplane = 1, person = 15
    assert s["difficult"].dtype == bool and s["difficult"].tolist() == [False] * 4
    s0 = ds[0]
    assert s0["image"].shape == (500, 486, 3)
    np.testing.assert_array_equal(s0["boxes"], [[173, 100, 349, 351]])  # the <part> boxes are not objects


def test_voc_detection_difficult_flag(fixtures, tmp_path):
    root = tmp_path / "voc"
    shutil.copytree(fixtures / "openagi_datum_voc/det/voc", root)
    xml = root / "Annotations/2007_000032.xml"
    text = xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>", 3)
    xml.write_text(text)
    (root / "ImageSets/Main").mkdir()
    (root / "ImageSets/Main/val.txt").write_text("2007_000032\n")
    s = VOCDetection(root, "val")[0]
    assert s["difficult"].tolist() == [True, True, True, False]


def test_voc_seg_fixture_palette_indices(fixtures, tmp_path):
    root = fixtures / "openagi_datum_voc/seg/voc"
    ds = VOCSegDataset(root, root / "train.txt")  # bare ids
    assert [ds[i]["name"] for i in range(len(ds))] == ["2007_000033", "2007_000032"]
    s = ds[1]
    assert s["image"].shape == (281, 500, 3) and s["mask"].shape == (281, 500)
    values, counts = np.unique(s["mask"], return_counts=True)
    assert values.tolist() == [0, 1, 15, 255]  # background, aeroplane, person, void border
    assert counts.tolist() == [129545, 4734, 866, 5355]
    # the two-column form gives the same sample
    lst = tmp_path / "pairs.txt"
    lst.write_text("JPEGImages/2007_000032.jpg SegmentationClass/2007_000032.png\n")
    s2 = VOCSegDataset(root, lst)[0]
    np.testing.assert_array_equal(s2["mask"], s["mask"])
    np.testing.assert_array_equal(s2["image"], s["image"])


def test_voc_palette_matches_real_file(fixtures):
    img = Image.open(fixtures / "openagi_datum_voc/seg/voc/SegmentationClass/2007_000032.png")
    assert img.getpalette() == voc_palette().reshape(-1).tolist()


def test_coco_fixture(fixtures):
    root = fixtures / "hf_optimum_graphcore_coco"
    ds = CocoDetection(root, root / "instances_39769.json")
    assert len(ds) == 1 and len(ds.cat_ids) == 80
    s = ds[0]
    assert s["image"].shape == (480, 640, 3) and int(s["image_id"]) == 39769
    assert len(s["boxes"]) == 6
    # first annotation: bbox xywh [332.89, 79.57, 38.65, 106.31]
    np.testing.assert_allclose(s["boxes"][0], [332.89, 79.57, 371.54, 185.88], atol=1e-3)
    np.testing.assert_allclose(s["boxes"][4], [17.5, 54.38, 318.75, 469.38], atol=1e-3)
    assert [ds.cat_ids[label - 1] for label in s["labels"]] == [75, 75, 63, 65, 17, 17]
    # contiguous 1..80 in the standard order: cat is the 16th class, couch 58th, bed 60th, remote 66th
    assert s["labels"].tolist() == [66, 66, 58, 60, 16, 16]
    names = [ds.class_names[label - 1] for label in s["labels"][[0, 2, 3, 4]]]
    assert names == ["remote", "couch", "bed", "cat"]
    assert not s["iscrowd"].any() and s["labels"].dtype == np.int32 and s["boxes"].dtype == np.float32


def test_coco_crowd_and_empty_images(fixtures, tmp_path):
    root = fixtures / "hf_optimum_graphcore_coco"
    doc = json.loads((root / "instances_39769.json").read_text())
    doc["annotations"][1]["iscrowd"] = 1
    doc["images"].append({"id": 5, "file_name": "empty.jpg", "width": 32, "height": 24})
    (tmp_path / "images").mkdir()
    shutil.copy(root / "000000039769.png", tmp_path / "images")
    cv2.imwrite(str(tmp_path / "images/empty.jpg"), np.zeros((24, 32, 3), np.uint8))
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(doc))
    ds = CocoDetection(tmp_path / "images", ann)
    assert ds.image_ids == [5, 39769]
    empty = ds[0]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    assert empty["image"].shape == (24, 32, 3)
    assert ds[1]["iscrowd"].tolist() == [False, True, False, False, False, False]
    assert CocoDetection(tmp_path / "images", ann, skip_empty=True).image_ids == [39769]


def test_imagenet_samples_standard_indices(fixtures):
    root = fixtures / "imagenet_sample_images"
    ds = ImageFolderDataset(root / "val", class_list=root / "synsets_index_from_filenames.txt")
    assert ds.num_classes == 1000 and len(ds) == 10
    by_wnid = {ds.classes[int(ds[i]["label"])]: ds[i] for i in range(len(ds))}
    assert int(by_wnid["n01440764"]["label"]) == 0 and "tench" in by_wnid["n01440764"]["path"]
    assert int(by_wnid["n02123045"]["label"]) == 281 and ds.class_names[281] == "tabby"
    assert int(by_wnid["n15075141"]["label"]) == 999 and ds.class_names[999] == "toilet_tissue"
    assert by_wnid["n01440764"]["image"].ndim == 3 and by_wnid["n01440764"]["label"].dtype == np.int32
    # without the list, only the 10 folders present: sorted order 0..9
    plain = ImageFolderDataset(root / "val")
    assert plain.num_classes == 10 and [int(plain[i]["label"]) for i in range(10)] == list(range(10))


def test_sod_prediction_only_folder(fixtures):
    folder = fixtures / "u2net/test_images"
    ds = SODDataset(folder, require_masks=False)
    assert len(ds) == 7 and "hockey" in ds.names
    s = ds[ds.names.index("hockey")]
    assert s["image"].shape == (267, 400, 3) and "mask" not in s
    with pytest.raises(DatasetError, match="no mask folder found in .*test_images"):
        SODDataset(folder)


def test_sod_pairs_real_images_with_rgb_maps(fixtures):
    """The official U2NET outputs (grey maps saved as RGB PNGs) pair with the test images by stem."""
    root = fixtures / "u2net"
    ds = SODDataset(root / "test_images", root / "u2net_results")
    assert len(ds) == 7 and ds.names[0] == "0003"
    s = ds[ds.names.index("rifle2")]  # rifle2.jpeg + rifle2.png
    assert s["image"].shape == (173, 290, 3) and s["mask"].shape == (173, 290) and s["mask"].dtype == np.uint8
    rgb = np.array(Image.open(root / "u2net_results/rifle2.png"))
    np.testing.assert_array_equal(s["mask"], rgb[..., 0])  # grey stored as R = G = B
    assert s["mask"].max() > 200 and s["mask"].min() < 50


# ---- synthetic data ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sod_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("sod")
    generate("sod", out, 6, 2, size=96, seed=3)
    return out


def test_sod_synthetic_masks_lie_on_objects(sod_root):
    ds = SODDataset(sod_root / "train")
    assert len(ds) == 6 and len(SODDataset(sod_root / "test")) == 2
    for i in range(len(ds)):
        s = ds[i]
        assert set(np.unique(s["mask"])) == {0, 255}
        hsv = cv2.cvtColor(s["image"], cv2.COLOR_RGB2HSV)
        inner = cv2.erode((s["mask"] > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        # objects are saturated, the background muted
        assert hsv[..., 1][inner].mean() > hsv[..., 1][s["mask"] == 0].mean() + 60


def test_sod_duts_layout(sod_root, tmp_path):
    root = tmp_path / "DUTS-TR"
    shutil.copytree(sod_root / "train/images", root / "DUTS-TR-Image")
    shutil.copytree(sod_root / "train/masks", root / "DUTS-TR-Mask")
    ds = SODDataset(root)
    assert ds.image_dir.name == "DUTS-TR-Image" and ds.mask_dir.name == "DUTS-TR-Mask" and len(ds) == 6
    explicit = SODDataset(root / "DUTS-TR-Image", root / "DUTS-TR-Mask")
    np.testing.assert_array_equal(explicit[2]["mask"], ds[2]["mask"])


# ---- errors -----------------------------------------------------------------------------------

def _copy_sod(sod_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(sod_root / "train", root)
    return root


def test_error_empty_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetError, match=r"no images .* found in .*images"):
        SODDataset(tmp_path)


def test_error_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found: .*nowhere"):
        SODDataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="mask folder not found: .*nomasks"):
        SODDataset(tmp_path, tmp_path / "nomasks")


def test_error_missing_mask_names_file(sod_root, tmp_path):
    root = _copy_sod(sod_root, tmp_path)
    (root / "masks/train_00003.png").unlink()
    with pytest.raises(DatasetError, match=r"without a mask .*train_00003 \(1 in total\)"):
        SODDataset(root)


def test_error_mask_without_image(sod_root, tmp_path):
    root = _copy_sod(sod_root, tmp_path)
    shutil.copy(root / "masks/train_00001.png", root / "masks/extra_a.png")
    shutil.copy(root / "masks/train_00001.png", root / "masks/extra_b.png")
    with pytest.raises(DatasetError, match=r"masks .* without an image .*extra_a, extra_b \(2 in total\)"):
        SODDataset(root)


def test_error_ambiguous_stems(sod_root, tmp_path):
    root = _copy_sod(sod_root, tmp_path)
    shutil.copy(root / "images/train_00001.jpg", root / "images/train_00001.png")
    with pytest.raises(DatasetError, match=r"two files share the stem 'train_00001'"):
        SODDataset(root)


def test_error_corrupt_image_is_named(sod_root, tmp_path):
    root = _copy_sod(sod_root, tmp_path)
    (root / "images/train_00002.jpg").write_bytes(b"this is not a jpeg" * 10)
    ds = SODDataset(root)  # listing is lazy: the file is only decoded when read
    ds[0]
    with pytest.raises(DatasetError, match=r"cannot decode image file .*train_00002\.jpg"):
        ds[2]


def test_error_corrupt_label_is_named(sod_root, tmp_path):
    root = _copy_sod(sod_root, tmp_path)
    (root / "masks/train_00001.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DatasetError, match=r"cannot decode label file .*train_00001\.png"):
        SODDataset(root)[1]


def test_error_mask_size_mismatch_names_both(sod_root, tmp_path):
    root = _copy_sod(sod_root, tmp_path)
    cv2.imwrite(str(root / "masks/train_00004.png"), np.zeros((10, 12), np.uint8))
    pattern = r"size mismatch: image .*train_00004\.jpg .* label .*train_00004\.png"
    with pytest.raises(DatasetError, match=pattern):
        SODDataset(root)[4]


def test_error_rgb_class_map_rejected(tmp_path):
    path = tmp_path / "colour.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    with pytest.raises(DatasetError, match="colour.png has mode RGB"):
        read_label_map(path)
    assert read_label_map(path, grayscale_rgb=True).shape == (4, 4)


def test_palette_png_roundtrip(tmp_path):
    label = np.array([[0, 1, 15], [20, 255, 3]], np.uint8)
    write_palette_png(tmp_path / "l.png", label)
    assert Image.open(tmp_path / "l.png").mode == "P"
    np.testing.assert_array_equal(read_label_map(tmp_path / "l.png"), label)


def test_error_seg_list_problems(fixtures, tmp_path):
    root = fixtures / "openagi_datum_voc/seg/voc"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DatasetError, match="empty.txt is empty"):
        VOCSegDataset(root, empty)
    bad = tmp_path / "bad.txt"
    bad.write_text("2007_000032\n2007_999999\n")
    with pytest.raises(DatasetError, match=r"do not exist: .*2007_999999\.jpg"):
        VOCSegDataset(root, bad)


def test_error_voc_xml_unknown_class(fixtures, tmp_path):
    root = tmp_path / "voc"
    shutil.copytree(fixtures / "openagi_datum_voc/det/voc", root)
    xml = root / "Annotations/2007_000027.xml"
    xml.write_text(xml.read_text().replace("<name>person</name>", "<name>unicorn</name>", 1))
    ds = VOCDetection(root, "val")
    with pytest.raises(DatasetError, match=r"2007_000027\.xml: unknown class 'unicorn'"):
        ds[0]
    with pytest.raises(DatasetError, match="image set 'test' not found"):
        VOCDetection(root, "test")


def test_error_coco_missing_image(fixtures, tmp_path):
    root = fixtures / "hf_optimum_graphcore_coco"
    with pytest.raises(DatasetError, match=r"missing from .*: 000000039769\.png"):
        CocoDetection(tmp_path, root / "instances_39769.json")


def test_error_class_folder_not_in_list(fixtures, tmp_path):
    (tmp_path / "n99999999").mkdir()
    listing = tmp_path / "classes.txt"
    listing.write_text("n01440764 tench\n")
    with pytest.raises(DatasetError, match="not in the class list: n99999999"):
        ImageFolderDataset(tmp_path, class_list=listing)
    with pytest.raises(DatasetError, match="no class folders"):
        ImageFolderDataset(tmp_path / "n99999999")


def test_txt_detection(sod_root, tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("images/train_00000.jpg 1,2,30,40,0 5.5,6,20,21,4\nimages/train_00001.jpg\n")
    ds = TxtDetection(lst, sod_root / "train")
    s = ds[0]
    np.testing.assert_array_equal(s["boxes"], [[1, 2, 30, 40], [5.5, 6, 20, 21]])
    assert s["labels"].tolist() == [1, 5]  # 0-based class index + 1
    assert ds[1]["boxes"].shape == (0, 4) and int(ds[1]["image_id"]) == 1
    lst.write_text("images/train_00000.jpg 1,2,30\n")
    with pytest.raises(DatasetError, match=r"list.txt:1: bad box '1,2,30'"):
        TxtDetection(lst, sod_root / "train")


@pytest.mark.parametrize("fmt", ["voc", "coco"])
def test_detection_mindrecord_round_trip(fmt, fixtures, tmp_path):
    """Real VOC XML / real COCO annotations -> sharded MindRecord -> the reader's own samples."""
    from common.data.mindrecord import decode_det_row, read_det_mindrecord, write_det_mindrecord

    if fmt == "voc":
        source = VOCDetection(fixtures / "openagi_datum_voc/det/voc", "train")
    else:  # the real image and annotations plus a crowd box and an image without boxes
        images = tmp_path / "images"
        images.mkdir()
        shutil.copy(fixtures / "hf_optimum_graphcore_coco/000000039769.png", images)
        cv2.imwrite(str(images / "empty.png"), np.zeros((24, 32, 3), np.uint8))
        ann = json.loads((fixtures / "hf_optimum_graphcore_coco/instances_39769.json").read_text())
        ann["annotations"][1]["iscrowd"] = 1
        ann["images"].append({"id": 5, "file_name": "empty.png", "width": 32, "height": 24})
        (tmp_path / "ann.json").write_text(json.dumps(ann))
        source = CocoDetection(images, tmp_path / "ann.json")
        assert len(source[0]["labels"]) == 0 and source[1]["iscrowd"].any()
    files = write_det_mindrecord(source, tmp_path / "det.mindrecord", shard_num=2)
    rows = []
    for shard in range(2):
        ds = read_det_mindrecord(files, num_shards=2, shard_id=shard)
        rows += [decode_det_row(*row) for row in ds.create_tuple_iterator(output_numpy=True, num_epochs=1)]
    assert len(rows) == len(source)
    by_id = {r["image_id"]: r for r in rows}
    for i in range(len(source)):
        want = source[i]
        got = by_id[int(want["image_id"])]
        np.testing.assert_array_equal(got["boxes"], want["boxes"])
        np.testing.assert_array_equal(got["labels"], want["labels"])
        np.testing.assert_array_equal(got["difficult"], want["difficult"])
        np.testing.assert_array_equal(got["iscrowd"], want["iscrowd"])
        assert got["image"].shape == want["image"].shape
        if fmt == "coco":  # PNG is lossless: the very same pixels
            np.testing.assert_array_equal(got["image"], want["image"])


def test_detection_mindrecord_cli(fixtures, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "voc.mindrecord"
    proc = subprocess.run([sys.executable, "-m", "common.data.mindrecord", "--format", "voc", "--root",
                           str(fixtures / "openagi_datum_voc/det/voc"), "--split", "val", "--out", str(out)],
                          check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    proc = subprocess.run([sys.executable, "-m", "common.data.mindrecord", "--format", "coco", "--out",
                           str(out)], check=False, capture_output=True, text=True)
    assert proc.returncode != 0 and "--images, --ann" in proc.stderr


def test_detection_mindrecord_leaves_nothing_on_a_corrupt_image(fixtures, tmp_path):
    from common.data.mindrecord import write_det_mindrecord

    root = tmp_path / "voc"
    shutil.copytree(fixtures / "openagi_datum_voc/det/voc", root)
    (root / "JPEGImages/2007_000032.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="2007_000032.jpg"):
        write_det_mindrecord(VOCDetection(root, "train"), tmp_path / "out" / "det.mindrecord", shard_num=2)
    assert list((tmp_path / "out").iterdir()) == []

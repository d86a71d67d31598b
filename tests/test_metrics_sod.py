"""SOD metrics against PySODMetrics 1.6.2: its published fixture values and the installed package
(``py_sod_metrics``, a test-only oracle) on random maps and edge cases."""
import json
import subprocess
import sys
import warnings

import cv2
import numpy as np
import pytest

from common.metrics import (
    MetricFileNotFoundError,
    MetricInputError,
    SODMetric,
    image_adaptive_f,
    sod,
    sod_measures,
)

# our key -> PySODMetrics' key in its fixture files
FIXTURE_KEYS = {"mae": "MAE", "max_f": "maxFm", "mean_f": "meanFm", "adaptive_f": "adpFm",
                "s_measure": "Smeasure", "max_e": "maxEm", "mean_e": "meanEm", "adaptive_e": "adpEm",
                "weighted_f": "wFmeasure"}


@pytest.fixture(scope="module")
def sod_fixture(fixtures):
    root = fixtures / "pysodmetrics"
    return {
        "preds": root / "test_data" / "preds",
        "masks": root / "test_data" / "masks",
        # values PySODMetrics' own test produced: cv2 grayscale reads, all 3 images, mean curves
        "dataset": json.loads((root / "version_performance.json").read_text())["v1_4_3"],
        "per_image": json.loads((root / "per_image_metrics_pysodmetrics_1.6.2.json").read_text()),
    }


def test_fixture_dataset_scores(sod_fixture):
    result = sod.evaluate_folders(sod_fixture["preds"], sod_fixture["masks"]).result()
    for ours, theirs in FIXTURE_KEYS.items():
        assert result[ours] == pytest.approx(sod_fixture["dataset"][theirs], abs=1e-6), ours
    assert result["num_images"] == 3


def test_fixture_per_image_scores(sod_fixture):
    metric = SODMetric()
    for name, expected in sod_fixture["per_image"].items():
        pred, gt = sod.read_gray(sod_fixture["preds"] / name), sod.read_gray(sod_fixture["masks"] / name)
        scores = metric.update(pred, gt)
        assert image_adaptive_f(pred, gt) == pytest.approx(expected["adpFm"], abs=1e-6)
        for ours, theirs in FIXTURE_KEYS.items():
            assert scores[ours] == pytest.approx(expected[theirs], abs=1e-6), (name, ours)


def test_cli_json_and_pr_curve(sod_fixture, tmp_path):
    out_json, out_png = tmp_path / "sod.json", tmp_path / "pr.png"
    proc = subprocess.run([sys.executable, "-m", "common.metrics.sod", "--pred", str(sod_fixture["preds"]),
                           "--gt", str(sod_fixture["masks"]), "--json", str(out_json),
                           "--pr-curve", str(out_png)], check=False, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "max_f" in proc.stdout and "100%" in proc.stderr  # table and progress bar
    result = json.loads(out_json.read_text())
    assert set(FIXTURE_KEYS) <= set(result)
    for ours, theirs in FIXTURE_KEYS.items():
        assert result[ours] == pytest.approx(sod_fixture["dataset"][theirs], abs=1e-6), ours
    # RAS's number: mean over images of each image's adaptive-threshold F
    per_image_adaptive = [v["adpFm"] for v in sod_fixture["per_image"].values()]
    assert result["mean_image_adaptive_f"] == pytest.approx(np.mean(per_image_adaptive), abs=1e-9)
    img = cv2.imread(str(out_png))
    assert img is not None and img.shape == (520, 640, 3)
    curve_pixels = np.all(img == (200, 80, 0), axis=2)  # the curve's BGR colour
    assert curve_pixels.sum() > 100


def _blob_gt(rng, shape):
    noise = cv2.GaussianBlur(rng.random(shape), (0, 0), max(shape) / 8)
    return np.where(noise > np.median(noise), 255, 0).astype(np.uint8)


def _noisy_pred(rng, gt):
    pred = 0.6 * gt + 0.4 * 255 * rng.random(gt.shape)
    return cv2.GaussianBlur(pred, (0, 0), 2).clip(0, 255).astype(np.uint8)


def _cases():
    rng = np.random.default_rng(0)
    cases = []
    for shape in ((40, 60), (33, 17), (64, 64)):
        gt = _blob_gt(rng, shape)
        cases.append((f"blob{shape}", _noisy_pred(rng, gt), gt))
    random_gt = rng.integers(0, 256, (25, 31), dtype=np.uint8)  # grey levels: binarised at > 128
    cases.append(("uniform noise", rng.integers(0, 256, (25, 31), dtype=np.uint8), random_gt))
    gt = _blob_gt(rng, (30, 40))
    zeros, full = np.zeros((30, 40), np.uint8), np.full((30, 40), 255, np.uint8)
    cases += [
        ("all-zero gt", _noisy_pred(rng, gt), zeros),
        ("all-foreground gt", _noisy_pred(rng, gt), full),
        ("constant 0 pred", zeros, gt),
        ("constant 255 pred", full, gt),
        ("constant 128 pred", np.full((30, 40), 128, np.uint8), gt),
        ("constant pred, empty gt", np.full((30, 40), 77, np.uint8), zeros),
        ("perfect pred", gt, gt),
        ("inverted pred", 255 - gt, gt),
        ("binary pred 0/1", (gt > 0).astype(np.uint8), gt),
    ]
    return cases


CASES = _cases()


def _oracle(pairs):
    """Dataset scores and curves from the installed PySODMetrics."""
    import py_sod_metrics as psm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its Fmeasure class warns that it is deprecated
        fm, em, sm = psm.Fmeasure(), psm.Emeasure(), psm.Smeasure()
        wfm, mae = psm.WeightedFmeasure(), psm.MAE()
        for pred, gt in pairs:
            for metric in (fm, em, sm, wfm, mae):
                metric.step(pred=pred, gt=gt)
    f, e = fm.get_results(), em.get_results()["em"]
    return {
        "mae": mae.get_results()["mae"], "s_measure": sm.get_results()["sm"],
        "weighted_f": wfm.get_results()["wfm"],
        "max_f": f["fm"]["curve"].max(), "mean_f": f["fm"]["curve"].mean(), "adaptive_f": f["fm"]["adp"],
        "max_e": e["curve"].max(), "mean_e": e["curve"].mean(), "adaptive_e": e["adp"],
    }, f["pr"]["p"], f["pr"]["r"]


@pytest.mark.parametrize("name,pred,gt", CASES, ids=[c[0] for c in CASES])
def test_single_image_matches_pysodmetrics(name, pred, gt):
    metric = SODMetric()
    metric.update(pred, gt)
    expected, _, _ = _oracle([(pred, gt)])
    result = metric.result()
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-6), key


def test_dataset_and_pr_curve_match_pysodmetrics():
    metric = SODMetric()
    for _, pred, gt in CASES:
        metric.update(pred, gt)
    expected, precision, recall = _oracle([(p, g) for _, p, g in CASES])
    result = metric.result()
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-6), key
    ours_p, ours_r = metric.pr_curve()
    # PySODMetrics orders thresholds from 255 down to 0, we from 0 up
    np.testing.assert_allclose(ours_p, precision[::-1], atol=1e-12)
    np.testing.assert_allclose(ours_r, recall[::-1], atol=1e-12)


def test_s_measure_centroid_on_last_column():
    """PySODMetrics returns NaN when the centroid leaves an empty quadrant; that quadrant has
    weight 0, so we score the other three (checked with PySODMetrics' own pieces)."""
    import py_sod_metrics as psm

    rng = np.random.default_rng(1)
    gt = np.zeros((10, 12), np.uint8)
    gt[:, -1] = 255
    pred = rng.integers(0, 256, gt.shape, dtype=np.uint8)
    p, g = sod_measures.prepare(pred, gt)
    ref = psm.Smeasure()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref.step(pred, gt)
    assert np.isnan(ref.sms[0])
    cy = int(np.argwhere(g).mean(axis=0).round()[0]) + 1
    region = sum(ref.ssim(p[r, c], g[r, c]) * p[r, c].size / g.size
                 for r, c in ((slice(0, cy), slice(0, 12)), (slice(cy, 10), slice(0, 12))))
    expected = max(0.0, 0.5 * ref.object(p, g) + 0.5 * region)
    assert sod_measures.s_measure(p, g) == pytest.approx(expected, abs=1e-12)


def test_float_and_bool_inputs_equal_uint8():
    _, pred, gt = CASES[0]
    a, b = SODMetric(), SODMetric()
    a.update(pred, gt)
    b.update(pred / 255.0, gt > 128)
    assert a.result() == b.result()


def test_image_adaptive_f_by_hand():
    gt = np.array([[255, 0], [255, 0]], np.uint8)
    # mean 0.5 -> threshold 1.0: predicted {(0,0), (0,1)}, one hit: precision 1/2, recall 1/2
    pred = np.array([[200, 200], [10, 10]], np.uint8)  # min-max normalised to 1 and 0
    assert image_adaptive_f(pred, gt) == pytest.approx(1.3 * 0.25 / (0.3 * 0.5 + 0.5))
    # 2 x mean = 1.5 is capped at 1: three predicted, two hits: precision 2/3, recall 1
    pred = np.array([[1.0, 1.0], [1.0, 0.0]])
    assert image_adaptive_f(pred, gt) == pytest.approx(1.3 * (2 / 3) / (0.3 * 2 / 3 + 1))


def _write(folder, name, img):
    folder.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(folder / name), img)


@pytest.fixture
def small_dirs(tmp_path):
    rng = np.random.default_rng(2)
    for stem in ("a", "b"):
        gt = _blob_gt(rng, (20, 30))
        _write(tmp_path / "gt", f"{stem}.png", gt)
        _write(tmp_path / "pred", f"{stem}.png", _noisy_pred(rng, gt))
    return tmp_path / "pred", tmp_path / "gt"


def test_errors_name_the_file(small_dirs, tmp_path):
    pred_dir, gt_dir = small_dirs
    with pytest.raises(MetricFileNotFoundError, match="nowhere"):
        sod.main(["--pred", str(tmp_path / "nowhere"), "--gt", str(gt_dir)])
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetricInputError, match="empty"):
        sod.main(["--pred", str(tmp_path / "empty"), "--gt", str(gt_dir)])
    _write(pred_dir, "c.png", np.zeros((20, 30), np.uint8))
    with pytest.raises(MetricInputError, match=r"no ground-truth file .* for prediction .*c\.png"):
        sod.main(["--pred", str(pred_dir), "--gt", str(gt_dir)])
    _write(gt_dir, "c.jpg", np.zeros((20, 30), np.uint8))  # GT may be .jpg while the pred is .png
    _write(gt_dir, "d.png", np.zeros((20, 30), np.uint8))
    with pytest.raises(MetricInputError, match=r"no prediction file .* for ground-truth .*d\.png"):
        sod.main(["--pred", str(pred_dir), "--gt", str(gt_dir)])
    (gt_dir / "d.png").unlink()
    (pred_dir / "b.png").write_bytes(b"not a png")
    with pytest.raises(MetricInputError, match=r"cannot read image .*b\.png"):
        sod.main(["--pred", str(pred_dir), "--gt", str(gt_dir)])
    _write(pred_dir, "b.png", np.zeros((10, 15), np.uint8))
    with pytest.raises(MetricInputError, match=r"size mismatch: prediction .*b\.png is 15x10, ground truth"):
        sod.main(["--pred", str(pred_dir), "--gt", str(gt_dir)])
    assert sod.main(["--pred", str(pred_dir), "--gt", str(gt_dir), "--resize-pred"])["num_images"] == 3


def test_cli_error_exit(small_dirs):
    pred_dir, gt_dir = small_dirs
    (gt_dir / "b.png").unlink()
    proc = subprocess.run([sys.executable, "-m", "common.metrics.sod", "--pred", str(pred_dir),
                           "--gt", str(gt_dir)], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "error: no ground-truth file" in proc.stderr and str(pred_dir / "b.png") in proc.stderr


def test_result_without_images_is_an_error():
    with pytest.raises(MetricInputError):
        SODMetric().result()


# ---------------------------------------------------------------- dataset-PR-curve F (toolbox)

def _f(p, r, beta2=0.3):
    p, r = np.asarray(p, np.float64), np.asarray(r, np.float64)
    num = (1 + beta2) * p * r
    return np.divide(num, beta2 * p + r, out=np.zeros_like(num), where=num > 0)


def test_pr_curve_f_by_hand():
    """Two binary maps where the conventions differ: F of the mean P/R is not the mean F."""
    gt_a, pred_a = np.array([[255, 255], [0, 0]], np.uint8), np.array([[255, 255], [0, 0]], np.uint8)
    gt_b, pred_b = np.array([[255, 0], [0, 0]], np.uint8), np.array([[255, 255], [0, 0]], np.uint8)
    metric = SODMetric()
    metric.update(pred_a, gt_a)
    metric.update(pred_b, gt_b)
    result = metric.result()
    # threshold 0 takes every pixel: A P=1/2, B P=1/4; thresholds 1..255: A P=1, B P=1/2; R=1 always
    per_image = [(1.3 * .5 / 1.15 + 1.3 * .25 / 1.075) / 2, (1 + 1.3 * .5 / 1.15) / 2]
    pr_curve = [1.3 * .375 / (1 + .3 * .375), 1.3 * .75 / (1 + .3 * .75)]
    assert result["max_f"] == pytest.approx(per_image[1], abs=1e-12)              # 0.7826
    assert result["max_f_pr_curve"] == pytest.approx(pr_curve[1], abs=1e-12)      # 0.7959
    assert result["mean_f"] == pytest.approx((per_image[0] + 255 * per_image[1]) / 256, abs=1e-12)
    assert result["mean_f_pr_curve"] == pytest.approx((pr_curve[0] + 255 * pr_curve[1]) / 256, abs=1e-12)
    assert result["max_f_pr_curve_threshold"] == 1


def _pysod_pr_f(pairs):
    """F of PySODMetrics' dataset PR curve (its precision and recall averaged over images)."""
    import py_sod_metrics as psm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fm = psm.Fmeasure()
        for pred, gt in pairs:
            fm.step(pred=pred, gt=gt)
    pr = fm.get_results()["pr"]
    return _f(pr["p"], pr["r"])


def test_pr_curve_f_matches_pysodmetrics_curve_on_the_fixtures(sod_fixture):
    names = sorted(p.name for p in sod_fixture["preds"].iterdir())
    pairs = [(sod.read_gray(sod_fixture["preds"] / n), sod.read_gray(sod_fixture["masks"] / n))
             for n in names]
    expected = _pysod_pr_f(pairs)
    result = sod.evaluate_folders(sod_fixture["preds"], sod_fixture["masks"]).result()
    assert result["max_f_pr_curve"] == pytest.approx(expected.max(), abs=1e-9)
    assert result["mean_f_pr_curve"] == pytest.approx(expected.mean(), abs=1e-9)
    # the per-image convention stays what PySODMetrics' fixture says, and the two differ here
    assert result["max_f"] == pytest.approx(sod_fixture["dataset"]["maxFm"], abs=1e-6)
    assert abs(result["max_f_pr_curve"] - result["max_f"]) > 1e-4


def test_pr_curve_f_matches_pysodmetrics_on_random_and_edge_cases():
    pairs = [(p, g) for _, p, g in CASES]
    expected = _pysod_pr_f(pairs)
    metric = SODMetric()
    for pred, gt in pairs:
        metric.update(pred, gt)
    np.testing.assert_allclose(metric.pr_curve_f(), expected[::-1], atol=1e-12)  # PySOD: 255 -> 0
    assert metric.result()["max_f_pr_curve"] == pytest.approx(expected.max(), abs=1e-12)


def test_cli_reports_both_conventions(small_dirs, tmp_path):
    pred_dir, gt_dir = small_dirs
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "common.metrics.sod", "--pred", str(pred_dir),
                           "--gt", str(gt_dir), "--json", str(out)], check=False, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    table = {row[0]: row[1] for row in rows if len(row) >= 2}
    result = json.loads(out.read_text())
    for key in ("max_f", "max_f_pr_curve", "mean_f", "mean_f_pr_curve"):
        assert float(table[key]) == pytest.approx(result[key], abs=1e-4), key

"""Top-k accuracy: hand-computed cases, an argsort oracle, the whole split counted, the CLI."""
import json
import subprocess
import sys

import numpy as np
import pytest

from common.metrics import MetricInputError, TopKAccuracy


def test_by_hand():
    scores = np.array([[0.1, 0.7, 0.2, 0.0],    # label 1: rank 0
                       [0.5, 0.1, 0.3, 0.1],    # label 2: rank 1
                       [0.4, 0.3, 0.2, 0.1]])   # label 3: rank 3
    metric = TopKAccuracy(topk=(1, 2, 3))
    metric.update(scores, np.array([1, 2, 3]))
    assert metric.result() == {"top1": 1 / 3, "top2": 2 / 3, "top3": 2 / 3, "num_samples": 3}


def test_ties_rank_lower_index_first():
    # each label ties with a higher class index: as with np.argmax, the lower index wins
    scores = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    labels = np.array([0, 1])
    metric = TopKAccuracy(topk=(1,))
    metric.update(scores, labels)
    assert metric.result()["top1"] == np.mean(scores.argmax(axis=1) == labels) == 1.0
    metric = TopKAccuracy(topk=(1, 2))
    metric.update(scores, np.array([1, 2]))  # now the labels lose their ties
    assert metric.result() == {"top1": 0.0, "top2": 1.0, "num_samples": 2}


def test_fewer_classes_than_k():
    metric = TopKAccuracy()
    metric.update(np.array([[0.2, 0.5, 0.3]]), np.array([0]))
    assert metric.result()["top1"] == 0 and metric.result()["top5"] == 1


def test_uneven_batches_match_argsort_oracle():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(103, 10)).astype(np.float32)
    labels = rng.integers(0, 10, 103)
    metric = TopKAccuracy()
    for start in range(0, 103, 16):  # the last batch holds 7 samples and must be counted
        metric.update(scores[start:start + 16], labels[start:start + 16])
    top = np.argsort(-scores, axis=1, kind="stable")
    result = metric.result()
    assert result["num_samples"] == 103
    assert result["top1"] == pytest.approx(np.mean(top[:, 0] == labels))
    assert result["top5"] == pytest.approx(np.mean((top[:, :5] == labels[:, None]).any(axis=1)))


def test_bad_input():
    metric = TopKAccuracy()
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        metric.update(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="expected scores"):
        metric.update(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(MetricInputError):
        metric.result()


def test_cli(tmp_path):
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    np.save(tmp_path / "scores.npy", scores)
    np.save(tmp_path / "labels.npy", np.array([0, 1, 1]))
    out = tmp_path / "acc.json"
    cmd = [sys.executable, "-m", "common.metrics.classification", "--scores", str(tmp_path / "scores.npy"),
           "--labels", str(tmp_path / "labels.npy"), "--topk", "1", "--json", str(out)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text()) == {"top1": pytest.approx(2 / 3), "num_samples": 3}
    np.save(tmp_path / "labels.npy", np.array([0, 1]))
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "error:" in proc.stderr and "labels.npy" in proc.stderr


def test_nan_scores_are_an_error_naming_the_sample():
    metric = TopKAccuracy()
    metric.update(np.eye(3), np.array([0, 1, 2]))
    scores = np.eye(3)
    scores[1, 2] = np.nan  # today's rank test would count this sample as top-1 correct
    with pytest.raises(ValueError, match=r"scores of sample 4 \(row 1 of this batch\) contain NaN"):
        metric.update(scores, np.array([0, 1, 2]))
    assert metric.result() == {"top1": 1.0, "top5": 1.0, "num_samples": 3}  # the bad batch is not counted
    metric.update(np.array([[np.inf, 0.0], [1.0, -np.inf]]), np.array([0, 0]))  # infinities are ranks
    assert metric.result()["top1"] == 1.0


def test_cli_names_the_nan_sample(tmp_path):
    np.save(tmp_path / "scores.npy", np.array([[0.9, 0.1], [np.nan, 0.8]]))
    np.save(tmp_path / "labels.npy", np.array([0, 1]))
    proc = subprocess.run([sys.executable, "-m", "common.metrics.classification", "--scores",
                           str(tmp_path / "scores.npy"), "--labels", str(tmp_path / "labels.npy")],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "scores of sample 1 (row 1 of this batch) contain NaN" in proc.stderr
    assert "Traceback" not in proc.stderr

"""Top-k classification accuracy over a whole split (every sample counted, no dropped remainder).

Ties are broken as a stable sort by descending score would: among equal scores the lower class
index ranks first, so top-1 agrees with ``argmax``.

Command line (saved model outputs)::

    python -m common.metrics.classification --scores scores.npy --labels labels.npy [--json F]
"""
import argparse

import numpy as np

from common.metrics._cli import MetricInputError, format_table, require_file, run_cli, write_json


class TopKAccuracy:
    """Streaming top-k accuracy: ``update(scores (N, C), labels (N,))``, ``result()``."""

    def __init__(self, topk=(1, 5)):
        self.topk = tuple(int(k) for k in topk)
        if any(k < 1 for k in self.topk):
            raise ValueError(f"top-k values must be positive, got {topk}")
        self.correct = dict.fromkeys(self.topk, 0)
        self.num_samples = 0

    def update(self, scores, labels):
        """``scores``: logits or probabilities (N, C) (a MindSpore Tensor works too);
        ``labels``: class indices (N,). With fewer than k classes every sample is top-k correct."""
        scores = np.asarray(scores.asnumpy() if hasattr(scores, "asnumpy") else scores)
        labels = np.asarray(labels.asnumpy() if hasattr(labels, "asnumpy") else labels).reshape(-1)
        if scores.ndim != 2 or len(scores) != len(labels):
            raise ValueError(f"expected scores (N, C) and labels (N,), got {scores.shape} and {labels.shape}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
            raise ValueError(f"labels must lie in [0, {scores.shape[1]}), "
                             f"got [{labels.min()}, {labels.max()}]")
        nan_rows = np.flatnonzero(np.isnan(scores).any(axis=1)) if scores.dtype.kind in "fc" else []
        if len(nan_rows):
            # NaN compares false with everything, so the true class would rank first
            first = int(nan_rows[0])
            raise ValueError(f"scores of sample {self.num_samples + first} (row {first} of this batch) "
                             f"contain NaN ({len(nan_rows)} sample(s) in this batch): the network output "
                             "is broken")
        rows = np.arange(len(labels))
        label_scores = scores[rows, labels][:, None]
        classes = np.arange(scores.shape[1])[None, :]
        # rank of the true class: classes scoring higher, plus equal-scoring lower indices
        ahead = (scores > label_scores) | ((scores == label_scores) & (classes < labels[:, None]))
        rank = np.count_nonzero(ahead, axis=1)
        for k in self.topk:
            self.correct[k] += int(np.count_nonzero(rank < k))
        self.num_samples += len(labels)

    def result(self):
        if self.num_samples == 0:
            raise MetricInputError("no samples were given to the accuracy metric")
        out = {f"top{k}": self.correct[k] / self.num_samples for k in self.topk}
        out["num_samples"] = self.num_samples
        return out


def _load_npy(path, what):
    path = require_file(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise MetricInputError(f"cannot read {what} {path}: {exc}") from exc


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m common.metrics.classification",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--scores", required=True, help=".npy of logits or probabilities, shape (N, C)")
    parser.add_argument("--labels", required=True, help=".npy of class indices, shape (N,)")
    parser.add_argument("--topk", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--json", help="write the scores to this JSON file")
    args = parser.parse_args(argv)
    metric = TopKAccuracy(args.topk)
    scores, labels = _load_npy(args.scores, "scores"), _load_npy(args.labels, "labels")
    try:
        metric.update(scores, labels)
    except ValueError as exc:
        raise MetricInputError(f"{args.scores} / {args.labels}: {exc}") from exc
    result = metric.result()
    print(format_table(list(result.items())))
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    run_cli(main)

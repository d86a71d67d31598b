"""Salient object detection metrics (MAE, F-measure, S-measure, E-measure, weighted F).

Conventions are PySODMetrics 1.6.2's: ground truth binarised at > 128, prediction min-max
normalised, 256 thresholds, adaptive threshold ``min(2 * mean(pred), 1)``, F with beta^2 = 0.3.
Dataset scores are means over images; max/mean F and E take the max/mean over thresholds of the
mean curve. U-2-Net's paper number is ``max_f``; RAS's is ``mean_image_adaptive_f``.

Two F-measure conventions are reported, both over the same 256 thresholds:

- ``max_f`` / ``mean_f``: F of every image at each threshold, averaged over images, then the max /
  mean over thresholds (PySODMetrics' ``Fmeasure`` curve).
- ``max_f_pr_curve`` / ``mean_f_pr_curve``: precision and recall averaged over images at each
  threshold (the dataset PR curve), F of that averaged curve, then its max / mean over thresholds
  (the MATLAB sal_eval_toolbox's ``Fmeasure_Curve`` and many papers' tables).

Command line::

    python -m common.metrics.sod --pred DIR --gt DIR [--json F] [--pr-curve PNG] [--resize-pred]
"""
import argparse

import cv2
import numpy as np
from tqdm import tqdm

from common.metrics import sod_measures as m
from common.metrics._cli import MetricInputError, format_table, pair_by_stem, run_cli, write_json

RESULT_KEYS = ("mae", "max_f", "mean_f", "max_f_pr_curve", "mean_f_pr_curve", "adaptive_f", "s_measure",
               "max_e", "mean_e", "adaptive_e", "weighted_f")


class SODMetric:
    """Streaming SOD metrics: ``update(pred, gt)`` per image, ``result()`` for the dataset.

    Only running sums are kept (four 256-entry curves and five scalars), never the maps.
    """

    def __init__(self, beta2=0.3):
        self.beta2 = beta2
        self.num_images = 0
        self._sums = dict.fromkeys(("mae", "adaptive_f", "s_measure", "adaptive_e", "weighted_f"), 0.0)
        self._curves = {k: np.zeros(m.NUM_THRESHOLDS) for k in ("precision", "recall", "f", "e")}

    def update(self, pred, gt):
        """Add one image; returns its own scores (handy for per-image logs).

        ``pred``: (H, W) uint8 0-255 or float in [0, 1]; ``gt``: (H, W) uint8, float or bool mask.
        """
        pred, gt = m.prepare(pred, gt)
        scores = {
            "mae": m.mae(pred, gt),
            "adaptive_f": m.adaptive_f_measure(pred, gt, self.beta2),
            "s_measure": m.s_measure(pred, gt),
            "adaptive_e": m.adaptive_e_measure(pred, gt),
            "weighted_f": m.weighted_f(pred, gt),
        }
        precision, recall, f = m.precision_recall_f(pred, gt, self.beta2)
        e = m.e_measure_curve(pred, gt)
        for key, curve in (("precision", precision), ("recall", recall), ("f", f), ("e", e)):
            self._curves[key] += curve
        for key, value in scores.items():
            self._sums[key] += value
        self.num_images += 1
        return dict(scores, max_f=float(f.max()), mean_f=float(f.mean()), max_e=float(e.max()),
                    mean_e=float(e.mean()))

    def _require_images(self):
        if self.num_images == 0:
            raise MetricInputError("no images were given to the SOD metric")

    def pr_curve(self):
        """(precision, recall) averaged over images, one entry per threshold 0..255."""
        self._require_images()
        return self._curves["precision"] / self.num_images, self._curves["recall"] / self.num_images

    def pr_curve_f(self):
        """F-measure of the dataset PR curve at each threshold 0..255 (0 where P = R = 0)."""
        precision, recall = self.pr_curve()
        return m.f_beta(precision, recall, self.beta2)

    def result(self):
        self._require_images()
        n = self.num_images
        f, e = self._curves["f"] / n, self._curves["e"] / n
        mean = {key: total / n for key, total in self._sums.items()}
        result = {"mae": mean["mae"], "max_f": float(f.max()), "mean_f": float(f.mean()),
                  "adaptive_f": mean["adaptive_f"], "s_measure": mean["s_measure"],
                  "max_e": float(e.max()), "mean_e": float(e.mean()), "adaptive_e": mean["adaptive_e"],
                  "weighted_f": mean["weighted_f"]}
        # RAS reports the mean over images of the per-image adaptive F; PySODMetrics' adaptive F is
        # that same mean, so the two keys agree. Both are written so each paper's name is found.
        result["mean_image_adaptive_f"] = mean["adaptive_f"]
        result["max_f_threshold"] = int(np.argmax(f))
        f_pr = self.pr_curve_f()
        result["max_f_pr_curve"] = float(f_pr.max())
        result["mean_f_pr_curve"] = float(f_pr.mean())
        result["max_f_pr_curve_threshold"] = int(np.argmax(f_pr))
        result["num_images"] = n
        return result


def image_adaptive_f(pred, gt, beta2=0.3):
    """Adaptive-threshold F-measure of one image (same inputs as :meth:`SODMetric.update`).

    Its mean over images is the F-measure RAS reports, ``mean_image_adaptive_f`` in results.
    """
    return m.adaptive_f_measure(*m.prepare(pred, gt), beta2)


def draw_pr_curve(precision, recall, path, title="PR curve", size=(640, 520)):
    """Plot precision over recall as a PNG (OpenCV, to avoid a plotting dependency)."""
    w, h = size
    left, right, top, bottom = 70, 20, 40, 60
    img = np.full((h, w, 3), 255, np.uint8)
    pw, ph = w - left - right, h - top - bottom

    def xy(r, p):
        return round(left + r * pw), round(top + (1 - p) * ph)

    font = cv2.FONT_HERSHEY_SIMPLEX
    for i in range(11):
        v = i / 10
        cv2.line(img, xy(v, 0), xy(v, 1), (225, 225, 225), 1)
        cv2.line(img, xy(0, v), xy(1, v), (225, 225, 225), 1)
        cv2.putText(img, f"{v:.1f}", (xy(v, 0)[0] - 12, top + ph + 20), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"{v:.1f}", (left - 35, xy(0, v)[1] + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, xy(0, 1), xy(1, 0), (0, 0, 0), 1)
    points = np.array([xy(r, p) for r, p in zip(recall, precision)], np.int32)
    cv2.polylines(img, [points], False, (200, 80, 0), 2, cv2.LINE_AA)
    cv2.putText(img, "recall", (left + pw // 2 - 20, h - 15), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "precision", (5, top - 12), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, title, (left + 80, top - 12), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(str(path), img):
        raise MetricInputError(f"cannot write PR-curve image {path} (folder missing or suffix not an image)")


def read_gray(path):
    """A uint8 grayscale image as OpenCV decodes it (PySODMetrics' own reader)."""
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise MetricInputError(f"cannot read image {path}")
    return img


def evaluate_folders(pred_dir, gt_dir, resize_pred=False):
    """Score every prediction in ``pred_dir`` against the same-stem file in ``gt_dir``."""
    metric = SODMetric()
    for _, pred_path, gt_path in tqdm(pair_by_stem(pred_dir, gt_dir), desc="SOD metrics", unit="img"):
        pred, gt = read_gray(pred_path), read_gray(gt_path)
        if pred.shape != gt.shape:
            if not resize_pred:
                raise MetricInputError(
                    f"size mismatch: prediction {pred_path} is {pred.shape[1]}x{pred.shape[0]}, ground "
                    f"truth {gt_path} is {gt.shape[1]}x{gt.shape[0]} (pass --resize-pred to resize)")
            pred = cv2.resize(pred, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_LINEAR)
        metric.update(pred, gt)
    return metric


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m common.metrics.sod", description=__doc__.split("\n")[0])
    parser.add_argument("--pred", required=True, help="folder of predicted saliency maps (grayscale)")
    parser.add_argument("--gt", required=True, help="folder of ground-truth masks, paired by file stem")
    parser.add_argument("--json", help="write the scores to this JSON file")
    parser.add_argument("--pr-curve", help="write the precision-recall curve to this PNG")
    parser.add_argument("--resize-pred", action="store_true",
                        help="resize predictions to the ground-truth size instead of failing")
    args = parser.parse_args(argv)
    metric = evaluate_folders(args.pred, args.gt, args.resize_pred)
    result = metric.result()
    print(format_table([(k, result[k]) for k in (*RESULT_KEYS, "mean_image_adaptive_f", "num_images")]))
    if args.json:
        write_json(args.json, result)
    if args.pr_curve:
        precision, recall = metric.pr_curve()
        draw_pr_curve(precision, recall, args.pr_curve,
                      title=f"max F {result['max_f']:.4f}  ({result['num_images']} images)")
    return result


if __name__ == "__main__":
    run_cli(main)

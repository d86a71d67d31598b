"""Semantic segmentation metrics from one confusion matrix over all pixels of the split.

mIoU, per-class IoU, pixel accuracy and mean class accuracy, as mmsegmentation and Hugging Face
``evaluate``'s ``mean_iou`` compute them: pixels whose ground truth is ``ignore_index`` are
dropped; a class that occurs neither in the ground truth nor in the prediction has an undefined
IoU (NaN, JSON null) and is left out of the mean.

Command line (PNG class-index maps; palette PNGs are read as indices, not colours)::

    python -m common.metrics.segmentation --pred DIR --gt DIR --num-classes C [--ignore-index 255]
"""
import argparse

import numpy as np
from PIL import Image
from tqdm import tqdm

from common.metrics._cli import MetricInputError, format_table, pair_by_stem, run_cli, write_json


class SegmentationMetric:
    """Streaming confusion matrix; ``update(pred, gt)`` takes class-index arrays of equal shape
    (one image or a batch). Rows are ground-truth classes, columns predicted classes."""

    def __init__(self, num_classes, ignore_index=255):
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.confusion = np.zeros((num_classes, num_classes), np.int64)
        self.num_images = 0

    def update(self, pred, gt):
        """(H, W) for one image or (N, H, W) for a batch."""
        pred, gt = np.asarray(pred), np.asarray(gt)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
        num_images = len(pred) if pred.ndim == 3 else 1
        valid = gt != self.ignore_index
        gt, pred = gt[valid].astype(np.int64), pred[valid].astype(np.int64)
        c = self.num_classes
        # Out-of-range labels would otherwise land in a wrong cell of the flattened matrix.
        for name, labels in (("ground truth", gt), ("prediction", pred)):
            bad = labels[(labels < 0) | (labels >= c)]
            if bad.size:
                raise ValueError(f"{name} has class {bad[0]} outside [0, {c}) where the ground truth "
                                 f"is not ignore_index={self.ignore_index}")
        self.confusion += np.bincount(gt * c + pred, minlength=c * c).reshape(c, c)
        self.num_images += num_images

    def result(self):
        total = self.confusion.sum()
        if total == 0:
            raise MetricInputError("no labelled pixels were given to the segmentation metric")
        hits = np.diag(self.confusion).astype(np.float64)
        gt_area, pred_area = self.confusion.sum(axis=1), self.confusion.sum(axis=0)
        union = gt_area + pred_area - hits
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = hits / union  # 0/0 = NaN: class absent from both
            acc = hits / gt_area  # NaN for a class absent from the ground truth
        return {
            "miou": float(np.nanmean(iou)),
            "per_class_iou": iou.tolist(),
            "pixel_acc": float(hits.sum() / total),
            "mean_acc": float(np.nanmean(acc)),
            "per_class_acc": acc.tolist(),
            "num_images": self.num_images,
        }


def read_label_png(path):
    """Class indices of a single-channel (L, P, I;16, I) PNG; an RGB image is refused since
    its colours are not class indices."""
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P", "I;16", "I"):
                raise MetricInputError(f"{path}: expected a class-index image (mode L or P), got mode "
                                       f"{img.mode}; colour-coded masks must be converted to indices")
            return np.array(img)
    except OSError as exc:
        raise MetricInputError(f"cannot read image {path}: {exc}") from exc


def evaluate_folders(pred_dir, gt_dir, num_classes, ignore_index=255):
    metric = SegmentationMetric(num_classes, ignore_index)
    pairs = pair_by_stem(pred_dir, gt_dir, suffixes=(".png",))
    for _, pred_path, gt_path in tqdm(pairs, desc="segmentation metrics", unit="img"):
        pred, gt = read_label_png(pred_path), read_label_png(gt_path)
        if pred.shape != gt.shape:
            raise MetricInputError(f"size mismatch: prediction {pred_path} is "
                                   f"{pred.shape[1]}x{pred.shape[0]}, ground truth {gt_path} is "
                                   f"{gt.shape[1]}x{gt.shape[0]}")
        try:
            metric.update(pred, gt)
        except ValueError as exc:
            raise MetricInputError(f"{pred_path} / {gt_path}: {exc}") from exc
    return metric


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m common.metrics.segmentation",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--pred", required=True, help="folder of predicted class-index PNGs")
    parser.add_argument("--gt", required=True, help="folder of ground-truth PNGs, paired by file stem")
    parser.add_argument("--num-classes", type=int, required=True)
    parser.add_argument("--ignore-index", type=int, default=255)
    parser.add_argument("--json", help="write the scores to this JSON file")
    args = parser.parse_args(argv)
    result = evaluate_folders(args.pred, args.gt, args.num_classes, args.ignore_index).result()
    rows = [(f"class {i}", iou, acc) for i, (iou, acc) in
            enumerate(zip(result["per_class_iou"], result["per_class_acc"]))]
    rows += [("mean", result["miou"], result["mean_acc"]), ("pixel accuracy", "", result["pixel_acc"])]
    print(format_table(rows, header=("", "IoU", "accuracy")))
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    run_cli(main)

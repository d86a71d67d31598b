"""Saliency evaluation loop shared by the SOD models (U-2-Net, RAS).

Each image is preprocessed by the model's own function, predicted, min-max normalised, resized
back to the image's size, written as an 8-bit PNG (the maps people look at and that
``python -m common.metrics.sod`` re-scores) and scored with the shared SOD metric.
"""
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from common.metrics import write_json
from common.metrics.sod import SODMetric

RESULT_NAMES = {
    "max_f": "max F-measure (beta^2 = 0.3) - U-2-Net paper metric",
    "mean_image_adaptive_f": "mean over images of adaptive-threshold F - RAS paper metric",
    "mae": "mean absolute error",
}


def to_uint8_map(saliency, image_size):
    """Min-max normalise (authors' normPRED), resize to (height, width) bilinearly, to uint8."""
    s = saliency.astype(np.float32)
    lo, hi = float(s.min()), float(s.max())
    s = (s - lo) / (hi - lo) if hi > lo else np.zeros_like(s)
    s = cv2.resize(s, (image_size[1], image_size[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.rint(s * 255.0), 0, 255).astype(np.uint8)


def score_maps(items, pred_dir=None, postprocess=to_uint8_map, desc="eval", total=None):
    """Score ``(name, saliency map, ground-truth mask)`` items: each map is postprocessed to the
    mask's size (``postprocess(map, (H, W)) -> uint8``), written as ``<name>.png`` when
    ``pred_dir`` is given and added to the SOD metric. Returns the metric dict."""
    metric = SODMetric()
    out = Path(pred_dir) if pred_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    for name, saliency, gt in tqdm(items, total=total, desc=desc, unit="img"):
        saliency = np.asarray(saliency)
        pred = postprocess(saliency.reshape(saliency.shape[-2:]), gt.shape[:2])
        if out:
            cv2.imwrite(str(out / f"{name}.png"), pred)
        metric.update(pred, gt)
    return metric.result()


def evaluate_saliency(predict, preprocess, source, pred_dir=None, max_images=None, desc="eval",
                      postprocess=to_uint8_map):
    """Score ``predict`` on an SOD source (samples with "image", "mask", "name").

    ``preprocess(image HWC uint8) -> (1, C, H, W) float32``; ``predict(batch NCHW) -> (N, h, w)``
    saliency of the fused output (any range); ``postprocess`` as in :func:`score_maps` (a model
    may pass its authors' exact version). Returns the metric dict.
    """
    count = len(source) if max_images is None else min(max_images, len(source))

    def items():
        for i in range(count):
            sample = source[i]
            yield sample["name"], np.asarray(predict(preprocess(sample["image"])))[0], sample["mask"]

    return score_maps(items(), pred_dir, postprocess, desc, total=count)


def format_results(result, paper_metric):
    """Table of the headline metrics naming which figure is the paper's."""
    lines = [f"{'metric':<24}{'value':>8}  note"]
    for key in ("max_f", "mean_f", "adaptive_f", "mean_image_adaptive_f", "mae", "s_measure",
                "max_e", "mean_e", "adaptive_e", "weighted_f"):
        if key in result:
            note = "<- paper metric" if key == paper_metric else RESULT_NAMES.get(key, "")
            lines.append(f"{key:<24}{result[key]:>8.4f}  {note}")
    lines.append(f"{'images':<24}{result.get('num_images', 0):>8}")
    return "\n".join(lines)


def report_results(result, paper_metric, json_path, pred_dir=None):
    """Print the table, write the JSON and say where the maps and results went."""
    print(format_results(result, paper_metric))
    write_json(json_path, result)
    if pred_dir:
        print(f"saliency maps: {pred_dir}")
    print(f"results: {json_path}")

"""Saliency evaluation loop shared by the SOD models (U-2-Net, RAS).

Each image is preprocessed by the model's own function, predicted, min-max normalised, resized
back to the image's size, written as an 8-bit PNG (the maps people look at and that
``python -m common.metrics.sod`` re-scores) and scored with the shared SOD metric.
"""
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

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


def evaluate_saliency(predict, preprocess, source, pred_dir=None, max_images=None, desc="eval",
                      postprocess=to_uint8_map):
    """Score ``predict`` on an SOD source (samples with "image", "mask", "name").

    ``preprocess(image HWC uint8) -> (1, C, H, W) float32``; ``predict(batch NCHW) -> (N, h, w)``
    saliency of the fused output (any range); ``postprocess(map, (H, W)) -> uint8 map`` at the
    image size (a model may pass its authors' exact version). Returns the metric dict.
    """
    metric = SODMetric()
    out = Path(pred_dir) if pred_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    count = len(source) if max_images is None else min(max_images, len(source))
    for i in tqdm(range(count), desc=desc, unit="img"):
        sample = source[i]
        image, gt = sample["image"], sample["mask"]
        saliency = np.asarray(predict(preprocess(image)))[0]
        pred = postprocess(saliency.reshape(saliency.shape[-2:]), gt.shape[:2])
        if out:
            cv2.imwrite(str(out / f"{sample['name']}.png"), pred)
        metric.update(pred, gt)
    result = metric.result()
    result["mean_image_adaptive_f"] = result.get("mean_image_adaptive_f", result["adaptive_f"])
    return result


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

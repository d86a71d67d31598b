"""Salient object detection (U-2-Net, RAS): the one scoring and prediction path.

Each image is preprocessed by the model's own function, predicted, min-max normalised, resized
back to the image's size, written as an 8-bit PNG (the maps people look at and that
``python -m common.metrics.sod`` re-scores) and scored with the shared SOD metric.

A model's spec gives ``hooks["preprocess"](image HxWx3 uint8, (H, W), cfg) -> (1, C, H, W)``
and optionally ``hooks["postprocess"](map, (h, w)) -> uint8`` (default :func:`to_uint8_map`);
its deployed network returns the saliency probability map (N, 1, H, W) first.
"""
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from mindspore import nn, ops
from tqdm import tqdm

from common.config import Opt
from common.data.errors import DatasetError
from common.data.sod import SODDataset
from common.infer310 import InputWriter
from common.metrics import write_json
from common.metrics.sod import SODMetric
from common.tasks.base import (
    SquareTestSplit,
    Task,
    check_finite,
    predict_loop,
    staged_folder,
    write_image,
)

RESULT_NAMES = {
    "max_f_pr_curve": "max F of the dataset PR curve (sal_eval_toolbox convention)",
    "mean_f_pr_curve": "mean F of the dataset PR curve (sal_eval_toolbox convention)",
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
    with staged_folder(pred_dir) as out:  # a failing image leaves no partial folder behind
        for name, saliency, gt in tqdm(items, total=total, desc=desc, unit="img"):
            saliency = np.asarray(saliency)
            check_finite(saliency, f"the prediction for '{name}'")
            pred = postprocess(saliency.reshape(saliency.shape[-2:]), gt.shape[:2])
            if out:
                write_image(out / f"{name}.png", pred)
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
    for key in ("max_f", "mean_f", "max_f_pr_curve", "mean_f_pr_curve", "adaptive_f", "mean_image_adaptive_f",
                "mae", "s_measure", "max_e", "mean_e", "adaptive_e", "weighted_f"):
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


# ---------------------------------------------------------------- the task object

class SaliencyOutput(nn.Cell):
    """The deployed SOD graph: output ``index`` of the network as a probability map (N, 1, H, W)."""

    def __init__(self, net, index=0, apply_sigmoid=True):
        super().__init__()
        self.net, self.index, self.apply_sigmoid = net, index, apply_sigmoid

    def construct(self, x):
        out = self.net(x)[self.index]
        return ops.sigmoid(out) if self.apply_sigmoid else out


_TAGS = {"eval": ("pred", "eval_results.json"), "onnx": ("pred_onnx", "eval_results_onnx.json"),
         "310": ("pred_310", "eval_results_310.json")}


class SODTask(SquareTestSplit, Task):
    name = "sod"
    defaults: ClassVar[dict] = {
        "data": {"val_root": Opt(str)},                  # evaluated during training when set
        "test": {
            "root": "data/synthetic_sod/test",          # images/ + masks/ (DUTS-TE, ECSSD, ...)
            "size": 320,                                 # network input (square)
            "batch_size": 1,
            "pred_dir": Opt(str),                        # default <output_dir>/pred[_onnx|_310]
            "max_images": Opt(int),
        },
    }
    predict_arguments: ClassVar[list] = [(("--cutout",), {"action": "store_true",
                                          "help": "also write RGBA cut-outs (the map as alpha)"})]

    def _preprocess(self, spec, cfg):
        size = self.input_size(spec, cfg)
        return lambda image: spec.hooks["preprocess"](image, size, cfg)

    def _postprocess(self, spec):
        return spec.hooks.get("postprocess", to_uint8_map)

    def _paths(self, cfg, tag):
        pred, json_name = _TAGS[tag]
        out = Path(cfg.output_dir)
        return Path(cfg.test.pred_dir or out / pred), out / json_name

    def _run(self, spec, cfg, predict, source, pred_dir, desc):
        return evaluate_saliency(lambda batch: predict(batch)[0][:, 0], self._preprocess(spec, cfg),
                                 source, pred_dir=pred_dir, max_images=cfg.test.max_images, desc=desc,
                                 postprocess=self._postprocess(spec))

    def training_evaluator(self, spec, cfg):
        if not cfg.data.val_root:
            return None
        from common.runner.predictors import network_predictor

        source = SODDataset(cfg.data.val_root)  # validated once, up front
        return lambda net: self._run(spec, cfg, network_predictor(spec.deploy(net, cfg)), source,
                                     None, "val")

    def evaluate(self, spec, cfg, predict, tag):
        pred_dir, json_path = self._paths(cfg, tag)
        result = self._run(spec, cfg, predict, SODDataset(cfg.test.root), pred_dir, tag)
        report_results(result, spec.paper_metric, json_path, pred_dir)
        return result

    def predict_files(self, spec, cfg, predict, files, out_dir, args):
        preprocess, postprocess = self._preprocess(spec, cfg), self._postprocess(spec)
        out_dir = Path(out_dir)

        def handle(_file, name, image):
            saliency = predict(preprocess(image))[0][0, 0]
            mask = postprocess(saliency, image.shape[:2])
            outputs = {out_dir / f"{name}.png": mask,
                       out_dir / f"{name}_compare.png": side_by_side(image, mask)}
            if getattr(args, "cutout", False):
                outputs[out_dir / f"{name}_cutout.png"] = np.dstack([image, mask])
            return [write_image(path, array) for path, array in outputs.items()]

        return predict_loop(files, handle)

    def write_inputs(self, spec, cfg, output_dir):
        source = SODDataset(cfg.test.root)
        count = min(len(source), cfg.test.max_images or len(source))
        preprocess = self._preprocess(spec, cfg)
        with InputWriter(output_dir) as writer:
            for i in tqdm(range(count), desc="preprocess", unit="img"):
                sample = source[i]
                writer.add(sample["name"], preprocess(sample["image"]))
        return count

    def score_outputs(self, spec, cfg, outputs, data_dir, tag):
        source = SODDataset(cfg.test.root)
        index = {name: i for i, name in enumerate(source.names)}
        missing = sorted(set(outputs) - set(index))
        if missing:
            raise DatasetError(f"outputs without a test image in {cfg.test.root}: {missing[:5]}")
        pred_dir, json_path = self._paths(cfg, tag)
        items = ((name, tensors[0], source[index[name]]["mask"]) for name, tensors in outputs.items())
        result = score_maps(items, pred_dir, self._postprocess(spec), desc="postprocess", total=len(outputs))
        report_results(result, spec.paper_metric, json_path, pred_dir)
        return result


def side_by_side(image, mask):
    """image | map, both at the image size (RGB)."""
    return np.concatenate([image, np.repeat(mask[..., None], 3, axis=2)], axis=1)


TASK = SODTask()

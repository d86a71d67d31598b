"""Semantic segmentation (RefineNet on VOC): the one scoring and prediction path.

Every image goes through :func:`prepare`: ImageNet normalisation on a [0, 1] scale, then padding
at the bottom / right up to the network input ``test.size`` with 0 (in normalised units, i.e. the
ImageNet mean colour). An image larger than the input is first shrunk (aspect kept) to fit. The
network's logits (any stride, e.g. RefineNet's 1/4) are upsampled bilinearly (half-pixel, as the
training loss does) to the padded input, cropped to the image and resized to the original size
when the image was scaled (:func:`logits_to_probs`). ``test.flip`` adds a pass on the mirrored
image and ``test.scales`` passes at other scales (input and image scaled together); the softmax
probabilities of all passes are averaged (:func:`average_passes`) and the arg-max is the label.

Scores: mIoU and per-class IoU (VOC class names) from one confusion matrix over all pixels, label
255 ignored (:mod:`common.metrics.segmentation`); predictions are written as VOC palette PNGs.
eval (MindSpore), infer_onnx (ONNX Runtime), the 310 flow (preprocess -> app -> postprocess) and
predict all use these functions. The 310 flow writes one input per image and pass; it supports
``test.flip`` but only the scale 1 (the app runs one fixed-size model).
"""
import json
import math
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from tqdm import tqdm

from common.config import ConfigError, Opt
from common.data.errors import DatasetError
from common.data.image_io import voc_palette, write_palette_png
from common.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from common.data.voc_seg import IGNORE_INDEX, VOC_SEG_CLASSES, VOCSegDataset
from common.infer310 import InputWriter
from common.layers import interp_matrix
from common.metrics import write_json
from common.metrics._cli import format_table
from common.metrics.segmentation import SegmentationMetric
from common.tasks.base import (
    SquareTestSplit,
    Task,
    check_finite,
    predict_loop,
    staged_folder,
    write_image,
)

_MEAN = np.asarray(IMAGENET_MEAN, np.float32)
_STD = np.asarray(IMAGENET_STD, np.float32)
_TAGS = {"eval": ("pred", "eval_results.json"), "onnx": ("pred_onnx", "eval_results_onnx.json"),
         "310": ("pred_310", "eval_results_310.json")}
_FLIP = "__flip"    # suffix of the mirrored pass's sample in the 310 inputs
GEOMETRY_FILE = "geometry.json"


def class_names(num_classes):
    """VOC names for the first classes (the synthetic sets use the first K VOC classes too)."""
    if num_classes <= len(VOC_SEG_CLASSES):
        return list(VOC_SEG_CLASSES[:num_classes])
    return [f"class {i}" for i in range(num_classes)]


# ---------------------------------------------------------------- one image, one pass

def pass_geometry(image_shape, size, scale=1.0):
    """(content (h, w), padded input (H, W)) of one pass: the input is ``size`` x ``scale``
    (rounded up) and the image is scaled by ``scale`` (and shrunk further if it does not fit)."""
    ph, pw = math.ceil(size[0] * scale), math.ceil(size[1] * scale)
    h, w = image_shape[:2]
    s = min(scale, ph / h, pw / w)
    return (min(ph, max(1, round(h * s))), min(pw, max(1, round(w * s)))), (ph, pw)


def prepare(image, size, scale=1.0, flip=False):
    """HxWx3 uint8 RGB -> ((1, 3, H, W) float32 network input, content (h, w)).

    ``flip`` mirrors the image before padding, so the padding stays at the bottom / right.
    """
    (h, w), (ph, pw) = pass_geometry(image.shape, size, scale)
    if (h, w) != image.shape[:2]:
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    if flip:
        image = image[:, ::-1]
    x = np.zeros((ph, pw, 3), np.float32)  # 0 = the mean colour after normalisation
    x[:h, :w] = (image.astype(np.float32) / 255.0 - _MEAN) / _STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None]), (h, w)


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def logits_to_probs(logits, padded, content, image_size, flip=False):
    """(C, h, w) logits of a padded input -> (C, H, W) probabilities at the image size.

    Upsampled bilinearly to ``padded`` (half-pixel), cropped to ``content``, resized to
    ``image_size`` when they differ, un-mirrored when the pass was ``flip``-ped. The crop and
    the resize are folded into the two interpolation matrices (rows of the crop only).
    """
    logits = check_finite(np.asarray(logits, np.float32), "the network's logits")
    (ch, cw), (H, W) = content, image_size
    mh = interp_matrix(logits.shape[1], padded[0])[:ch]
    mw = interp_matrix(logits.shape[2], padded[1])[:cw]
    if (ch, cw) != (H, W):
        mh = interp_matrix(ch, H) @ mh
        mw = interp_matrix(cw, W) @ mw
    up = np.matmul(np.matmul(mh, logits), mw.T)
    probs = _softmax(up)
    return probs[:, :, ::-1] if flip else probs


def passes(cfg):
    """[(scale, flip)] of ``test.scales`` x (no flip, flip when ``test.flip``)."""
    scales = [float(s) for s in (cfg.test.scales or [1.0])]
    if any(s <= 0 for s in scales):
        raise ConfigError(f"test.scales must be positive, got {cfg.test.scales}")
    return [(s, f) for s in scales for f in ((False, True) if cfg.test.flip else (False,))]


def average_passes(probs):
    """Mean of the passes' probabilities (C, H, W)."""
    return np.mean(np.stack(probs), axis=0)


def predict_probs(predict, image, size, pass_list=((1.0, False),)):
    """Averaged (C, H, W) probabilities of ``image`` over ``pass_list`` [(scale, flip)];
    ``predict(batch NCHW) -> [logits (N, C, h, w), ...]``."""
    out = []
    for scale, flip in pass_list:
        x, content = prepare(image, size, scale, flip)
        logits = np.asarray(predict(x)[0])[0]
        out.append(logits_to_probs(logits, x.shape[2:], content, image.shape[:2], flip))
    return average_passes(out)


def to_labels(probs):
    return np.argmax(probs, axis=0).astype(np.uint8)


# ---------------------------------------------------------------- scoring and pictures

def score_labels(items, num_classes, pred_dir=None, desc="eval", total=None, ignore_index=IGNORE_INDEX):
    """Score ``(name, label map, ground truth)`` items (maps of equal shape); each prediction is
    written as ``<name>.png`` (VOC palette) when ``pred_dir`` is given. Returns the result dict
    (``miou``, ``per_class_iou``, ``per_class_iou_named``, ``pixel_acc``, ...)."""
    metric = SegmentationMetric(num_classes, ignore_index)
    with staged_folder(pred_dir) as out:  # a failing image leaves no partial folder behind
        for name, labels, gt in tqdm(items, total=total, desc=desc, unit="img"):
            if out:
                path = out / f"{name}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_palette_png(path, labels)
            metric.update(labels, gt)
    result = metric.result()
    names = class_names(num_classes)
    result["class_names"] = names
    result["per_class_iou_named"] = dict(zip(names, result["per_class_iou"]))
    return result


def format_results(result):
    rows = [(name, iou, acc) for name, iou, acc in
            zip(result["class_names"], result["per_class_iou"], result["per_class_acc"])]
    rows += [("mIoU (paper metric)", result["miou"], result["mean_acc"]),
             ("pixel accuracy", "", result["pixel_acc"]), ("images", "", result["num_images"])]
    return format_table(rows, header=("class", "IoU", "accuracy"))


def report_results(result, json_path, pred_dir=None):
    print(format_results(result))
    write_json(json_path, result)
    if pred_dir:
        print(f"label maps: {pred_dir}")
    print(f"results: {json_path}")


def overlay(image, labels, alpha=0.5):
    """image | image blended with the VOC colours of ``labels`` (RGB, background left as is)."""
    colours = voc_palette()[labels]
    mixed = image.astype(np.float32)
    fg = (labels > 0) & (labels != IGNORE_INDEX)
    mixed[fg] = (1 - alpha) * mixed[fg] + alpha * colours[fg]
    return np.concatenate([image, np.clip(mixed, 0, 255).astype(np.uint8)], axis=1)


# ---------------------------------------------------------------- the task object

class SegmentationTask(SquareTestSplit, Task):
    name = "segmentation"
    defaults: ClassVar[dict] = {
        "data": {"val_root": Opt(str), "val_list": Opt(str)},   # evaluated during training when set
        "test": {
            "root": "data/synthetic_voc/VOCdevkit/VOC2012",
            "list": Opt(str),        # default <root>/ImageSets/Segmentation/val.txt
            "size": 513,             # network input (square); images are padded up to it
            "flip": False,           # add the mirrored pass (probabilities averaged)
            "scales": [1.0],         # e.g. [0.75, 1.0, 1.25]: input and image scaled together
            "pred_dir": Opt(str),    # default <output_dir>/pred[_onnx|_310]
            "max_images": Opt(int),
        },
    }
    predict_arguments: ClassVar[list] = [(("--no_overlay",), {"action": "store_true",
                                              "help": "write only the palette label PNGs"})]

    @staticmethod
    def _source(root, list_file, max_images=None):
        list_file = list_file or Path(root) / "ImageSets" / "Segmentation" / "val.txt"
        source = VOCSegDataset(root, list_file)
        count = len(source) if max_images is None else min(max_images, len(source))
        return source, count

    def _paths(self, cfg, tag):
        pred, json_name = _TAGS[tag]
        out = Path(cfg.output_dir)
        return Path(cfg.test.pred_dir or out / pred), out / json_name

    def _run(self, cfg, predict, source, count, pred_dir, desc):
        size, pass_list = self.input_size(None, cfg), passes(cfg)

        def items():
            for i in range(count):
                sample = source[i]
                yield sample["name"], to_labels(predict_probs(predict, sample["image"], size, pass_list)), \
                    sample["mask"]

        return score_labels(items(), cfg.model.num_classes, pred_dir, desc, total=count)

    def training_evaluator(self, spec, cfg):
        if not cfg.data.val_root:
            return None
        from common.runner.predictors import network_predictor

        source, count = self._source(cfg.data.val_root, cfg.data.val_list, cfg.test.max_images)
        return lambda net: self._run(cfg, network_predictor(spec.deploy(net, cfg)), source, count, None, "val")

    def evaluate(self, spec, cfg, predict, tag):
        pred_dir, json_path = self._paths(cfg, tag)
        source, count = self._source(cfg.test.root, cfg.test.list, cfg.test.max_images)
        result = self._run(cfg, predict, source, count, pred_dir, tag)
        report_results(result, json_path, pred_dir)
        return result

    def predict_files(self, spec, cfg, predict, files, out_dir, args):
        size, pass_list, out_dir = self.input_size(spec, cfg), passes(cfg), Path(out_dir)

        def handle(_file, name, image):
            labels = to_labels(predict_probs(predict, image, size, pass_list))
            path = out_dir / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_palette_png(path, labels)
            if getattr(args, "no_overlay", False):
                return [path]
            return [path, write_image(out_dir / f"{name}_overlay.jpg", overlay(image, labels))]

        return predict_loop(files, handle)

    def write_inputs(self, spec, cfg, output_dir):
        pass_list = passes(cfg)
        if any(scale != 1.0 for scale, _ in pass_list):
            raise ConfigError(f"the 310 flow runs one fixed-size model: test.scales must be [1.0], "
                              f"got {cfg.test.scales} (test.flip is supported)")
        source, count = self._source(cfg.test.root, cfg.test.list, cfg.test.max_images)
        size = self.input_size(spec, cfg)
        geometry = {}
        with InputWriter(output_dir) as writer:
            for i in tqdm(range(count), desc="preprocess", unit="img"):
                sample = source[i]
                for _, flip in pass_list:
                    x, content = prepare(sample["image"], size, 1.0, flip)
                    writer.add(sample["name"] + (_FLIP if flip else ""), x)
                geometry[sample["name"]] = {"index": i, "content": list(content), "padded": list(size),
                                            "image": list(sample["image"].shape[:2])}
        (Path(output_dir) / GEOMETRY_FILE).write_text(json.dumps(geometry, indent=0))
        return count

    def score_outputs(self, spec, cfg, outputs, data_dir, tag):
        geometry_file = Path(data_dir) / GEOMETRY_FILE
        if not geometry_file.is_file():
            raise DatasetError(f"{geometry_file} not found (written by preprocess.py)")
        geometry = json.loads(geometry_file.read_text())
        flips = [flip for _, flip in passes(cfg)]
        wanted = [n + (_FLIP if f else "") for n in geometry for f in flips]
        missing = [n for n in wanted if n not in outputs]
        if missing:
            raise DatasetError(f"no app outputs for {len(missing)} inputs of {data_dir}, e.g. {missing[:5]}")
        source, _ = self._source(cfg.test.root, cfg.test.list)
        pred_dir, json_path = self._paths(cfg, tag)

        def items():
            for name, g in geometry.items():
                probs = [logits_to_probs(np.asarray(outputs[name + (_FLIP if f else "")][0])[0], g["padded"],
                                         g["content"], g["image"], f) for f in flips]
                sample = source[g["index"]]
                if sample["name"] != name:
                    raise DatasetError(f"{data_dir} was written for another test list: sample {g['index']} "
                                       f"is '{name}' there, '{sample['name']}' in {cfg.test.root}")
                yield name, to_labels(average_passes(probs)), sample["mask"]

        result = score_labels(items(), cfg.model.num_classes, pred_dir, "postprocess", total=len(geometry))
        report_results(result, json_path, pred_dir)
        return result


TASK = SegmentationTask()

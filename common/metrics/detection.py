"""Object detection metrics: COCO AP through pycocotools, and VOC AP (see ``detection_voc``).

COCO is scored over every image of the ground-truth split, those without annotations included
(pycocotools' default; the old port restricted ``imgIds`` to annotated images, which hides the
false positives on the others and inflates AP).

Command lines::

    python -m common.metrics.detection --gt instances.json --dets results.json [--json F]
    python -m common.metrics.detection --format voc --gt GT_DIR --dets DET_DIR \
        [--iou-threshold 0.5] [--plus-one] [--json F]
"""
import argparse
import contextlib
import io
import json

import numpy as np
from tqdm import tqdm

from common.metrics._cli import MetricInputError, format_table, require_file, run_cli, write_json
from common.metrics.detection_voc import evaluate_txt_folders

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                   "AR_1", "AR_10", "AR_100", "AR_small", "AR_medium", "AR_large")


def _quiet(fn, *args):
    """Run a pycocotools call without its progress prints (we report our own)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def load_coco_gt(gt):
    """A pycocotools ``COCO`` from a path, an annotation dict or an existing ``COCO``."""
    from pycocotools.coco import COCO  # lazy: importing common.metrics should stay light

    if isinstance(gt, COCO):
        return gt
    coco = COCO()
    if isinstance(gt, dict):
        coco.dataset = gt
    else:
        path = require_file(gt, "COCO ground-truth")
        try:
            coco.dataset = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise MetricInputError(f"{path} is not valid JSON: {exc}") from exc
    missing = {"images", "annotations", "categories"} - set(coco.dataset)
    if missing:
        raise MetricInputError(f"COCO ground truth {gt if not isinstance(gt, dict) else '(dict)'} "
                               f"lacks {sorted(missing)}")
    _quiet(coco.createIndex)
    return coco


def _finite_numbers(values, n):
    """True when ``values`` is a list/tuple/array of ``n`` finite real numbers (bools are not)."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if not isinstance(values, (list, tuple)) or len(values) != n:
        return False
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               and np.isfinite(v) for v in values)


def _check_results(coco_gt, results, iou_type, source):
    required = {"image_id", "category_id", "score", "bbox" if iou_type == "bbox" else "segmentation"}
    for i, det in enumerate(results):
        if not isinstance(det, dict) or required - set(det):
            raise MetricInputError(f"{source}: result {i} must be an object with {sorted(required)}, "
                                   f"got {det!r}")
    for i, det in enumerate(results):
        box = det.get("bbox")
        if (iou_type == "bbox" or box is not None) and not _finite_numbers(box, 4):
            raise MetricInputError(f"{source}: result {i} (image {det['image_id']}): bbox must be 4 finite "
                                   f"numbers [x, y, width, height], got {box!r}")
        if not _finite_numbers([det["score"]], 1):
            raise MetricInputError(f"{source}: result {i} (image {det['image_id']}): score must be a finite "
                                   f"number, got {det['score']!r}")
    unknown_images = {d["image_id"] for d in results} - set(coco_gt.getImgIds())
    if unknown_images:
        raise MetricInputError(f"{source}: image ids not in the ground truth: {sorted(unknown_images)[:10]}")
    unknown_cats = {d["category_id"] for d in results} - set(coco_gt.getCatIds())
    if unknown_cats:
        raise MetricInputError(f"{source}: category ids not in the ground truth: {sorted(unknown_cats)}")


def _plain(det):
    """A copy pycocotools accepts: bbox as a list of floats (not a tuple / array), score a float."""
    out = dict(det, score=float(det["score"]))
    if det.get("bbox") is not None:
        out["bbox"] = [float(v) for v in det["bbox"]]
    return out


def coco_evaluate(gt, results, iou_type="bbox", source="results"):
    """The 12 COCOeval stats of ``results`` (a list of COCO result dicts) over all images of ``gt``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    coco_gt = load_coco_gt(gt)
    _check_results(coco_gt, results, iou_type, source)
    if results:
        coco_dt = _quiet(coco_gt.loadRes, [_plain(r) for r in results])  # loadRes edits its input
    else:  # loadRes cannot take an empty list; nothing detected scores 0, it is not an error
        coco_dt = COCO()
        coco_dt.dataset = {"images": coco_gt.dataset["images"], "categories": coco_gt.dataset["categories"],
                           "annotations": []}
        _quiet(coco_dt.createIndex)
    evaluator = COCOeval(coco_gt, coco_dt, iou_type)
    evaluator.params.imgIds = sorted(coco_gt.getImgIds())  # every image, annotated or not
    for step in tqdm((evaluator.evaluate, evaluator.accumulate, evaluator.summarize),
                     desc=f"COCO {iou_type} eval", unit="step"):
        _quiet(step)
    stats = [float(s) for s in evaluator.stats]
    return {"stats": stats, **dict(zip(COCO_STAT_NAMES, stats)), "iou_type": iou_type,
            "num_images": len(evaluator.params.imgIds), "num_detections": len(results)}


class CocoDetectionMetric:
    """Streaming COCO box AP: ``update`` per image collects results, ``result`` runs pycocotools.

    ``label_to_category`` maps the model's contiguous labels to COCO category ids (a sequence
    indexed by label, or a dict); by default label ``i`` is the ``i``-th category id in
    ascending order (a model with background at 0 passes ``labels - 1`` or its own mapping).
    """

    def __init__(self, gt, label_to_category=None):
        self.coco_gt = load_coco_gt(gt)
        if label_to_category is None:
            label_to_category = sorted(self.coco_gt.getCatIds())
        if not isinstance(label_to_category, dict):
            label_to_category = dict(enumerate(label_to_category))
        self.label_to_category = {int(k): int(v) for k, v in label_to_category.items()}
        self._image_ids = set(self.coco_gt.getImgIds())
        self.results = []
        self.images_seen = set()

    def update(self, image_id, boxes_xyxy, scores, labels):
        """One image's detections: (N, 4) boxes x1, y1, x2, y2 in original-image pixels."""
        if image_id not in self._image_ids:
            raise ValueError(f"image id {image_id} is not in the COCO ground truth")
        boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        labels = np.asarray(labels).reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f"image {image_id}: {len(boxes)} boxes, {len(scores)} scores and "
                             f"{len(labels)} labels differ in number")
        unknown = set(labels.tolist()) - set(self.label_to_category)
        if unknown:
            raise ValueError(f"image {image_id}: labels {sorted(unknown)} have no COCO category id")
        self.images_seen.add(image_id)
        for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
            self.results.append({"image_id": image_id, "category_id": self.label_to_category[label],
                                 "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})

    def result(self):
        """COCO stats over every ground-truth image; images never updated count as no detections."""
        out = coco_evaluate(self.coco_gt, self.results)
        out["images_updated"] = len(self.images_seen)
        return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m common.metrics.detection",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--format", choices=("coco", "voc"), default="coco",
                        help="coco: COCO JSON files; voc: folders of per-image .txt box files")
    parser.add_argument("--gt", required=True,
                        help="COCO instances JSON, or (voc) folder of 'class x y w h' files")
    parser.add_argument("--dets", required=True,
                        help="COCO results JSON, or (voc) folder of 'class conf x y w h' files")
    parser.add_argument("--iou-type", choices=("bbox", "segm"), default="bbox", help="coco only")
    parser.add_argument("--iou-threshold", type=float, default=0.5, help="voc only")
    parser.add_argument("--plus-one", action="store_true", help="voc only: pixel-inclusive areas (x2-x1+1)")
    parser.add_argument("--json", help="write the scores to this JSON file")
    args = parser.parse_args(argv)
    if args.format == "coco":
        path = require_file(args.dets, "COCO results")
        try:
            results = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise MetricInputError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(results, list):
            raise MetricInputError(f"{path}: expected a list of COCO result objects")
        result = coco_evaluate(args.gt, results, args.iou_type, source=str(path))
        print(format_table(list(zip(COCO_STAT_NAMES, result["stats"]))))
    else:
        result = evaluate_txt_folders(args.gt, args.dets, args.iou_threshold, args.plus_one).result()
        rows = [(cls, v["ap_11point"], v["ap_all_point"], v["num_gt"], v["num_det"])
                for cls, v in result["per_class"].items()]
        rows.append(("mean", result["map_11point"], result["map_all_point"], "", ""))
        print(format_table(rows, header=("class", "AP 11-point", "AP all-point", "gt", "det")))
    if args.json:
        write_json(args.json, result)
    return result


if __name__ == "__main__":
    run_cli(main)

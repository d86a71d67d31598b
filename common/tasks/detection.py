"""Object detection (RefineDet): the one scoring and prediction path.

Every image of the test split (COCO json, VOC XML or a ``path x1,y1,x2,y2,cls`` list) is
preprocessed by the model's hook, predicted (the raw heads of the deployed graph), decoded by the
model's post-processing hook into boxes in original-image pixels, streamed to
``<output_dir>/detections[_onnx|_310].json`` (COCO result format) and scored: COCO AP through
pycocotools over every image of the split (images without objects included) and, for VOC,
VOC07 11-point and VOC12 all-point mAP.

A model's spec gives ``hooks["preprocess"](image HxWx3 uint8, (H, W), cfg) -> (1, 3, H, W)``
and ``hooks["postprocess"](outputs [arrays with batch 1], (h, w) of the image, cfg) -> (boxes
(K, 4) x1y1x2y2 pixels, scores (K,), labels (K,) in 1..C-1)``.
"""
import json
import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from common.config import Config, ConfigError, Opt
from common.data.errors import DatasetError
from common.data.voc_seg import VOC_CLASSES
from common.infer310 import InputWriter
from common.metrics import write_json
from common.tasks.base import OutputWriteError, SplitAtTestRoot, Task, check_finite, predict_loop, write_image

FORMATS = ("coco", "voc", "txt")
_TAGS = {"eval": ("detections.json", "eval_results.json"),
         "onnx": ("detections_onnx.json", "eval_results_onnx.json"),
         "310": ("detections_310.json", "eval_results_310.json"),
         "val": ("detections_val.json", None)}
REPORTED = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR_100", "voc07_map", "voc12_map")


def build_test_source(test_cfg):
    """The detection reader of ``test``: ``format`` coco (``root`` images, ``ann_file`` json), voc
    (``root`` = VOC2007 folder, ``ann_file`` = image set name or .txt) or txt (``root`` image
    folder, ``ann_file`` list file)."""
    from common.data.detection import CocoDetection, TxtDetection, VOCDetection

    fmt = test_cfg.format
    if fmt == "coco":
        return CocoDetection(test_cfg.root, test_cfg.ann_file, skip_empty=False)
    if fmt == "voc":
        return VOCDetection(test_cfg.root, test_cfg.ann_file or "test")
    if fmt == "txt":
        return TxtDetection(test_cfg.ann_file, test_cfg.root)
    raise ConfigError(f"key 'test.format' is {fmt!r}, expected one of {FORMATS}")


def class_names(cfg, source=None):
    """Names of labels 1..C-1: ``test.class_names``, else the test split's, else VOC's for 21
    classes, else ``class_<k>``."""
    if cfg.test.class_names:
        return list(cfg.test.class_names)
    if source is None:
        try:
            source = build_test_source(cfg.test)
        except (DatasetError, ConfigError, OSError):
            source = None
    names = list(getattr(source, "class_names", None) or [])
    if not names and cfg.model.num_classes == len(VOC_CLASSES) + 1:
        names = list(VOC_CLASSES)
    return names + [f"class_{k}" for k in range(len(names) + 1, cfg.model.num_classes)]


class DetectionWriter:
    """Streams COCO result records to a JSON list file (temporary file, renamed when complete)."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
            self.file = open(self.tmp, "w")  # noqa: SIM115  (closed by close())
        except OSError as exc:
            raise OutputWriteError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self.file.write("[")
        self.count = 0

    def add(self, image_id, boxes, scores, category_ids):
        for (x1, y1, x2, y2), score, cat in zip(np.asarray(boxes, np.float64).tolist(),
                                               np.asarray(scores, np.float64).tolist(), category_ids):
            record = {"image_id": int(image_id), "category_id": int(cat), "score": round(score, 6),
                      "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)]}
            self.file.write(("," if self.count else "") + "\n" + json.dumps(record))
            self.count += 1

    def close(self, ok=True):
        self.file.write("\n]\n")
        self.file.close()
        if ok:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


class GroundTruth:
    """COCO-format ground truth of any reader, built while the split is read (for VOC and txt;
    a COCO reader's own annotations are used as they are). VOC "difficult" boxes become COCO
    ``iscrowd`` regions, which COCO AP ignores as VOC AP does."""

    def __init__(self, source):
        self.coco = getattr(source, "coco", None)
        self.cat_of_label = ({i + 1: c for i, c in enumerate(source.cat_ids)} if self.coco is not None else None)
        names = getattr(source, "class_names", None) or []
        self.images, self.annotations = [], []
        self.categories = [{"id": k, "name": n} for k, n in enumerate(names, 1)]

    def add(self, sample):
        if self.coco is not None:
            return
        h, w = (int(v) for v in sample["orig_size"])
        image_id = int(sample["image_id"])
        self.images.append({"id": image_id, "height": h, "width": w})
        crowd = sample["difficult"] | sample["iscrowd"]
        for box, label, ignore in zip(sample["boxes"].tolist(), sample["labels"].tolist(), crowd.tolist()):
            bw, bh = box[2] - box[0], box[3] - box[1]
            self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id,
                                     "category_id": int(label), "bbox": [box[0], box[1], bw, bh],
                                     "area": bw * bh, "iscrowd": int(ignore)})

    def category_ids(self, labels):
        if self.cat_of_label is None:
            return [int(v) for v in labels]
        return [self.cat_of_label[int(v)] for v in labels]

    def for_cocoeval(self, num_classes, image_ids=None):
        """The ground truth to score against; ``image_ids`` restricts a COCO split to the images
        scored (``test.max_images``), otherwise every image of it counts."""
        if self.coco is not None:
            if image_ids is None or len(image_ids) == len(self.coco.imgs):
                return self.coco
            keep = set(image_ids)
            data = self.coco.dataset
            return {"images": [i for i in data["images"] if i["id"] in keep], "categories": data["categories"],
                    "annotations": [a for a in data["annotations"] if a["image_id"] in keep]}
        known = {c["id"] for c in self.categories}
        cats = self.categories + [{"id": k, "name": f"class_{k}"} for k in range(1, num_classes) if k not in known]
        return {"images": self.images, "annotations": self.annotations, "categories": cats}


def score_detections(items, source, num_classes, detections_path, total=None, desc="eval"):
    """Score ``items`` = (sample, (boxes, scores, labels)) of a reader's samples.

    Detections are streamed to ``detections_path`` and read back only for pycocotools. Returns the
    result dict (COCO stats; voc07_map / voc12_map for a VOC source)."""
    from common.data.detection import VOCDetection
    from common.metrics.detection import coco_evaluate
    from common.metrics.detection_voc import VOCDetectionMetric

    gt = GroundTruth(source)
    voc = VOCDetectionMetric(0.5, plus_one=False) if isinstance(source, VOCDetection) else None
    writer = DetectionWriter(detections_path)
    seen = []
    try:
        for sample, (boxes, scores, labels) in tqdm(items, total=total, desc=desc, unit="img"):
            check_finite(np.asarray(boxes), f"the boxes of image {sample['image_id']}")
            gt.add(sample)
            writer.add(sample["image_id"], boxes, scores, gt.category_ids(labels))
            if voc is not None:
                voc.update(boxes, scores, labels, sample["boxes"], sample["labels"], sample["difficult"])
            seen.append(int(sample["image_id"]))
    except BaseException:
        writer.close(ok=False)
        raise
    writer.close()
    results = json.loads(Path(detections_path).read_text())
    out = coco_evaluate(gt.for_cocoeval(num_classes, seen), results, source=str(detections_path))
    out["images_scored"] = len(seen)
    if voc is not None:
        ap = voc.result()
        out.update(voc07_map=ap["map_11point"], voc12_map=ap["map_all_point"], voc_per_class=ap["per_class"])
    out["detections_file"] = str(detections_path)
    return out


def format_results(result, paper_metric):
    lines = [f"{'metric':<12}{'value':>8}  note"]
    for key in REPORTED:
        if key in result:
            lines.append(f"{key:<12}{result[key]:>8.4f}  {'<- paper metric' if key == paper_metric else ''}")
    lines.append(f"{'images':<12}{result['num_images']:>8}")
    return "\n".join(lines)


def draw_detections(image, boxes, scores, labels, names, threshold):
    """RGB copy of ``image`` with boxes of score >= ``threshold`` and "name score" captions."""
    out = np.ascontiguousarray(image.copy())
    for (x1, y1, x2, y2), score, label in zip(boxes, scores, labels):
        if score < threshold:
            continue
        hue = (int(label) * 47) % 180
        colour = tuple(int(c) for c in cv2.cvtColor(np.uint8([[[hue, 220, 230]]]), cv2.COLOR_HSV2RGB)[0, 0])
        p1, p2 = (round(float(x1)), round(float(y1))), (round(float(x2)), round(float(y2)))
        cv2.rectangle(out, p1, p2, colour, 2)
        name = names[int(label) - 1] if 0 < int(label) <= len(names) else str(int(label))
        text = f"{name} {score:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        top = max(p1[1] - th - 4, 0)
        cv2.rectangle(out, (p1[0], top), (p1[0] + tw + 2, top + th + 4), colour, -1)
        cv2.putText(out, text, (p1[0] + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return out


class DetectionTask(SplitAtTestRoot, Task):
    name = "detection"
    defaults = {  # noqa: RUF012  (read-only, as the other tasks)
        "test": {
            "format": "coco",            # coco | voc | txt (see build_test_source)
            "root": "data/synthetic_coco/val2017",
            "ann_file": "data/synthetic_coco/annotations/instances_val2017.json",
            "size": None,                # network input S (square); default: the variant's
            "max_images": None,
            "class_names": [],           # names of labels 1..C-1 for predict (default: the split's)
            "draw_threshold": 0.3,       # predict: boxes drawn from this score
        },
        # evaluated during training when set: images and annotations in test.format
        "data": {"val_root": Opt(str), "val_ann_file": Opt(str)},
    }

    def input_size(self, spec, cfg):
        size = cfg.test.size or spec.default_size(cfg.model.name)
        return (size, size) if isinstance(size, int) else tuple(size)

    def _paths(self, cfg, tag):
        dets, json_name = _TAGS[tag]
        return Path(cfg.output_dir) / dets, Path(cfg.output_dir) / json_name if json_name else None

    def _count(self, cfg, source):
        return min(len(source), cfg.test.max_images or len(source))

    def _decode(self, spec, cfg, predict):
        size = self.input_size(spec, cfg)
        pre, post = spec.hooks["preprocess"], spec.hooks["postprocess"]

        def run(image):
            outputs = [check_finite(np.asarray(o), "a network output") for o in predict(pre(image, size, cfg))]
            return post(outputs, image.shape[:2], cfg)
        return run

    def _report(self, spec, cfg, result, json_path):
        print(format_results(result, spec.paper_metric))
        write_json(json_path, result)
        print(f"detections: {result['detections_file']}\nresults: {json_path}")
        return result

    def _score(self, spec, cfg, predict, source, tag):
        count, run = self._count(cfg, source), self._decode(spec, cfg, predict)
        items = ((s, run(s["image"])) for s in (source[i] for i in range(count)))
        return score_detections(items, source, cfg.model.num_classes, self._paths(cfg, tag)[0], count, tag)

    def training_evaluator(self, spec, cfg):
        if not cfg.data.val_root:
            return None
        from common.runner.predictors import network_predictor

        val = Config({"format": cfg.test.format, "root": cfg.data.val_root, "ann_file": cfg.data.val_ann_file})
        source = build_test_source(val)  # read once, up front
        return lambda net: self._score(spec, cfg, network_predictor(spec.deploy(net, cfg)), source, "val")

    def evaluate(self, spec, cfg, predict, tag):
        result = self._score(spec, cfg, predict, build_test_source(cfg.test), tag)
        return self._report(spec, cfg, result, self._paths(cfg, tag)[1])

    def predict_files(self, spec, cfg, predict, files, out_dir, args):
        run, names, out_dir = self._decode(spec, cfg, predict), class_names(cfg), Path(out_dir)

        def handle(_file, name, image):
            boxes, scores, labels = run(image)
            picture = draw_detections(image, boxes, scores, labels, names, cfg.test.draw_threshold)
            records = [{"box": [round(float(v), 2) for v in b], "score": round(float(s), 5), "label": int(k),
                        "name": names[int(k) - 1] if 0 < int(k) <= len(names) else str(int(k))}
                       for b, s, k in zip(boxes, scores, labels) if s >= cfg.test.draw_threshold]
            json_path = out_dir / f"{name}.json"
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(records, indent=1))
            return [write_image(out_dir / f"{name}.jpg", picture), json_path]

        return predict_loop(files, handle)

    def write_inputs(self, spec, cfg, output_dir):
        source = build_test_source(cfg.test)
        count, size = self._count(cfg, source), self.input_size(spec, cfg)
        with InputWriter(output_dir) as writer:
            for i in tqdm(range(count), desc="preprocess", unit="img"):
                writer.add(f"{i:07d}", spec.hooks["preprocess"](source[i]["image"], size, cfg))
        return count

    def score_outputs(self, spec, cfg, outputs, data_dir, tag):
        source = build_test_source(cfg.test)
        bad = [n for n in outputs if not n.isdigit() or int(n) >= len(source)]
        if bad:
            raise DatasetError(f"outputs without a test image in {cfg.test.root}: {bad[:5]}")
        post = spec.hooks["postprocess"]

        def items():
            for name, tensors in outputs.items():
                sample = source[int(name)]
                yield sample, post([np.asarray(t) for t in tensors], sample["image"].shape[:2], cfg)

        dets_path, json_path = self._paths(cfg, tag)
        result = score_detections(items(), source, cfg.model.num_classes, dets_path, len(outputs), "postprocess")
        return self._report(spec, cfg, result, json_path)


TASK = DetectionTask()

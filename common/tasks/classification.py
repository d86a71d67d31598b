"""Image classification (DDRNet): top-1 / top-5 over a whole ImageFolder split, predict pictures,
the 310 inputs and their scoring.

Config keys read (the model's ``data`` section): ``root``, ``train_dir``, ``val_dir``,
``class_list``, ``image_size``, ``crop_pct``, ``interpolation``, ``eval_batch_size``.
"""
import json
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from common.data.classification import ImageFolderDataset, read_class_list
from common.data.errors import DatasetError
from common.data.loader import build_dataset
from common.data.transforms_cls import imagenet_eval_transform
from common.infer310 import InputWriter
from common.metrics import write_json
from common.metrics.classification import TopKAccuracy
from common.tasks.base import Task, check_finite, predict_loop, square_size, write_image

_JSON = {"eval": "eval_results.json", "onnx": "eval_results_onnx.json", "310": "eval_results_310.json"}


def class_list(data_cfg):
    """Class order: the given list file, else the sorted folders of the training split (so a
    validation folder that lacks some classes keeps the training indices)."""
    if data_cfg.class_list:
        return data_cfg.class_list
    train = Path(data_cfg.root) / data_cfg.train_dir
    return sorted(p.name for p in train.iterdir() if p.is_dir()) if train.is_dir() else None


def class_names(data_cfg, num_classes):
    listed = class_list(data_cfg)
    names = read_class_list(listed)[1] if isinstance(listed, str) else (listed or [])
    return names if len(names) == num_classes else [f"class {i}" for i in range(num_classes)]


def eval_transform(data_cfg):
    return imagenet_eval_transform(data_cfg.image_size, data_cfg.crop_pct, data_cfg.interpolation)


def build_eval_dataset(data_cfg, batch_size, split_dir=None, num_workers=2):
    """The whole split in order: no shuffling and no dropped remainder."""
    root = Path(data_cfg.root) / (split_dir or data_cfg.val_dir)
    source = ImageFolderDataset(root, class_list(data_cfg))
    return build_dataset(source, eval_transform(data_cfg), ["image", "label"], batch_size, shuffle=False,
                         num_workers=num_workers, drop_remainder=False), source


def evaluate_classifier(predict, dataset, desc="eval"):
    """``predict(images NCHW float32) -> logits``; every sample counts (no dropped remainder)."""
    metric = TopKAccuracy()
    for images, labels in tqdm(dataset.create_tuple_iterator(num_epochs=1, output_numpy=True),
                               total=dataset.get_dataset_size(), desc=desc, unit="batch"):
        metric.update(np.asarray(predict(images)), labels)
    return metric.result()


def softmax(logits):
    p = np.exp(logits - logits.max())
    return p / p.sum()


def draw_top5(image, top5):
    """The image (at most 480 px high) with a panel listing the top-5 classes (RGB)."""
    scale = 480 / image.shape[0] if image.shape[0] > 480 else 1.0
    canvas = cv2.resize(image, None, fx=scale, fy=scale) if scale != 1.0 else image.copy()
    panel = np.full((24 * 5 + 12, canvas.shape[1], 3), 255, np.uint8)
    for i, (name, prob) in enumerate(top5):
        cv2.putText(panel, f"{prob * 100:5.1f}%  {name}"[:60], (6, 24 * (i + 1)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([canvas, panel], axis=0)


def _report(result, where, json_path):
    print(f"top-1 {result['top1']:.4f}  top-5 {result['top5']:.4f}  over {result['num_samples']} "
          f"images of {where}")
    write_json(json_path, result)
    print(f"results: {json_path}")


class ClassificationTask(Task):
    name = "classification"

    def input_size(self, spec, cfg):
        return (cfg.data.image_size, cfg.data.image_size)

    def with_input_size(self, spec, cfg, size):
        cfg.data.image_size = square_size(size, f"models/{spec.folder} evaluation (data.image_size)")
        return cfg

    def data_path_overrides(self, path):
        path = Path(path)
        return [f"data.root={path.parent}", f"data.val_dir={path.name}"]

    def data_path(self, cfg):
        return Path(cfg.data.root) / cfg.data.val_dir

    def training_evaluator(self, spec, cfg):
        from common.runner.predictors import network_predictor

        val, _ = build_eval_dataset(cfg.data, cfg.data.eval_batch_size, num_workers=cfg.train.num_workers)
        return lambda net: evaluate_classifier(lambda x: network_predictor(spec.deploy(net, cfg))(x)[0],
                                               val, desc="val")

    def evaluate(self, spec, cfg, predict, tag):
        dataset, source = build_eval_dataset(cfg.data, cfg.data.eval_batch_size)
        result = evaluate_classifier(lambda x: predict(x)[0], dataset, desc=tag)
        _report(result, source.root, Path(cfg.output_dir) / _JSON[tag])
        return result

    def predict_files(self, spec, cfg, predict, files, out_dir, args):
        names = class_names(cfg.data, cfg.model.num_classes)
        transform = eval_transform(cfg.data)
        out_dir = Path(out_dir)
        results = {}

        def handle(_file, name, image):
            logits = predict(transform({"image": image})["image"][None])[0][0]
            check_finite(logits, f"the logits for {_file}")
            prob = softmax(logits.astype(np.float64))
            top5 = [(names[i], float(prob[i])) for i in np.argsort(-prob, kind="stable")[:5]]
            results[name] = top5
            tqdm.write(f"{name}: " + ", ".join(f"{n} {p:.3f}" for n, p in top5))
            return [write_image(out_dir / f"{name}_top5.jpg", draw_top5(image, top5))]

        written, skipped = predict_loop(files, handle)
        write_json(out_dir / "predictions.json", results)
        return written, skipped

    def write_inputs(self, spec, cfg, output_dir):
        source = ImageFolderDataset(Path(cfg.data.root) / cfg.data.val_dir, class_list(cfg.data))
        transform = eval_transform(cfg.data)
        labels = {}
        with InputWriter(output_dir) as writer:
            for i in tqdm(range(len(source)), desc="preprocess", unit="img"):
                sample = source[i]
                name = f"img{i:06d}"
                writer.add(name, transform({"image": sample["image"]})["image"][None])
                labels[name] = int(sample["label"])
        (Path(output_dir) / "labels.json").write_text(json.dumps(labels, indent=0))
        return len(source)

    def score_outputs(self, spec, cfg, outputs, data_dir, tag):
        label_file = Path(data_dir) / "labels.json"
        if not label_file.is_file():
            raise DatasetError(f"label file not found: {label_file} (written by preprocess.py)")
        labels = json.loads(label_file.read_text())
        missing = sorted(set(labels) - set(outputs))
        if missing:
            raise DatasetError(f"no outputs for {len(missing)} samples, e.g. {missing[:5]}")
        metric = TopKAccuracy()
        for name, label in labels.items():
            metric.update(outputs[name][0].reshape(1, -1), np.array([int(label)]))
        result = metric.result()
        _report(result, data_dir, Path(cfg.output_dir) / _JSON[tag])
        return result


TASK = ClassificationTask()

"""Top-5 classes for an image or a folder of images, printed and drawn onto each picture.

    python models/ddrnet/predict.py --config CONFIG --ckpt CKPT --input FILE_OR_DIR --out DIR
Class names come from data.class_list (e.g. ImageNet's LOC_synset_mapping.txt) or, without one,
the folder names of the training split.
"""
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from mindspore import Tensor

from common.checkpoint import load_weights
from common.cli import run_main
from common.config import args_and_config
from common.data.classification import read_class_list
from common.data.errors import DatasetError
from common.data.image_io import IMAGE_EXTENSIONS, read_image
from common.data.transforms_cls import imagenet_eval_transform
from common.engine.builder import setup_device
from models import create_model
from models.ddrnet.src.config import DEFAULTS
from models.ddrnet.src.data import class_list


def class_names(data_cfg, num_classes):
    listed = class_list(data_cfg)
    if isinstance(listed, str):
        names = read_class_list(listed)[1]
    else:
        names = listed or []
    return names if len(names) == num_classes else [f"class {i}" for i in range(num_classes)]


def draw_top5(image, top5):
    """The image (at most 480 px high) with a panel listing the top-5 classes."""
    scale = 480 / image.shape[0] if image.shape[0] > 480 else 1.0
    canvas = cv2.resize(image, None, fx=scale, fy=scale) if scale != 1.0 else image.copy()
    panel = np.full((24 * 5 + 12, canvas.shape[1], 3), 255, np.uint8)
    for i, (name, prob) in enumerate(top5):
        cv2.putText(panel, f"{prob * 100:5.1f}%  {name}"[:60], (6, 24 * (i + 1)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([canvas, panel], axis=0)


def main(argv=None):
    args, cfg = args_and_config(DEFAULTS, __doc__, argv, [
        (("--ckpt",), {"required": True}),
        (("--input",), {"required": True, "help": "an image or a folder (searched recursively)"}),
        (("--out",), {"required": True, "help": "folder for the annotated pictures"})])
    setup_device(cfg.device, cfg.mode)
    src = Path(args.input)
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {src}")
    elif src.is_file():
        files = [src]
    else:
        raise FileNotFoundError(f"input not found: {src}")
    net = create_model(cfg.model.name, num_classes=cfg.model.num_classes)
    load_weights(net, args.ckpt, strict=True)
    net.set_train(False)
    names = class_names(cfg.data, cfg.model.num_classes)
    transform = imagenet_eval_transform(cfg.data.image_size, cfg.data.crop_pct, cfg.data.interpolation)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for path in tqdm(files, desc="predict", unit="img"):
        image = read_image(path)
        x = transform({"image": image})["image"][None]
        logits = net(Tensor(x)).asnumpy()[0]
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        top = np.argsort(-prob, kind="stable")[:5]
        top5 = [(names[i], float(prob[i])) for i in top]
        results[str(path)] = top5
        tqdm.write(f"{path.name}: " + ", ".join(f"{n} {p:.3f}" for n, p in top5))
        cv2.imwrite(str(out / f"{path.stem}_top5.jpg"), cv2.cvtColor(draw_top5(image, top5), cv2.COLOR_RGB2BGR))
    print(f"pictures written to {out}")
    return results


if __name__ == "__main__":
    run_main(main)

"""Evaluate RefineDet with the metric of its paper.

    python models/refinedet/eval.py --config configs/refinedet/refinedet320_vgg16_1xb4_synthetic-coco_quick-cpu.yaml --ckpt_file CKPT [key=value ...]
"""
from common.runner import main
from models.refinedet.src.spec import SPEC

if __name__ == "__main__":
    main("eval", SPEC)

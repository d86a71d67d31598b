"""Predict with RefineDet on an image or a folder of images and write pictures.

    python models/refinedet/predict.py --config configs/refinedet/refinedet320_vgg16_1xb4_synthetic-coco_quick-cpu.yaml --ckpt_file CKPT --input IMAGES --output_dir OUT

Unreadable images are skipped with a warning, listed at the end, and the exit status is then 1.
"""
from common.runner import main
from models.refinedet.src.spec import SPEC

if __name__ == "__main__":
    main("predict", SPEC)

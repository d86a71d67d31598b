"""Predict with RefineNet-101 on an image or a folder of images and write pictures.

    python models/refinenet/predict.py --config configs/refinenet/refinenet101_1xb8_synthetic-voc_quick-cpu.yaml --ckpt_file CKPT --input IMAGES --output_dir OUT

Unreadable images are skipped with a warning, listed at the end, and the exit status is then 1.
"""
from common.runner import main
from models.refinenet.src.spec import SPEC

if __name__ == "__main__":
    main("predict", SPEC)

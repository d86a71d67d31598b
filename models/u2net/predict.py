"""Predict with U-2-Net / U-2-NetP on an image or a folder of images and write pictures.

    python models/u2net/predict.py --config CONFIG --ckpt_file CKPT --input IMAGES --output_dir OUT

Unreadable images are skipped with a warning, listed at the end, and the exit status is then 1.

CONFIG: a YAML of configs/u2net/, e.g. configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.u2net.src.spec import SPEC

if __name__ == "__main__":
    main("predict", SPEC)

"""Predict with DDRNet on an image or a folder of images and write pictures.

    python models/ddrnet/predict.py --config CONFIG --ckpt_file CKPT --input IMAGES --output_dir OUT

Unreadable images are skipped with a warning, listed at the end, and the exit status is then 1.

CONFIG: a YAML of configs/ddrnet/, e.g. configs/ddrnet/ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ddrnet.src.spec import SPEC

if __name__ == "__main__":
    main("predict", SPEC)

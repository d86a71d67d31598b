"""Evaluate U-2-Net / U-2-NetP with the metric of its paper.

    python models/u2net/eval.py --config CONFIG --ckpt_file CKPT [key=value ...]

CONFIG: a YAML of configs/u2net/, e.g. configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.u2net.src.spec import SPEC

if __name__ == "__main__":
    main("eval", SPEC)

"""Evaluate RAS with the metric of its paper.

    python models/ras/eval.py --config CONFIG --ckpt_file CKPT [key=value ...]

CONFIG: a YAML of configs/ras/, e.g. configs/ras/ras_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ras.src.spec import SPEC

if __name__ == "__main__":
    main("eval", SPEC)

"""Evaluate RefineNet-101 with the metric of its paper.

    python models/refinenet/eval.py --config configs/refinenet/refinenet101_1xb8_synthetic-voc_quick-cpu.yaml --ckpt_file CKPT [key=value ...]
"""
from common.runner import main
from models.refinenet.src.spec import SPEC

if __name__ == "__main__":
    main("eval", SPEC)

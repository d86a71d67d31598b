"""Evaluate DDRNet with the metric of its paper.

    python models/ddrnet/eval.py --config CONFIG --ckpt_file CKPT [key=value ...]

CONFIG: a YAML of configs/ddrnet/, e.g. configs/ddrnet/ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ddrnet.src.spec import SPEC

if __name__ == "__main__":
    main("eval", SPEC)

"""Train RefineNet-101 (one device; scripts/run_distribute_train.sh for many).

    python models/refinenet/train.py --config configs/refinenet/refinenet101_1xb8_synthetic-voc_quick-cpu.yaml [--device_target CPU|GPU|Ascend] [--resume CKPT] [key=value ...]
"""
from common.runner import main
from models.refinenet.src.spec import SPEC

if __name__ == "__main__":
    main("train", SPEC)

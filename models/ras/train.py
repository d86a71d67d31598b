"""Train RAS (one device; scripts/run_distribute_train.sh for many).

    python models/ras/train.py --config configs/ras/ras_1xb8_synthetic_quick-cpu.yaml [--device_target CPU|GPU|Ascend] [--resume CKPT] [key=value ...]
"""
from common.runner import main
from models.ras.src.spec import SPEC

if __name__ == "__main__":
    main("train", SPEC)

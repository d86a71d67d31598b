"""Train U-2-Net / U-2-NetP (one device; scripts/run_distribute_train.sh for many).

    python models/u2net/train.py --config CONFIG [--device_target CPU|GPU|Ascend] \
        [--resume CKPT] [key=value ...]

CONFIG: a YAML of configs/u2net/, e.g. configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.u2net.src.spec import SPEC

if __name__ == "__main__":
    main("train", SPEC)

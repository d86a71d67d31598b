"""Train RAS (one device; scripts/run_distribute_train.sh for many).

    python models/ras/train.py --config CONFIG [--device_target CPU|GPU|Ascend] \
        [--resume CKPT] [key=value ...]

CONFIG: a YAML of configs/ras/, e.g. configs/ras/ras_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ras.src.spec import SPEC

if __name__ == "__main__":
    main("train", SPEC)

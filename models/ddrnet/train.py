"""Train DDRNet (one device; scripts/run_distribute_train.sh for many).

    python models/ddrnet/train.py --config CONFIG [--device_target CPU|GPU|Ascend] \
        [--resume CKPT] [key=value ...]

CONFIG: a YAML of configs/ddrnet/, e.g. configs/ddrnet/ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ddrnet.src.spec import SPEC

if __name__ == "__main__":
    main("train", SPEC)

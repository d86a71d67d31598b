"""Train RefineDet (one device; scripts/run_distribute_train.sh for many).

    python models/refinedet/train.py --config configs/refinedet/refinedet320_vgg16_1xb4_synthetic-coco_quick-cpu.yaml [--device_target CPU|GPU|Ascend] [--resume CKPT] [key=value ...]
"""
from common.runner import main
from models.refinedet.src.spec import SPEC

if __name__ == "__main__":
    main("train", SPEC)

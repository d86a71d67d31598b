"""Export RefineDet to MINDIR / ONNX / AIR with a parity check against MindSpore.

    python models/refinedet/export.py --config configs/refinedet/refinedet320_vgg16_1xb4_synthetic-coco_quick-cpu.yaml --ckpt_file CKPT --file_format MINDIR [--file_name OUT]
"""
from common.runner import main
from models.refinedet.src.spec import SPEC

if __name__ == "__main__":
    main("export", SPEC)

"""Export RefineNet-101 to MINDIR / ONNX / AIR with a parity check against MindSpore.

    python models/refinenet/export.py --config configs/refinenet/refinenet101_1xb8_synthetic-voc_quick-cpu.yaml --ckpt_file CKPT --file_format MINDIR [--file_name OUT]
"""
from common.runner import main
from models.refinenet.src.spec import SPEC

if __name__ == "__main__":
    main("export", SPEC)

"""Export U-2-Net / U-2-NetP to MINDIR / ONNX / AIR with a parity check against MindSpore.

    python models/u2net/export.py --config CONFIG --ckpt_file CKPT --file_format MINDIR [--file_name OUT]

CONFIG: a YAML of configs/u2net/, e.g. configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.u2net.src.spec import SPEC

if __name__ == "__main__":
    main("export", SPEC)

"""Export RAS to MINDIR / ONNX / AIR with a parity check against MindSpore.

    python models/ras/export.py --config configs/ras/ras_1xb8_synthetic_quick-cpu.yaml --ckpt_file CKPT --file_format MINDIR [--file_name OUT]
"""
from common.runner import main
from models.ras.src.spec import SPEC

if __name__ == "__main__":
    main("export", SPEC)

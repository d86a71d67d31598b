"""Export RAS to MINDIR / ONNX / AIR with a parity check against MindSpore.

    python models/ras/export.py --config CONFIG --ckpt_file CKPT --file_format MINDIR [--file_name OUT]

CONFIG: a YAML of configs/ras/, e.g. configs/ras/ras_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ras.src.spec import SPEC

if __name__ == "__main__":
    main("export", SPEC)

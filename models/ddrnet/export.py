"""Export DDRNet to MINDIR / ONNX / AIR with a parity check against MindSpore.

    python models/ddrnet/export.py --config CONFIG --ckpt_file CKPT --file_format MINDIR [--file_name OUT]

CONFIG: a YAML of configs/ddrnet/, e.g. configs/ddrnet/ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ddrnet.src.spec import SPEC

if __name__ == "__main__":
    main("export", SPEC)

"""Export DDRNet to MINDIR / ONNX / AIR with a parity check against MindSpore.

    python models/ddrnet/export.py --config configs/ddrnet/ddrnet23_slim_1xb32_synthetic_quick-cpu.yaml --ckpt_file CKPT --file_format MINDIR [--file_name OUT]
"""
from common.runner import main
from models.ddrnet.src.spec import SPEC

if __name__ == "__main__":
    main("export", SPEC)

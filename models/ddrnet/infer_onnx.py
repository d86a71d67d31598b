"""Score an exported DDRNet ONNX file with ONNX Runtime: the same metrics as eval.py.

    python models/ddrnet/infer_onnx.py --config CONFIG --onnx_file FILE [--threads N]

CONFIG: a YAML of configs/ddrnet/, e.g. configs/ddrnet/ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ddrnet.src.spec import SPEC

if __name__ == "__main__":
    main("infer_onnx", SPEC)

"""Score an exported RAS ONNX file with ONNX Runtime: the same metrics as eval.py.

    python models/ras/infer_onnx.py --config configs/ras/ras_1xb8_synthetic_quick-cpu.yaml --onnx_file FILE [--threads N]
"""
from common.runner import main
from models.ras.src.spec import SPEC

if __name__ == "__main__":
    main("infer_onnx", SPEC)

"""Score an exported RAS ONNX file with ONNX Runtime: the same metrics as eval.py.

    python models/ras/infer_onnx.py --config CONFIG --onnx_file FILE [--threads N]

CONFIG: a YAML of configs/ras/, e.g. configs/ras/ras_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ras.src.spec import SPEC

if __name__ == "__main__":
    main("infer_onnx", SPEC)

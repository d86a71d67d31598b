"""Score an exported U-2-Net / U-2-NetP ONNX file with ONNX Runtime: the same metrics as eval.py.

    python models/u2net/infer_onnx.py --config CONFIG --onnx_file FILE [--threads N]

CONFIG: a YAML of configs/u2net/, e.g. configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.u2net.src.spec import SPEC

if __name__ == "__main__":
    main("infer_onnx", SPEC)

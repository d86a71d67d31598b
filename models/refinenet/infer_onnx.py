"""Score an exported RefineNet-101 ONNX file with ONNX Runtime: the same metrics as eval.py.

    python models/refinenet/infer_onnx.py --config configs/refinenet/refinenet101_1xb8_synthetic-voc_quick-cpu.yaml --onnx_file FILE [--threads N]
"""
from common.runner import main
from models.refinenet.src.spec import SPEC

if __name__ == "__main__":
    main("infer_onnx", SPEC)

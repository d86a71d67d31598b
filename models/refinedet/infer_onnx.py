"""Score an exported RefineDet ONNX file with ONNX Runtime: the same metrics as eval.py.

    python models/refinedet/infer_onnx.py --config configs/refinedet/refinedet320_vgg16_1xb4_synthetic-coco_quick-cpu.yaml --onnx_file FILE [--threads N]
"""
from common.runner import main
from models.refinedet.src.spec import SPEC

if __name__ == "__main__":
    main("infer_onnx", SPEC)

"""Write a test split as inputs of the C++ inference app (scripts/run_infer_310.sh).

    python models/refinedet/preprocess.py --config configs/refinedet/refinedet320_vgg16_1xb4_synthetic-coco_quick-cpu.yaml --data_path SPLIT --output_dir DATA_DIR
"""
from common.runner import main
from models.refinedet.src.spec import SPEC

if __name__ == "__main__":
    main("preprocess", SPEC)

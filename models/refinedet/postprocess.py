"""Score the C++ inference app's outputs with the metric of the paper.

    python models/refinedet/postprocess.py --config configs/refinedet/refinedet320_vgg16_1xb4_synthetic-coco_quick-cpu.yaml --data_path SPLIT --data_dir DATA_DIR --result_dir result_Files
"""
from common.runner import main
from models.refinedet.src.spec import SPEC

if __name__ == "__main__":
    main("postprocess", SPEC)

"""Score the C++ inference app's outputs with the metric of the paper.

    python models/refinenet/postprocess.py --config configs/refinenet/refinenet101_1xb8_synthetic-voc_quick-cpu.yaml --data_path SPLIT --data_dir DATA_DIR --result_dir result_Files
"""
from common.runner import main
from models.refinenet.src.spec import SPEC

if __name__ == "__main__":
    main("postprocess", SPEC)

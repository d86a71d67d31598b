"""Write a test split as inputs of the C++ inference app (scripts/run_infer_310.sh).

    python models/refinenet/preprocess.py --config configs/refinenet/refinenet101_1xb8_synthetic-voc_quick-cpu.yaml --data_path SPLIT --output_dir DATA_DIR
"""
from common.runner import main
from models.refinenet.src.spec import SPEC

if __name__ == "__main__":
    main("preprocess", SPEC)

"""Write a test split as inputs of the C++ inference app (scripts/run_infer_310.sh).

    python models/u2net/preprocess.py --config CONFIG --data_path SPLIT --output_dir DATA_DIR

CONFIG: a YAML of configs/u2net/, e.g. configs/u2net/u2netp_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.u2net.src.spec import SPEC

if __name__ == "__main__":
    main("preprocess", SPEC)

"""Write a test split as inputs of the C++ inference app (scripts/run_infer_310.sh).

    python models/ddrnet/preprocess.py --config CONFIG --data_path SPLIT --output_dir DATA_DIR

CONFIG: a YAML of configs/ddrnet/, e.g. configs/ddrnet/ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ddrnet.src.spec import SPEC

if __name__ == "__main__":
    main("preprocess", SPEC)

"""Score the C++ inference app's outputs with the metric of the paper.

    python models/ddrnet/postprocess.py --config CONFIG --data_path SPLIT --data_dir DATA_DIR \
        --result_dir result_Files

CONFIG: a YAML of configs/ddrnet/, e.g. configs/ddrnet/ddrnet23_slim_1xb16_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ddrnet.src.spec import SPEC

if __name__ == "__main__":
    main("postprocess", SPEC)

"""Score the C++ inference app's outputs with the metric of the paper.

    python models/ras/postprocess.py --config CONFIG --data_path SPLIT --data_dir DATA_DIR \
        --result_dir result_Files

CONFIG: a YAML of configs/ras/, e.g. configs/ras/ras_1xb8_synthetic_quick-cpu.yaml
"""
from common.runner import main
from models.ras.src.spec import SPEC

if __name__ == "__main__":
    main("postprocess", SPEC)

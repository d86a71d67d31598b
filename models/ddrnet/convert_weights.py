"""Convert DDRNet weights of another layout (authors' PyTorch, old MindSpore port) to ours.

    python models/ddrnet/convert_weights.py --src FILE --variant NAME --out OUT.ckpt
"""
from common.runner import main
from models.ddrnet.src.spec import SPEC

if __name__ == "__main__":
    main("convert_weights", SPEC)

"""Convert U-2-Net / U-2-NetP weights of another layout (authors' PyTorch, old MindSpore port) to ours.

    python models/u2net/convert_weights.py --src FILE --variant NAME --out OUT.ckpt
"""
from common.runner import main
from models.u2net.src.spec import SPEC

if __name__ == "__main__":
    main("convert_weights", SPEC)

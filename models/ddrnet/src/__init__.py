"""DDRNet network and weight key maps."""
from models.ddrnet.src.ddrnet import ARCHS, BasicBlock, Bottleneck, DropPath, DualResNet, build_ddrnet

__all__ = ["ARCHS", "BasicBlock", "Bottleneck", "DropPath", "DualResNet", "build_ddrnet"]

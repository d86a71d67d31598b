"""RefineNet network, loss and weight key maps."""
from models.refinenet.src.blocks import CRPBlock, RCUBlock
from models.refinenet.src.refinenet import RefineNet, refinenet

__all__ = ["CRPBlock", "RCUBlock", "RefineNet", "refinenet"]

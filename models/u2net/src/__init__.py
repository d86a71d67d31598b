"""U-2-Net network, weight converters and inference helpers."""
from models.u2net.src.u2net import REBNCONV, RSU, RSU4F, U2Net, build_u2net

__all__ = ["REBNCONV", "RSU", "RSU4F", "U2Net", "build_u2net"]

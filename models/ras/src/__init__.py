"""RAS network, loss and weight key maps."""
from models.ras.src.loss import RASLoss
from models.ras.src.ras import MSCM, RAS, ReverseAttention, build_ras

__all__ = ["MSCM", "RAS", "RASLoss", "ReverseAttention", "build_ras"]

"""RAS (reverse attention, ResNet-50; ShuhanChen/RAS-pytorch ``v1``), registered as ``ras``."""
from models import register_model, register_spec
from models.ras.src.ras import RAS, build_ras


@register_model
def ras(in_channels: int = 3, frozen_bn: bool = False, numerics: str = "authors") -> RAS:
    return build_ras(in_channels, frozen_bn, numerics)


from models.ras.src.spec import SPEC

register_spec(SPEC)

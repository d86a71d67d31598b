"""RefineNet-101 for semantic segmentation (DrSleep/refinenet-pytorch ``rf101``), registered as
``refinenet101``."""
from models import register_model
from models.refinenet.src import RefineNet, refinenet


@register_model
def refinenet101(num_classes: int = 21, frozen_bn: bool = True, dropout: float = 0.5) -> RefineNet:
    return refinenet(101, num_classes, frozen_bn, dropout)


from models import register_spec
from models.refinenet.src.spec import SPEC  # the variant above must exist first

register_spec(SPEC)

"""DDRNet classifiers (ydhongHIT/DDRNet ``classification/``), registered as ``ddrnet23``,
``ddrnet23_slim`` and ``ddrnet39``."""
from models import register_model, register_spec
from models.ddrnet.src import build_ddrnet


@register_model
def ddrnet23(num_classes: int = 1000, drop_path_rate: float = 0.0, in_channels: int = 3,
             numerics: str = "authors"):
    return build_ddrnet("ddrnet23", num_classes, drop_path_rate, in_channels, numerics)


@register_model
def ddrnet23_slim(num_classes: int = 1000, drop_path_rate: float = 0.0, in_channels: int = 3,
                  numerics: str = "authors"):
    return build_ddrnet("ddrnet23_slim", num_classes, drop_path_rate, in_channels, numerics)


@register_model
def ddrnet39(num_classes: int = 1000, drop_path_rate: float = 0.0, in_channels: int = 3,
             numerics: str = "authors"):
    return build_ddrnet("ddrnet39", num_classes, drop_path_rate, in_channels, numerics)


from models.ddrnet.src.spec import SPEC

register_spec(SPEC)

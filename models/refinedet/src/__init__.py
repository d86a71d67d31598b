"""RefineDet networks (VGG-16 / ResNet-101, 320 / 512) and weight key maps."""
from models.refinedet.src.refinedet import (
                                            BACKBONES,
                                            DEFAULT_NUM_CLASSES,
                                            STEPS,
                                            VARIANTS,
                                            RefineDet,
                                            build_refinedet,
                                            feature_map_sizes,
                                            num_anchors,
)

__all__ = ["BACKBONES", "DEFAULT_NUM_CLASSES", "STEPS", "VARIANTS", "RefineDet", "build_refinedet",
           "feature_map_sizes", "num_anchors"]

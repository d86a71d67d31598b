"""RefineDet detectors, registered as ``refinedet{320,512}_{vgg16,resnet101}``.

``num_classes`` counts the background: 81 for COCO (the default), 21 for VOC.
"""
from models import register_model, register_spec
from models.refinedet.src import DEFAULT_NUM_CLASSES, RefineDet, build_refinedet


@register_model
def refinedet320_vgg16(num_classes: int = DEFAULT_NUM_CLASSES) -> RefineDet:
    return build_refinedet("refinedet320_vgg16", num_classes)


@register_model
def refinedet512_vgg16(num_classes: int = DEFAULT_NUM_CLASSES) -> RefineDet:
    return build_refinedet("refinedet512_vgg16", num_classes)


@register_model
def refinedet320_resnet101(num_classes: int = DEFAULT_NUM_CLASSES, frozen_bn: bool = False,
                           stride_in_1x1: bool = False) -> RefineDet:
    return build_refinedet("refinedet320_resnet101", num_classes, frozen_bn, stride_in_1x1)


@register_model
def refinedet512_resnet101(num_classes: int = DEFAULT_NUM_CLASSES, frozen_bn: bool = False,
                           stride_in_1x1: bool = False) -> RefineDet:
    return build_refinedet("refinedet512_resnet101", num_classes, frozen_bn, stride_in_1x1)


from models.refinedet.src.spec import SPEC  # the variants above must exist first

register_spec(SPEC)

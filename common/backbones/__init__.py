"""Backbones shared by the models: ResNet-50/101 (C1..C5) and VGG-16 reduced (SSD / RefineDet).

``create_backbone(name, **kwargs)`` builds one by name; each exposes ``feature_info``
({name, channels, reduction} per returned feature) so heads read channel counts from it.
"""
import difflib

from common.backbones.resnet import (
    ResNet,
    mindspore_modelzoo_resnet_key_map,
    resnet50,
    resnet101,
    torchvision_resnet_key_map,
)
from common.backbones.vgg import VGG16, torchvision_vgg16_key_map, vgg16

BACKBONES = {"resnet50": resnet50, "resnet101": resnet101, "vgg16": vgg16}


def create_backbone(name, **kwargs):
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, BACKBONES, n=3)
        hint = f" Did you mean {close}?" if close else ""
        raise KeyError(f"unknown backbone '{name}'.{hint} Known backbones: {sorted(BACKBONES)}")
    return BACKBONES[name](**kwargs)


__all__ = ["BACKBONES", "VGG16", "ResNet", "create_backbone", "mindspore_modelzoo_resnet_key_map", "resnet50",
           "resnet101", "torchvision_resnet_key_map", "torchvision_vgg16_key_map", "vgg16"]

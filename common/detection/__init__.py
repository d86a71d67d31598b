"""Detection maths shared by SSD-style detectors (RefineDet): anchors, box coding, matching,
the two-step multibox loss, NMS and post-processing. numpy for data and inference, MindSpore
ops for the loss."""
from .anchors import AnchorGenerator
from .box_coder import BoxCoder, box_iou, cxcywh_to_xyxy, xyxy_to_cxcywh
from .loss import RefineDetLoss
from .matcher import match
from .nms import batched_nms, nms
from .postprocess import RefineDetPostProcess

__all__ = ["AnchorGenerator", "BoxCoder", "RefineDetLoss", "RefineDetPostProcess", "batched_nms", "box_iou",
           "cxcywh_to_xyxy", "match", "nms", "xyxy_to_cxcywh"]

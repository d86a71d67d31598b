"""RefineDet input pipelines: SSD-style augmentation, resize to S x S, normalisation, padded targets.

Normalisation (``data.normalise``):
- ``caffe`` (VGG-16, the default): RGB -> BGR, minus the pixel mean (104, 117, 123), values in
  0..255 units, no std: what sfzhang15's prototxts and luuuyi's ``BaseTransform`` feed, and what
  the ``vgg16_reducedfc`` ImageNet weights expect.
- ``imagenet`` (ResNet-101, the default there): RGB / 255, ImageNet mean / std, as torchvision's
  ResNet-101 weights expect.
The image is resized to S x S without keeping the aspect ratio (Caffe's WARP resize), bilinear.

Targets follow the loss contract: ``gt_boxes (M, 4)`` normalised x1,y1,x2,y2, ``gt_labels (M,)``
int32 in 1..C-1, ``gt_mask (M,)`` (added by the padding batcher); crowd boxes are left out.
"""
import cv2
import numpy as np

from common.data.detection import CocoDetection, TxtDetection, VOCDetection
from common.data.loader import ConcatSource, build_dataset
from common.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Compose, RandomHorizontalFlip, Resize
from common.data.transforms_det import Expand, MinIoURandomCrop, PhotometricDistort

TRAIN_COLUMNS = ("image", "gt_boxes", "gt_labels", "gt_mask")
CAFFE_BGR_MEAN = np.asarray((104.0, 117.0, 123.0), np.float32)
NORMALISATIONS = ("caffe", "imagenet")


def normalisation_of(data_cfg, backbone):
    mode = data_cfg.normalise
    if mode == "auto":
        mode = "caffe" if backbone == "vgg16" else "imagenet"
    if mode not in NORMALISATIONS:
        raise ValueError(f"data.normalise is {mode!r}, expected auto or one of {NORMALISATIONS}")
    return mode


def normalise(image, mode):
    """HxWx3 RGB (uint8 or float, 0..255) -> 3xHxW float32 network input."""
    image = np.asarray(image, np.float32)
    if mode == "caffe":
        x = image[..., ::-1] - CAFFE_BGR_MEAN
    else:
        x = (image / 255.0 - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def preprocess(image, size, mode):
    """HxWx3 uint8 -> (1, 3, H, W) float32: bilinear resize to ``size`` = (H, W), normalised."""
    resized = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return normalise(resized, mode)[None]


class ToDetectionTargets:
    """Normalised image (CHW) + ``gt_boxes`` in [0, 1] and ``gt_labels``; crowd boxes dropped."""

    def __init__(self, mode):
        self.mode = mode

    def __call__(self, sample, rng=None):
        h, w = sample["image"].shape[:2]
        keep = ~np.asarray(sample.get("iscrowd", np.zeros(len(sample["labels"]), bool)), bool)
        boxes = np.asarray(sample["boxes"], np.float32).reshape(-1, 4)[keep]
        boxes = np.clip(boxes / np.array([w, h, w, h], np.float32), 0.0, 1.0)
        return {"image": normalise(sample["image"], self.mode), "gt_boxes": boxes.astype(np.float32),
                "gt_labels": np.asarray(sample["labels"], np.int32)[keep]}


def train_transform(size, mode, photometric=True, expand_ratio=4.0, min_iou_crop=True, hflip=True):
    """SSD / RefineDet training augmentation then resize to ``size`` and the targets."""
    steps = [PhotometricDistort()] if photometric else []
    if expand_ratio and expand_ratio > 1.0:
        steps.append(Expand(ratio_range=(1.0, float(expand_ratio))))
    if min_iou_crop:
        steps.append(MinIoURandomCrop())
    if hflip:
        steps.append(RandomHorizontalFlip())
    return Compose(steps + [Resize((size, size)), ToDetectionTargets(mode)])


def build_source(data_cfg):
    """Training reader(s) of ``data``: coco (``root`` images, ``ann_file`` json), voc (``root`` a VOC
    folder, ``ann_file`` the image set), txt (``root`` image folder, ``ann_file`` list); each of
    ``extra_roots`` adds one more such set (e.g. VOC2012 beside VOC2007)."""
    roots = [data_cfg.root, *data_cfg.extra_roots]
    table = {"coco": lambda r: CocoDetection(r, data_cfg.ann_file, skip_empty=True),
             "voc": lambda r: VOCDetection(r, data_cfg.ann_file or "trainval"),
             "txt": lambda r: TxtDetection(data_cfg.ann_file, r)}
    if data_cfg.format not in table:
        raise ValueError(f"data.format is {data_cfg.format!r}, expected one of {sorted(table) + ['mindrecord']}")
    sources = [table[data_cfg.format](r) for r in roots]
    return sources[0] if len(sources) == 1 else ConcatSource(sources)


def _mindrecord_dataset(cfg, transform, dist):
    """Training batches straight from detection MindRecord files (``python -m common.data.mindrecord``):
    rows are decoded, augmented and padded in the MindDataset pipeline (sharded per device)."""
    from common.data.batching import PadToFixed
    from common.data.mindrecord import DET_COLUMNS, decode_det_row, read_det_mindrecord

    files = [cfg.data.root, *cfg.data.extra_roots]
    shard = (dist.size, dist.rank) if dist.distributed else (None, None)
    dataset = read_det_mindrecord(files, *shard, shuffle=True, num_parallel_workers=cfg.train.num_workers)
    pad = PadToFixed({"gt_boxes": (4,), "gt_labels": ()}, cfg.data.max_boxes, "gt_mask")
    rng = np.random.default_rng([cfg.seed, shard[1] or 0])

    def load(*columns):
        sample = pad(transform(decode_det_row(*columns), rng))
        return tuple(sample[k] for k in TRAIN_COLUMNS)

    dataset = dataset.map(load, input_columns=DET_COLUMNS, output_columns=list(TRAIN_COLUMNS))
    return dataset.batch(cfg.train.batch_size, drop_remainder=True)


def build_train_dataset(cfg, size, backbone, dist):
    data = cfg.data
    transform = train_transform(size, normalisation_of(data, backbone), data.photometric, data.expand_ratio,
                                data.min_iou_crop, data.hflip)
    if data.format == "mindrecord":
        return _mindrecord_dataset(cfg, transform, dist)
    source = build_source(data)
    shard = {} if not dist.distributed else {"num_shards": dist.size, "shard_id": dist.rank}
    m = data.max_boxes
    return build_dataset(source, transform, ["image", "gt_boxes", "gt_labels"], cfg.train.batch_size,
                         shuffle=True, num_workers=cfg.train.num_workers, seed=cfg.seed,
                         pad_columns={"gt_boxes": (m, 4), "gt_labels": (m,)}, pad_mask="gt_mask",
                         label_checks={"gt_labels": cfg.model.num_classes}, verify=data.verify, **shard)

"""Saliency prediction with the authors' test pipeline (u2net_test.py + data_loader.py).

preprocess: RescaleT(320) = skimage ``transform.resize(image, (320, 320), mode='constant')`` as in
  scikit-image 0.14 (the authors' version: bilinear, half-pixel centres, no anti-aliasing, zero
  beyond the border, on the image scaled to [0, 1]); ToTensorLab(flag=0) = divide by the maximum,
  then ImageNet mean / std.
predict_map: the fused output d0 (the authors' ``d1``) as a float map in [0, 1].
postprocess: min-max normalise, x255 truncated to 8 bits (PIL's float -> 8-bit conversion in
  their ``save_output``), PIL bilinear resize back to the image size.
"""
import mindspore as ms
import numpy as np
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def resize_matrix(n_in, n_out):
    """(n_out, n_in) bilinear weights of scikit-image's resize with ``mode='constant'``, cval 0.

    Half-pixel centres like PyTorch, but a sample beyond the border blends with 0 instead of
    repeating the edge (only happens when upsampling), and no anti-aliasing filter.
    """
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    i0 = np.floor(src).astype(np.int64)
    w1 = src - i0
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    for idx, w in ((i0, 1.0 - w1), (i0 + 1, w1)):
        ok = (idx >= 0) & (idx < n_in)
        np.add.at(m, (rows[ok], idx[ok]), w[ok])
    return m


def resize_image(image, size):
    """skimage-0.14-style bilinear resize of an HxW(xC) uint8 image to ``size`` = (h, w), in [0, 1]."""
    x = image.astype(np.float64) / 255.0
    if x.ndim == 2:
        x = x[..., None]
    mh = resize_matrix(x.shape[0], size[0])
    mw = resize_matrix(x.shape[1], size[1])
    out = np.einsum("oh,hwc->owc", mh, x)
    out = np.einsum("pw,owc->opc", mw, out)
    # skimage clips to the input range (extended by cval 0); a no-op up to rounding.
    return np.clip(out, min(0.0, x.min()), x.max())


def preprocess(image, size=320):
    """HxWx3 (or HxW grey) uint8 -> (1, 3, size, size) float32: RescaleT + ToTensorLab(flag=0)."""
    x = resize_image(image, (size, size))
    peak = x.max()
    if peak > 0:  # the authors divide unconditionally (NaN for an all-black image)
        x = x / peak
    if x.shape[2] == 1:  # ToTensorLab copies a grey channel with the red channel's statistics
        x = np.repeat((x - MEAN[0]) / STD[0], 3, axis=2)
    else:
        x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def predict_map(net, batch):
    """Fused saliency map(s) in [0, 1]: (N, H, W) float32 for an (N, 3, H, W) batch."""
    outputs = net(ms.Tensor(batch))
    return outputs[0].asnumpy()[:, 0]


def postprocess(pred, image_size):
    """Float map -> uint8 map of ``image_size`` = (h, w), as the authors' ``save_output``."""
    lo, hi = float(pred.min()), float(pred.max())
    norm = (pred - lo) / (hi - lo) if hi > lo else np.zeros_like(pred)
    grey = np.clip(norm * 255.0, 0, 255).astype(np.uint8)  # truncation, like PIL's F -> L
    h, w = image_size
    return np.asarray(Image.fromarray(grey).resize((w, h), resample=Image.BILINEAR))

"""Per-image salient-object-detection measures with PySODMetrics 1.6.2's exact conventions.

Inputs are a prediction normalised to float64 in [0, 1] and a boolean ground truth, as made by
:func:`prepare`. Curves have 256 entries, entry ``t`` for the binarisation ``pred_u8 >= t``
(PySODMetrics stores the same curve reversed; max and mean do not depend on the order).
Definitions follow the authors' MATLAB toolboxes, including MATLAB's ``eps`` in denominators.
"""
import numpy as np
from scipy import ndimage

EPS = np.spacing(1)  # MATLAB's eps; the reference toolboxes add it to denominators
NUM_THRESHOLDS = 256


def prepare(pred, gt):
    """(pred float64 in [0, 1], gt bool) from a uint8 (0-255) or float ([0, 1]) prediction and a
    uint8 (binarised at > 128), float (> 128/255) or bool ground truth.

    The prediction is min-max normalised unless constant (MATLAB's ``mapminmax(im2double(.))``).
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} must be equal 2-D shapes")
    if gt.dtype != bool:
        gt = gt > (128 / 255 if np.issubdtype(gt.dtype, np.floating) else 128)
    if np.issubdtype(pred.dtype, np.integer):
        pred = pred / 255.0
    else:
        pred = pred.astype(np.float64)
        if pred.min() < 0 or pred.max() > 1:
            raise ValueError(f"a float prediction must lie in [0, 1], got [{pred.min()}, {pred.max()}]")
    lo, hi = pred.min(), pred.max()
    if hi != lo:
        pred = (pred - lo) / (hi - lo)
    return pred, gt


def adaptive_threshold(pred):
    """Twice the mean prediction, capped at 1 (Achanta et al., CVPR 2009)."""
    return min(2 * pred.mean(), 1.0)


def mae(pred, gt):
    return float(np.mean(np.abs(pred - gt)))


def f_beta(precision, recall, beta2):
    """F-measure of precision and recall (arrays or scalars); 0 where both are 0."""
    num = (1 + beta2) * precision * recall
    return num / np.where(num == 0, 1, beta2 * precision + recall)


def adaptive_f_measure(pred, gt, beta2=0.3):
    """F-measure of the prediction binarised at :func:`adaptive_threshold` (0 when nothing is hit)."""
    binary = pred >= adaptive_threshold(pred)
    hits = np.count_nonzero(binary & gt)
    if hits == 0:
        return 0.0
    return float(f_beta(hits / np.count_nonzero(binary), hits / np.count_nonzero(gt), beta2))


def _counts_per_threshold(pred, gt):
    """(true positives, false positives) of ``pred_u8 >= t`` for t = 0..255."""
    pred_u8 = (pred * 255).astype(np.uint8)  # truncation, as PySODMetrics does
    tp_hist = np.bincount(pred_u8[gt], minlength=NUM_THRESHOLDS)
    fp_hist = np.bincount(pred_u8[~gt], minlength=NUM_THRESHOLDS)
    return np.cumsum(tp_hist[::-1])[::-1], np.cumsum(fp_hist[::-1])[::-1]


def precision_recall_f(pred, gt, beta2=0.3):
    """Precision, recall and F-measure curves over the 256 thresholds."""
    tp, fp = _counts_per_threshold(pred, gt)
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(np.count_nonzero(gt), 1)
    return precision, recall, f_beta(precision, recall, beta2)


def _enhanced_alignment(tp, fp, gt_fg, size):
    """E-measure from the pixel counts of a binarised prediction (scalars or per-threshold arrays):
    the enhanced alignment matrix takes one value per TP/FP/FN/TN cell (Fan et al., IJCAI 2018)."""
    pred_fg = tp + fp
    if gt_fg == 0:
        total = size - pred_fg
    elif gt_fg == size:
        total = pred_fg
    else:
        fn = gt_fg - tp
        tn = size - pred_fg - fn
        mean_pred, mean_gt = pred_fg / size, gt_fg / size
        total = 0.0
        for count, p, g in ((tp, 1 - mean_pred, 1 - mean_gt), (fp, 1 - mean_pred, -mean_gt),
                            (fn, -mean_pred, 1 - mean_gt), (tn, -mean_pred, -mean_gt)):
            align = 2 * p * g / (p * p + g * g + EPS)
            total = total + (align + 1) ** 2 / 4 * count
    return total / (size - 1 + EPS)


def e_measure_curve(pred, gt):
    tp, fp = _counts_per_threshold(pred, gt)
    return _enhanced_alignment(tp, fp, np.count_nonzero(gt), gt.size)


def adaptive_e_measure(pred, gt):
    binary = pred >= adaptive_threshold(pred)
    tp = np.count_nonzero(binary & gt)
    fp = np.count_nonzero(binary & ~gt)
    return float(_enhanced_alignment(tp, fp, np.count_nonzero(gt), gt.size))


def _ssim(pred, gt):
    """Region similarity of one quadrant (Fan et al., ICCV 2017, eq. 5)."""
    n = pred.size
    x, y = pred.mean(), gt.mean()
    sigma_x = np.sum((pred - x) ** 2) / (n - 1 + EPS)
    sigma_y = np.sum((gt - y) ** 2) / (n - 1 + EPS)
    sigma_xy = np.sum((pred - x) * (gt - y)) / (n - 1 + EPS)
    alpha = 4 * x * y * sigma_xy
    beta = (x * x + y * y) * (sigma_x + sigma_y)
    if alpha != 0:
        return alpha / (beta + EPS)
    return 1.0 if beta == 0 else 0.0


def _region_score(pred, gt):
    h, w = gt.shape
    cy, cx = np.argwhere(gt).mean(axis=0).round()  # numpy rounds halves to even, as PySODMetrics
    cy, cx = int(cy) + 1, int(cx) + 1  # MATLAB's 1:X includes X
    score = 0.0
    for rows, cols in ((slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)),
                       (slice(cy, h), slice(0, cx)), (slice(cy, h), slice(cx, w))):
        part = pred[rows, cols]
        # A centroid on the last row/column leaves an empty quadrant of weight 0; PySODMetrics
        # returns NaN there (mean of nothing), we let it contribute nothing.
        if part.size:
            score += _ssim(part, gt[rows, cols]) * part.size / gt.size
    return score


def _object_similarity(x):
    std = np.std(x, ddof=1) if x.size > 1 else 0.0
    mean = np.mean(x)
    return 2 * mean / (mean * mean + 1 + std + EPS)


def s_measure(pred, gt, alpha=0.5):
    """Structure measure: object-aware and region-aware similarity (Fan et al., ICCV 2017)."""
    y = gt.mean()
    if y == 0:
        return float(1 - pred.mean())
    if y == 1:
        return float(pred.mean())
    obj = _object_similarity(pred[gt]) * y + _object_similarity(1 - pred[~gt]) * (1 - y)
    return float(max(0.0, alpha * obj + (1 - alpha) * _region_score(pred, gt)))


def _matlab_gaussian(size=7, sigma=5.0):
    """``fspecial('gaussian', size, sigma)``."""
    r = (size - 1) / 2
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    kernel = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    kernel[kernel < np.finfo(kernel.dtype).eps * kernel.max()] = 0
    return kernel / kernel.sum()


def weighted_f(pred, gt, beta2=1.0):
    """Weighted F-measure (Margolin et al., CVPR 2014); 0 for an empty ground truth."""
    if not gt.any():
        return 0.0
    dist, (iy, ix) = ndimage.distance_transform_edt(~gt, return_indices=True)
    err = np.abs(pred - gt)
    # Pixel dependency: a background pixel takes the error of its nearest foreground pixel.
    err_nearest = np.where(gt, err, err[iy, ix])
    err_smooth = ndimage.convolve(err_nearest, _matlab_gaussian(), mode="constant", cval=0)
    err_min = np.where(gt & (err_smooth < err), err_smooth, err)
    # Pixel importance: background errors weigh more the farther they are from the object.
    weight = np.where(gt, 1.0, 2 - np.exp(np.log(0.5) / 5 * dist))
    err_w = err_min * weight
    tp_w = np.count_nonzero(gt) - err_w[gt].sum()
    fp_w = err_w[~gt].sum()
    recall = 1 - err_w[gt].mean()
    precision = tp_w / (tp_w + fp_w + EPS)
    return float((1 + beta2) * recall * precision / (recall + beta2 * precision + EPS))

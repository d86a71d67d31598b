"""Fixed-size batching of variable-length targets (per-image box lists) for graph mode.

Every sample's box columns are padded to ``max_boxes`` rows and a validity mask (1 for a real
box, 0 for padding) is added, so every batch has the same shapes and the compiled step is
built once. Boxes beyond ``max_boxes`` are dropped with a warning naming the sample.
"""
import logging

import numpy as np

log = logging.getLogger("zoo")


class PadToFixed:
    """Sample transform: ``columns`` {name: per-row shape} padded to ``max_rows`` rows, plus
    ``mask_column`` (float32, ``(max_rows,)``).

    For the detection contract: ``PadToFixed({"gt_boxes": (4,), "gt_labels": ()}, 100, "gt_mask")``
    turns ``gt_boxes (M, 4)`` / ``gt_labels (M,)`` into ``(100, 4)`` / ``(100,)`` and adds
    ``gt_mask (100,)``. Column dtypes are kept; padding is 0.
    """

    def __init__(self, columns, max_rows, mask_column="gt_mask"):
        if int(max_rows) <= 0:
            raise ValueError(f"PadToFixed: max_rows must be > 0, got {max_rows}")
        self.columns = {k: tuple(v) for k, v in dict(columns).items()}
        self.max_rows, self.mask_column = int(max_rows), mask_column
        self.dropped = 0  # boxes dropped in this process (for tests and summaries)

    def __call__(self, sample, rng=None, where=None):
        out = dict(sample)
        counts = set()
        for name, row_shape in self.columns.items():
            value = np.asarray(sample[name])
            if value.size == 0:
                value = value.reshape((0,) + row_shape)
            if value.shape[1:] != row_shape:
                raise ValueError(f"column '{name}' has shape {value.shape}, expected {('N',) + row_shape}")
            counts.add(len(value))
            padded = np.zeros((self.max_rows,) + row_shape, value.dtype)
            n = min(len(value), self.max_rows)
            padded[:n] = value[:n]
            out[name] = padded
        if len(counts) > 1:
            raise ValueError(f"columns {sorted(self.columns)} have different row counts {sorted(counts)}")
        count = counts.pop() if counts else 0
        if count > self.max_rows:
            self.dropped += count - self.max_rows
            log.warning("%s has %d boxes: keeping the first %d (raise data.max_boxes to keep all)",
                        where or "a sample", count, self.max_rows)
        mask = np.zeros(self.max_rows, np.float32)
        mask[:min(count, self.max_rows)] = 1.0
        out[self.mask_column] = mask
        return out

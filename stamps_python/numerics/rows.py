"""Row-chunked reductions over (n_ps, n) arrays that may be float32 or HDF5 datasets."""

from __future__ import annotations

import numpy as np

ROW_CHUNK = 131072


def rows_matmul(a: np.ndarray, cols: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``a[:, cols] @ w`` in float64, computed over row chunks (``a`` may be float32)."""
    w = np.asarray(w, dtype=np.float64)
    out = np.empty((a.shape[0],) + w.shape[1:], dtype=np.float64)
    for r0 in range(0, a.shape[0], ROW_CHUNK):
        rows = slice(r0, r0 + ROW_CHUNK)
        out[rows] = np.asarray(a[rows][:, cols], dtype=np.float64) @ w
    return out


def nanmean_rows(a: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
    """Mean over the selected rows of ``a`` of each column, NaN ignored (float64)."""
    sub = a[rows]
    total = np.zeros(a.shape[1])
    count = np.zeros(a.shape[1])
    for r0 in range(0, sub.shape[0], ROW_CHUNK):
        block = np.asarray(sub[r0 : r0 + ROW_CHUNK], dtype=np.float64)
        ok = ~np.isnan(block)
        total += np.where(ok, block, 0.0).sum(axis=0)
        count += ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count

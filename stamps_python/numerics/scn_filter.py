"""Filters of Step 8 (ps_scn_filt): Gaussian high-pass in time, Gaussian low-pass in space.

Pure functions on arrays: phase in radians, dates in days, coordinates in metres.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial import cKDTree
from tqdm import tqdm

_PAIR_BUDGET = 4_000_000  # PS pairs held at once by the spatial filter
_ROW_CHUNK = 131072


def time_lowpass_weights(day: np.ndarray, time_win: float, master_col: int | None) -> np.ndarray:
    """(n, n) row-normalised Gaussian weights in time (std ``time_win`` days) of dates ``day``.

    Row i holds the weights that image i gives every image; the master column gets weight 0.
    """
    day = np.asarray(day, dtype=np.float64)
    w = np.exp(-((day[:, None] - day[None, :]) ** 2) / (2.0 * time_win**2))
    if master_col is not None:
        w[:, master_col] = 0.0
    return w / w.sum(axis=1, keepdims=True)


def time_highpass(
    ph: np.ndarray, day: np.ndarray, time_win: float, master_col: int | None
) -> np.ndarray:
    """``ph`` (n_ps, n) minus its Gaussian moving average in time, per PS row (float32 out).

    Computed in float64 over row chunks.
    """
    W = time_lowpass_weights(day, time_win, master_col)
    op = np.eye(len(W)) - W.T
    out = np.empty(ph.shape, dtype=np.float32)
    for r0 in range(0, ph.shape[0], _ROW_CHUNK):
        rows = slice(r0, r0 + _ROW_CHUNK)
        out[rows] = np.asarray(ph[rows], dtype=np.float64) @ op
    return out


def plane_fit(xy_m: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Least-squares plane ``c + a x + b y`` (x, y in m) of each column of ``data``: the fit."""
    G = np.column_stack([np.ones(len(xy_m)), xy_m[:, 0], xy_m[:, 1]])
    coeff = np.linalg.lstsq(G, np.asarray(data, dtype=np.float64), rcond=None)[0]
    return G @ coeff


def spatial_lowpass(
    xy_m: np.ndarray, values: np.ndarray, wavelength: float, show_progress: bool = True
) -> np.ndarray:
    """Gaussian-weighted mean (std ``wavelength`` m) over PS closer than 4 x ``wavelength``.

    ``xy_m`` (n, 2) metres, ``values`` (n, k). The weights of each PS are normalised to sum 1
    (the PS itself included). Computed in single precision, as StaMPS (double weights times
    single phase); returns (n, k) float32.
    """
    xy = np.asarray(xy_m, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float32)
    n = len(xy)
    radius = 4.0 * wavelength
    tree = cKDTree(xy)
    out = np.empty((n, vals.shape[1]), dtype=np.float32)
    sample = xy[:: max(1, n // 2000)]  # mean neighbour count from an evenly strided sample
    density = float(np.mean(tree.query_ball_point(sample, radius, return_length=True)))
    chunk = int(max(1, min(n, _PAIR_BUDGET // max(density, 1.0))))
    starts = range(0, n, chunk)
    for r0 in tqdm(
        starts,
        desc="low-pass filtering in space",
        unit="chunk",
        disable=not show_progress or len(starts) < 2,
    ):
        rows = np.arange(r0, min(n, r0 + chunk))
        pairs = cKDTree(xy[rows]).sparse_distance_matrix(tree, radius, output_type="ndarray")
        keep = pairs["v"] < radius  # the query includes pairs at exactly the radius
        i, j = pairs["i"][keep], pairs["j"][keep]
        dist_sq = pairs["v"][keep] ** 2
        w = np.exp(-dist_sq / (2.0 * wavelength**2))
        w /= np.bincount(i, weights=w, minlength=len(rows))[i]
        out[rows] = csr_matrix((w.astype(np.float32), (i, j)), shape=(len(rows), n)) @ vals
    return out

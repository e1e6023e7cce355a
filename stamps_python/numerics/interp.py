"""Bilinear interpolation of a stack of coarse grids at many points (numba)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def _bilinear(grids: np.ndarray, fy: np.ndarray, fx: np.ndarray, out: np.ndarray) -> None:
    ny, nx = grids.shape[1], grids.shape[2]
    for p in numba.prange(fy.size):
        i = min(max(int(np.floor(fy[p])), 0), ny - 2)
        j = min(max(int(np.floor(fx[p])), 0), nx - 2)
        wy = fy[p] - i
        wx = fx[p] - j
        for k in range(grids.shape[0]):
            top = (1 - wx) * grids[k, i, j] + wx * grids[k, i, j + 1]
            bottom = (1 - wx) * grids[k, i + 1, j] + wx * grids[k, i + 1, j + 1]
            out[p, k] = (1 - wy) * top + wy * bottom


def bilinear_stack(grids: np.ndarray, fy: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Values of grids (k, ny, nx) at fractional grid coordinates (fy, fx): an (n, k) array.

    Points outside the grid are extrapolated linearly from the nearest cell (ny, nx >= 2).
    """
    grids = np.ascontiguousarray(grids, dtype=np.float64)
    fy = np.ascontiguousarray(fy, dtype=np.float64).ravel()
    fx = np.ascontiguousarray(fx, dtype=np.float64).ravel()
    out = np.empty((fy.size, grids.shape[0]), dtype=np.float64)
    _bilinear(grids, fy, fx, out)
    return out

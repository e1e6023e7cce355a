"""Perpendicular baselines and the SB design matrix of a PS product (``ifgday_ix``, ``n_image``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from stamps_python.numerics.rows import rows_matmul


def sb_design(ps: Mapping[str, Any]) -> np.ndarray:
    """(n_ifg, n_image) design matrix of the SB network: -1 at the first, +1 at the second image."""
    ix = np.asarray(ps["ifgday_ix"], dtype=np.int64)
    G = np.zeros((ix.shape[0], int(ps["n_image"])))
    rows = np.arange(ix.shape[0])
    G[rows, ix[:, 0]] = -1.0
    G[rows, ix[:, 1]] = 1.0
    return G


def bperp_with_master(bperp_mat: np.ndarray, master_ix: int) -> np.ndarray:
    """(n_ps, n_ifg) baselines, m: the (n_ps, n_ifg-1) PS ``bperp_mat`` with 0 at the master."""
    bp = np.asarray(bperp_mat, dtype=np.float32)
    return np.insert(bp, master_ix, np.zeros(bp.shape[0], dtype=np.float32), axis=1)


def sm_bperp_from_sb(
    bperp_sb: np.ndarray, G: np.ndarray, cols: np.ndarray, n_image: int
) -> np.ndarray:
    """Single-master baselines (n_ps, n_image) from SB ones: least squares on columns ``cols``."""
    out = np.zeros((bperp_sb.shape[0], n_image), dtype=np.float32)
    out[:, cols] = rows_matmul(
        np.asarray(bperp_sb), np.arange(bperp_sb.shape[1]), np.linalg.pinv(G[:, cols]).T
    )
    return out

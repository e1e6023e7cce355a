"""Phase corrections of Step 5 shared by ``ps_correct_phase`` and ``ps_calc_ifg_std``."""

from __future__ import annotations

import numpy as np


def with_master_column(values: np.ndarray, master_ix: int, fill: float | complex) -> np.ndarray:
    """Insert a column of ``fill`` at ``master_ix`` (0-based) into (n_ps, n_ifg-1) ``values``."""
    values = np.asarray(values)
    return np.insert(values, master_ix, np.full(values.shape[0], fill, dtype=values.dtype), axis=1)


def correct_phase(
    ph: np.ndarray, K_ps: np.ndarray, C_ps: np.ndarray, bperp_mat: np.ndarray, master_ix: int | None
) -> np.ndarray:
    """Phase corrected for look-angle error K_ps (rad/m) and, for PS, master noise C_ps (rad).

    ``bperp_mat`` is (n_ps, n_ifg-1) for PS (the master column, 0 m, is inserted at
    ``master_ix``) or (n_ps, n_ifg) for SB (``master_ix`` None: C_ps is not subtracted).
    """
    K = np.asarray(K_ps, dtype=np.float32).reshape(-1, 1)
    if master_ix is None:
        arg = K * np.asarray(bperp_mat, dtype=np.float32)
    else:
        bp = with_master_column(np.asarray(bperp_mat, dtype=np.float32), master_ix, 0.0)
        arg = K * bp + np.asarray(C_ps, dtype=np.float32).reshape(-1, 1)
    return (np.asarray(ph, dtype=np.complex64) * np.exp(-1j * arg)).astype(np.complex64)

"""Plane (or low-order surface) removal per interferogram, as StaMPS ``ps_deramp``.

For every interferogram (column) the surface ``z = a x + b y + c`` (``degree`` 1; also 1.5, 2 and 3
as StaMPS) is fitted by least squares to the phase of the PS that are not NaN, with x and y the
local PS coordinates in km (``ps['xy'][:, 1:3] / 1000``). A column with five or fewer valid PS is
left as it is and its ramp is NaN, as in StaMPS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from stamps_python.utils import get_logger

_MIN_VALID = 5  # a column needs more than this many non-NaN PS to be deramped
_ROW_CHUNK = 262144


def _lstsq_columns(A: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (p, k) of ``A`` (n, p) for every column of ``data`` (n, k).

    Uses the thin QR factorisation of ``A`` and accumulates ``Q.T @ data`` in float64 over row
    chunks, so float32 data are never copied whole.
    """
    Q, R = np.linalg.qr(A)
    qtd = np.zeros((A.shape[1], data.shape[1]))
    for r0 in range(0, data.shape[0], _ROW_CHUNK):
        rows = slice(r0, r0 + _ROW_CHUNK)
        # (data.T @ Q).T: the same product, but BLAS is far faster with the long axis inside
        qtd += (np.asarray(data[rows], dtype=np.float64).T @ Q[rows]).T
    return np.linalg.lstsq(R, qtd, rcond=None)[0]


def deramp_design(xy_m: np.ndarray, degree: float = 1) -> np.ndarray:
    """Design matrix of StaMPS' deramp surfaces at local coordinates ``xy_m`` (n, 2), metres.

    Columns (x, y in km): degree 1 ``[x, y, 1]``; 1.5 ``[x, y, xy, 1]``; 2 ``[x^2, y^2, xy, 1]``;
    3 ``[x^3, y^3, x^2 y, y^2 x, x^2, y^2, xy, 1]``.
    """
    xy = np.asarray(xy_m, dtype=np.float64) / 1000.0
    x, y = xy[:, 0], xy[:, 1]
    one = np.ones_like(x)
    if degree == 1:
        cols = [x, y, one]
    elif degree == 1.5:
        cols = [x, y, x * y, one]
    elif degree == 2:
        cols = [x**2, y**2, x * y, one]
    elif degree == 3:
        cols = [x**3, y**3, x**2 * y, y**2 * x, x**2, y**2, x * y, one]
    else:
        raise ValueError(f"deramp degree must be 1, 1.5, 2 or 3, got {degree}")
    return np.column_stack(cols)


def ps_deramp(
    ps: Mapping[str, Any], ph_all: np.ndarray, degree: float = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Remove a fitted surface from each column of ``ph_all`` (n_ps, n_ifg), radians.

    ``ps`` needs ``xy`` (n_ps, 3: id, x m, y m). Returns ``(ph_all - ph_ramp, ph_ramp)``: the
    deramped phase in the dtype of ``ph_all`` (floating) and the fitted surfaces as float64, NaN
    in columns with too few valid PS (those columns are returned unchanged). The fit is an
    ordinary least-squares fit in float64.
    """
    ph = np.asarray(ph_all)
    out_dtype = ph.dtype if np.issubdtype(ph.dtype, np.floating) else np.float64
    squeeze = ph.ndim == 1
    ph2 = ph.reshape(ph.shape[0], -1)
    A = deramp_design(np.asarray(ps["xy"], dtype=np.float64)[:, 1:3], degree)
    if A.shape[0] != ph2.shape[0]:
        raise ValueError(f"ps has {A.shape[0]} PS but ph_all has {ph2.shape[0]} rows")
    nan = np.isnan(ph2)
    has_nan = nan.any(axis=0)
    ramp = np.full(ph2.shape, np.nan)
    full_cols = np.flatnonzero(~has_nan)
    if full_cols.size:
        sub = ph2 if full_cols.size == ph2.shape[1] else ph2[:, full_cols]
        ramp[:, full_cols] = A @ _lstsq_columns(A, sub)
    for k in np.flatnonzero(has_nan):
        ok = ~nan[:, k]
        if np.count_nonzero(ok) > _MIN_VALID:
            coeff = np.linalg.lstsq(A[ok], ph2[ok, k].astype(np.float64), rcond=None)[0]
            ramp[:, k] = A @ coeff
        else:
            get_logger().info(
                "ifg %d is not deramped (only %d valid PS)", k + 1, int(np.count_nonzero(ok))
            )
    done = ~np.isnan(ramp).all(axis=0)
    deramped = ph2.astype(out_dtype, copy=True)
    if done.all():
        np.subtract(ph2, ramp, out=deramped, casting="same_kind")
    else:
        deramped[:, done] = (ph2[:, done] - ramp[:, done]).astype(out_dtype)
    if squeeze:
        return deramped[:, 0], ramp[:, 0]
    return deramped, ramp


def ps_deramp_inplace(xy: np.ndarray, ph: np.ndarray, degree: float = 1) -> np.ndarray:
    """:func:`ps_deramp` of the float64 array ``ph`` (n_ps, n_ifg, radians) in place, the
    surfaces subtracted over row chunks (no n_ps x n_ifg ramp is held); returns ``ph``.

    ``xy`` is ps2 ``xy`` (n_ps, 3: id, x m, y m). Columns with too few valid PS stay as they are.
    """
    if ph.dtype != np.float64 or ph.ndim != 2:
        raise ValueError("ps_deramp_inplace needs a 2-D float64 array")
    A = deramp_design(np.asarray(xy, dtype=np.float64)[:, 1:3], degree)
    if A.shape[0] != ph.shape[0]:
        raise ValueError(f"xy has {A.shape[0]} PS but ph has {ph.shape[0]} rows")
    has_nan = np.zeros(ph.shape[1], dtype=bool)
    for r0 in range(0, ph.shape[0], _ROW_CHUNK):
        has_nan |= np.isnan(ph[r0 : r0 + _ROW_CHUNK]).any(axis=0)
    full_cols = np.flatnonzero(~has_nan)
    every = full_cols.size == ph.shape[1]
    full_coeff = None
    if full_cols.size:
        full_coeff = _lstsq_columns(A, ph if every else ph[:, full_cols])
    # columns with NaNs: one fit each over their valid PS (as ps_deramp, matrix-vector products)
    col_coeff: dict[int, np.ndarray] = {}
    for k in np.flatnonzero(has_nan):
        ok = ~np.isnan(ph[:, k])
        if np.count_nonzero(ok) > _MIN_VALID:
            col_coeff[int(k)] = np.linalg.lstsq(A[ok], ph[ok, k], rcond=None)[0]
        else:
            get_logger().info(
                "ifg %d is not deramped (only %d valid PS)", k + 1, int(np.count_nonzero(ok))
            )
    for r0 in range(0, ph.shape[0], _ROW_CHUNK):
        rows = slice(r0, r0 + _ROW_CHUNK)
        if every:
            ph[rows] -= A[rows] @ full_coeff
        elif full_coeff is not None:
            ph[rows, full_cols] = ph[rows][:, full_cols] - A[rows] @ full_coeff
        for k, c in col_coeff.items():
            ph[rows, k] -= A[rows] @ c
    return ph

"""Per-point deformation model in time and what the opt-in accuracy options build on it.

Pure functions (no file access). The model of every point is ``c + v t`` (``defo_model``
'linear') or ``c + v t + a sin(2 pi t) + b cos(2 pi t)`` ('seasonal'), t in years since the
reference date. On it rest:

* :func:`residual_deramp`: ramps estimated per interferogram from the part of the phase the model
  does not explain (``deramp_method`` 'model'). A ramp that grows linearly in time looks exactly
  like a planar deformation rate, so it is kept; the random part of the orbit ramps goes;
* :func:`temporal_coherence`: ``|mean_k exp(j r_k)|`` of the residual ``r`` of each point after
  the model and the spatially smooth part of the residual (atmosphere) are removed.

Phase in radians, dates in days, coordinates in metres.
"""

from __future__ import annotations

import math

import numpy as np

from stamps_python.numerics.deramp import deramp_design
from stamps_python.numerics.lscov import lscov_operator
from stamps_python.utils import StampsError

DEFO_MODELS = ("linear", "seasonal")
DAYS_PER_YEAR = 365.25
_ROW_CHUNK = 131072
_MIN_POINTS = 5  # a column needs more than this many points with finite phase to be deramped


def model_design(day: np.ndarray, ref_day: float, model: str = "linear") -> np.ndarray:
    """(m, p) design of the per-point model at dates ``day`` (days): 1, t (years since
    ``ref_day``), and for 'seasonal' sin(2 pi t), cos(2 pi t)."""
    if model not in DEFO_MODELS:
        raise StampsError(f"parameter defo_model: '{model}' is not one of {', '.join(DEFO_MODELS)}")
    t = (np.asarray(day, dtype=np.float64).ravel() - float(ref_day)) / DAYS_PER_YEAR
    cols = [np.ones_like(t), t]
    if model == "seasonal":
        cols += [np.sin(2.0 * math.pi * t), np.cos(2.0 * math.pi * t)]
    return np.column_stack(cols)


def model_projector(G: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(m, m) matrix P with ``ph @ P`` the per-row weighted least-squares fit of ``G`` to ``ph``.

    ``weights`` (m,) are 1 / variance of each date (None: equal). A model with as many
    parameters as dates (or more) fits exactly, and P is the identity then.
    """
    G = np.asarray(G, dtype=np.float64)
    if G.shape[0] <= G.shape[1]:
        raise StampsError(
            f"the deformation model has {G.shape[1]} parameters but only "
            f"{G.shape[0]} dates are used; choose defo_model 'linear' or use "
            f"more interferograms"
        )
    V = None if weights is None else np.diag(1.0 / np.asarray(weights, dtype=np.float64))
    return (G @ lscov_operator(G, V)).T


def fit_rows(ph: np.ndarray, P: np.ndarray) -> np.ndarray:
    """``ph @ P`` in float64 over row chunks (``ph`` may be float32): the fitted model."""
    out = np.empty((ph.shape[0], P.shape[1]))
    for r0 in range(0, ph.shape[0], _ROW_CHUNK):
        rows = slice(r0, r0 + _ROW_CHUNK)
        out[rows] = np.asarray(ph[rows], dtype=np.float64) @ P
    return out


def residual_deramp(
    ph: np.ndarray,
    xy_m: np.ndarray,
    G: np.ndarray,
    weights: np.ndarray | None = None,
    degree: float = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Remove from each column of ``ph`` (n_pts, m) the surface fitted to its model residual.

    ``G`` (m, p) is the model design of the m columns (:func:`model_design`), ``xy_m``
    (n_pts, 2) local coordinates in metres, ``degree`` the surface as StaMPS' ps_deramp
    (1, 1.5, 2, 3). The surfaces are fitted by least squares to ``ph - fit`` where ``fit`` is
    the per-point model; since that is linear in ``ph`` the whole estimate is one linear map.
    Points with a non-finite value in any column take no part in the fit. Returns
    ``(ph - ramp, ramp)`` as float64.
    """
    ph = np.asarray(ph)
    A = deramp_design(np.asarray(xy_m, dtype=np.float64), degree)
    ok = np.isfinite(ph).all(axis=1)
    if np.count_nonzero(ok) <= max(_MIN_POINTS, A.shape[1]):
        raise StampsError(
            f"deramp_method 'model': only {int(np.count_nonzero(ok))} points have "
            f"phase in every interferogram; too few to fit the ramps"
        )
    P = model_projector(G, weights)
    resid_op = np.eye(P.shape[0]) - P
    Q, R = np.linalg.qr(A[ok])
    qtd = np.zeros((A.shape[1], ph.shape[1]))
    good = np.flatnonzero(ok)
    for r0 in range(0, good.size, _ROW_CHUNK):
        rows = good[r0 : r0 + _ROW_CHUNK]
        qtd += Q[r0 : r0 + _ROW_CHUNK].T @ np.asarray(ph[rows], dtype=np.float64)
    coeff = np.linalg.solve(R, qtd @ resid_op)
    ramp = A @ coeff
    return np.asarray(ph, dtype=np.float64) - ramp, ramp


def temporal_coherence(resid: np.ndarray) -> np.ndarray:
    """``|mean_k exp(j resid_k)|`` of each row of ``resid`` (n, m), rad; NaNs skipped (in row
    chunks: a few chunk-sized arrays besides ``resid``)."""
    resid = np.asarray(resid)
    out = np.empty(resid.shape[0])
    for r0 in range(0, resid.shape[0], _ROW_CHUNK):
        r = np.asarray(resid[r0 : r0 + _ROW_CHUNK], dtype=np.float64)
        ok = np.isfinite(r)
        z = np.where(ok, np.exp(1j * np.where(ok, r, 0.0)), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[r0 : r0 + _ROW_CHUNK] = np.abs(z.sum(axis=1)) / ok.sum(axis=1)
    return out

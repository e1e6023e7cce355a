"""Look-angle-error fit of wrapped phase series against perpendicular baseline (StaMPS ps_topofit).

For each pixel the phase is modelled as exp(j (K bperp + C)): K (rad per m of perpendicular
baseline) is the spatially uncorrelated look-angle (DEM) error term, C (rad) a constant offset.
StaMPS fits one pixel at a time; here all pixels of a block are fitted at once.
"""

from __future__ import annotations

import math

import numpy as np


def _trial_multiples(n_trial_wraps: float, asym: float) -> np.ndarray:
    """Trial multiples of pi/4 phase over the baseline range searched by the coarse grid search."""
    n_max = math.ceil(8 * n_trial_wraps)
    return np.arange(-n_max, n_max + 1, dtype=np.float64) + asym * 8 * n_trial_wraps


def _fit_block(
    cpx: np.ndarray, bperp: np.ndarray, trial_mult: np.ndarray, weighting: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit one block: cpx (n, m) complex128, bperp (n, m) float64 in m. See :func:`ps_topofit`."""
    valid = cpx != 0
    abs_cpx = np.abs(cpx)
    bp_valid_max = np.where(valid, bperp, -np.inf).max(axis=1)
    bp_valid_min = np.where(valid, bperp, np.inf).min(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        bperp_range = bp_valid_max - bp_valid_min
        trial_phase = np.where(valid, bperp / bperp_range[:, None] * (np.pi / 4), 0.0)

    # Coarse search: |sum_k cpx_k exp(-j m trial_phase_k)| for every trial m. Consecutive trials
    # differ by one step exp(-j trial_phase), so each trial costs one multiply per element.
    step = np.exp(-1j * trial_phase)
    term = cpx * np.exp(-1j * trial_phase * trial_mult[0])
    n_trials = len(trial_mult)
    magnitude = np.empty((cpx.shape[0], n_trials))
    for t in range(n_trials):
        magnitude[:, t] = np.abs(term.sum(axis=1))
        if t + 1 < n_trials:
            term *= step
    best = np.argmax(magnitude, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        k0 = np.pi / 4 / bperp_range * trial_mult[best]

    # Linearised refinement: weighted least-squares slope of the residual phase against bperp.
    resphase = cpx * np.exp(-1j * (k0[:, None] * bperp))
    offset = resphase.sum(axis=1)
    resphase = np.angle(resphase * np.conj(offset)[:, None])
    w = abs_cpx if weighting is None else np.where(valid, weighting, 0.0)
    wb = w * bperp
    with np.errstate(invalid="ignore", divide="ignore"):
        mopt = (wb * (w * resphase)).sum(axis=1) / (wb * wb).sum(axis=1)
    k0 = k0 + mopt
    residual = cpx * np.exp(-1j * (k0[:, None] * bperp))
    mean_residual = residual.sum(axis=1)
    c0 = np.angle(mean_residual)
    with np.errstate(invalid="ignore", divide="ignore"):
        coh0 = np.abs(mean_residual) / abs_cpx.sum(axis=1)
    return k0, c0, coh0, residual


def ps_topofit(
    cpxphase: np.ndarray,
    bperp: np.ndarray,
    n_trial_wraps: float,
    weighting: np.ndarray | None = None,
    *,
    asym: float = 0.0,
    chunk_size: int = 20000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best-fitting look-angle-error term for many pixels at once (StaMPS ``ps_topofit``).

    ``cpxphase`` (n_ps, n_ifg) complex: phase series (any amplitude; zero = missing, ignored as
    StaMPS drops it). ``bperp`` (n_ps, n_ifg) or (n_ifg,): perpendicular baseline, m.
    ``n_trial_wraps``: number of 2 pi wraps over the baseline range that the coarse search spans.
    ``weighting`` (n_ps, n_ifg) optional: weights of the linearised least-squares refinement
    (StaMPS uses |cpxphase|, the default). ``asym`` from -1 (only negative K searched) to +1.

    Returns ``K0`` (n_ps,) rad/m, ``C0`` (n_ps,) rad, ``coh0`` (n_ps,) temporal coherence and
    ``phase_residual`` (n_ps, n_ifg) complex128 = cpxphase exp(-j K0 bperp) (0 where missing).
    Pixels are processed in blocks of ``chunk_size`` to bound memory.
    """
    cpxphase = np.asarray(cpxphase)
    if cpxphase.ndim == 1:
        cpxphase = cpxphase[None, :]
    n_ps, n_ifg = cpxphase.shape
    bperp = np.asarray(bperp, dtype=np.float64)
    if bperp.ndim == 1:
        bperp = np.broadcast_to(bperp, (n_ps, n_ifg))
    if weighting is not None:
        weighting = np.broadcast_to(np.asarray(weighting, dtype=np.float64), (n_ps, n_ifg))
    trial_mult = _trial_multiples(float(n_trial_wraps), float(asym))

    k0 = np.empty(n_ps)
    c0 = np.empty(n_ps)
    coh0 = np.empty(n_ps)
    residual = np.empty((n_ps, n_ifg), dtype=np.complex128)
    for s in range(0, n_ps, max(int(chunk_size), 1)):
        e = min(s + int(chunk_size), n_ps)
        w = None if weighting is None else weighting[s:e]
        k0[s:e], c0[s:e], coh0[s:e], residual[s:e] = _fit_block(
            cpxphase[s:e].astype(np.complex128), bperp[s:e], trial_mult, w
        )
    return k0, c0, coh0, residual

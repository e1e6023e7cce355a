"""Numerics of Step 2's per-pixel estimator (``quick_est_gamma_flag = 'n'``, StaMPS ps_est_gamma).

The spatially correlated phase at a candidate is the weighted sum of the phase of the *other*
candidates within a circular patch around it (Hooper et al., 2004), instead of ps_est_gamma_quick's
CLAP filter of a grid. Also the per-candidate look-angle fit and the two re-weighting rules, which
are the same in both estimators.

Pure functions on arrays: coordinates in metres, phase in radians (complex phase unit-less).
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.optimize import brentq
from scipy.special import j1

from stamps_python.numerics.clap import gausswin
from stamps_python.numerics.matlab import matlab_interp
from stamps_python.numerics.random_phase import hist_centres
from stamps_python.numerics.topofit import ps_topofit

TOPOFIT_CHUNK = 20000  # candidates per ps_topofit block


def disc_response(x: np.ndarray | float) -> np.ndarray | float:
    """Amplitude response 2 J1(x) / x of a uniform disc average at x = 2 pi f R (1 at x = 0)."""
    x = np.asarray(x, dtype=np.float64)
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 1.0, 2.0 * j1(safe) / safe)


def patch_radius(low_pass_wavelength: float) -> float:
    """Radius (m) of the circular patch that passes half the amplitude at the wavelength
    ``low_pass_wavelength`` (m), where ps_est_gamma_quick's Butterworth low-pass does:
    about 0.3526 x the wavelength (282 m for the default 800 m)."""
    x_half = brentq(lambda x: float(disc_response(x)) - 0.5, 1.0, 3.0, xtol=1e-12)
    return float(x_half / (2.0 * np.pi) * low_pass_wavelength)


def _cells(xy: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Square cells of side ``size``: the points in cell order, each cell's first position in it
    (n_cells + 1), each point's cell (row, column), and the numbers of cell rows and columns."""
    cij = np.floor((xy - xy.min(axis=0)) / size).astype(np.int64)
    n_cx, n_cy = int(cij[:, 0].max()) + 1, int(cij[:, 1].max()) + 1
    cell = cij[:, 1] * n_cx + cij[:, 0]
    order = np.argsort(cell, kind="stable").astype(np.int64)
    start = np.zeros(n_cx * n_cy + 1, dtype=np.int64)
    np.cumsum(np.bincount(cell, minlength=n_cx * n_cy), out=start[1:])
    return order, start, cij, n_cx, n_cy


@numba.njit(parallel=True, cache=True, nogil=True)
def _patch_sums(
    xy: np.ndarray,
    values: np.ndarray,
    order: np.ndarray,
    start: np.ndarray,
    cij: np.ndarray,
    n_cx: int,
    n_cy: int,
    radius_sq: float,
    out: np.ndarray,
    counts: np.ndarray,
) -> None:
    """out[i] = sum of values[j] over the points j != i closer than the radius to point i (cells
    of the radius' side: the 3 x 3 cells around i's cell hold them all); counts[i] their number."""
    n_col = values.shape[1]
    for i in numba.prange(xy.shape[0]):
        cx, cy = cij[i, 0], cij[i, 1]
        acc = np.zeros(n_col, dtype=values.dtype)
        m = 0
        for r in range(max(cy - 1, 0), min(cy + 2, n_cy)):
            for c in range(max(cx - 1, 0), min(cx + 2, n_cx)):
                w = r * n_cx + c
                for p in range(start[w], start[w + 1]):
                    j = order[p]
                    if j == i:
                        continue
                    dx = xy[i, 0] - xy[j, 0]
                    dy = xy[i, 1] - xy[j, 1]
                    if dx * dx + dy * dy < radius_sq:
                        m += 1
                        for k in range(n_col):
                            acc[k] += values[j, k]
        out[i, :] = acc
        counts[i] = m


def patch_sums(xy: np.ndarray, values: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Per point of ``xy`` (n, 2) m: the sum of ``values`` (n, k) over the *other* points closer
    than ``radius`` m, (n, k) in the dtype of ``values``, and their number (n,) int32."""
    xy = np.ascontiguousarray(xy, dtype=np.float64)
    vals = np.ascontiguousarray(values)
    out = np.zeros(vals.shape, dtype=vals.dtype)
    counts = np.zeros(len(xy), dtype=np.int32)
    if len(xy) == 0:
        return out, counts
    if not radius > 0:
        raise ValueError(f"patch radius must be positive, got {radius}")
    order, start, cij, n_cx, n_cy = _cells(xy, radius * (1.0 + 1e-9))
    _patch_sums(xy, vals, order, start, cij, n_cx, n_cy, radius * radius, out, counts)
    return out, counts


def patch_phase(
    xy: np.ndarray, ph_weight: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Spatially correlated phase of every candidate: the sum of the weighted phase ``ph_weight``
    (n, n_ifg) of the other candidates within ``radius`` m, normalised to unit amplitude (0
    where the sum is 0 or the patch empty), complex64; and the number of candidates in each patch.
    """
    sums, counts = patch_sums(xy, np.asarray(ph_weight, dtype=np.complex128), radius)
    magnitude = np.abs(sums)
    np.divide(sums, magnitude, out=sums, where=magnitude != 0)
    return sums.astype(np.complex64), counts


def fit_look_angle(
    ph: np.ndarray, ph_patch: np.ndarray, bperp_mat: np.ndarray, n_trial_wraps: float
) -> dict[str, np.ndarray]:
    """ps_topofit of every candidate's phase ``ph`` (n, n_ifg, unit amplitude) times the conjugate
    of its patch phase, against its baselines ``bperp_mat`` (n, n_ifg) m, in blocks.

    Returns ``K_ps`` (rad/m; NaN where a product is 0 in some interferogram), ``C_ps`` (rad),
    ``coh_ps`` (0 there), ``N_opt`` (1 where fitted) and ``ph_res`` (rad, float32).
    """
    n_ps, n_ifg = ph.shape
    out = {
        "K_ps": np.full(n_ps, np.nan),
        "C_ps": np.zeros(n_ps),
        "coh_ps": np.zeros(n_ps),
        "N_opt": np.zeros(n_ps, dtype=np.int32),
        "ph_res": np.zeros((n_ps, n_ifg), dtype=np.float32),
    }
    for s in range(0, n_ps, TOPOFIT_CHUNK):
        e = min(s + TOPOFIT_CHUNK, n_ps)
        psdph = ph[s:e] * np.conj(ph_patch[s:e].astype(np.complex128))
        ok = np.all(psdph != 0, axis=1)
        idx = np.flatnonzero(ok) + s
        if len(idx):
            k, c, coh, res = ps_topofit(
                psdph[ok], bperp_mat[idx], n_trial_wraps, chunk_size=TOPOFIT_CHUNK
            )
            out["K_ps"][idx] = k
            out["C_ps"][idx] = c
            out["coh_ps"][idx] = coh
            out["N_opt"][idx] = 1
            out["ph_res"][idx] = np.angle(res).astype(np.float32)
    return out


def prand_weighting(
    coh_ps: np.ndarray, nr: np.ndarray, nr_max_nz_ix: int, coh_bins: np.ndarray, low_coh_thresh: int
) -> tuple[np.ndarray, np.ndarray]:
    """``P-square`` weights (1 - P_random(coh))^2 of the candidates and the rescaled ``Nr``.

    The random-phase histogram ``nr`` is scaled to the candidates' histogram over the lowest
    ``low_coh_thresh`` bins; P_random per bin is their ratio (1 below the threshold, 0 above the
    last non-empty random bin ``nr_max_nz_ix`` (0-based), at most 1), smoothed by a causal 7-tap
    Gaussian and interpolated to 0.001 coherence steps (the same rule as ps_est_gamma_quick).
    """
    na = hist_centres(coh_ps, coh_bins)
    nr = nr * na[:low_coh_thresh].sum() / nr[:low_coh_thresh].sum()
    na[na == 0] = 1
    prand = nr / na
    prand[:low_coh_thresh] = 1
    prand[nr_max_nz_ix + 1 :] = 0
    prand[prand > 1] = 1
    g = gausswin(7)
    padded = np.r_[np.ones(7), prand]
    prand = np.convolve(padded, g)[: len(padded)][7:] / g.sum()
    prand = matlab_interp(np.r_[1.0, prand], 10)[:-9]
    ix = np.floor(np.nan_to_num(coh_ps) * 1000 + 0.5).astype(np.int64)
    prand_ps = prand[np.clip(ix, 0, len(prand) - 1)]
    return (1 - prand_ps) ** 2, nr


def snr_weighting(amp: np.ndarray, ph_res: np.ndarray) -> np.ndarray:
    """Signal-to-noise weights g / sigma_n from amplitudes and residual phases (rad), per PS."""
    amp = amp.astype(np.float64)
    g = np.mean(amp * np.cos(ph_res), axis=1)
    sigma_n = np.sqrt(0.5 * (np.mean(amp**2, axis=1) - g**2))
    weighting = np.zeros_like(g)
    nz = sigma_n != 0
    weighting[nz] = g[nz] / sigma_n[nz]
    return weighting

"""Variograms and kriging of Step 8's kriging variant (StaMPS ps_scn_filt_krig, ps_fit_vario,
ps_kriging; Freek van Leijen's and Miguel Caro Cuenca's TU Delft code).

Pure functions on arrays. The same routines serve time (coordinates in years, the second
coordinate 0) and space (coordinates in m); values are phase in rad, variogram sills and nuggets
in rad^2, ranges in the unit of the coordinates.

Exponential model, as ps_fit_vario fits it and ps_kriging uses it:
``gamma(h) = c1 (1 - exp(-h / a)) + c2`` (range ``a``, partial sill ``c1``, nugget ``c2``), i.e.
covariance ``c1 exp(-h / a)`` plus ``c2`` on the diagonal.
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np
import scipy.sparse as sp
from scipy.optimize import least_squares
from scipy.sparse.linalg import splu
from scipy.spatial import cKDTree

_KRIG_CHUNK = 2048  # kriging systems solved per batch (each up to (n_max + 1)^2 float64)


def exponential_variogram(h: np.ndarray, a: float, c1: float, c2: float) -> np.ndarray:
    """Exponential variogram c1 (1 - exp(-h / a)) + c2 at lags ``h``."""
    return c1 * (1.0 - np.exp(-np.asarray(h, dtype=np.float64) / a)) + c2


def unique_draws(rng: np.random.Generator, n: int, n_draw: int) -> np.ndarray:
    """Sorted distinct indices of ``n_draw`` uniform draws (with replacement) from 0..n-1, as
    MATLAB's ``unique(randi(n, n_draw))``."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(rng.integers(0, n, n_draw))


@numba.njit(parallel=True, cache=True, nogil=True)
def _binned_pairs(
    coords: np.ndarray,
    values: np.ndarray,
    lags: np.ndarray,
    n_blocks: int,
    sums: np.ndarray,
    counts: np.ndarray,
) -> None:
    """For every pair i < j of points with lags[b] <= distance < lags[b + 1]: counts[t, b] += 1
    and sums[t, b, :] += (values[i] - values[j])^2, block t = i mod n_blocks (one per thread)."""
    n = coords.shape[0]
    n_col = values.shape[1]
    n_bins = lags.size - 1
    width = lags[-1] / n_bins
    for t in numba.prange(n_blocks):
        for i in range(t, n, n_blocks):
            for j in range(i + 1, n):
                dx = coords[i, 0] - coords[j, 0]
                dy = coords[i, 1] - coords[j, 1]
                d = math.sqrt(dx * dx + dy * dy)
                if d >= lags[-1]:
                    continue
                b = min(int(d / width), n_bins - 1)
                if d < lags[b]:
                    b -= 1
                elif d >= lags[b + 1]:
                    b += 1
                counts[t, b] += 1
                for k in range(n_col):
                    diff = values[i, k] - values[j, k]
                    sums[t, b, k] += diff * diff


def empirical_variogram(
    coords: np.ndarray, values: np.ndarray, max_dist: float, n_lags: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binned semivariance of each column of ``values`` (n, k) at points ``coords`` (n, 2).

    As ps_fit_vario: ``n_lags`` lag edges from 0 to ``max_dist`` (``n_lags - 1`` bins, each
    holding the pairs with lower edge <= distance < upper edge), the mean of
    0.5 (z_i - z_j)^2 over the pairs of a bin, empty bins dropped, and only the first
    round((n_lags - 1) / 1.75) bins kept. Returns the bin centres (m,), the semivariances
    (m, k) and the numbers of point pairs (m,).
    """
    coords = np.ascontiguousarray(coords, dtype=np.float64)
    vals = np.ascontiguousarray(values, dtype=np.float64)
    if vals.ndim == 1:
        vals = vals[:, None]
    lags = np.linspace(0.0, float(max_dist), int(n_lags))
    n_bins = lags.size - 1
    n_blocks = max(1, min(len(coords), 4 * numba.get_num_threads()))
    sums = np.zeros((n_blocks, n_bins, vals.shape[1]))
    counts = np.zeros((n_blocks, n_bins), dtype=np.int64)
    if n_bins > 0 and len(coords) > 1:
        _binned_pairs(coords, vals, lags, n_blocks, sums, counts)
    count = counts.sum(axis=0)
    total = sums.sum(axis=0)
    full = np.flatnonzero(count > 0)[: int(np.floor(n_bins / 1.75 + 0.5))]
    centres = 0.5 * (lags[full] + lags[full + 1])
    return centres, 0.5 * total[full] / count[full, None], count[full]


def fit_variogram(
    lags: np.ndarray, semivariance: np.ndarray, a0: float, c10: float, c20: float
) -> tuple[float, float, float]:
    """Least-squares fit of the exponential variogram to ``semivariance`` at ``lags``, all
    three parameters >= 0, from (``a0``, ``c10``, ``c20``), as ps_fit_vario's lsqcurvefit
    (scipy's trust-region-reflective ``least_squares``). Returns (a, c1, c2); NaN when the lags
    are empty or the fit fails."""
    h = np.asarray(lags, dtype=np.float64)
    g = np.asarray(semivariance, dtype=np.float64)
    if h.size == 0 or not np.all(np.isfinite(g)):
        return math.nan, math.nan, math.nan

    def residual(p: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.nan_to_num(p[1] * (1.0 - np.exp(-h / p[0])) + p[2] - g)

    def jacobian(p: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            e = np.exp(-h / p[0])
            da = np.nan_to_num(-p[1] * h / p[0] ** 2 * e)
        return np.column_stack([da, 1.0 - e, np.ones_like(h)])

    try:
        fit = least_squares(
            residual,
            np.array([a0, c10, c20], dtype=np.float64),
            jac=jacobian,
            bounds=(np.zeros(3), np.full(3, np.inf)),
            method="trf",
            ftol=1e-6,
            xtol=1e-6,
            max_nfev=300,
        )
    except (ValueError, np.linalg.LinAlgError):
        return math.nan, math.nan, math.nan
    a, c1, c2 = (float(v) for v in fit.x)
    return a, c1, c2


def _solve_ordinary(
    h: np.ndarray,
    h0: np.ndarray,
    z: np.ndarray,
    valid: np.ndarray,
    a: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
) -> np.ndarray:
    """Ordinary kriging of a batch: ``h`` (B, m, m) distances between the observations, ``h0``
    (B, m) to the point estimated, values ``z`` (B, m), ``valid`` (B, m) slots in use, model
    (``a``, ``c1``, ``c2``) per system (B,). Unused slots get weight 0; no slot: NaN."""
    b, m = z.shape
    a = a[:, None, None]
    K = np.zeros((b, m + 1, m + 1))
    pair = valid[:, :, None] & valid[:, None, :]
    K[:, :m, :m] = np.where(pair, c1[:, None, None] * np.exp(-h / a), 0.0)
    diag = np.arange(m)
    K[:, diag, diag] = np.where(valid, K[:, diag, diag] + c2[:, None], 1.0)
    K[:, :m, m] = valid
    K[:, m, :m] = valid
    empty = ~valid.any(axis=1)
    K[empty, m, m] = 1.0  # no observation: a solvable system whose result is discarded
    rhs = np.zeros((b, m + 1))
    rhs[:, :m] = np.where(valid, c1[:, None] * np.exp(-h0 / a[:, :, 0]), 0.0)
    rhs[:, m] = 1.0
    try:
        w = np.linalg.solve(K, rhs[:, :, None])[:, :m, 0]
    except np.linalg.LinAlgError:
        w = (np.linalg.pinv(K) @ rhs[:, :, None])[:, :m, 0]
    zc = np.where(valid, z, 0.0)
    n_valid = np.maximum(valid.sum(axis=1), 1)
    avg = zc.sum(axis=1) / n_valid
    out = np.sum(w * (zc - avg[:, None]) * valid, axis=1) + avg
    out[empty] = np.nan
    return out


def _as_batch(v: np.ndarray | float, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy()


def ordinary_kriging(
    obs_xy: np.ndarray,
    obs_z: np.ndarray,
    target_xy: np.ndarray,
    a: float,
    c1: float,
    c2: float,
    n_max: int,
    dx_max: float,
) -> float:
    """One ps_kriging call (ordinary kriging, one unbiasedness constraint): the estimate at
    ``target_xy`` (2,) from the ``n_max`` observations ``obs_xy`` (n, 2), ``obs_z`` (n,) nearest
    to it and closer than ``dx_max`` (all of them when ``dx_max`` is 0). The nugget ``c2`` is on
    the observations' diagonal only, so noise is filtered out of an estimate at an observation.
    NaN without observations."""
    obs_xy = np.asarray(obs_xy, dtype=np.float64).reshape(-1, 2)
    d0 = np.hypot(*(obs_xy - np.asarray(target_xy, dtype=np.float64)).T)
    order = np.argsort(d0, kind="stable")[: min(n_max, len(d0))]
    if dx_max != 0:
        order = order[d0[order] < dx_max]
    xy = obs_xy[order]
    h = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    est = _solve_ordinary(
        h[None],
        d0[order][None],
        np.asarray(obs_z, dtype=np.float64)[order][None],
        np.ones((1, len(order)), dtype=bool),
        _as_batch(a, 1),
        _as_batch(c1, 1),
        _as_batch(c2, 1),
    )
    return float(est[0])


def temporal_kriging(
    years: np.ndarray,
    values: np.ndarray,
    a: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
    n_max: int,
    leave_one_out: bool,
) -> np.ndarray:
    """Each row of ``values`` (n_rows, n_epochs) kriged at every epoch of ``years`` (n_epochs,)
    with its own exponential model (``a`` years, ``c1``, ``c2``; (n_rows,) each), as
    ps_scn_filt_krig calls ps_kriging per arc and epoch: the ``n_max`` epochs nearest in time
    (ties in epoch order) and closer than 4 ``a``; with ``leave_one_out`` the epochs at the same
    time are left out (NaN where nothing is left). Returns (n_rows, n_epochs) float64."""
    years = np.asarray(years, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    n_rows, n_ep = vals.shape
    a, c1, c2 = (_as_batch(v, n_rows) for v in (a, c1, c2))
    dx_max = 4.0 * a
    out = np.full((n_rows, n_ep), np.nan)
    for nn in range(n_ep):
        d = np.abs(years - years[nn])
        cand = np.flatnonzero(d != 0) if leave_one_out else np.arange(n_ep)
        order = cand[np.argsort(d[cand], kind="stable")][: min(n_max, cand.size)]
        if order.size == 0:
            continue
        h = np.abs(years[order][:, None] - years[order][None, :])
        d0 = d[order]
        for r0 in range(0, n_rows, _KRIG_CHUNK):
            r = slice(r0, min(r0 + _KRIG_CHUNK, n_rows))
            valid = d0[None, :] < dx_max[r, None]
            nb = valid.shape[0]
            out[r, nn] = _solve_ordinary(
                np.broadcast_to(h, (nb, *h.shape)),
                np.broadcast_to(d0, (nb, d0.size)),
                vals[r][:, order],
                valid,
                a[r],
                c1[r],
                c2[r],
            )
    return out


def spatial_kriging(
    xy: np.ndarray, values: np.ndarray, vario: np.ndarray, n_max: int = 50
) -> np.ndarray:
    """Each column k of ``values`` (n, n_col) kriged at every point ``xy`` (n, 2) m from its
    ``n_max`` nearest points (the point itself included) closer than 4 x its range, with the
    exponential model ``vario[k]`` = (a m, c1, c2), as ps_scn_filt_krig's APS kriging. The
    nugget is left out of the estimate, so it is a filtered value. Returns (n, n_col) float64."""
    xy = np.asarray(xy, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim == 1:
        vals = vals[:, None]
    n, n_col = vals.shape
    out = np.full((n, n_col), np.nan)
    if n == 0:
        return out
    m = min(int(n_max), n)
    dist, idx = cKDTree(xy).query(xy, k=m)
    dist, idx = dist.reshape(n, m), idx.reshape(n, m)
    vario = np.asarray(vario, dtype=np.float64).reshape(n_col, 3)
    for r0 in range(0, n, _KRIG_CHUNK):
        r = slice(r0, min(r0 + _KRIG_CHUNK, n))
        nxy = xy[idx[r]]
        h = np.hypot(
            nxy[:, :, None, 0] - nxy[:, None, :, 0], nxy[:, :, None, 1] - nxy[:, None, :, 1]
        )
        nb = h.shape[0]
        for k in range(n_col):
            a, c1, c2 = vario[k]
            valid = dist[r] < 4.0 * a
            out[r, k] = _solve_ordinary(
                h,
                dist[r],
                vals[idx[r], k],
                valid,
                _as_batch(a, nb),
                _as_batch(c1, nb),
                _as_batch(c2, nb),
            )
    return out


def integrate_arcs(
    edges: np.ndarray, n_points: int, dph: np.ndarray, ref: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares point values whose arc differences (``x[edges[:, 1]] - x[edges[:, 0]]``)
    best fit each column of ``dph`` (n_edges, k), with point ``ref`` held at 0 (StaMPS'
    ``A \\ dph``). Points on no arc, or not connected to ``ref``, get 0. Returns (n_points, k)
    float64 and a mask of the points solved."""
    edges = np.asarray(edges, dtype=np.int64)
    dph = np.asarray(dph, dtype=np.float64)
    n_e = len(edges)
    A = sp.csr_matrix(
        (
            np.r_[-np.ones(n_e), np.ones(n_e)],
            (np.r_[np.arange(n_e), np.arange(n_e)], np.r_[edges[:, 0], edges[:, 1]]),
        ),
        shape=(n_e, n_points),
    )
    _, label = sp.csgraph.connected_components(
        sp.csr_matrix((np.ones(n_e), (edges[:, 0], edges[:, 1])), shape=(n_points, n_points)),
        directed=False,
    )
    solved = (label == label[ref]) & (np.arange(n_points) != ref)
    cols = np.flatnonzero(solved)
    out = np.zeros((n_points, dph.shape[1]))
    if cols.size:
        As = A[:, cols]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", sp.SparseEfficiencyWarning)
            lu = splu((As.T @ As).tocsc())
        out[cols] = lu.solve(np.asarray(As.T @ dph))
    solved[ref] = True
    return out, solved


def arc_model_design(years: np.ndarray) -> np.ndarray:
    """(n, 5) design of ps_scn_filt_krig's per-arc deformation model at ``years``: quadratic,
    annual sine, annual cosine minus 1, constant."""
    y = np.asarray(years, dtype=np.float64)
    return np.column_stack(
        [y**2, y, np.sin(2 * np.pi * y), np.cos(2 * np.pi * y) - 1, np.ones_like(y)]
    )


def quadratic_design(x: np.ndarray, y: np.ndarray, mean_x: float, mean_y: float) -> np.ndarray:
    """(n, 5) design of ps_scn_filt_krig's second-degree surfaces without cross term:
    (x / mean_x)^2, (y / mean_y)^2, x / mean_x, y / mean_y, 1 (a mean of 0 scales by 1)."""
    sx = mean_x if mean_x != 0 and np.isfinite(mean_x) else 1.0
    sy = mean_y if mean_y != 0 and np.isfinite(mean_y) else 1.0
    u = np.asarray(x, dtype=np.float64) / sx
    v = np.asarray(y, dtype=np.float64) / sy
    return np.column_stack([u**2, v**2, u, v, np.ones_like(u)])

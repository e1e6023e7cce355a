"""Unwrapping of the edge phase differences in time (StaMPS ``uw_sb_unwrap_space_time``).

For every edge of the unwrapping network (pairs of grid nodes, see ``unwrap_interp``) the phase
difference between its two nodes is formed in every interferogram. Step 6 then:

1. (``unwrap_la_error_flag``) estimates, per edge, the look-angle-error phase gradient K (rad per
   m of perpendicular baseline) by a periodogram over trial values followed by a weighted linear
   fit, and removes ``K * bperp``;
2. smooths the edge phase in time to predict its unwrapped value:

   - ``3D_FULL`` (and single-reference ``3D``): for each image that is an end of (almost) all
     interferograms, a Gaussian-weighted (``unwrap_time_win`` days) local mean and linear trend in
     time of the complex phase, integrated along time;
   - ``3D_QUICK`` / ``3D_SMALL_DEF``: a least-squares inversion of the network to a phase series
     per image, smoothed with the Gaussian time window, edges noisier than 1.3 rad dropped;
   - ``3D`` / ``3D_NEW`` (multi-reference): as 3D_QUICK, but edges noisier than 1 rad are refitted
     with a smooth model of time found by simulated annealing (``uw_sb_smooth_unwrap``), weighted
     by the inverse covariance of the spatially high-pass filtered phase;
   - ``3D_NO_DEF`` / ``2D``: no smoothing in time;

3. (``unwrap_spatial_cost_func_flag``) compares the time smoothing with a prediction from local
   phase gradients (FFT peak in windows of ``unwrap_gold_n_win`` grid cells, ``gradient_filt``)
   and keeps, per edge, whichever leaves less noise.

``dph_space_uw`` is the wrapped edge phase plus the integer cycles the smoothing predicts (rad);
``dph_noise`` its departure from the smooth model (rad, NaN for edges with no usable statistics).
All arrays are (n_edge, n_ifg); ``day`` in days, ``bperp`` in m, ``unwrap_time_win`` in days.
The arguments carry the StaMPS parameter names (MATLAB's ``time_win``, ``la_flag``,
``prefilt_win`` and ``scf_flag``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numba
import numpy as np
import scipy.fft
from scipy.interpolate import griddata
from scipy.spatial import QhullError

from stamps_python.numerics.matlab import matlab_round_array, wrap
from stamps_python.utils import StampsError, get_logger, progress_bar

ANNEAL_SEED = 2007
_CHUNK_BYTES = 16 * 1024 * 1024  # bytes per block of temporaries (bounds memory)


def design_matrix(ifgday_ix: np.ndarray, n_image: int) -> np.ndarray:
    """Interferogram-by-image matrix: -1 at the first (master) image, +1 at the second."""
    ifgday_ix = np.asarray(ifgday_ix, dtype=np.int64)
    G = np.zeros((len(ifgday_ix), n_image))
    rows = np.arange(len(ifgday_ix))
    G[rows, ifgday_ix[:, 0]] = -1.0
    G[rows, ifgday_ix[:, 1]] = 1.0
    return G


def estimate_arc_gradient(
    dph_sub: np.ndarray, x_sub: np.ndarray, x_range: float, n_trial_wraps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row phase gradient K against ``x_sub`` (e.g. bperp, m) of complex ``dph_sub`` (n, m).

    A periodogram over trial gradients ``pi/4/x_range * k`` (k up to ``8 n_trial_wraps``) gives
    the best trial; it is accepted when its coherence exceeds every value outside its own peak by
    more than 0.1, then refined by a weighted linear fit of the residual phase. Returns K (rad per
    unit of x; 0 where not accepted) and the coherence of the fit (0 where not accepted).
    """
    n_edge = dph_sub.shape[0]
    K = np.zeros(n_edge)
    coh = np.zeros(n_edge)
    step = max(1, _CHUNK_BYTES // (16 * 8 * max(dph_sub.shape[1], 1)))
    for r0 in range(0, n_edge, step):
        K[r0 : r0 + step], coh[r0 : r0 + step] = _arc_gradient_rows(
            dph_sub[r0 : r0 + step], x_sub, x_range, n_trial_wraps
        )
    return K, coh


def _arc_gradient_rows(
    dph_sub: np.ndarray, x_sub: np.ndarray, x_range: float, n_trial_wraps: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`estimate_arc_gradient` on one block of rows."""
    n_edge = dph_sub.shape[0]
    K = np.zeros(n_edge)
    coh = np.zeros(n_edge)
    x_sub = np.asarray(x_sub, dtype=np.float64)
    half = int(np.ceil(8 * n_trial_wraps))
    trial_mult = np.arange(-half, half + 1)
    trial_phase = x_sub / x_range * np.pi / 4
    trial_mat = np.exp(-1j * np.outer(trial_phase, trial_mult))
    weight_sum = np.abs(dph_sub).sum(axis=1)
    coh_trial = np.abs(dph_sub @ trial_mat) / weight_sum[:, None]
    n_trials = coh_trial.shape[1]
    peak = np.argmax(coh_trial, axis=1)
    coh_max = coh_trial[np.arange(n_edge), peak]
    pos = np.arange(n_trials - 1)[None, :]
    dcoh = np.diff(coh_trial, axis=1)
    falling = (dcoh < 0) & (pos < peak[:, None])
    start = np.where(falling.any(axis=1), n_trials - 1 - np.argmax(falling[:, ::-1], axis=1), 0)
    rising = (dcoh > 0) & (pos >= peak[:, None])
    end = np.where(rising.any(axis=1), np.argmax(rising, axis=1), n_trials - 1)
    cols = np.arange(n_trials)[None, :]
    outside = np.where((cols >= start[:, None]) & (cols <= end[:, None]), 0.0, coh_trial)
    accept = coh_max - outside.max(axis=1) > 0.1
    if not np.any(accept):
        return K, coh
    cpx = dph_sub[accept]
    k0 = np.pi / 4 / x_range * trial_mult[peak[accept]]
    resphase = cpx * np.exp(-1j * k0[:, None] * x_sub[None, :])
    offset = resphase.sum(axis=1)
    resphase = np.angle(resphase * np.conj(offset)[:, None])
    w = np.abs(cpx)
    wx = w * x_sub[None, :]
    mopt = np.sum(wx * (w * resphase), axis=1) / np.sum(wx * wx, axis=1)
    k_acc = k0 + mopt
    residual = cpx * np.exp(-1j * k_acc[:, None] * x_sub[None, :])
    K[accept] = k_acc
    coh[accept] = np.abs(residual.sum(axis=1)) / np.abs(residual).sum(axis=1)
    return K, coh


def _look_angle_subset(
    dph_space: np.ndarray,
    G: np.ndarray,
    ifgday_ix: np.ndarray,
    day: np.ndarray,
    bperp: np.ndarray,
    n_trial_wraps: float,
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Interferograms used to estimate K: a daisy chain when available, else all.

    Returns (dph_sub, bperp_sub, bperp_range_sub, n_trial_wraps scaled to the subset).
    """
    log = get_logger()
    bperp_range = float(bperp.max() - bperp.min())
    ix = np.flatnonzero(np.abs(np.diff(ifgday_ix, axis=1)).ravel() == 1)
    if len(ix) >= len(day) - 1:
        log.info("   using sequential daisy chain of interferograms")
        bperp_sub = bperp[ix]
        rng = float(bperp_sub.max() - bperp_sub.min())
        return dph_space[:, ix], bperp_sub, rng, n_trial_wraps * rng / bperp_range
    per_image = np.abs(G).sum(axis=0)
    max_ix = int(np.argmax(per_image))
    if per_image[max_ix] >= len(day) - 2:
        log.info("   using sequential daisy chain of interferograms")
        sel = np.flatnonzero(G[:, max_ix] != 0)
        flip = G[sel, max_ix] > 0  # the common image is the second one: conjugate
        bperp_sub = np.append(np.where(flip, -bperp[sel], bperp[sel]), 0.0)
        slave_ix = ifgday_ix[sel].sum(axis=1) - max_ix
        order = np.argsort(day[np.append(slave_ix, max_ix)], kind="stable")
        bperp_sub = np.diff(bperp_sub[order])
        rng = float(bperp_sub.max() - bperp_sub.min())
        # the chain in date order, the common image (zero phase, mean magnitude) included,
        # then the phase difference of consecutive entries; built column by column
        n_edge = dph_space.shape[0]
        mean_abs = np.zeros(n_edge)
        for c in sel:
            mean_abs += np.abs(dph_space[:, c])
        mean_abs /= len(sel)
        chain = np.empty((n_edge, len(sel) + 1), dtype=np.complex64)
        for pos, o in enumerate(order):
            if o == len(sel):
                chain[:, pos] = mean_abs
            else:
                col = dph_space[:, sel[o]]
                chain[:, pos] = np.conj(col) if flip[o] else col
        dph_sub = np.empty((n_edge, len(sel)), dtype=np.complex64)
        for k in range(len(sel)):
            d = chain[:, k + 1] * np.conj(chain[:, k])
            dph_sub[:, k] = d / np.abs(d)
        return dph_sub, bperp_sub, rng, n_trial_wraps * rng / bperp_range
    return dph_space, bperp, bperp_range, n_trial_wraps


@numba.njit(parallel=True, cache=True)
def _smooth_integrated(
    dph_space: np.ndarray,
    cols: np.ndarray,
    flip: np.ndarray,
    weights: np.ndarray,
    trend0: np.ndarray,
) -> np.ndarray:
    """3D_FULL smoothing kernel: integrated smooth phase (n_edge, n_sub) float32, radians.

    For every edge, the interferograms ``cols`` (date order; ``flip`` conjugates those whose
    common image is the second one) are smoothed at every epoch i1: the weighted mean phasor
    (``weights[i1]``) rotated by the intercept of a weighted linear fit in time of the phases'
    departures from it (``trend0[i1]`` is the intercept row of that least-squares operator).
    The smooth phasors are then integrated along time (first phase, plus wrapped increments).
    """
    n_edge = dph_space.shape[0]
    n_sub = cols.shape[0]
    out = np.empty((n_edge, n_sub), dtype=np.float32)
    two_pi = 2 * np.pi
    for e in numba.prange(n_edge):
        re = np.empty(n_sub)
        im = np.empty(n_sub)
        ang = np.empty(n_sub)
        for k in range(n_sub):
            z = dph_space[e, cols[k]]
            re[k] = z.real
            im[k] = -z.imag if flip[k] else z.imag
            ang[k] = np.arctan2(im[k], re[k])
        acc = 0.0
        prev_r = 0.0
        prev_i = 0.0
        for i1 in range(n_sub):
            sr = 0.0
            si = 0.0
            for k in range(n_sub):
                sr += weights[i1, k] * re[k]
                si += weights[i1, k] * im[k]
            a = np.arctan2(si, sr)
            m0 = 0.0
            for k in range(n_sub):
                d = ang[k] - a + np.pi
                d = d - np.floor(d / two_pi) * two_pi - np.pi
                m0 += trend0[i1, k] * d
            cr = sr * np.cos(m0) - si * np.sin(m0)
            ci = sr * np.sin(m0) + si * np.cos(m0)
            if i1 == 0:
                acc = np.arctan2(ci, cr)
            else:
                acc += np.arctan2(ci * prev_r - cr * prev_i, cr * prev_r + ci * prev_i)
            out[e, i1] = acc
            prev_r = cr
            prev_i = ci
    return out


def _smooth_full(
    dph_space: np.ndarray, G: np.ndarray, ifgday_ix: np.ndarray, day: np.ndarray, time_win: float
) -> np.ndarray:
    """3D_FULL time smoothing: unwrapped smooth edge phase (n_edge, n_ifg) float32, NaN where no
    image qualified as a common end of the interferogram."""
    n_edge, n_ifg = dph_space.shape
    n_image = G.shape[1]
    dph_smooth_ifg = np.full((n_edge, n_ifg), np.nan, dtype=np.float32)
    for i in range(n_image):
        ix = G[:, i] != 0
        if ix.sum() < n_image - 2:
            continue
        ifg_ix = np.flatnonzero(ix)
        sign_ix = -np.sign(G[ifg_ix, i])
        slave_ix = ifgday_ix[ifg_ix].sum(axis=1) - i
        order = np.argsort(day[slave_ix], kind="stable")
        day_sub = day[slave_ix][order]
        n_sub = len(day_sub)
        weights = np.exp(-((day_sub[:, None] - day_sub[None, :]) ** 2) / 2 / time_win**2)
        weights = weights / weights.sum(axis=1, keepdims=True)
        trend0 = np.zeros((n_sub, n_sub))
        if n_sub > 1:
            for i1 in range(n_sub):
                GG = np.column_stack([np.ones(n_sub), day_sub[i1] - day_sub])
                wgg = GG * weights[i1][:, None]
                trend0[i1] = np.linalg.solve(GG.T @ wgg, wgg.T)[0]
        smooth_sub = _smooth_integrated(
            dph_space, ifg_ix[order].astype(np.int64), sign_ix[order] == -1, weights, trend0
        )
        later = np.flatnonzero(slave_ix[order] - i > 0)
        if later.size == 0:
            close = [n_sub - 1]
        else:
            close = [later[0] - 1, later[0]] if later[0] > 0 else [later[0]]
        close_mean = smooth_sub[:, close].astype(np.float64).mean(axis=1)
        smooth_sub -= (close_mean - wrap(close_mean)).astype(np.float32)[:, None]
        # StaMPS applies the date-sorted smooth phase to the interferograms in their stored order;
        # here it is put back in stored order first (identical when the order is by date).
        unsorted = np.empty_like(smooth_sub)
        unsorted[:, order] = smooth_sub
        del smooth_sub
        unsorted[:, sign_ix == -1] *= -1
        already = ~np.isnan(dph_smooth_ifg[0, ifg_ix])
        keep = np.ones(n_sub, dtype=bool)
        if already.any():
            cols = ifg_ix[already]
            std1 = np.std(
                residual_angle(dph_space[:, cols], dph_smooth_ifg[:, cols]), axis=0, ddof=1
            )
            std2 = np.std(residual_angle(dph_space[:, cols], unsorted[:, already]), axis=0, ddof=1)
            keep[np.flatnonzero(already)[std1 < std2]] = False
        dph_smooth_ifg[:, ifg_ix[keep]] = unsorted[:, keep]
    return dph_smooth_ifg


def _row_chunks(n_rows: int, n_cols: int) -> range:
    """Row starts of chunks holding about _CHUNK_BYTES of complex128 values."""
    return range(0, n_rows, max(1, _CHUNK_BYTES // (16 * max(n_cols, 1))))


def residual_angle(dph: np.ndarray, smooth: np.ndarray) -> np.ndarray:
    """``angle(dph * exp(-1i * smooth))`` (float32 radians), computed in row chunks."""
    out = np.empty(dph.shape, dtype=np.float32)
    step = _row_chunks(*dph.shape).step
    for r0 in range(0, dph.shape[0], step):
        sl = slice(r0, r0 + step)
        out[sl] = np.angle(dph[sl] * np.exp(-1j * smooth[sl].astype(np.float64)))
    return out


def edge_phase(ph: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Unit phasor (n_edge, n_ifg) complex64 of node b times conj(node a) for every edge."""
    out = np.empty((len(edges), ph.shape[1]), dtype=np.complex64)
    step = _row_chunks(*out.shape).step
    for r0 in range(0, len(edges), step):
        e = edges[r0 : r0 + step]
        d = ph[e[:, 1]].astype(np.complex128) * np.conj(ph[e[:, 0]])
        with np.errstate(invalid="ignore", divide="ignore"):
            out[r0 : r0 + step] = d / np.abs(d)
    return out


def _gaussian_smoother(day: np.ndarray, time_win: float) -> np.ndarray:
    """Row-normalised Gaussian weights (n_image, n_image) over ``day`` (days)."""
    w = np.exp(-((day[:, None] - day[None, :]) ** 2) / 2 / time_win**2)
    return w / w.sum(axis=1, keepdims=True)


def _series_from_network(
    dph_angle: np.ndarray,
    G: np.ndarray,
    predef_ix: np.ndarray | None,
    predef_values: np.ndarray | None,
) -> np.ndarray:
    """Phase series per image (n_image, n_edge), first image 0, from edge phases (n_edge, n_ifg).

    Without predefined values, the least-squares solution of G[:, 1:]; with them, each edge is
    solved with weight 1.01 on its predefined (unwrapped) values and 0.01 on the others.
    """
    n_edge = dph_angle.shape[0]
    G2 = G[:, 1:]
    series = np.zeros((G.shape[1], n_edge))
    if predef_ix is None:
        series[1:] = np.linalg.pinv(G2) @ dph_angle.T  # the least-squares (minimum-norm) solution
        return series
    values = dph_angle.astype(np.float64)
    values[predef_ix] = predef_values
    w = predef_ix.astype(np.float64) + 0.01
    step = max(1, _CHUNK_BYTES // (8 * G2.shape[1] ** 2 + 1))
    for e0 in range(0, n_edge, step):
        we = w[e0 : e0 + step]
        A = np.einsum("ki,ek,kj->eij", G2, we, G2)
        b = np.einsum("ki,ek,ek->ei", G2, we, values[e0 : e0 + step])
        series[1:, e0 : e0 + step] = np.linalg.solve(A, b[..., None])[..., 0].T
    return series


def _ifg_from_series(G: np.ndarray, series: np.ndarray) -> np.ndarray:
    """Interferogram phase (n_edge, n_ifg) float32 of image phase series (n_image, n_edge)."""
    n_edge = series.shape[1]
    out = np.empty((n_edge, G.shape[0]), dtype=np.float32)
    step = _row_chunks(n_edge, G.shape[0]).step
    for r0 in range(0, n_edge, step):
        out[r0 : r0 + step] = (G @ series[:, r0 : r0 + step]).T
    return out


def _model_steps(models: np.ndarray, x1: np.ndarray, n: int) -> np.ndarray:
    """Smooth phase series (..., n) of annealing models (..., 5) at times ``x1`` (n,)."""
    m = [models[..., k, None] for k in range(5)]
    return (
        m[0] * x1
        + m[1] * n / 2 * np.sin(2 * np.pi / n * x1 - m[2])
        + m[3] * n / 2 * np.sin(4 * np.pi / n * x1 - m[4])
    )


def _anneal_cost(
    models: np.ndarray,
    dph: np.ndarray,
    G: np.ndarray,
    W: np.ndarray,
    x1: np.ndarray,
    abs_first: bool,
) -> np.ndarray:
    """Annealing cost of models (B, c, 5) for edge phases ``dph`` (B, n_ifg): weighted distance of
    the phase residual to the nearest whole cycle plus a roughness penalty.

    ``abs_first`` reproduces StaMPS' initial sampling, which weights the absolute residuals; the
    annealing steps take the absolute value after weighting.
    """
    n = G.shape[1]
    steps = _model_steps(models, x1, n)
    resid = (dph[:, None, :] - steps @ G.T) / 2 / np.pi
    resid = resid - matlab_round_array(resid)
    if abs_first:
        misfit = (np.abs(resid) @ W.T).sum(axis=-1) * 2 * np.pi
    else:
        misfit = np.abs(resid @ W.T).sum(axis=-1) * 2 * np.pi
    return misfit + np.abs(np.diff(steps, axis=-1)).sum(axis=-1) / 5


def _boltzmann(cost: np.ndarray, valid: np.ndarray, temp: np.ndarray) -> np.ndarray:
    """Sampling probabilities exp(-cost/temp), normalised per row, 0 where not ``valid``."""
    toobig = 708.3964185322641
    scaled = np.where(valid, cost / temp[:, None], -np.inf)
    mx = scaled.max(axis=1, keepdims=True)
    big = mx > toobig
    scale = np.where(big, mx / toobig, 1.0)
    pdf = np.exp(-np.where(valid, scaled, np.inf) / scale)
    pdf = pdf / pdf.max(axis=1, keepdims=True)
    pdf = np.where(big, pdf**scale, pdf)
    return pdf / pdf.sum(axis=1, keepdims=True)


def smooth_unwrap_anneal(
    dph: np.ndarray,
    G: np.ndarray,
    W: np.ndarray,
    x1: np.ndarray,
    rng: np.random.Generator,
    runs: int = 15,
    scale: int = 1,
    grid: int = 4,
) -> np.ndarray:
    """StaMPS ``uw_sb_smooth_unwrap`` for a batch of edges at once.

    Fits, by simulated annealing, a smooth phase series of time (linear rate plus two sinusoids)
    to each edge's wrapped phases ``dph`` (B, n_ifg) radians, minimising the whole-cycle misfit
    weighted by ``W`` plus a roughness penalty. ``x1`` (n_image,) are the image times scaled to
    0..n_image-1. Returns the series (n_image, B) in radians. Random draws come from ``rng``.
    """
    B = dph.shape[0]
    n = G.shape[1]
    bounds = np.column_stack(
        [-np.pi * np.array([0.5, 0.25, 1, 0.25, 1]), np.pi * np.array([0.5, 0.25, 1, 0.25, 1])]
    )
    p = bounds.shape[0]
    lo, hi = bounds[:, 0], bounds[:, 1]
    vals = 2.0 ** -np.arange(1, grid + 1)
    vals = np.concatenate([vals, [0.0], -vals])
    delta = 0.5 * np.abs(lo - hi)
    ts = np.linspace(2, 3, runs)
    counts = scale * np.array([1, 2, 4, 6, 10, 6, 4, 2, 1])
    best_cost = np.full(B, np.inf)
    best_model = np.zeros((B, p))
    rows = np.arange(B)
    for k in range(runs):
        trial = rng.random((B, 100, p)) * (hi - lo) + lo
        cost = _anneal_cost(trial, dph, G, W, x1, abs_first=True)
        tc = np.log10(cost.mean(axis=1)) - ts[k]
        model = trial[rows, np.argmin(cost, axis=1)].copy()
        temps = 10.0 ** np.linspace(tc + 1, tc - 1, 9)
        schedule = np.repeat(np.arange(9), counts)
        run_cost = np.full(B, np.inf)
        run_model = model.copy()
        for level in schedule:
            temp = temps[level]
            for x in range(p):
                cand = model[:, None, :].repeat(len(vals), axis=1)
                cand[:, :, x] = model[:, x, None] + vals * delta[x]
                valid = (cand[:, :, x] <= hi[x]) & (cand[:, :, x] >= lo[x])
                c = _anneal_cost(cand, dph, G, W, x1, abs_first=False)
                pdf = _boltzmann(c, valid, temp)
                u = rng.random(B)
                pick = np.argmax((np.cumsum(pdf, axis=1) >= u[:, None]) & (pdf > 0), axis=1)
                model[:, x] = cand[rows, pick, x]
                step_cost = c[rows, pick]
            better = step_cost < run_cost
            run_cost = np.where(better, step_cost, run_cost)
            run_model[better] = model[better]
        improved = run_cost < best_cost
        best_cost = np.where(improved, run_cost, best_cost)
        best_model[improved] = run_model[improved]
    return _model_steps(best_model, x1, n).T


def gradient_filt(
    ph: np.ndarray, n_win: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dominant local phase gradient of a complex grid (StaMPS ``gradient_filt``).

    Windows of ``n_win`` cells every ``n_win/4`` cells; the FFT peak of each gives the gradient
    along rows (``ifreq``) and columns (``jfreq``) in rad per cell, ``Hmag`` the peak over the mean
    spectrum. Windows with fewer than 6 non-zero cells are NaN. Returned flat, windows in row-major
    order, with ``ij`` (n_windows, 2) the 0-based (row, column) window centres. ``ifreq`` and
    ``jfreq`` are the phase increase per cell down the rows and along the columns.
    """
    ph = np.array(ph, dtype=np.complex128)
    ph[np.isnan(ph)] = 0
    n_i, n_j = ph.shape
    n_inc = n_win // 4
    n_wi = -(-n_i // n_inc) - 3
    n_wj = -(-n_j // n_inc) - 3
    if n_wi < 1 or n_wj < 1:
        empty = np.zeros(0)
        return empty, empty, np.zeros((0, 2)), empty
    si = np.arange(n_wi) * n_inc
    si = np.where(si + n_win > n_i, n_i - n_win, si)
    sj = np.arange(n_wj) * n_inc
    sj = np.where(sj + n_win > n_j, n_j - n_win, sj)
    off = np.arange(n_win)
    bits = ph[(si[:, None] + off)[:, None, :, None], (sj[:, None] + off)[None, :, None, :]]
    spec = np.abs(scipy.fft.fft2(bits, axes=(-2, -1)))
    flat_cm = np.swapaxes(spec, -1, -2).reshape(n_wi, n_wj, -1)
    peak = np.argmax(flat_cm, axis=-1)
    hmag = flat_cm.max(axis=-1) / flat_cm.mean(axis=-1)
    row1 = (peak % n_win + 1) % n_win
    col1 = peak // n_win + 1
    half = n_win // 2
    row1 = np.mod(row1 + half, n_win)
    row1[row1 == 0] = n_win
    col1 = np.mod(col1 + half, n_win)
    col1[col1 == 0] = n_win
    ifreq = (row1 - half - 1) * 2 * np.pi / n_win
    # StaMPS negates the column frequency ("fft is bottom to top"), but both FFT axes share one
    # sign convention, so its jfreq is minus the phase gradient along columns and its spatial
    # prediction diff_i*ifreq + diff_j*jfreq is wrong along columns. Fixed: jfreq is the gradient.
    jfreq = (col1 - half - 1) * 2 * np.pi / n_win
    sparse = (bits != 0).sum(axis=(-2, -1)) < 6
    for arr in (hmag, ifreq, jfreq):
        arr[sparse] = np.nan
    ci = si + (n_win - 1) / 2
    cj = sj + (n_win - 1) / 2
    ij = np.column_stack([np.repeat(ci, n_wj), np.tile(cj, n_wi)])
    return ifreq.astype(np.float64).ravel(), jfreq.astype(np.float64).ravel(), ij, hmag.ravel()


def _linear_interp(points: np.ndarray, values: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Linear (Delaunay) interpolation, NaN outside the hull or when the points are degenerate."""
    try:
        return griddata(points, values, targets, method="linear")
    except (QhullError, ValueError):
        return np.full(len(targets), np.nan)


def _gradient_prediction(
    uw_grid: dict[str, Any], edges: np.ndarray, prefilt_win: int, progress: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Edge phase predicted from local phase gradients, its spread, and the node gradients."""

    nzix = uw_grid["nzix"]
    ij = np.asarray(uw_grid["ij"], dtype=np.float64)
    ph = uw_grid["ph"]
    n_nodes, n_ifg = ph.shape
    nz_i, nz_j = ij[:, 0].astype(np.int64), ij[:, 1].astype(np.int64)
    ifreq_ij = np.full((n_nodes, n_ifg), np.nan)
    jfreq_ij = np.full((n_nodes, n_ifg), np.nan)
    ifgw = np.zeros(nzix.shape, dtype=np.complex128)
    for i in progress_bar(
        range(n_ifg), desc="phase gradients", unit="ifg", hide=not progress, leave=False
    ):
        ifgw[nz_i, nz_j] = ph[:, i]
        ifreq, jfreq, grad_ij, hmag = gradient_filt(ifgw, prefilt_win)
        with np.errstate(invalid="ignore"):
            ok = ~np.isnan(ifreq) & (hmag / (np.abs(ifreq) + 1) > 3)
        if ok.sum() > 2:
            ifreq_ij[:, i] = _linear_interp(grad_ij[ok][:, ::-1], ifreq[ok], ij[:, ::-1])
        with np.errstate(invalid="ignore"):
            ok = ~np.isnan(jfreq) & (hmag / (np.abs(jfreq) + 1) > 3)
        if ok.sum() > 2:
            jfreq_ij[:, i] = _linear_interp(grad_ij[ok][:, ::-1], jfreq[ok], ij[:, ::-1])
    a, b = edges[:, 0], edges[:, 1]
    diff_i = (ij[b, 0] - ij[a, 0])[:, None]
    diff_j = (ij[b, 1] - ij[a, 1])[:, None]
    smooth = diff_i * (ifreq_ij[a] + ifreq_ij[b]) / 2 + diff_j * (jfreq_ij[a] + jfreq_ij[b]) / 2
    spread = (ifreq_ij[b] - ifreq_ij[a]) + (jfreq_ij[b] - jfreq_ij[a])
    return smooth, spread, ifreq_ij, jfreq_ij


def uw_sb_unwrap_space_time(
    day: np.ndarray,
    ifgday_ix: np.ndarray,
    unwrap_method: str,
    unwrap_time_win: float,
    unwrap_la_error_flag: bool,
    bperp: np.ndarray,
    n_trial_wraps: float,
    unwrap_gold_n_win: int,
    unwrap_spatial_cost_func_flag: bool,
    uw_grid: dict[str, Any],
    uw_interp: dict[str, Any],
    seed: int = ANNEAL_SEED,
    progress: bool = True,
) -> dict[str, Any]:
    """Smooth and unwrap the edge phase differences in time (StaMPS ``uw_sb_unwrap_space_time``).

    ``day`` (n_image,) days relative to the master, ``ifgday_ix`` (n_ifg, 2) 0-based first/second
    image of each interferogram, ``bperp`` (n_ifg,) m, ``unwrap_time_win`` days (Gaussian time
    smoothing), ``n_trial_wraps`` cycles (look-angle search range, ``unwrap_la_error_flag``),
    ``unwrap_gold_n_win`` grid cells (phase-gradient windows, ``unwrap_spatial_cost_func_flag``);
    see :class:`~stamps_python.steps.ps_unwrap.UnwrapOptions`. ``uw_grid`` / ``uw_interp`` the
    workspaces of :func:`~stamps_python.numerics.unwrap_grid.uw_grid_wrapped` and
    :func:`~stamps_python.numerics.unwrap_interp.uw_interp`. ``seed`` seeds the annealing of the
    multi-reference ``3D`` method. Returns the ``uw_space_time`` workspace (``dph_space_uw``,
    ``dph_noise``, ``G``, ``spread``, ``ifreq_ij``, ``jfreq_ij``, ``shaky_ix``, ``predef_ix``,
    ``K``), arrays (n_edge, n_ifg) in radians.
    """
    log = get_logger()
    method = unwrap_method.upper()
    known = ("2D", "3D_NO_DEF", "3D_FULL", "3D", "3D_NEW", "3D_QUICK", "3D_SMALL_DEF")
    if method not in known:
        raise StampsError(
            f"parameter unwrap_method: '{unwrap_method}' is not one of {', '.join(known)}"
        )
    day = np.asarray(day, dtype=np.float64).ravel()
    ifgday_ix = np.asarray(ifgday_ix, dtype=np.int64).copy()
    bperp = np.asarray(bperp, dtype=np.float64).ravel()
    edges = np.asarray(uw_interp["edgs"], dtype=np.int64)[:, 1:3]
    ph = uw_grid["ph"]

    dph_space = edge_phase(ph, edges)
    predef = uw_grid.get("ph_uw_predef")
    predef_ix = None
    predef_values = None
    if predef is not None:
        dph_predef = predef[edges[:, 1]].astype(np.float64) - predef[edges[:, 0]]
        predef_ix = ~np.isnan(dph_predef)
        predef_values = dph_predef[predef_ix]

    G = design_matrix(ifgday_ix, len(day))
    used = np.abs(G).sum(axis=0) != 0
    day = day[used]
    G = G[:, used]
    new_index = np.cumsum(used) - 1
    ifgday_ix = new_index[ifgday_ix]
    n_image = G.shape[1]

    K = np.zeros(len(dph_space))
    if unwrap_la_error_flag and np.ptp(bperp) == 0:
        log.warning("   perpendicular baselines do not vary: look angle error not estimated")
    elif unwrap_la_error_flag:
        log.info("   Estimating look angle error")
        dph_sub, bperp_sub, range_sub, ntw = _look_angle_subset(
            dph_space, G, ifgday_ix, day, bperp, n_trial_wraps
        )
        if range_sub > 0 and np.isfinite(ntw):
            K, coh = estimate_arc_gradient(dph_sub, bperp_sub, range_sub, ntw)
            K[coh < 0.31] = 0
        else:
            log.warning(
                "   baselines of the daisy chain do not vary: look angle error not estimated"
            )
        del dph_sub
        for j in range(dph_space.shape[1]):
            dph_space[:, j] *= np.exp(-1j * K * bperp[j]).astype(np.complex64)
        if predef_ix is not None:
            rows, cols = np.nonzero(predef_ix)
            predef_values = predef_values - K[rows] * bperp[cols]

    def add_k(values: np.ndarray) -> np.ndarray:
        for j in range(values.shape[1]):
            values[:, j] += (K * bperp[j]).astype(values.dtype)
        return values

    spread = np.zeros(dph_space.shape, dtype=np.float32)
    out: dict[str, Any] = {"G": G, "K": K.astype(np.float32), "predef_ix": predef_ix}
    if method in ("2D", "3D_NO_DEF"):
        dph_noise = np.angle(dph_space).astype(np.float32)
        out.update(
            dph_space_uw=add_k(dph_noise.copy()),
            spread=spread,
            dph_noise=None if method == "2D" else dph_noise,
            shaky_ix=None,
            ifreq_ij=None,
            jfreq_ij=None,
        )
        return out

    log.info("   Smoothing in time")
    if method == "3D_FULL":
        dph_smooth_ifg = _smooth_full(dph_space, G, ifgday_ix, day, unwrap_time_win)
        dph_noise = residual_angle(dph_space, dph_smooth_ifg)
        with np.errstate(invalid="ignore"):
            dph_noise[np.std(dph_noise, axis=1, ddof=1) > 1.2] = np.nan
    else:
        x = (day - day[0]) * (n_image - 1) / (day[-1] - day[0])
        series = _series_from_network(np.angle(dph_space), G, predef_ix, predef_values)
        smooth_series = _gaussian_smoother(day, unwrap_time_win) @ series
        dph_smooth_ifg = _ifg_from_series(G, smooth_series)
        dph_noise = residual_angle(dph_space, dph_smooth_ifg)
        if method in ("3D_SMALL_DEF", "3D_QUICK"):
            with np.errstate(invalid="ignore"):
                noisy = np.std(dph_noise, axis=1, ddof=1) > 1.3
            log.info("   %d edges with high std dev in time", int(noisy.sum()))
            dph_noise[noisy] = np.nan
        else:
            lowpass = uw_grid.get("ph_lowpass")
            if lowpass is None:
                raise StampsError("unwrap_method 3D needs the low-pass filtered grid (ph_lowpass)")
            ph_noise = np.angle(ph * np.conj(lowpass))
            dph_noise_sf = ph_noise[edges[:, 1]].astype(np.float64) - ph_noise[edges[:, 0]]
            covm = np.cov(dph_noise_sf, rowvar=False)
            del dph_noise_sf, ph_noise
            try:
                W = np.linalg.cholesky(np.linalg.inv(covm)).T
            except np.linalg.LinAlgError:
                W = np.diag(1 / np.sqrt(np.diag(covm)))
            with np.errstate(invalid="ignore"):
                not_small = np.flatnonzero(np.std(dph_noise, axis=1, ddof=1) > 1)
            log.info("   Performing complex smoothing on %d edges", len(not_small))
            rng = np.random.default_rng(seed)
            for s0, fit in _anneal_edges(dph_space, not_small, G, W, x, rng, progress):
                smooth_series[:, not_small[s0 : s0 + fit.shape[1]]] = fit
            dph_smooth_ifg = _ifg_from_series(G, smooth_series)
            dph_noise = residual_angle(dph_space, dph_smooth_ifg)
    dph_space_uw = add_k(dph_smooth_ifg + dph_noise)
    del dph_smooth_ifg

    shaky_ix = None
    ifreq_ij = jfreq_ij = None
    if unwrap_spatial_cost_func_flag:
        log.info("   Calculating local phase gradients")
        smooth2, spread2, ifreq_ij, jfreq_ij = _gradient_prediction(
            uw_grid, edges, unwrap_gold_n_win, progress
        )
        with np.errstate(invalid="ignore"):
            std_noise = np.std(dph_noise, axis=1, ddof=1)
            dph_noise2 = wrap(dph_space_uw - smooth2)
            std_noise2 = np.std(dph_noise2, axis=1, ddof=1)
            dph_noise2[std_noise2 > 1.3] = np.nan
            shaky_ix = np.isnan(std_noise) | (std_noise > std_noise2)
        log.info(
            "   %d arcs smoothed in time, %d in space", int((~shaky_ix).sum()), int(shaky_ix.sum())
        )
        dph_noise[shaky_ix] = dph_noise2[shaky_ix]
        dph_space_uw[shaky_ix] = smooth2[shaky_ix] + dph_noise2[shaky_ix]
        spread[shaky_ix] = spread2[shaky_ix]
    out.update(
        dph_space_uw=dph_space_uw.astype(np.float32, copy=False),
        dph_noise=dph_noise.astype(np.float32, copy=False),
        spread=spread,
        shaky_ix=shaky_ix,
        ifreq_ij=None if ifreq_ij is None else ifreq_ij.astype(np.float32),
        jfreq_ij=None if jfreq_ij is None else jfreq_ij.astype(np.float32),
    )
    return out


def _anneal_edges(
    dph_space: np.ndarray,
    edges_ix: np.ndarray,
    G: np.ndarray,
    W: np.ndarray,
    x: np.ndarray,
    rng: np.random.Generator,
    progress: bool,
) -> Iterator[tuple[int, np.ndarray]]:
    """Annealing fits (n_image, batch) of edges ``edges_ix``, batch by batch (start, fit)."""

    per_edge = 9 * (G.shape[0] + G.shape[1]) * 8 * 4
    batch = max(1, min(2048, _CHUNK_BYTES // per_edge))
    for s0 in progress_bar(
        range(0, len(edges_ix), batch),
        desc="annealing",
        unit="batch",
        hide=not progress or len(edges_ix) <= batch,
        leave=False,
    ):
        sel = edges_ix[s0 : s0 + batch]
        yield s0, smooth_unwrap_anneal(np.angle(dph_space[sel]).astype(np.float64), G, W, x, rng)

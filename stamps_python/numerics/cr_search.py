"""Corner-reflector InSAR without unwrapping (Fan, Wang, Zhang, Zheng 2015, Geomatics and
Information Science of Wuhan University 40(6)): pure functions behind ``cr_insar``.

Phase of a CR relative to the reference CR in interferogram m = (a, b) (date a before date b,
``conj(SLC_a) * SLC_b``, so that the phase grows with motion toward the satellite)::

    dphi_m = A_m v + B_m dh + nonlinear + atmosphere + noise      (wrapped, rad)
    A_m = 4 pi / lambda * (t_b - t_a) / 1000                      (rad per mm/yr, t in years)
    B_m = -4 pi / lambda * (Bperp_b - Bperp_a) / (R sin(inc))     (rad per m, ISCE Bperp sign)

Every model coefficient is a per-date coefficient differenced over the pair
(:func:`date_coefficients`, :func:`pair_values`). The search maximises the temporal coherence
``gamma(v, dh) = |mean_m exp(j (dphi_m - A_m v - B_m dh))|`` over a grid, then refines it
locally (:func:`coherence_search`); the residual phase gives the nonlinear motion per date by
least squares on the pair network (:func:`network_solve`). The two baselines the paper compares
against are :func:`unwrap_in_time` (least squares on phase unwrapped in time) and
:func:`periodogram_lowpass` (2-D periodogram on the grid, nonlinear part by a temporal low-pass
filter). Units: v in mm/yr, dh in m, phases in rad, times in days unless stated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from stamps_python.numerics.sb_network import network_components
from stamps_python.utils import StampsError

DAYS_PER_YEAR = 365.25
ZOOM_POINTS = 11  # nodes per axis of each refinement grid
ZOOM_LEVELS = 4  # each level divides the grid step by (ZOOM_POINTS - 1) / 2
STEPS_PER_FRINGE = 8  # default grid: this many nodes per fringe of the widest coefficient spread
_MAX_NAMED = 10


def wrap(phase: np.ndarray) -> np.ndarray:
    """Phase wrapped to [-pi, pi) (rad)."""
    return (np.asarray(phase) + np.pi) % (2 * np.pi) - np.pi


def mm_per_rad(wavelength_m: float) -> float:
    """LOS displacement (mm) of one radian of interferometric phase: lambda / (4 pi) * 1000."""
    return wavelength_m * 1000.0 / (4 * np.pi)


# --------------------------------------------------------------------------------------------
# the network


def network_pairs(kind: str, n_dates: int, ref_ix: int) -> np.ndarray:
    """(P, 2) 0-based date indices of a ``single`` reference network (reference first, so that
    the free phase offset of the coherence is the reference date's) or of ``all`` pairs
    (earlier date first)."""
    if kind == "single":
        others = np.array([k for k in range(n_dates) if k != ref_ix], dtype=np.int64)
        return np.column_stack([np.full(others.size, ref_ix), others]).astype(np.int64)
    if kind == "all":
        i, j = np.triu_indices(n_dates, 1)
        return np.column_stack([i, j]).astype(np.int64)
    raise StampsError(f"--network {kind}: choose single, all or sb")


def pair_incidence(pairs: np.ndarray, n_dates: int) -> np.ndarray:
    """(P, n_dates) matrix D with -1 at each pair's first date and +1 at its second: pair
    values = D @ date values."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    out = np.zeros((pairs.shape[0], n_dates))
    rows = np.arange(pairs.shape[0])
    out[rows, pairs[:, 0]] = -1.0
    out[rows, pairs[:, 1]] = 1.0
    return out


def pair_values(date_values: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Second date minus first date of every pair, along the last axis of ``date_values``."""
    date_values = np.asarray(date_values)
    return date_values[..., pairs[:, 1]] - date_values[..., pairs[:, 0]]


def _join(names: Sequence[str]) -> str:
    names = list(names)
    if len(names) > _MAX_NAMED:
        return ", ".join(names[:_MAX_NAMED]) + f" and {len(names) - _MAX_NAMED} more"
    return ", ".join(names)


def check_network(pairs: np.ndarray, dates: Sequence[str], ref_ix: int) -> None:
    """A StampsError naming the dates the pair network does not connect to the reference date
    (the least-squares solution per date would be rank deficient)."""
    comps = network_components(len(dates), pairs)
    if len(comps) <= 1:
        return
    main = set(next(c for c in comps if ref_ix in c).tolist())
    lost = [dates[k] for k in range(len(dates)) if k not in main]
    verb = "is" if len(lost) == 1 else "are"
    raise StampsError(
        f"pair network not connected: {_join(lost)} {verb} not linked to the reference date "
        f"{dates[ref_ix]} by any chain of pairs (the per-date solution is rank deficient; add "
        "pairs or use --network all)"
    )


# --------------------------------------------------------------------------------------------
# model coefficients


def date_coefficients(
    wavelength_m: float,
    days: np.ndarray,
    bperp_m: np.ndarray,
    slant_range_m: np.ndarray,
    inc_rad: np.ndarray,
    ref_ix: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-date model coefficients relative to the reference date ``ref_ix``.

    ``days`` (N,) acquisition days, ``bperp_m`` (M, N) or (N,) ISCE-signed perpendicular
    baselines, ``slant_range_m`` and ``inc_rad`` (M,) at each CR. Returns ``a`` (N,) rad per
    mm/yr and ``b`` (M, N) rad per m: the phase of date k minus the reference date's is
    ``a_k v + b_k dh``.
    """
    days = np.asarray(days, dtype=np.float64)
    k4 = 4 * np.pi / wavelength_m
    a = k4 * (days - days[ref_ix]) / DAYS_PER_YEAR / 1000.0
    bperp = np.atleast_2d(np.asarray(bperp_m, dtype=np.float64))
    bperp = bperp - bperp[:, [ref_ix]]
    denom = np.asarray(slant_range_m, dtype=np.float64) * np.sin(np.asarray(inc_rad, np.float64))
    b = -k4 * bperp / np.atleast_1d(denom)[:, None]
    return a, b


# --------------------------------------------------------------------------------------------
# the coherence search


@dataclass
class CoherenceFit:
    """Result of :func:`coherence_search` for one CR.

    ``v`` (mm/yr), ``dh`` (m) and ``gamma`` at the refined maximum, ``offset`` (rad) the phase
    of the mean residual phasor there; ``grid_v``, ``grid_dh``, ``grid_gamma`` the best grid
    node (the classical periodogram); ``second_ratio`` the height of the best other local
    maximum of the grid surface over ``gamma`` (1 = ambiguous), at ``second_v``,
    ``second_dh``; ``border`` names the search bounds the maximum lies on ('' if none);
    ``sigma_v``, ``sigma_dh`` 1-sigma uncertainties; ``v_grid``, ``dh_grid``, ``surface``
    (len(v_grid), len(dh_grid)) the coherence on the grid.
    """

    v: float
    dh: float
    gamma: float
    offset: float
    grid_v: float
    grid_dh: float
    grid_gamma: float
    second_ratio: float
    second_v: float
    second_dh: float
    border: str
    sigma_v: float
    sigma_dh: float
    v_grid: np.ndarray
    dh_grid: np.ndarray
    surface: np.ndarray


def auto_step(coef: np.ndarray) -> float:
    """Grid step (unit of the parameter) giving STEPS_PER_FRINGE nodes per fringe of the
    widest spread of the pair coefficients ``coef`` (rad per unit); inf if they are all equal."""
    spread = float(np.ptp(coef)) if np.size(coef) else 0.0
    if spread <= 0:
        return float("inf")
    return 2 * np.pi / spread / STEPS_PER_FRINGE


def _axis(lo: float, hi: float, step: float) -> np.ndarray:
    if not np.isfinite(step) or hi <= lo:
        return np.array([0.5 * (lo + hi)])
    n = max(2, int(np.ceil((hi - lo) / step - 1e-9)) + 1)
    return np.linspace(lo, hi, n)


def coherence_surface(
    phase: np.ndarray, a: np.ndarray, b: np.ndarray, v: np.ndarray, dh: np.ndarray
) -> np.ndarray:
    """Complex mean residual phasor ``mean_m exp(j (phase_m - a_m v - b_m dh))`` on the grid
    ``v`` x ``dh``: (len(v), len(dh)); its modulus is the temporal coherence."""
    ev = np.exp(1j * (phase[None, :] - np.outer(v, a)))
    eh = np.exp(-1j * np.outer(dh, b))
    return (ev @ eh.T) / phase.size


def _second_peak(surface: np.ndarray, iv: int, ih: int) -> tuple[float, int, int]:
    """Highest local maximum of ``surface`` at least two nodes from (iv, ih), and where."""
    if surface.size < 4:
        return 0.0, iv, ih
    peaks = surface == ndimage.maximum_filter(surface, size=3, mode="nearest")
    jv, jh = np.nonzero(peaks)
    far = np.maximum(np.abs(jv - iv), np.abs(jh - ih)) >= 2
    if not far.any():
        return 0.0, iv, ih
    k = int(np.argmax(surface[jv[far], jh[far]]))
    return float(surface[jv[far][k], jh[far][k]]), int(jv[far][k]), int(jh[far][k])


def fit_uncertainty(
    resid: np.ndarray, a: np.ndarray, b: np.ndarray, incidence: np.ndarray | None = None
) -> tuple[float, float]:
    """1-sigma uncertainty of (v, dh) from the residual pair phases ``resid`` (rad).

    Near its maximum the coherence is the least-squares fit of ``[a, b, 1]`` (the 1 is the free
    phase offset of the modulus). The pair phases are differences of per-date phases
    (``incidence`` D, (P, N); None: independent pairs), so their noise has covariance
    s^2 D D^T; s^2 is estimated from the residuals, E[r^T r] = s^2 trace((I - H) D D^T) with H
    the hat matrix, and the estimate's covariance is the sandwich
    s^2 (G^T G)^-1 G^T D D^T G (G^T G)^-1.
    """
    g = np.column_stack([a, b, np.ones_like(a)])
    n_par = g.shape[1]
    dd = np.eye(a.size) if incidence is None else incidence @ incidence.T
    gtg_inv = np.linalg.pinv(g.T @ g)
    hat = g @ gtg_inv @ g.T
    dof = float(np.trace((np.eye(a.size) - hat) @ dd))
    if dof <= 1e-9 or a.size <= n_par:
        return float("nan"), float("nan")
    s2 = float(resid @ resid) / dof
    cov = s2 * gtg_inv @ g.T @ dd @ g @ gtg_inv
    return float(np.sqrt(max(cov[0, 0], 0.0))), float(np.sqrt(max(cov[1, 1], 0.0)))


def coherence_search(
    phase: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    v_range: tuple[float, float],
    dh_range: tuple[float, float],
    v_step: float | None = None,
    dh_step: float | None = None,
    incidence: np.ndarray | None = None,
) -> CoherenceFit:
    """Maximise the temporal coherence of one CR over v in ``v_range`` (mm/yr) and dh in
    ``dh_range`` (m).

    ``phase`` (P,) wrapped pair phases relative to the reference CR, ``a``/``b`` (P,) pair
    coefficients (rad per mm/yr, rad per m). Steps default to :func:`auto_step`. The best grid
    node is refined ZOOM_LEVELS times on ZOOM_POINTS x ZOOM_POINTS grids spanning +-1 step of
    the previous level (final step: grid step / 5^4 = step / 625), kept within the bounds.
    """
    phase = np.asarray(phase, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    sv = auto_step(a) if v_step is None else float(v_step)
    sh = auto_step(b) if dh_step is None else float(dh_step)
    v_grid = _axis(*v_range, sv)
    dh_grid = _axis(*dh_range, sh)
    surf = np.abs(coherence_surface(phase, a, b, v_grid, dh_grid))
    iv, ih = np.unravel_index(int(np.argmax(surf)), surf.shape)
    border = []
    if v_grid.size > 1 and iv in (0, v_grid.size - 1):
        border.append("v min" if iv == 0 else "v max")
    if dh_grid.size > 1 and ih in (0, dh_grid.size - 1):
        border.append("dh min" if ih == 0 else "dh max")
    second, jv, jh = _second_peak(surf, int(iv), int(ih))
    v0, h0 = float(v_grid[iv]), float(dh_grid[ih])
    dv = float(v_grid[1] - v_grid[0]) if v_grid.size > 1 else 0.0
    dhs = float(dh_grid[1] - dh_grid[0]) if dh_grid.size > 1 else 0.0
    best_v, best_h = v0, h0
    for _ in range(ZOOM_LEVELS):
        vz = np.clip(np.linspace(best_v - dv, best_v + dv, ZOOM_POINTS), *v_range)
        hz = np.clip(np.linspace(best_h - dhs, best_h + dhs, ZOOM_POINTS), *dh_range)
        zs = np.abs(coherence_surface(phase, a, b, vz, hz))
        kv, kh = np.unravel_index(int(np.argmax(zs)), zs.shape)
        best_v, best_h = float(vz[kv]), float(hz[kh])
        dv *= 2.0 / (ZOOM_POINTS - 1)
        dhs *= 2.0 / (ZOOM_POINTS - 1)
    peak = coherence_surface(phase, a, b, np.array([best_v]), np.array([best_h]))[0, 0]
    gamma, offset = float(np.abs(peak)), float(np.angle(peak))
    resid = wrap(phase - a * best_v - b * best_h - offset)
    sig_v, sig_h = fit_uncertainty(resid, a, b, incidence)
    return CoherenceFit(
        v=best_v, dh=best_h, gamma=gamma, offset=offset, grid_v=v0, grid_dh=h0,
        grid_gamma=float(surf[iv, ih]), second_ratio=second / gamma if gamma > 0 else 0.0,
        second_v=float(v_grid[jv]), second_dh=float(dh_grid[jh]), border=", ".join(border),
        sigma_v=sig_v, sigma_dh=sig_h, v_grid=v_grid, dh_grid=dh_grid,
        surface=surf.astype(np.float32),
    )  # fmt: skip


def velocity_ambiguity(wavelength_m: float, days: np.ndarray) -> float:
    """Period (mm/yr) of the coherence in v when every date difference is a multiple of the
    greatest common divisor of the day differences: lambda / (2 T0); inf for one date."""
    d = np.unique(np.round(np.asarray(days, dtype=np.float64)).astype(np.int64))
    if d.size < 2:
        return float("inf")
    t0 = int(np.gcd.reduce(np.diff(d)))
    return wavelength_m * 1000.0 / 2.0 / (t0 / DAYS_PER_YEAR)


# --------------------------------------------------------------------------------------------
# residual phase -> per-date nonlinear motion


def pair_residuals(
    phase: np.ndarray, a: np.ndarray, b: np.ndarray, fit: CoherenceFit
) -> np.ndarray:
    """Residual pair phase ``phase - a v - b dh`` (rad), wrapped around the fit's mean offset so
    that it stays continuous for small residuals (the offset itself is kept)."""
    return wrap(phase - a * fit.v - b * fit.dh - fit.offset) + fit.offset


def network_solve(
    pair_phase: np.ndarray, pairs: np.ndarray, dates: Sequence[str], ref_ix: int
) -> np.ndarray:
    """Least-squares per-date values x (..., N), x[ref_ix] = 0, with D x = ``pair_phase``
    (..., P); a network that does not connect every date is a StampsError naming them."""
    check_network(pairs, dates, ref_ix)
    n = len(dates)
    d = pair_incidence(pairs, n)
    keep = np.array([k for k in range(n) if k != ref_ix], dtype=np.int64)
    y = np.atleast_2d(np.asarray(pair_phase, dtype=np.float64))
    sol = np.linalg.lstsq(d[:, keep], y.T, rcond=None)[0].T
    out = np.zeros((y.shape[0], n))
    out[:, keep] = sol
    return out.reshape(np.shape(pair_phase)[:-1] + (n,))


def displacement_series(
    v: np.ndarray, nonlinear_rad: np.ndarray, days: np.ndarray, ref_ix: int, wavelength_m: float
) -> np.ndarray:
    """LOS displacement (mm, toward the satellite +, 0 at the reference date) per date: the
    linear part v (mm/yr) plus the nonlinear phase (rad) converted to mm."""
    t = (np.asarray(days, dtype=np.float64) - days[ref_ix]) / DAYS_PER_YEAR
    return np.asarray(v)[..., None] * t + mm_per_rad(wavelength_m) * np.asarray(nonlinear_rad)


# --------------------------------------------------------------------------------------------
# the two baselines


@dataclass
class BaselineFit:
    """v (mm/yr), dh (m) and the nonlinear phase per date (rad, 0 at the reference date)."""

    v: float
    dh: float
    nonlinear_rad: np.ndarray


def unwrap_in_time(
    date_phase: np.ndarray, days: np.ndarray, a: np.ndarray, b: np.ndarray, ref_ix: int
) -> BaselineFit:
    """Baseline 1: the per-date phases (rad, relative to the reference CR and date) unwrapped
    along time (a jump of more than pi between consecutive dates is taken as a wrap), then
    least squares of ``[a, b, 1]``; the residual is the nonlinear part."""
    order = np.argsort(days, kind="stable")
    uw = np.empty_like(np.asarray(date_phase, dtype=np.float64))
    uw[order] = np.unwrap(np.asarray(date_phase, dtype=np.float64)[order])
    uw -= uw[ref_ix]
    g = np.column_stack([a, b, np.ones_like(a)])
    coef = np.linalg.lstsq(g, uw, rcond=None)[0]
    resid = uw - a * coef[0] - b * coef[1]
    return BaselineFit(float(coef[0]), float(coef[1]), resid - resid[ref_ix])


def lowpass_in_time(values: np.ndarray, days: np.ndarray, sigma_days: float) -> np.ndarray:
    """Gaussian low-pass along the last axis (dates at ``days``), standard deviation
    ``sigma_days``: each date gets the weighted mean of all dates."""
    days = np.asarray(days, dtype=np.float64)
    w = np.exp(-0.5 * ((days[:, None] - days[None, :]) / sigma_days) ** 2)
    w /= w.sum(axis=1, keepdims=True)
    return np.asarray(values) @ w.T


def periodogram_lowpass(
    fit: CoherenceFit,
    phase: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    pairs: np.ndarray,
    dates: Sequence[str],
    days: np.ndarray,
    ref_ix: int,
    sigma_days: float,
) -> BaselineFit:
    """Baseline 2: the 2-D periodogram (v, dh at the best node of the coherence grid, no
    refinement); the residual pair phases solved per date on the network, then low-pass
    filtered in time (Gaussian, ``sigma_days``) as the nonlinear part (the high-pass rest
    is taken as atmosphere)."""
    node = coherence_surface(phase, a, b, np.array([fit.grid_v]), np.array([fit.grid_dh]))
    offset = float(np.angle(node[0, 0]))
    resid = wrap(phase - a * fit.grid_v - b * fit.grid_dh - offset) + offset
    per_date = network_solve(resid, pairs, dates, ref_ix)
    smooth = lowpass_in_time(per_date, days, sigma_days)
    return BaselineFit(fit.grid_v, fit.grid_dh, smooth - smooth[ref_ix])


def rms_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """RMS of estimate - truth along the last axis after removing their mean difference (a
    time series is known up to the phase of its reference epoch)."""
    diff = np.asarray(estimate, dtype=np.float64) - np.asarray(truth, dtype=np.float64)
    diff = diff - diff.mean(axis=-1, keepdims=True)
    return float(np.sqrt(np.mean(diff**2)))

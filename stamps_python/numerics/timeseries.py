"""LOS time series and mean LOS velocity of the PS, as StaMPS ``ps_plot('v-...')`` builds them.

Pure functions (no file access) behind ``export_results`` and ``ps_plot``:

* :func:`parse_correction` reads a ps_plot value type such as ``v-dso`` or ``u-do``;
* :func:`corrected_phase` subtracts the named Step 7/8 (and TRAIN) phase terms from the
  unwrapped phase and deramps (radians);
* :func:`reference_ps` selects the reference PS as ``ps_setref`` (box and/or circle);
* :func:`los_time_series` turns corrected phase into displacement per date (mm, positive toward
  the satellite, 0 on the reference date), the mean velocity (mm/yr) with StaMPS' weighted fit
  and its bootstrap standard deviation (``ps_mean_v``).

Sign: a phase of ``-4 pi / lambda * d`` is a displacement ``d`` toward the satellite, so
displacement in mm is ``-phase * lambda * 1000 / (4 pi)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stamps_python.numerics.defo_model import residual_deramp
from stamps_python.numerics.deramp import ps_deramp_inplace
from stamps_python.numerics.geodesy import llh2local
from stamps_python.numerics.lscov import lscov_operator
from stamps_python.parms import number, required
from stamps_python.utils import StampsError

MM_PER_M = 1000.0
DAYS_PER_YEAR = 365.25

# What each correction letter subtracts (ps_plot's value-type letters).
LETTER_MEANING = {
    "d": "spatially correlated look-angle (DEM) error, SCLA (Step 7, scla2 ph_scla)",
    "s": "spatially correlated noise of the secondary dates, SCN (Step 8, scn2 ph_scn_slave)",
    "a": "TRAIN tropospheric correction chosen by tropo_method (tca2)",
    "m": "reference-date (master) atmosphere and orbit error, AOE (Step 7, scla2 C_ps_uw)",
    "o": "a least-squares plane in x, y per interferogram (orbital ramp, ps_deramp on the fly)",
}
_ALLOWED = {"v": "dsao", "u": "dsamo"}
_CORRECTION_RE = re.compile(r"^([vu])(?:-([a-z]+))?$")


@dataclass(frozen=True)
class Correction:
    """A ps_plot value type: ``kind`` 'v' (velocity + time series) or 'u' (unwrapped phase).

    ``text`` is the value type as given (lower case), ``letters`` the terms it removes.
    """

    text: str
    kind: str
    letters: frozenset[str]
    single_master: bool = False

    @property
    def name(self) -> str:
        """``text``, with ``_sm`` appended for an upper-case 'V' type (SB run: velocity from the
        single-master series inverted from the small baselines; see :func:`parse_correction`)."""
        return self.text + ("_sm" if self.single_master else "")

    def has(self, letter: str) -> bool:
        """Whether the correction removes the term named by ``letter`` (d, s, a, m, o)."""
        return letter in self.letters

    @property
    def layer_name(self) -> str:
        """GeoPackage layer name: ``ps_`` + :attr:`name` with '-' as '_' (``ps_v_dso``)."""
        return "ps_" + self.name.replace("-", "_")

    def describe(self) -> str:
        """One line listing what is subtracted."""
        if not self.letters:
            return "no correction"
        order = [c for c in "dsamo" if c in self.letters]
        return "; ".join(f"{c}: {LETTER_MEANING[c]}" for c in order)


def parse_correction(text: str) -> Correction:
    """Parse a value type ``v``, ``v-d``, ``v-do``, ``v-dso``, ``u-dmo`` ... (case-insensitive).

    Velocity types may remove d, s, a and o (the reference-date AOE ``m`` is always removed from
    the exported time series, as ps_plot's time-series path does); unwrapped-phase types also m.
    An upper-case ``V`` sets ``single_master``: in a small-baseline run ps_plot's 'V' types take
    the velocity from the single-master series inverted from the small baselines, its 'v' types
    from the small-baseline interferograms themselves (in a PS run both are the same).
    """
    single_master = str(text).strip().startswith("V")
    value = str(text).strip().lower()
    match = _CORRECTION_RE.match(value)
    if not match:
        raise StampsError(
            f"correction '{text}': expected 'v' or 'u' optionally followed by '-' "
            f"and letters, like v-do or v-dso"
        )
    kind, letters = match.group(1), match.group(2) or ""
    bad = sorted(set(letters) - set(_ALLOWED[kind]))
    if bad:
        extra = (
            " ('m' is always removed from the exported time series)"
            if kind == "v" and bad == ["m"]
            else ""
        )
        raise StampsError(
            f"correction '{text}': unknown letter(s) {', '.join(bad)}; '{kind}-' "
            f"takes {', '.join(_ALLOWED[kind])}{extra}"
        )
    if len(set(letters)) != len(letters):
        raise StampsError(f"correction '{text}': a letter is repeated")
    return Correction(value, kind, frozenset(letters), single_master)


def phase_to_mm(ph: np.ndarray, wavelength: float) -> np.ndarray:
    """LOS displacement in mm (positive toward the satellite) of phase ``ph`` in radians."""
    return -np.asarray(ph, dtype=np.float64) * (wavelength * MM_PER_M / (4.0 * math.pi))


def corrected_phase(
    ph_uw: np.ndarray,
    correction: Correction,
    *,
    master_ix: int,
    ps_xy: np.ndarray | None = None,
    ph_scla: np.ndarray | None = None,
    ph_scn: np.ndarray | None = None,
    ph_aps: np.ndarray | None = None,
    c_ps_uw: np.ndarray | None = None,
    model_deramp: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Unwrapped phase (rad, (n_ps, n_ifg)) minus the terms ``correction`` names, then deramped.

    As ps_plot: SCLA (d), SCN (s) and tropospheric (a) phase are subtracted, for 'u' types the
    reference AOE ``C_ps_uw`` (m) from every secondary column, then the plane (o) is removed from
    each interferogram by ``ps_deramp`` (degree 1; ``ps_xy`` is ps2 ``xy``: id, x m, y m). The
    master column of 'u-...m...' types is set to 0, as ps_plot does. ``model_deramp`` =
    (columns, design) switches 'o' to deramp_method 'model': on those columns the planes are
    fitted to the residual of the per-point model of design (len(columns), p)
    (:func:`~stamps_python.numerics.defo_model.residual_deramp`); other columns keep theirs.
    """
    ph = np.array(ph_uw, dtype=np.float64, copy=True)
    terms = {"d": ("ph_scla", ph_scla), "s": ("ph_scn", ph_scn), "a": ("ph_aps", ph_aps)}
    for letter, (name, term) in terms.items():
        if correction.has(letter):
            if term is None:
                raise StampsError(f"correction '{correction.text}' needs {name}")
            np.subtract(ph, np.asarray(term), out=ph)
    if correction.kind == "u" and correction.has("m"):
        if c_ps_uw is None:
            raise StampsError(f"correction '{correction.text}' needs C_ps_uw")
        ph -= np.asarray(c_ps_uw, dtype=np.float64).reshape(-1, 1)
    if correction.has("o"):
        if ps_xy is None:
            raise StampsError(f"correction '{correction.text}' needs the PS x, y")
        if model_deramp is None:
            ps_deramp_inplace(ps_xy, ph)
        else:
            cols, G = model_deramp
            ph[:, cols] = residual_deramp(ph[:, cols], np.asarray(ps_xy)[:, 1:3], G)[0]
    if correction.kind == "u" and correction.has("m"):
        ph[:, master_ix] = 0.0
    return ph


def reference_ps(
    lonlat: np.ndarray,
    ll0: Sequence[float],
    ref_lon: Sequence[float] = (-math.inf, math.inf),
    ref_lat: Sequence[float] = (-math.inf, math.inf),
    ref_centre_lonlat: Sequence[float] = (0.0, 0.0),
    ref_radius: float = math.inf,
) -> np.ndarray | None:
    """0-based indices of the reference PS, as ``ps_setref``; None when ``ref_radius`` is -inf.

    PS strictly inside the ``ref_lon`` x ``ref_lat`` box (degrees) are kept; when ``ref_radius``
    (m) is finite, only those within it of ``ref_centre_lonlat`` (distances in StaMPS' local
    projection about ``ll0``). [-inf, inf] limits and an infinite radius select every PS.
    """
    if ref_radius == -math.inf:
        return None
    lonlat = np.asarray(lonlat, dtype=np.float64)
    ix = np.flatnonzero(
        (lonlat[:, 0] > ref_lon[0])
        & (lonlat[:, 0] < ref_lon[1])
        & (lonlat[:, 1] > ref_lat[0])
        & (lonlat[:, 1] < ref_lat[1])
    )
    if ref_radius < math.inf and ix.size:
        centre = llh2local(np.asarray(ref_centre_lonlat, dtype=np.float64), ll0)[0]
        pts = llh2local(lonlat[ix], ll0)
        dist_sq = ((pts - centre) ** 2).sum(axis=1)
        ix = ix[dist_sq <= ref_radius**2]
    return ix


def reference_ps_from_parms(
    lonlat: np.ndarray, ll0: Sequence[float] | None, parms: Mapping[str, Any]
) -> np.ndarray | None:
    """:func:`reference_ps` with the parameters ref_lon, ref_lat, ref_centre_lonlat and
    ref_radius (as the steps call ``ps_setref``); an empty reference area is a StampsError."""
    ix = reference_ps(
        lonlat,
        ll0,
        np.asarray(required(parms, "ref_lon"), dtype=np.float64).ravel(),
        np.asarray(required(parms, "ref_lat"), dtype=np.float64).ravel(),
        np.asarray(required(parms, "ref_centre_lonlat"), dtype=np.float64).ravel(),
        number(parms, "ref_radius"),
    )
    if ix is not None and ix.size == 0:
        raise StampsError(
            "no PS inside the reference area (ref_lon/ref_lat/ref_radius); widen it "
            "or set ref_radius to -inf for no reference"
        )
    return ix


def reference_mean(values: np.ndarray, ref_ix: np.ndarray | None) -> np.ndarray:
    """Per column of ``values`` (n_ps, n), the mean over the reference PS, NaNs skipped.

    ``ref_ix`` None (no reference) gives zeros. A column without any valid reference value gets
    0, i.e. is left unreferenced (as ps_plot does when drawing).
    """
    values = np.asarray(values)
    if ref_ix is None:
        return np.zeros(values.shape[1])
    ref = np.asarray(values[ref_ix], dtype=np.float64)
    ok = np.isfinite(ref)
    count = ok.sum(axis=0)
    total = np.where(ok, ref, 0.0).sum(axis=0)
    return np.divide(total, count, out=np.zeros(values.shape[1]), where=count > 0)


def subtract_reference(values: np.ndarray, ref_ix: np.ndarray | None) -> np.ndarray:
    """``values`` (n_ps, n) minus :func:`reference_mean` per column (a new float64 array)."""
    return np.asarray(values, dtype=np.float64) - reference_mean(values, ref_ix)


def ifg_weights(ifg_std_deg: np.ndarray | None, n_ifg: int) -> np.ndarray:
    """Weights 1/variance (rad^-2) of the interferograms from ifgstd2 ``ifg_std`` (degrees).

    Without ``ifg_std`` all weights are 1 (StaMPS uses an identity covariance then).
    """
    if ifg_std_deg is None:
        return np.ones(n_ifg)
    # StaMPS ps_plot and ps_mean_v convert with pi/181 (a typo of 180); a common scale factor
    # on all variances does not change the weighted fit, so the correct pi/180 is used here.
    std_rad = np.asarray(ifg_std_deg, dtype=np.float64).ravel() * math.pi / 180.0
    if std_rad.size != n_ifg:
        raise StampsError(f"ifg_std has {std_rad.size} values for {n_ifg} interferograms")
    if np.any(~np.isfinite(std_rad)) or np.any(std_rad <= 0):
        raise StampsError("ifg_std: every interferogram standard deviation must be finite and > 0")
    return 1.0 / std_rad**2


def fit_velocity(
    disp_mm: np.ndarray, t_years: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least-squares line ``disp = c + v t`` for every PS (as ``lscov`` with a diagonal
    covariance); ``disp_mm`` (n_ps, N) in mm, ``t_years`` (N,) in years, ``weights`` (N,).

    Returns (velocity mm/yr, intercept mm); a PS with any NaN gets NaN.
    """
    t = np.asarray(t_years, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    s0, s1, s2 = w.sum(), (w * t).sum(), (w * t * t).sum()
    det = s0 * s2 - s1 * s1
    if not det > 1e-12 * max(s0 * s2, 1e-300):
        raise StampsError("velocity fit needs interferograms on at least two different dates")
    c_slope = w * (s0 * t - s1) / det
    c_icpt = w * (s2 - s1 * t) / det
    disp = np.asarray(disp_mm, dtype=np.float64)
    return disp @ c_slope, disp @ c_icpt


def fit_velocity_cov(
    disp_mm: np.ndarray, t_years: np.ndarray, cov: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Line ``disp = c + v t`` for every PS weighted by a full covariance ``cov`` (N, N) of the
    N samples, as ``lscov(G, disp', cov)``; ``disp_mm`` (n_ps, N) mm, ``t_years`` (N,).

    Returns (velocity mm/yr, intercept mm, 1 / diag(cov) as bootstrap weights).
    """
    t = np.asarray(t_years, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (t.size, t.size):
        raise StampsError(f"covariance has shape {cov.shape} for {t.size} samples")
    diag = np.diag(cov)
    if np.any(~np.isfinite(cov)) or np.any(diag <= 0):
        raise StampsError("covariance: every variance must be finite and > 0")
    if np.unique(t).size < 2:
        raise StampsError("velocity fit needs interferograms on at least two different dates")
    M = lscov_operator(np.column_stack([np.ones_like(t), t]), cov)
    disp = np.asarray(disp_mm, dtype=np.float64)
    return disp @ M[1], disp @ M[0], 1.0 / diag


def sb_velocity(
    ph_sb: np.ndarray,
    *,
    ifgday_ix: np.ndarray,
    day: np.ndarray,
    use_ix: np.ndarray,
    wavelength: float,
    sb_cov: np.ndarray | None = None,
    ref_ix: np.ndarray | None = None,
    ref_velocity: float = 0.0,
    n_boot: int = 100,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean LOS velocity (mm/yr) and its bootstrap std from small-baseline interferograms.

    As ps_plot's 'vsb' path: the interferograms ``use_ix`` (0-based) of ``ph_sb`` (n_ps, n_ifg,
    rad, already corrected) are referenced to the mean over the reference PS, and the line
    ``ph = c + rate x (day2 - day1)`` is fitted per PS by ``lscov`` with ``sb_cov`` (identity
    when None); the velocity is ``-rate x 365.25 x lambda x 1000 / (4 pi)`` plus
    ``ref_velocity`` (m/yr). The std bootstraps the interferograms as ``ps_mean_v`` (weights 1 /
    the diagonal of ``sb_cov``).
    """
    use_ix = np.asarray(use_ix, dtype=np.int64)
    if use_ix.size < 2:
        raise StampsError(
            f"only {use_ix.size} small-baseline interferogram(s) are used; a "
            f"velocity needs at least 2"
        )
    pairs = np.asarray(ifgday_ix, dtype=np.int64)[use_ix]
    day = np.asarray(day, dtype=np.float64)
    dt_years = (day[pairs[:, 1]] - day[pairs[:, 0]]) / DAYS_PER_YEAR
    x = np.asarray(ph_sb, dtype=np.float64)[:, use_ix]
    x -= reference_mean(x, ref_ix)
    x *= -wavelength * MM_PER_M / (4.0 * math.pi)
    cov = np.eye(use_ix.size) if sb_cov is None else np.asarray(sb_cov, dtype=np.float64)
    vel, _, weights = fit_velocity_cov(x, dt_years, cov)
    vel_std = bootstrap_velocity_std(x, dt_years, weights, n_boot=n_boot, seed=seed)
    return vel + ref_velocity * MM_PER_M, vel_std


def bootstrap_velocity_std(
    disp_mm: np.ndarray,
    t_years: np.ndarray,
    weights: np.ndarray,
    n_boot: int = 100,
    seed: int = 0,
    chunk: int = 10000,
) -> np.ndarray:
    """Standard deviation (mm/yr) of the mean velocity by bootstrapping the interferograms.

    As ``ps_mean_v``: ``n_boot`` times, N interferograms are drawn with replacement and the
    weighted line refitted; the result is the sample standard deviation of the ``n_boot``
    velocities. Draws come from a numpy Generator seeded with ``seed`` (identical for every PS,
    as ps_mean_v resets its generator for each block). Draws whose dates are all equal (no slope
    defined) are drawn again. Returns (n_ps,) float64; NaN for PS with NaN samples.
    """
    t = np.asarray(t_years, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    n = t.size
    if n_boot < 2:
        raise StampsError(f"n_boot={n_boot}: at least 2 bootstrap draws are needed")
    if np.unique(t).size < 2:
        raise StampsError("velocity fit needs interferograms on at least two different dates")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    for _ in range(10000):
        degenerate = np.ptp(t[draws], axis=1) == 0
        if not degenerate.any():
            break
        draws[degenerate] = rng.integers(0, n, size=(int(degenerate.sum()), n))
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.repeat(np.arange(n_boot), n), draws.ravel()), 1.0)
    # ps_mean_v passes the covariance of the interferograms in their original order to lscov
    # with the resampled rows, so a drawn interferogram gets another one's weight; here each
    # drawn interferogram keeps its own weight.
    cw = counts * w
    s0 = cw.sum(axis=1)
    s1 = cw @ t
    s2 = cw @ (t * t)
    det = s0 * s2 - s1 * s1
    coef = cw * (s0[:, None] * t[None, :] - s1[:, None]) / det[:, None]
    disp = np.asarray(disp_mm, dtype=np.float64)
    out = np.empty(disp.shape[0])
    for start in range(0, disp.shape[0], chunk):
        slopes = disp[start : start + chunk] @ coef.T
        out[start : start + chunk] = slopes.std(axis=1, ddof=1)
    return out


@dataclass
class TimeSeries:
    """Time series of every PS on the dates ``date_ix`` (0-based image indices, date order).

    ``disp_mm`` (n_ps, n_dates): LOS displacement, mm, positive toward the satellite, 0 on the
    reference date; ``vel`` and ``vel_std`` (n_ps,) mm/yr; ``intercept`` (n_ps,) mm, the fitted
    line's value on the reference date; ``ref_ix`` the reference PS used (None: no reference).
    """

    disp_mm: np.ndarray
    date_ix: np.ndarray
    vel: np.ndarray
    vel_std: np.ndarray
    intercept: np.ndarray
    ref_ix: np.ndarray | None


def used_ifg_index(n_ifg: int, master_ix: int, drop_ifg_index: Sequence[int]) -> np.ndarray:
    """0-based interferograms in the velocity fit: all but ``drop_ifg_index`` (1-based, as the
    parameter) and the master, as ps_plot's ``setdiff(unwrap_ifg_index, master_ix)``. Numbers
    outside 1..n_ifg drop nothing (as MATLAB's ``setdiff``)."""
    drop = {int(i) - 1 for i in np.atleast_1d(np.asarray(drop_ifg_index, dtype=np.int64))}
    return np.array([k for k in range(n_ifg) if k not in drop and k != master_ix], dtype=np.int64)


def los_time_series(
    ph: np.ndarray,
    *,
    day: np.ndarray,
    master_ix: int,
    wavelength: float,
    use_ix: np.ndarray,
    c_ps_uw: np.ndarray | None = None,
    ref_ix: np.ndarray | None = None,
    ref_velocity: float = 0.0,
    ifg_std: np.ndarray | None = None,
    cov: np.ndarray | None = None,
    n_boot: int = 100,
    seed: int = 0,
) -> TimeSeries:
    """Displacement per date, mean velocity and its standard deviation from corrected phase.

    ``ph`` (n_ps, n_ifg, rad) is the output of :func:`corrected_phase` for a 'v' correction.
    As ps_plot's time-series path: the interferograms ``use_ix`` (0-based, master excluded) are
    kept, the reference AOE ``c_ps_uw`` (rad) is subtracted, then the mean over the reference PS,
    and phase becomes mm (``-lambda/4pi``). The velocity is the weighted line through the
    displacements against time since the reference date (365.25-day years, weights 1/variance
    from ``ifg_std`` in degrees); ``ref_velocity`` (m/yr) is added to the velocity and, as a
    trend, to the displacements (see docs/export.md). The reference date is a column of zeros.
    ``cov`` (len(use_ix), len(use_ix), rad^2), used instead of ``ifg_std``, is a full covariance
    of the dates' phase (a small-baseline run's ``sm_cov``): the velocity is then MATLAB's
    ``lscov(G, ph, cov)`` and the bootstrap weights are 1 / its diagonal.
    """
    use_ix = np.asarray(use_ix, dtype=np.int64)
    if use_ix.size < 2:
        raise StampsError(
            f"only {use_ix.size} interferogram(s) besides the reference date are "
            f"used; a velocity needs at least 2"
        )
    day = np.asarray(day, dtype=np.float64)
    x = np.asarray(ph, dtype=np.float64)[:, use_ix]
    if c_ps_uw is not None:
        x -= np.asarray(c_ps_uw, dtype=np.float64).reshape(-1, 1)
    x -= reference_mean(x, ref_ix)
    t_years = (day[use_ix] - day[master_ix]) / DAYS_PER_YEAR
    x *= -wavelength * MM_PER_M / (4.0 * math.pi)  # phase_to_mm, in place
    x += ref_velocity * MM_PER_M * t_years
    disp = x
    if cov is None:
        weights = ifg_weights(ifg_std, day.size)[use_ix]
        vel, intercept = fit_velocity(disp, t_years, weights)
    else:
        vel, intercept, weights = fit_velocity_cov(disp, t_years, cov)
    vel_std = bootstrap_velocity_std(disp, t_years, weights, n_boot=n_boot, seed=seed)
    date_ix = np.sort(np.append(use_ix, master_ix))
    out = np.zeros((x.shape[0], date_ix.size))
    out[:, np.searchsorted(date_ix, use_ix)] = disp
    return TimeSeries(out, date_ix, vel, vel_std, intercept, ref_ix)

"""Sentinel-1 TOPS azimuth misregistration: enhanced spectral diversity (ESD) numerics (pure).

After Wu, Zhou, Li, Long (Acta Geodaetica et Cartographica Sinica 2017, 46(9)): the ESD phase of
each burst overlap from its coherent pixels, a weighted least-squares polynomial in azimuth time
over the overlaps of a sub-swath, gross errors found by iterated data snooping (Baarda's w-test)
and the pair network inverted to one shift per date with the same outlier test. Also the TOPS
Doppler geometry (steering, FM and Doppler-centroid rates) and the burst-seam phase jump of a PS
interferogram. Units: rad, pixels (azimuth lines), s, Hz, m.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

EARTH_RADIUS_M = 6371000.0


# ------------------------------------------------------------------------ TOPS Doppler geometry


def steering_rate_hz_per_s(v_sat: float, steering_rate: float, wavelength: float) -> float:
    """Doppler rate of the antenna steering ``Ks = 2 v k_psi / lambda`` (Hz/s), from the
    platform speed (m/s), the azimuth steering rate (rad/s) and the wavelength (m)."""
    return 2.0 * v_sat * steering_rate / wavelength


def fm_rate_spherical(
    ranges: np.ndarray, v_sat: float, r_sat: float, wavelength: float,
    earth_radius: float = EARTH_RADIUS_M,
) -> np.ndarray:  # fmt: skip
    """Azimuth FM rate ``Ka = -2 v_s v_g / (lambda R)`` (Hz/s) at slant ranges ``ranges`` (m) for
    a circular orbit of radius ``r_sat`` (m) over a spherical Earth, ``v_g = v_s R_E / r_sat``
    (used when the burst metadata carry no FM-rate polynomial)."""
    v_g = v_sat * earth_radius / r_sat
    return -2.0 * v_sat * v_g / (wavelength * np.asarray(ranges, dtype=np.float64))


def doppler_centroid_rate(ks: float, ka: np.ndarray) -> np.ndarray:
    """Doppler-centroid rate of the focused burst ``Kt = Ks / (1 - Ks / Ka)`` (Hz/s), as ISCE's
    ``overlapSpectralSeparation`` and ``computeAzimuthCarrier`` use it."""
    ka = np.asarray(ka, dtype=np.float64)
    return ks / (1.0 - ks / ka)


def burst_of_line(
    lines: np.ndarray, yoff: np.ndarray, first_valid: np.ndarray, n_valid: np.ndarray
) -> np.ndarray:
    """0-based burst owning each merged line: the last burst whose valid lines
    ``[yoff + first_valid, yoff + first_valid + n_valid)`` hold it (GDAL paints the bursts of
    topsStack's merged VRT in order, so a later burst wins in the overlap); -1 where none."""
    lines = np.asarray(lines)
    lo = np.asarray(yoff) + np.asarray(first_valid)
    hi = lo + np.asarray(n_valid)
    owner = np.full(lines.shape, -1, dtype=np.int64)
    for b in range(lo.size):
        owner[(lines >= lo[b]) & (lines < hi[b])] = b
    return owner


def burst_azimuth_time(lines: np.ndarray, burst: np.ndarray, yoff: np.ndarray,
                       n_lines: np.ndarray, dt: float) -> np.ndarray:  # fmt: skip
    """Time (s) of merged ``lines`` from the centre line ``n_lines // 2`` of their ``burst``
    (ISCE's ``eta = (line - numberOfLines // 2) * dt``); NaN where ``burst`` is -1."""
    b = np.asarray(burst)
    ok = b >= 0
    bb = np.where(ok, b, 0)
    eta = (np.asarray(lines) - np.asarray(yoff)[bb] - np.asarray(n_lines)[bb] // 2) * dt
    return np.where(ok, eta, np.nan)


def misreg_phase_per_pixel(kt: np.ndarray, eta: np.ndarray, dt: float) -> np.ndarray:
    """Phase (rad) per pixel of azimuth shift of a burst pixel: ``2 pi Kt eta dt``; a secondary
    sampled ``V`` lines late gets ``+V`` times this in its SLC phase, the interferogram
    reference x conj(secondary) ``-V`` times it."""
    return 2.0 * np.pi * dt * np.asarray(kt) * np.asarray(eta)


# ------------------------------------------------------------------------ per-overlap ESD phase


@dataclass
class OverlapPhase:
    """ESD phase of one overlap from its coherent pixels."""

    n_coherent: int
    phase: float  # rad, angle of the coherence-weighted complex sum
    sigma_phase: float  # rad, standard deviation of ``phase``
    freq: float  # rad per pixel of shift, coherence-weighted mean of the frequency file
    shift: float  # pixels, phase / freq
    sigma_shift: float  # pixels


def coherent_mask(ifg: np.ndarray, cor: np.ndarray, freq: np.ndarray, threshold: float):
    """Pixels used for ESD: non-zero interferogram, coherence above ``threshold`` and a finite,
    non-zero frequency (the rule of topsStack's estimateAzimuthMisreg.py, plus the last test)."""
    return (np.abs(ifg) > 0) & (cor > threshold) & np.isfinite(freq) & (freq != 0)


def overlap_phase(
    ifg: np.ndarray, cor: np.ndarray, freq: np.ndarray, threshold: float
) -> OverlapPhase | None:
    """ESD phase of an overlap (rad) and the shift it implies (pixels) from the coherent pixels:
    angle of ``sum(cor * exp(j angle(ifg)))``; its variance is that of a weighted circular mean,
    ``sum(w^2 sin^2(phi - phi_hat)) / (sum(w cos(phi - phi_hat)))^2 * n / (n - 1)``. ``freq`` is
    topsStack's frequency file (rad per pixel of shift). None without 2 coherent pixels."""
    mask = coherent_mask(ifg, cor, freq, threshold)
    n = int(np.count_nonzero(mask))
    if n < 2:
        return None
    w = cor[mask].astype(np.float64)
    ph = np.angle(ifg[mask]).astype(np.float64)
    phi = float(np.angle(np.sum(w * np.exp(1j * ph))))
    d = ph - phi
    den = float(np.sum(w * np.cos(d)))
    var = float(np.sum(w**2 * np.sin(d) ** 2)) / den**2 * n / (n - 1) if den > 0 else np.inf
    f = float(np.sum(w * freq[mask]) / np.sum(w))
    sig = float(np.sqrt(var))
    return OverlapPhase(n, phi, sig, f, phi / f, sig / abs(f))


def pixel_offsets(ifg: np.ndarray, cor: np.ndarray, freq: np.ndarray, threshold: float):
    """``angle(ifg) / freq`` (pixels) at the coherent pixels: what topsStack takes the median of."""
    mask = coherent_mask(ifg, cor, freq, threshold)
    return (np.angle(ifg[mask]) / freq[mask]).astype(np.float64)


# ---------------------------------------------------------------- data snooping (Baarda w-test)


def critical_value(alpha: float) -> float:
    """Two-sided critical value of the w-test (standard normal) at significance ``alpha``."""
    return float(norm.isf(alpha / 2.0))


@dataclass
class Snooping:
    """Weighted least squares with iterated data snooping.

    ``removed`` lists the rejected observations in rejection order with their |w| at rejection;
    ``w`` holds the final w statistics of the observations kept (NaN where not testable: no
    redundancy) and, for the rejected ones, their w at rejection.
    """

    x: np.ndarray  # parameters
    cov: np.ndarray  # their covariance (a priori variance factor 1)
    residual: np.ndarray  # y - A x, every observation
    w: np.ndarray
    redundancy: np.ndarray  # redundancy numbers of the final fit (0 for rejected)
    active: np.ndarray  # bool, kept
    removed: list[tuple[int, float]] = field(default_factory=list)
    critical: float = np.inf
    variance_factor: float = np.nan  # a posteriori, v' P v / r (NaN without redundancy)
    dof: int = 0


def _wls(A: np.ndarray, y: np.ndarray, sigma: np.ndarray, active: np.ndarray):
    p = 1.0 / sigma[active] ** 2
    Aa = A[active]
    N = Aa.T @ (Aa * p[:, None])
    Q = np.linalg.pinv(N)
    x = Q @ (Aa.T @ (p * y[active]))
    v = y - A @ x
    qvv = sigma**2 - np.einsum("ij,jk,ik->i", A, Q, A)
    return x, Q, v, qvv


def data_snooping(
    A: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    alpha: float = 0.001,
    max_removed: int | None = None,
) -> Snooping:
    """Weighted least squares ``A x = y`` (weights ``1/sigma^2``) with Baarda's data snooping:
    the kept observation with the largest |w| = |v_i| / sqrt(q_vv,i) above the critical value
    at ``alpha`` is rejected and the fit repeated, until none is (or ``max_removed`` were, or no
    redundancy is left). Observations with no redundancy (q_vv ~ 0, e.g. a bridge of a network)
    are never tested."""
    A = np.asarray(A, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    n, m = A.shape
    k = critical_value(alpha)
    active = np.ones(n, dtype=bool)
    removed: list[tuple[int, float]] = []
    w_rejected = np.full(n, np.nan)
    limit = n if max_removed is None else int(max_removed)
    while True:
        x, Q, v, qvv = _wls(A, y, sigma, active)
        rank = np.linalg.matrix_rank(A[active])
        dof = int(active.sum()) - int(rank)
        r_num = np.where(active, qvv / sigma**2, 0.0)
        testable = active & (r_num > 1e-9)
        w = np.full(n, np.nan)
        w[testable] = v[testable] / np.sqrt(qvv[testable])
        if dof < 1 or not testable.any() or len(removed) >= limit:
            break
        i = int(np.nanargmax(np.where(testable, np.abs(w), np.nan)))
        if abs(w[i]) <= k:
            break
        removed.append((i, float(abs(w[i]))))
        w_rejected[i] = w[i]
        active[i] = False
    w = np.where(active, w, w_rejected)
    pa = 1.0 / sigma[active] ** 2
    vf = float(np.sum(pa * v[active] ** 2) / dof) if dof > 0 else np.nan
    return Snooping(x, Q, v, w, r_num, active, removed, k, vf, dof)


# --------------------------------------------------------------- polynomial over the overlaps


@dataclass
class AzimuthFit:
    """Polynomial in azimuth time fitted to the overlap shifts of a sub-swath."""

    degree: int
    t0: float  # s, time origin
    scale: float  # s, time scale (tau = (t - t0) / scale)
    snoop: Snooping
    mean: float  # pixels, mean of the polynomial over the kept overlaps' times
    sigma_mean: float  # pixels

    def evaluate(self, t: np.ndarray) -> np.ndarray:
        """Fitted shift (pixels) at azimuth times ``t`` (s)."""
        return poly_design(t, self.degree, self.t0, self.scale) @ self.snoop.x


def poly_design(t: np.ndarray, degree: int, t0: float, scale: float) -> np.ndarray:
    """Design matrix ``[1, tau, tau^2, ...]`` of ``tau = (t - t0) / scale``."""
    tau = (np.asarray(t, dtype=np.float64) - t0) / scale
    return tau[:, None] ** np.arange(degree + 1)[None, :]


def fit_azimuth_polynomial(
    t: np.ndarray,
    shift: np.ndarray,
    sigma: np.ndarray,
    degree: int = 0,
    alpha: float = 0.001,
    sigma_floor: float = 0.0,
) -> AzimuthFit:
    """Weighted polynomial (``degree`` 0, 1 or 2, lowered to what the overlaps allow) of the
    overlap shifts (pixels) in azimuth time ``t`` (s), weights ``1 / (sigma^2 + sigma_floor^2)``,
    with data snooping at ``alpha``. At most half of the overlaps are rejected, and never so many
    that the polynomial loses its redundancy."""
    t = np.asarray(t, dtype=np.float64)
    shift = np.asarray(shift, dtype=np.float64)
    s = np.maximum(np.sqrt(np.asarray(sigma, dtype=np.float64) ** 2 + sigma_floor**2), 1e-12)
    n = t.size
    deg = int(min(degree, max(n - 2, 0)))
    t0 = float(np.mean(t))
    scale = float(max(np.ptp(t) / 2.0, 1.0)) if n > 1 else 1.0
    A = poly_design(t, deg, t0, scale)
    snoop = data_snooping(A, shift, s, alpha, max_removed=max(0, min(n // 2, n - deg - 2)))
    g = A[snoop.active].mean(axis=0)
    mean = float(g @ snoop.x)
    sigma_mean = float(np.sqrt(max(g @ snoop.cov @ g, 0.0)))
    return AzimuthFit(deg, t0, scale, snoop, mean, sigma_mean)


def combine(values: np.ndarray, sigmas: np.ndarray) -> tuple[float, float]:
    """Inverse-variance weighted mean and its standard deviation."""
    p = 1.0 / np.asarray(sigmas, dtype=np.float64) ** 2
    return float(np.sum(p * values) / np.sum(p)), float(1.0 / np.sqrt(np.sum(p)))


# ---------------------------------------------------------------------------- pair network


def network_components(dates: Sequence[str], pairs: Sequence[tuple[str, str]]) -> list[list[str]]:
    """Connected groups of ``dates`` linked by ``pairs`` (each sorted; groups by first date)."""
    parent = {d: d for d in dates}

    def find(d: str) -> str:
        while parent[d] != d:
            parent[d] = parent[parent[d]]
            d = parent[d]
        return d

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[str, list[str]] = {}
    for d in dates:
        groups.setdefault(find(d), []).append(d)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def network_design(
    dates: Sequence[str], pairs: Sequence[tuple[str, str]], datum: str
) -> np.ndarray:
    """Design matrix (n_pairs, n_dates - 1) of ``shift(second) - shift(first)``, the ``datum``
    date's column removed (its shift is 0)."""
    index = {d: k for k, d in enumerate(dates)}
    A = np.zeros((len(pairs), len(dates)))
    for i, (a, b) in enumerate(pairs):
        A[i, index[a]] -= 1.0
        A[i, index[b]] += 1.0
    return np.delete(A, index[datum], axis=1)


@dataclass
class NetworkSolution:
    """Per-date shifts from the pair network."""

    dates: list[str]
    shift: np.ndarray  # pixels, 0 at the datum
    sigma: np.ndarray  # pixels
    snoop: Snooping


def invert_network(
    dates: Sequence[str],
    pairs: Sequence[tuple[str, str]],
    values: np.ndarray,
    sigmas: np.ndarray,
    datum: str,
    alpha: float = 0.001,
) -> NetworkSolution:
    """Weighted least-squares shift per date (pixels, ``datum`` = 0) from the pair shifts
    ``values`` = shift(second) - shift(first), with data snooping at ``alpha`` (a pair whose
    removal would leave a date unobserved is never tested). The caller checks connectivity."""
    dates = list(dates)
    A = network_design(dates, pairs, datum)
    snoop = data_snooping(A, values, sigmas, alpha, max_removed=max(0, len(pairs) // 3))
    k = dates.index(datum)
    shift = np.insert(snoop.x, k, 0.0)
    sigma = np.insert(np.sqrt(np.maximum(np.diag(snoop.cov), 0.0)), k, 0.0)
    return NetworkSolution(dates, shift, sigma, snoop)


# ------------------------------------------------------------------------ burst-seam phase jump


@dataclass
class SeamJump:
    """Azimuth shift implied by the phase jump across a burst seam in one interferogram."""

    shift: float  # pixels (secondary sampled ``shift`` lines late)
    sigma: float  # pixels
    n_ps: int  # PS kept by the robust fit
    jump: float  # rad, phase jump (below minus above) the shift implies at the mean u
    residual: np.ndarray = field(default_factory=lambda: np.zeros(0))  # rad, every PS


def seam_jump(
    z: np.ndarray,
    y: np.ndarray,
    x: np.ndarray,
    u: np.ndarray,
    below: np.ndarray,
    nuisance_degree: int = 2,
    weights: np.ndarray | None = None,
    iterations: int = 12,
) -> SeamJump | None:
    """Shift (pixels) from the wrapped phases ``angle(z)`` of the PS on both sides of a seam.

    Model: ``angle(z) = P(y, x) - u V`` with ``P`` a polynomial of ``nuisance_degree`` in the
    normalised line ``y`` and sample ``x`` (atmosphere, deformation) and ``u`` the phase per
    pixel of shift of each PS (rad/pixel, from its burst's Doppler centroid). Weighted
    (``weights``, 1/rad^2, default equal) Gauss-Newton on the wrapped residuals, then once more
    without the PS beyond 3 robust sigma; sigma of ``V`` from the weighted residual scatter.
    ``below`` marks the PS of the later burst (for the reported jump). None with too few PS.
    """
    ph = np.angle(z).astype(np.float64)
    cols = [y**i * x**j for i in range(nuisance_degree + 1) for j in range(nuisance_degree + 1 - i)]
    A = np.column_stack([*cols, -u])
    n, m = A.shape
    if n < 3 * m or not below.any() or below.all():
        return None
    sw = np.sqrt(np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64))
    p = np.zeros(m)
    p[0] = float(np.angle(np.sum(sw**2 * z / np.maximum(np.abs(z), 1e-30))))
    keep = np.ones(n, dtype=bool)
    for rnd in range(2):
        Aw = A[keep] * sw[keep, None]
        for _ in range(iterations):
            r = np.angle(np.exp(1j * (ph - A @ p)))
            step, *_ = np.linalg.lstsq(Aw, r[keep] * sw[keep], rcond=None)
            p += step
            if abs(step[-1]) < 1e-9:
                break
        r = np.angle(np.exp(1j * (ph - A @ p)))
        rn = r * sw
        if rnd == 0:
            s = 1.4826 * np.median(np.abs(rn))
            keep = np.abs(rn) <= 3.0 * max(s, 1e-9)
            if keep.sum() < 3 * m or keep[below].sum() < m or keep[~below].sum() < m:
                return None
    dof = int(keep.sum()) - m
    s2 = float(np.sum(rn[keep] ** 2) / dof)
    Aw = A[keep] * sw[keep, None]
    Q = np.linalg.pinv(Aw.T @ Aw)
    sig = float(np.sqrt(s2 * Q[-1, -1]))
    jump = float(-(np.mean(u[below]) - np.mean(u[~below])) * p[-1])
    return SeamJump(float(p[-1]), sig, int(keep.sum()), jump, r)

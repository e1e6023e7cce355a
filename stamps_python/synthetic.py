"""Synthetic Sentinel-1 stack in the ISCE2 topsStack layout, with its ground truth.

``generate_stack(outdir, ...)`` writes, date by date, what ISCE2 ``stackSentinel.py -W slc``
leaves for StaMPS:

- ``merged/SLC/<date>/<date>.slc.full`` (complex64, BIP) + ``.vrt``/``.xml``/``.hdr``, for every
  date (the reference too), coregistered and flattened to the reference geometry;
- ``merged/geom_reference/{hgt,lat,lon}.rdr.full`` (float64), ``los``/``incLocal`` (2-band
  float32 BIL), ``shadowMask`` (byte), and their 3x9-look ``.rdr`` versions;
- ``baselines/<ref>_<sec>/<ref>_<sec>.txt`` (``computeBaseline.py`` text) and
  ``merged/baselines/<sec>/<sec>`` gridded perpendicular baselines (``baselineGrid.py``);
- ``reference/IW1.xml`` (radar wavelength, pixel sizes, starting range, bursts, orbit);
- ``truth.h5`` beside the stack (never inside ``merged/``).

Physics: spherical Earth, circular orbit, zero-Doppler geometry, Gaussian-hill DEM, persistent
scatterers (a few %, some with sidelobes), distributed scatterers with temporal decorrelation
(optionally patches of short-lived ones, ``ds_short_fraction``), noise/water pixels, per-date
calibration gains, LOS deformation (subsidence bowl + seasonal term), DEM errors coupled
through the perpendicular baseline, power-law atmosphere, stratified delay, orbital ramps and
thermal noise. ``docs/synthetic.md`` has the full model and the conventions.
Interferogram convention: ``ref * conj(sec)`` has phase
``-4 pi/lambda * D_mm/1000 + 4 pi/lambda * bperp * dem_error / (R sin inc) + nuisance + noise``.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import datetime as _dt
import json
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numba
import numpy as np
from tqdm import tqdm

from stamps_python.io.isce_sidecars import (
    Comp,
    Prop,
    render_isce_xml,
    resampled_vrt,
    write_raster,
    write_sidecars,
)
from stamps_python.utils import (
    HelpFormatter,
    StampsError,
    atomic_output,
    check_output_dir,
    get_logger,
    parse_yyyymmdd,
    peak_memory_mb,
    run_cli,
)

# Sentinel-1 IW1 constants (m, s, Hz)
WAVELENGTH_M = 0.05546576
RANGE_PIXEL_M = 2.329562114715323
AZIMUTH_TIME_INTERVAL_S = 0.002055556
PRF_HZ = 1717.128973
RANGE_SAMPLING_RATE_HZ = 64345238.12571428
EARTH_RADIUS_M = 6371000.0
SATELLITE_ALTITUDE_M = 693000.0
GM_M3_S2 = 3.986004418e14
AZIMUTH_LOOKS = 3
RANGE_LOOKS = 9
BASELINE_GRID_SPACING_M = 7000.0  # baselineGrid.py: one range sample per 7 km of slant range
ISCE_ROOT = "/data/s1_stack"  # path recorded in the XML/HDR sidecars (as ISCE records its own)
CLASS_NAMES = {
    0: "nodata_zero",
    1: "ps",
    2: "ps_sidelobe",
    3: "distributed",
    4: "noise",
    5: "distributed_short",  # DS coherent for 12-24 days only (ds_short_fraction > 0)
}
TRUTH_CUBE_AUTO_MAX = 20_000_000  # values (dates x rows x cols) below which the cube is stored
# short-lived distributed scatterers (ds_short_fraction): patches of the smooth random field
# with spectrum (k^2 + 1/outer^2)^(-beta/2) above a quantile; outer scale ~ agricultural fields
SHORT_DS_PATCH_M = 250.0
SHORT_DS_BETA = 3.0

_FOUR_PI_OVER_LAMBDA = 4.0 * math.pi / WAVELENGTH_M

_STREAMS = {
    "dates": 1,
    "baselines": 2,
    "terrain": 3,
    "bursts": 4,
    "fields": 5,
    "classes": 6,
    "scatterers": 7,
    "deformation": 8,
    "date_scalars": 9,
    "bowl": 10,  # bowl_anywhere: the bowl centre
    "ds_short": 11,  # ds_short_fraction > 0: the patch field, then alpha12 of those pixels
    "date": 100,
}


def _rng(seed: int, stream: str, *extra: int) -> np.random.Generator:
    """Independent, reproducible random stream ``stream`` (and sub-keys) of ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAMS[stream], *extra]))


# Sentinel-1 IW SLC point-target response: a Hamming-weighted spectrum (coefficient 0.75, range
# and azimuth) sampled finer than the resolution. Pixel spacing in units of 1/bandwidth: range
# 48.3 MHz / 64.35 MHz (IW2), azimuth about 327 Hz processed bandwidth / 486 Hz line rate.
S1_HAMMING = 0.75
S1_RANGE_SAMPLING = 0.75
S1_AZIMUTH_SAMPLING = 0.67


def _point_response(x: np.ndarray) -> np.ndarray:
    """Amplitude response at ``x`` (units of 1/bandwidth; float64) of a unit spectrum weighted by
    a Hamming window with coefficient S1_HAMMING; its peak, at x = 0, is S1_HAMMING."""
    x = np.asarray(x, dtype=np.float64)
    side = 0.5 * (1.0 - S1_HAMMING)
    return S1_HAMMING * np.sinc(x) + side * (np.sinc(x - 1.0) + np.sinc(x + 1.0))


# --------------------------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """Scene and signal parameters of a stack flavour (units in the field names)."""

    name: str
    n_dates: int
    span_years: float  # minimum time span of the acquisitions
    min_skipped: int  # 12-day slots skipped at least (missing acquisitions)
    ps_fraction: float  # PS per land pixel (mean)
    ps_da: tuple[float, float]  # nominal amplitude dispersion of PS, uniform range
    ds_coh_inf: tuple[float, float]  # long-term coherence of distributed scatterers
    ds_alpha12: tuple[float, float]  # 12-day correlation of the decorrelating part
    water_fraction: float
    noise_fraction: float
    atm_std_rad: tuple[float, float]  # per-date turbulent atmosphere std, uniform range
    strat_std_rad_per_km: float  # per-date stratified delay coefficient std
    ramp_std_rad: float  # per-date orbital ramp across the scene, per axis
    calib_sigma: float  # log-std of the per-date amplitude gain
    thermal_rel: float  # thermal noise amplitude relative to the mean backscatter
    noisy_date_factor: float  # thermal noise factor of one bad date (1 = none)
    bowl_peak_mm_yr: float  # LOS rate at the bowl centre (negative = away from satellite)
    bowl_sigma_frac: float  # Gaussian bowl sigma as a fraction of the shorter scene side
    bowl_centre_spread: float  # bowl centre drawn within this central fraction of each side
    seasonal_amp_mm: float
    regional_std_mm_yr: float  # smooth regional LOS rate field std
    dem_err_ps_std_m: float
    dem_err_ds_std_m: float
    terrain_relief_m: float
    bperp_std_m: float
    bpar_std_m: float


PROFILES: dict[str, Profile] = {
    "easy": Profile(
        name="easy",
        n_dates=48,
        span_years=2.1,
        min_skipped=0,
        ps_fraction=0.03,
        ps_da=(0.05, 0.25),
        ds_coh_inf=(0.1, 0.4),
        ds_alpha12=(0.3, 0.8),
        water_fraction=0.04,
        noise_fraction=0.02,
        atm_std_rad=(0.1, 0.3),
        strat_std_rad_per_km=0.1,
        ramp_std_rad=0.1,
        calib_sigma=0.15,
        thermal_rel=0.2,
        noisy_date_factor=1.0,
        bowl_peak_mm_yr=-12.0,
        bowl_sigma_frac=0.25,
        bowl_centre_spread=0.1,
        seasonal_amp_mm=3.0,
        regional_std_mm_yr=0.0,
        dem_err_ps_std_m=3.0,
        dem_err_ds_std_m=1.0,
        terrain_relief_m=150.0,
        bperp_std_m=60.0,
        bpar_std_m=25.0,
    ),
    "realistic": Profile(
        name="realistic",
        n_dates=30,
        span_years=1.0,
        min_skipped=2,
        ps_fraction=0.03,
        ps_da=(0.08, 0.40),
        ds_coh_inf=(0.0, 0.25),
        ds_alpha12=(0.2, 0.7),
        water_fraction=0.06,
        noise_fraction=0.04,
        atm_std_rad=(0.6, 1.4),
        strat_std_rad_per_km=1.0,
        ramp_std_rad=0.5,
        calib_sigma=0.3,
        thermal_rel=0.35,
        noisy_date_factor=2.0,
        bowl_peak_mm_yr=-45.0,
        bowl_sigma_frac=0.12,
        bowl_centre_spread=0.5,
        seasonal_amp_mm=8.0,
        regional_std_mm_yr=0.7,
        dem_err_ps_std_m=8.0,
        dem_err_ds_std_m=2.0,
        terrain_relief_m=300.0,
        bperp_std_m=60.0,
        bpar_std_m=25.0,
    ),
}


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------


def make_dates(
    n_dates: int,
    start: _dt.date,
    profile: Profile,
    rng: np.random.Generator,
    interval_days: int = 12,
) -> list[_dt.date]:
    """Acquisition dates on a 12-day grid from ``start`` covering at least ``span_years``.

    Slots of the grid are skipped at random (never the first or the last) when the profile's
    span needs more slots than ``n_dates``, or to skip ``min_skipped`` acquisitions.
    """
    n_slots = max(
        n_dates + profile.min_skipped,
        int(round(profile.span_years * 365.25 / interval_days)) + 1,
    )
    if n_slots == n_dates:
        slots = np.arange(n_dates)
    else:
        inner = rng.choice(np.arange(1, n_slots - 1), size=n_dates - 2, replace=False)
        slots = np.sort(np.concatenate([[0, n_slots - 1], inner]))
    return [start + _dt.timedelta(days=int(interval_days * s)) for s in slots]


def decimal_year(date: _dt.date) -> float:
    """Year + (day of year - 1) / days in that year."""
    days = (_dt.date(date.year + 1, 1, 1) - _dt.date(date.year, 1, 1)).days
    return date.year + (date.timetuple().tm_yday - 1) / days


# --------------------------------------------------------------------------------------------
# Geometry: spherical Earth, circular orbit, zero-Doppler
# --------------------------------------------------------------------------------------------


@dataclass
class _Orbit:
    """Circular orbit around a non-rotating spherical Earth, in ECEF metres and seconds.

    At time ``t`` (s from the scene centre line) the satellite unit vector is
    ``cos(w t) s0 + sin(w t) a``; targets seen at that time lie in the zero-Doppler plane
    spanned by that vector and ``side`` (the unit normal of the orbit plane on the look side).
    """

    s0: np.ndarray
    a: np.ndarray
    side: np.ndarray
    omega: float
    radius: float

    def unit(self, t: np.ndarray) -> np.ndarray:
        """Satellite unit position vector(s) at times ``t`` (s), shape (..., 3)."""
        t = np.asarray(t, dtype=np.float64)[..., None]
        return np.cos(self.omega * t) * self.s0 + np.sin(self.omega * t) * self.a

    def position(self, t: np.ndarray) -> np.ndarray:
        """ECEF position(s) (m) at times ``t`` (s)."""
        return self.radius * self.unit(t)

    def velocity(self, t: np.ndarray) -> np.ndarray:
        """ECEF velocity (m/s) at times ``t`` (s)."""
        t = np.asarray(t, dtype=np.float64)[..., None]
        wt = self.omega * t
        return self.radius * self.omega * (-np.sin(wt) * self.s0 + np.cos(wt) * self.a)


def _make_orbit(lat0_deg: float, lon0_deg: float, heading_deg: float, inc_deg: float) -> _Orbit:
    """Orbit whose zero-Doppler plane at t=0 sees (lat0, lon0) at incidence ``inc_deg``, with the
    scene's azimuth direction at that point along ``heading_deg`` (right-looking)."""
    lat0, lon0, hd = np.radians([lat0_deg, lon0_deg, heading_deg])
    up = np.array([np.cos(lat0) * np.cos(lon0), np.cos(lat0) * np.sin(lon0), np.sin(lat0)])
    east = np.array([-np.sin(lon0), np.cos(lon0), 0.0])
    north = np.array([-np.sin(lat0) * np.cos(lon0), -np.sin(lat0) * np.sin(lon0), np.cos(lat0)])
    along = np.sin(hd) * east + np.cos(hd) * north
    look = np.cos(hd) * east - np.sin(hd) * north  # horizontal, to the right of ``along``
    rs = EARTH_RADIUS_M + SATELLITE_ALTITUDE_M
    inc = np.radians(inc_deg)
    theta = np.arcsin(EARTH_RADIUS_M * np.sin(inc) / rs)
    gamma = inc - theta
    s0 = np.cos(gamma) * up - np.sin(gamma) * look
    side = np.sin(gamma) * up + np.cos(gamma) * look
    return _Orbit(s0=s0, a=along, side=side, omega=math.sqrt(GM_M3_S2 / rs) / rs, radius=rs)


def _slant_range_at_incidence(inc_deg: float) -> float:
    """Slant range (m) to a point on the sphere seen at incidence ``inc_deg``."""
    rs = EARTH_RADIUS_M + SATELLITE_ALTITUDE_M
    inc = math.radians(inc_deg)
    theta = math.asin(EARTH_RADIUS_M * math.sin(inc) / rs)
    gamma = inc - theta
    return math.sqrt(rs**2 + EARTH_RADIUS_M**2 - 2 * rs * EARTH_RADIUS_M * math.cos(gamma))


def _look_angle(ranges: np.ndarray, height: float | np.ndarray = 0.0) -> np.ndarray:
    """Look angle at the sensor (rad) of slant ranges ``ranges`` (m) to height ``height`` (m)."""
    rs = EARTH_RADIUS_M + SATELLITE_ALTITUDE_M
    rh = EARTH_RADIUS_M + np.asarray(height, dtype=np.float64)
    r = np.asarray(ranges, dtype=np.float64)
    return np.arccos(np.clip((rs * rs + r * r - rh * rh) / (2 * rs * r), -1.0, 1.0))


def _azimuth_heading(orbit: _Orbit, t_rows: np.ndarray, r_mid: float) -> float:
    """Heading (deg clockwise from north) of the scene's azimuth direction: from the first to
    the last line at mid range on the zero-height sphere, as a lat/lon grid shows it."""
    rs, re = orbit.radius, EARTH_RADIUS_M
    g = math.acos((rs * rs + re * re - r_mid * r_mid) / (2 * rs * re))
    u = math.cos(g) * orbit.unit(np.array([t_rows[0], t_rows[-1]])) + math.sin(g) * orbit.side
    lat = np.arcsin(u[:, 2])
    lon = np.arctan2(u[:, 1], u[:, 0])
    d_north = lat[1] - lat[0]
    d_east = (lon[1] - lon[0]) * math.cos(0.5 * (lat[0] + lat[1]))
    return math.degrees(math.atan2(d_east, d_north))


@dataclass
class _Terrain:
    """DEM: base + tilt + Gaussian hills, as a function of local east/north (m)."""

    base: float
    tilt_e: float
    tilt_n: float
    amp: np.ndarray
    ce: np.ndarray
    cn: np.ndarray
    s2: np.ndarray  # hill sigma squared (m^2)


def _make_terrain(rng: np.random.Generator, extent_m: float, relief_m: float) -> _Terrain:
    """Ten hills over a region of at least 6 km (small scenes see part of it); a hill of
    sigma s is at most ``relief_m * min(1, s / 2 km)`` high, which keeps slopes gentle."""
    n = 10
    span = max(extent_m, 6000.0)
    sigma = rng.uniform(0.05, 0.2, n) * span
    return _Terrain(
        base=float(rng.uniform(80.0, 150.0)),
        tilt_e=float(rng.normal(0.0, 2e-3)),
        tilt_n=float(rng.normal(0.0, 2e-3)),
        amp=rng.uniform(0.25, 1.0, n) * relief_m * np.minimum(1.0, sigma / 2000.0),
        ce=rng.uniform(-0.6, 0.6, n) * span,
        cn=rng.uniform(-0.6, 0.6, n) * span,
        s2=sigma**2,
    )


@numba.njit(cache=True)
def _dem(e, n, base, tilt_e, tilt_n, amp, ce, cn, s2):
    """Height (m) and its east/north gradients at local east/north ``e``, ``n`` (m)."""
    h = base + tilt_e * e + tilt_n * n
    he = tilt_e
    hn = tilt_n
    for k in range(amp.size):
        de = e - ce[k]
        dn = n - cn[k]
        g = amp[k] * math.exp(-(de * de + dn * dn) / (2.0 * s2[k]))
        h += g
        he -= g * de / s2[k]
        hn -= g * dn / s2[k]
    return h, he, hn


@numba.njit(cache=True)
def _geometry_kernel(
    t_rows, ranges, s0, a, side, omega, rs, re, lat0, lon0,
    base, tilt_e, tilt_n, amp, ce, cn, s2,
    hgt, lat, lon, east, north, inc, look, los_az, inc_local, shadow,
):  # fmt: skip
    """Topo: for every (line, sample) find the DEM point at that zero-Doppler time and slant
    range (fixed-point iteration on the height, started from the previous pixel's height, to
    1 mm), then its angles. Angles in degrees."""
    rows = t_rows.size
    cols = ranges.size
    coslat0 = math.cos(lat0)
    for i in range(rows):
        wt = omega * t_rows[i]
        cw = math.cos(wt)
        sw = math.sin(wt)
        sx = cw * s0[0] + sw * a[0]
        sy = cw * s0[1] + sw * a[1]
        sz = cw * s0[2] + sw * a[2]
        h = hgt[i - 1, 0] if i > 0 else 0.0
        for j in range(cols):
            r = ranges[j]
            he = 0.0
            hn = 0.0
            done = False
            for _ in range(12):
                rh = re + h
                cg = (rs * rs + rh * rh - r * r) / (2.0 * rs * rh)
                g = math.acos(min(1.0, max(-1.0, cg)))
                cgg = math.cos(g)
                sgg = math.sin(g)
                ux = cgg * sx + sgg * side[0]
                uy = cgg * sy + sgg * side[1]
                uz = cgg * sz + sgg * side[2]
                la = math.asin(uz)
                lo = math.atan2(uy, ux)
                dlon = (lo - lon0 + math.pi) % (2.0 * math.pi) - math.pi
                e = re * coslat0 * dlon
                n = re * (la - lat0)
                if done:
                    break
                h_new, he, hn = _dem(e, n, base, tilt_e, tilt_n, amp, ce, cn, s2)
                done = abs(h_new - h) < 1e-3
                h = h_new
            rh = re + h
            cth = (rs * rs + r * r - rh * rh) / (2.0 * rs * r)
            th = math.acos(min(1.0, max(-1.0, cth)))
            incid = th + g
            slo = math.sin(lo)
            clo = math.cos(lo)
            sla = math.sin(la)
            cla = math.cos(la)
            ee = rs * (-sx * slo + sy * clo)
            nn = rs * (-sx * sla * clo - sy * sla * slo + sz * cla)
            uu = rs * cgg - rh
            hgt[i, j] = h
            lat[i, j] = math.degrees(la)
            lon[i, j] = math.degrees(lo)
            east[i, j] = e
            north[i, j] = n
            inc[i, j] = math.degrees(incid)
            look[i, j] = math.degrees(th)
            los_az[i, j] = math.degrees(math.atan2(-ee, nn))
            norm = math.sqrt(he * he + hn * hn + 1.0)
            cl = (-he * ee - hn * nn + uu) / (r * norm)
            inc_local[i, j] = math.degrees(math.acos(min(1.0, max(-1.0, cl))))
            hor = math.sqrt(ee * ee + nn * nn)
            facing = math.degrees(math.atan((he * ee + hn * nn) / hor))
            inc_deg = math.degrees(incid)
            m = 0
            if -facing > 90.0 - inc_deg:
                m += 1
            if facing > inc_deg:
                m += 2
            shadow[i, j] = m


# --------------------------------------------------------------------------------------------
# Random fields
# --------------------------------------------------------------------------------------------


@dataclass
class _CoarseGrid:
    """Coarse grid of nodes every ``cy`` lines / ``cx`` samples, with bilinear weights to the
    full raster (node ``k`` sits on full line ``k * cy``)."""

    ny: int
    nx: int
    dy_m: float
    dx_m: float
    iy0: np.ndarray
    wy: np.ndarray
    ix0: np.ndarray
    wx: np.ndarray


def _coarse_grid(
    rows: int, cols: int, az_m: float, rg_m: float, cell_m: float = 40.0
) -> _CoarseGrid:
    cy = max(1, int(round(cell_m / az_m)))
    cx = max(1, int(round(cell_m / rg_m)))
    fy = np.arange(rows) / cy
    fx = np.arange(cols) / cx
    iy0 = np.floor(fy).astype(np.int64)
    ix0 = np.floor(fx).astype(np.int64)
    return _CoarseGrid(
        ny=int(iy0[-1]) + 2,
        nx=int(ix0[-1]) + 2,
        dy_m=cy * az_m,
        dx_m=cx * rg_m,
        iy0=iy0,
        wy=fy - iy0,
        ix0=ix0,
        wx=fx - ix0,
    )


def _powerlaw_field(
    rng: np.random.Generator, grid: _CoarseGrid, beta: float, outer_m: float
) -> np.ndarray:
    """Zero-mean, unit-std Gaussian field on the coarse grid with power spectrum
    ``(k^2 + 1/outer^2)^(-beta/2)`` (k in cycles/m), from padded FFT-filtered white noise."""
    py = grid.ny + grid.ny // 2 + 4
    px = grid.nx + grid.nx // 2 + 4
    ky = np.fft.fftfreq(py, d=grid.dy_m)
    kx = np.fft.rfftfreq(px, d=grid.dx_m)
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2 + (1.0 / outer_m) ** 2
    amp = k2 ** (-beta / 4.0)
    amp[0, 0] = 0.0
    shape = (py, px // 2 + 1)
    spec = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * amp
    field = np.fft.irfft2(spec, s=(py, px))[: grid.ny, : grid.nx]
    field -= field.mean()
    std = field.std()
    return field / std if std > 0 else field


@numba.njit(cache=True)
def _bilinear_upsample(coarse, iy0, wy, ix0, wx, out):
    """Bilinear interpolation of a coarse-grid field to the full raster ``out``."""
    for i in range(out.shape[0]):
        y0 = iy0[i]
        fy = wy[i]
        for j in range(out.shape[1]):
            x0 = ix0[j]
            fx = wx[j]
            out[i, j] = (1.0 - fy) * (
                (1.0 - fx) * coarse[y0, x0] + fx * coarse[y0, x0 + 1]
            ) + fy * ((1.0 - fx) * coarse[y0 + 1, x0] + fx * coarse[y0 + 1, x0 + 1])


def _smooth_field(
    rng: np.random.Generator, grid: _CoarseGrid, rows: int, cols: int, beta: float, outer_m: float
) -> np.ndarray:
    """Full-resolution float32 smooth random field (zero mean, about unit std)."""
    out = np.empty((rows, cols), dtype=np.float32)
    _bilinear_upsample(
        _powerlaw_field(rng, grid, beta, outer_m), grid.iy0, grid.wy, grid.ix0, grid.wx, out
    )
    return out


# --------------------------------------------------------------------------------------------
# Per-date kernel
# --------------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def _atmosphere(i, j, atm, iy0, wy, ix0, wx, strat, hz):
    """Turbulent atmosphere (bilinear from the coarse screen) + stratified phase (rad)."""
    y0 = iy0[i]
    fy = wy[i]
    x0 = ix0[j]
    fx = wx[j]
    a = (1.0 - fy) * ((1.0 - fx) * atm[y0, x0] + fx * atm[y0, x0 + 1]) + fy * (
        (1.0 - fx) * atm[y0 + 1, x0] + fx * atm[y0 + 1, x0 + 1]
    )
    return a + strat * hz[i, j]


@numba.njit(cache=True, inline="always")
def _nuisance(i, j, atm, iy0, wy, ix0, wx, strat, hz, ramp_az, ramp_rg, yn, xn):
    """Atmosphere (bilinear from the coarse screen) + stratified + orbital ramp phase (rad)."""
    return _atmosphere(i, j, atm, iy0, wy, ix0, wx, strat, hz) + ramp_az * yn[i] + ramp_rg * xn[j]


@numba.njit(cache=True)
def _nuisance_points(rr, cc, atm, iy0, wy, ix0, wx, strat, hz, ramp_az, ramp_rg, yn, xn):
    """:func:`_nuisance` at the pixels (rr[k], cc[k])."""
    out = np.empty(rr.size, dtype=np.float64)
    for k in range(rr.size):
        out[k] = _nuisance(rr[k], cc[k], atm, iy0, wy, ix0, wx, strat, hz, ramp_az, ramp_rg, yn, xn)
    return out


PHASE_CUBES = {  # truth cube name: (term index of _phase_term_grid, what it holds)
    "atmosphere_rad": (0, "turbulent + stratified atmospheric phase atm + strat*(h - h_mean)/1000"),
    "orbit_ramp_rad": (1, "orbital ramp phase ramp_az*y + ramp_rg*x (y, x: -1/2..1/2 across)"),
    "dem_error_rad": (
        2,
        "DEM-error phase -4*pi/lambda*bperp*dem_error/(R*sin(inc)), bperp at the pixel",
    ),
}


@numba.njit(cache=True)
def _phase_term_grid(
    term, atm, iy0, wy, ix0, wx, strat, hz, ramp_az, ramp_rg, yn, xn, b_cross, b_up, q1, q2, out
):  # fmt: skip
    """One phase term of a date at every pixel (rad, SLC convention, as :func:`_date_kernel`
    adds it): ``term`` 0 = atmosphere + stratified, 1 = orbital ramp, 2 = DEM error."""
    rows, cols = out.shape
    for i in range(rows):
        for j in range(cols):
            if term == 0:
                out[i, j] = _atmosphere(i, j, atm, iy0, wy, ix0, wx, strat, hz)
            elif term == 1:
                out[i, j] = ramp_az * yn[i] + ramp_rg * xn[j]
            else:
                out[i, j] = b_cross[i] * q1[i, j] + b_up[i] * q2[i, j]


@numba.njit(cache=True)
def _date_kernel(
    gen, first, dt_factor, cal, noise_extra,
    geo_phase, k_vel, k_seas, b_cross, b_up,
    atm, iy0, wy, ix0, wx, strat, hz, ramp_az, ramp_rg, yn, xn,
    vel, seas, q1, q2, pclass, coh, a_ar, sig2, log_alpha, z,
    out, phase_out,
):  # fmt: skip
    """One date's SLC: ``cal * ((coh + a_ar z) exp(j phase) + sigma n)``.

    ``phase`` = -4 pi R/lambda + 4 pi/lambda D/1000 + DEM-error term + nuisance; ``z`` is the
    AR(1) decorrelating part of distributed scatterers (updated in place); ``n`` is unit
    complex Gaussian noise of power ``sig2 + noise_extra``. Border pixels (class 0) are 0.
    """
    rows, cols = out.shape
    inv_sqrt2 = 0.7071067811865476
    for i in range(rows):
        bc = b_cross[i]
        bu = b_up[i]
        for j in range(cols):
            if pclass[i, j] == 0:
                out[i, j] = 0j
                phase_out[i, j] = 0.0
                continue
            ph = (
                geo_phase[j]
                + k_vel * vel[i, j]
                + k_seas * seas[i, j]
                + bc * q1[i, j]
                + bu * q2[i, j]
                + _nuisance(i, j, atm, iy0, wy, ix0, wx, strat, hz, ramp_az, ramp_rg, yn, xn)
            )
            phase_out[i, j] = ph
            val = complex(coh[i, j])
            ar = a_ar[i, j]
            if ar > 0.0:
                innov = complex(gen.standard_normal(), gen.standard_normal()) * inv_sqrt2
                if first:
                    zz = innov
                else:
                    al = math.exp(log_alpha[i, j] * dt_factor)
                    zz = al * complex(z[i, j]) + math.sqrt(1.0 - al * al) * innov
                z[i, j] = zz
                val += ar * zz
            val *= complex(math.cos(ph), math.sin(ph))
            s2 = sig2[i, j]
            if s2 > 0.0:
                sd = math.sqrt(s2 + noise_extra) * inv_sqrt2
                val += complex(sd * gen.standard_normal(), sd * gen.standard_normal())
            out[i, j] = cal * val


# --------------------------------------------------------------------------------------------
# Stack description helpers
# --------------------------------------------------------------------------------------------


@dataclass
class _Burst:
    """One burst of the swath, in merged-line / sample indices."""

    start_line: int  # first merged line covered by the burst
    n_lines: int
    first_valid_line: int
    n_valid_lines: int
    first_valid_sample: int
    n_valid_samples: int


def _make_bursts(rows: int, cols: int, rng: np.random.Generator) -> tuple[list[_Burst], np.ndarray]:
    """Bursts of the swath and the merged valid mask (True = data, False = zero fill).

    Merged lines belong to the burst above them ('top' merge); each burst has its own first
    valid sample (near-range zero band) and far-range invalid samples; the first burst's first
    lines and the last burst's last lines are invalid too.
    """
    nb = max(2, math.ceil(rows / 1350))
    step = math.ceil(rows / nb)
    overlap = max(2, round(0.1 * step))
    edge = max(1, min(cols // 40, 12))
    top = int(rng.integers(1, max(2, min(4, rows // 30)) + 1))
    bottom = int(rng.integers(1, max(2, min(4, rows // 30)) + 1))
    valid = np.zeros((rows, cols), dtype=bool)
    bursts = []
    for k in range(nb):
        start = k * step
        end_owned = min(rows, (k + 1) * step)
        n_lines = min(step + overlap, rows - start)
        near = int(rng.integers(max(1, edge // 2), edge + 1)) + 2
        far = int(rng.integers(1, max(2, edge // 2) + 1))
        fvl = top if k == 0 else overlap // 2
        last_valid = n_lines - (bottom if k == nb - 1 else overlap // 2)
        bursts.append(_Burst(start, n_lines, fvl, last_valid - fvl, near, cols - near - far))
        lo = start + fvl if k == 0 else start
        hi = min(end_owned, start + last_valid) if k == nb - 1 else end_owned
        valid[lo:hi, near : cols - far] = True
    return bursts, valid


def _isce_time(t: _dt.datetime) -> str:
    """ISCE's UTC time text, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def _reference_product_xml(
    *,
    bursts: list[_Burst],
    cols: int,
    first_line_utc: _dt.datetime,
    orbit: _Orbit,
    t_first_line: float,
    starting_range: float,
    pass_direction: str,
    terrain_height: float,
) -> str:
    """Text of ``reference/IW1.xml`` (an ISCE ``TOPSSwathSLCProduct``)."""
    n_rows_total = bursts[-1].start_line + bursts[-1].n_lines
    t_mid = t_first_line + 0.5 * (n_rows_total - 1) * AZIMUTH_TIME_INTERVAL_S
    sv_times = t_mid + np.arange(-3, 4) * 10.0
    sv_times = np.round(sv_times)
    pos = orbit.position(sv_times)
    vel = orbit.velocity(sv_times)

    def utc(t: float) -> _dt.datetime:
        return first_line_utc + _dt.timedelta(seconds=float(t - t_first_line))

    state_vectors = [
        Comp(
            f"statevector{k + 1}",
            [
                Prop("position", str([float(x) for x in pos[k]])),
                Prop("time", _isce_time(utc(sv_times[k]))),
                Prop("velocity", str([float(x) for x in vel[k]])),
            ],
            factorymodule="isceobj.Orbit.Orbit",
            factoryname="createStateVector",
        )
        for k in range(sv_times.size)
    ]
    # ascending node: latest northward equator crossing before the scene
    zc, zs = orbit.s0[2], orbit.a[2]
    phi = math.atan2(zs, zc)
    t_an = (((phi - math.pi / 2) % (2 * math.pi)) - 2 * math.pi) / orbit.omega
    burst_comps = []
    for k, b in enumerate(bursts):
        start = first_line_utc + _dt.timedelta(seconds=b.start_line * AZIMUTH_TIME_INTERVAL_S)
        stop = start + _dt.timedelta(seconds=(b.n_lines - 1) * AZIMUTH_TIME_INTERVAL_S)
        orbit_comp = Comp(
            "orbit",
            [
                Prop("orbitquality", "Precise", "Orbit quality"),
                Prop("orbitreferenceframe", "ECR", "Orbit reference frame"),
                Prop(
                    "orbitsource",
                    "synthetic circular orbit (non-rotating spherical Earth)",
                    "Orbit source",
                ),
                Comp(
                    "state_vectors",
                    state_vectors,
                    factorymodule="iscesys.Component",
                    factoryname="createTraitSeq",
                    doc="Testing Trait Sequence",
                ),
            ],
            factorymodule="isceobj.Orbit.Orbit",
            factoryname="createOrbit",
        )
        image = Comp(
            "image",
            [
                Prop("data_type", "CFLOAT", "Image data type."),
                Prop(
                    "file_name",
                    f"{ISCE_ROOT}/reference/IW1/burst_{k + 1:02d}.slc",
                    "Name of the image file.",
                ),
                Prop("length", b.n_lines, "Image length"),
                Prop("width", cols, "Image width"),
            ],
            factorymodule="isceobj.Image",
            factoryname="createSlcImage",
        )
        burst_comps.append(
            Comp(
                f"burst{k + 1}",
                [
                    Prop("azimuthprocessingbandwidth", 327.0, "Azimuth processing bandwidth"),
                    Prop(
                        "azimuthsteeringrate", 0.02775, "Azimuth steering rate in radians per sec"
                    ),
                    Prop(
                        "azimuthtimeinterval",
                        AZIMUTH_TIME_INTERVAL_S,
                        "Time interval between consecutive lines (sec)",
                    ),
                    Prop("azimuthwindowcoefficient", 0.7, "Azimuth window coefficient"),
                    Prop("azimuthwindowtype", "Hamming", "Azimuth window type"),
                    Prop("burstnumber", k + 1, "Burst number"),
                    Prop(
                        "burststartutc",
                        _isce_time(start),
                        "Actual sensing time corresponding to start of burst",
                    ),
                    Prop(
                        "burststoputc",
                        _isce_time(stop),
                        "Actual sensing time corresponding to end of burst",
                    ),
                    Prop("firstvalidline", b.first_valid_line, "First valid line in the burst"),
                    Prop(
                        "firstvalidsample", b.first_valid_sample, "First valid sample in the burst"
                    ),
                    Prop("framenumber", 0, "Frame number"),
                    image,
                    Prop("numberoflines", b.n_lines, "Number of lines in the burst"),
                    Prop("numberofsamples", cols, "Number of samples in the burst"),
                    Prop(
                        "numberofvalidlines", b.n_valid_lines, "Number of valid lines in the burst"
                    ),
                    Prop(
                        "numberofvalidsamples",
                        b.n_valid_samples,
                        "Number of valid samples in the burst",
                    ),
                    orbit_comp,
                    Prop("orbitnumber", 36000, "Orbit number"),
                    Prop(
                        "passdirection",
                        pass_direction,
                        "Ascending or descending direction of orbit",
                    ),
                    Prop("polarization", "vv", "Polarization"),
                    Prop("pulserepetitionfrequency", PRF_HZ, "pulse repetition frequency in Hz"),
                    Prop("radarwavelength", WAVELENGTH_M, "Radar wavelength", "m"),
                    Prop("rangepixelsize", RANGE_PIXEL_M, "Slant range pixel size", "m"),
                    Prop("rangeprocessingbandwidth", 56500000.0, "Range processing bandwidth"),
                    Prop("rangesamplingrate", RANGE_SAMPLING_RATE_HZ, "Range sampling rate", "Hz"),
                    Prop("rangewindowcoefficient", 0.75, "Range window coefficient"),
                    Prop("rangewindowtype", "Hamming", "Range window type"),
                    Prop(
                        "sensingstart",
                        _isce_time(start),
                        "UTC time corresponding to first line of burst SLC",
                    ),
                    Prop(
                        "sensingstop",
                        _isce_time(stop),
                        "UTC time corresponding to last line of burst SLC",
                    ),
                    Prop("startingrange", starting_range, "Slant range to first pixel in m", "m"),
                    Prop("swathnumber", 1, "Swath number"),
                    Prop(
                        "terrainheight", terrain_height, "Average terrain height used for focusing"
                    ),
                    Prop("tracknumber", 42, "Track number"),
                ],
                factorymodule="isceobj.Sensor.TOPS",
                factoryname="createBurstSLC",
            )
        )
    instance = Comp(
        "instance",
        [
            Prop(
                "ascendingnodetime",
                _isce_time(utc(t_an)),
                "Ascending node time corresponding to the acquisition",
            ),
            Comp(
                "bursts",
                burst_comps,
                factorymodule="iscesys.Component",
                factoryname="createTraitSeq",
                doc="Trait sequence of burst SLCs",
            ),
            Prop("folder", "synthetic.SAFE", "Folder name"),
            Prop("imagingmode", "TOPS", "Imaging mode"),
            Prop("mission", "S1", "Mission"),
            Prop("numberofbursts", len(bursts), "Number of bursts in the product"),
            Prop("processingfacility", "synthetic", "Processing facility information"),
            Prop("processingsoftwareversion", "synthetic", "Processing system software version"),
            Prop("processingsystem", "synthetic stack generator", "Processing system information"),
            Prop("spacecraftname", "Sentinel-1A", "Name of the space craft"),
        ],
        factorymodule="isceobj.Sensor.TOPS",
        factoryname="createTOPSSwathSLCProduct",
    )
    return render_isce_xml("productmanager_name", [instance])


def _write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Main generator
# --------------------------------------------------------------------------------------------

_GEOM_DESCRIPTIONS = {
    "hgt": "Pixel-by-pixel height in meters.",
    "lat": "Pixel-by-pixel latitude in degrees.",
    "lon": "Pixel-by-pixel longitude in degrees.",
    "los": (
        "Two channel Line-Of-Sight geometry image (all angles in degrees). Represents vector "
        "drawn from target to platform. Channel 1: Incidence angle measured from vertical at "
        "target (always +ve). Channel 2: Azimuth angle measured from North in Anti-clockwise "
        "direction."
    ),
    "incLocal": (
        "Two channel angle file. Channel 1: Angle between ray to target and the vertical at the "
        "sensor. Channel 2: Local incidence angle accounting for DEM slope at target"
    ),
    "shadowMask": "Radar shadow-layover mask. 1 - Radar Shadow. 2 - Radar Layover. 3 - Both.",
}

_CONVENTIONS = (
    "LOS displacement/velocity positive toward the satellite (range decrease), mm and mm/yr, "
    "relative to reference_date. SLC phase = -4*pi*R/lambda + scattering phase "
    "+ 4*pi/lambda*D/1000 "
    "- 4*pi/lambda*bperp*dem_error/(R*sin(inc)) + nuisance(date). ifg = ref*conj(sec): phase = "
    "-4*pi/lambda*D_mm/1000 + 4*pi/lambda*bperp*dem_error/(R*sin(inc)) + nuisance_ifg + noise, "
    "nuisance_ifg = nuisance(ref) - nuisance(sec) (atmosphere + stratified + orbital ramp). "
    "bperp as in baselines/*.txt (ISCE sign, 0 at the reference). dem_error = true scatterer "
    "height minus DEM height (m). D(t) = velocity_mm_yr*t + seasonal_amp_mm*(sin(2*pi*tau+phi) "
    "- sin(2*pi*tau_ref+phi)), t = t_years, tau = decimal_year, phi = seasonal_phase_rad."
)


def _nearest_looks(a: np.ndarray) -> np.ndarray:
    """GDAL ``-outsize`` nearest-neighbour multilook by 3 (azimuth) x 9 (range) of (..., L, W)."""
    n_l = a.shape[-2] // AZIMUTH_LOOKS
    n_w = a.shape[-1] // RANGE_LOOKS
    sub = a[..., AZIMUTH_LOOKS // 2 :: AZIMUTH_LOOKS, RANGE_LOOKS // 2 :: RANGE_LOOKS]
    return np.ascontiguousarray(sub[..., :n_l, :n_w])


def _mean_looks(a: np.ndarray) -> np.ndarray:
    """ISCE ``Looks`` block mean by 3 x 9 (integer types truncated)."""
    n_l = a.shape[0] // AZIMUTH_LOOKS
    n_w = a.shape[1] // RANGE_LOOKS
    blocks = a[: n_l * AZIMUTH_LOOKS, : n_w * RANGE_LOOKS].reshape(
        n_l, AZIMUTH_LOOKS, n_w, RANGE_LOOKS
    )
    return blocks.mean(axis=(1, 3)).astype(a.dtype)


def _prepare_outdir(outdir: Path, overwrite: bool) -> None:
    check_output_dir(outdir, "OUTDIR")
    existing = [
        n for n in ("merged", "baselines", "reference", "truth.h5") if (outdir / n).exists()
    ]
    if existing and not overwrite:
        raise StampsError(
            f"{outdir}: already holds {', '.join(existing)}; pass overwrite=True (--overwrite) "
            "to replace the stack"
        )
    for name in existing:
        target = outdir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    outdir.mkdir(parents=True, exist_ok=True)


def _h5_write(
    group: h5py.Group, name: str, data, units: str, description: str | None = None
) -> None:
    """Dataset ``name`` with a ``units`` (and ``description``) attribute, deterministic bytes."""
    arr = np.asarray(data)
    kwargs = {}
    if arr.ndim >= 2 and arr.size >= 4096:
        kwargs = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    ds = group.create_dataset(name, data=arr, track_times=False, **kwargs)
    ds.attrs["units"] = units
    if description:
        ds.attrs["description"] = description


def _h5_cube(
    group: h5py.Group, name: str, shape: tuple[int, int, int], units: str, description: str
) -> h5py.Dataset:
    """Empty float32 (dates, rows, cols) truth cube, one gzip chunk per date, written date by
    date."""
    ds = group.create_dataset(
        name, shape=shape, dtype=np.float32, chunks=(1, *shape[1:]), compression="gzip",
        compression_opts=1, shuffle=True, track_times=False,
    )  # fmt: skip
    ds.attrs["units"] = units
    ds.attrs["description"] = description
    return ds


def _uniform32(rng: np.random.Generator, lo: float, hi: float, shape) -> np.ndarray:
    """Float32 uniform draws in [lo, hi)."""
    out = rng.random(shape, dtype=np.float32)
    out *= np.float32(hi - lo)
    out += np.float32(lo)
    return out


def _write_geometry_layer(geom_dir: Path, name: str, arr: np.ndarray, multilooked: bool) -> None:
    """Write ``<name>.rdr.full`` and (``multilooked``) the 3x9-look ``<name>.rdr``, as topsStack's
    mergeBursts.py does (GDAL nearest-neighbour looks; ISCE block-mean looks for shadowMask)."""
    image_type = "bil" if name == "los" else None
    root = f"{ISCE_ROOT}/merged/geom_reference"
    write_raster(
        geom_dir / f"{name}.rdr.full",
        arr,
        recorded_path=f"{root}/{name}.rdr.full",
        description=_GEOM_DESCRIPTIONS[name],
        image_type=image_type,
    )
    if multilooked:
        write_raster(
            geom_dir / f"{name}.rdr",
            _mean_looks(arr) if name == "shadowMask" else _nearest_looks(arr),
            recorded_path=f"{root}/{name}.rdr",
            description=_GEOM_DESCRIPTIONS[name],
            image_type=image_type,
        )


@dataclass
class _Geometry:
    """Radar geometry of the scene; per-pixel fields are float32 (rows, cols)."""

    orbit: _Orbit
    ranges: np.ndarray  # slant range of each sample (m)
    t_rows: np.ndarray  # zero-Doppler time of each line from the scene centre (s)
    r_center: float
    theta_center: float  # look angle at the scene centre (rad)
    az_spacing: float  # azimuth ground pixel spacing (m)
    rg_ground: float  # ground-range pixel spacing at the centre, flat terrain (m)
    extent: float  # longer scene side (m)
    short_side: float
    heading_deg: float


def _build_geometry(
    outdir: Path, rows: int, cols: int, seed: int, prof: Profile, heading_deg: float,
    center_lat: float, center_lon: float, multilooked: bool, h5: h5py.File,
) -> tuple[_Geometry, dict[str, np.ndarray]]:  # fmt: skip
    """Run the synthetic topo, write ``merged/geom_reference`` and the geometry truth.

    Returns the geometry and the float32 per-pixel fields ``hgt`` (m), ``inc_deg``,
    ``look_deg`` (deg), ``east`` and ``north`` (m from the scene centre).
    """
    center_inc_deg = 39.0
    orbit = _make_orbit(center_lat, center_lon, heading_deg, center_inc_deg)
    r_center = _slant_range_at_incidence(center_inc_deg)
    r0 = round(r_center - 0.5 * (cols - 1) * RANGE_PIXEL_M, 3)
    ranges = r0 + np.arange(cols) * RANGE_PIXEL_M
    t_rows = (np.arange(rows) - 0.5 * (rows - 1)) * AZIMUTH_TIME_INTERVAL_S
    theta_c = float(_look_angle(np.array([r_center]))[0])
    gamma_c = math.radians(center_inc_deg) - theta_c
    az_spacing = orbit.omega * EARTH_RADIUS_M * math.cos(gamma_c) * AZIMUTH_TIME_INTERVAL_S
    rg_ground = RANGE_PIXEL_M / math.sin(math.radians(center_inc_deg))
    sides = (rows * az_spacing, cols * rg_ground)
    terrain = _make_terrain(_rng(seed, "terrain"), max(sides), prof.terrain_relief_m)

    hgt, lat, lon = (np.empty((rows, cols), dtype=np.float64) for _ in range(3))
    east, north, inc_deg, look_deg, los_az, inc_local = (
        np.empty((rows, cols), dtype=np.float32) for _ in range(6)
    )
    shadow = np.empty((rows, cols), dtype=np.uint8)
    _geometry_kernel(
        t_rows, ranges, orbit.s0, orbit.a, orbit.side, orbit.omega, orbit.radius, EARTH_RADIUS_M,
        math.radians(center_lat), math.radians(center_lon),
        terrain.base, terrain.tilt_e, terrain.tilt_n,
        terrain.amp, terrain.ce, terrain.cn, terrain.s2,
        hgt, lat, lon, east, north, inc_deg, look_deg, los_az, inc_local, shadow,
    )  # fmt: skip
    geom_dir = outdir / "merged" / "geom_reference"
    _write_geometry_layer(geom_dir, "hgt", hgt, multilooked)
    _write_geometry_layer(geom_dir, "lat", lat, multilooked)
    _write_geometry_layer(geom_dir, "lon", lon, multilooked)
    _write_geometry_layer(geom_dir, "los", np.stack([inc_deg, los_az]), multilooked)
    _write_geometry_layer(geom_dir, "incLocal", np.stack([look_deg, inc_local]), multilooked)
    _write_geometry_layer(geom_dir, "shadowMask", shadow, multilooked)
    _h5_write(h5, "lat", lat, "deg", "latitude (lat.rdr.full)")
    _h5_write(h5, "lon", lon, "deg", "longitude (lon.rdr.full)")
    del lat, lon, los_az, inc_local, shadow
    h32 = hgt.astype(np.float32)
    del hgt
    _h5_write(h5, "hgt", h32, "m", "DEM height (hgt.rdr.full)")
    _h5_write(h5, "incidence_deg", inc_deg, "deg", "incidence angle at the target (los band 1)")
    _h5_write(h5, "look_angle_deg", look_deg, "deg", "look angle at the sensor (incLocal band 1)")
    _h5_write(h5, "east_m", east, "m", "local east of the scene centre")
    _h5_write(h5, "north_m", north, "m", "local north of the scene centre")
    _h5_write(h5, "slant_range_m", ranges, "m", "slant range of each range sample")
    geom = _Geometry(
        orbit=orbit,
        ranges=ranges,
        t_rows=t_rows,
        r_center=r_center,
        theta_center=theta_c,
        az_spacing=az_spacing,
        rg_ground=rg_ground,
        extent=max(sides),
        short_side=min(sides),
        heading_deg=_azimuth_heading(orbit, t_rows, r_center),
    )
    return geom, {
        "hgt": h32,
        "inc_deg": inc_deg,
        "look_deg": look_deg,
        "east": east,
        "north": north,
    }


@dataclass
class _Scene:
    """Scatterers: per-pixel SLC model terms and the PS / sidelobe lists."""

    pixel_class: np.ndarray  # uint8, CLASS_NAMES
    coh: np.ndarray  # complex64 coherent phasor (PS, coherent part of DS)
    a_ar: np.ndarray  # float32 amplitude of the decorrelating AR(1) part (DS)
    sig2: np.ndarray  # float32 power of the independent noise (all valid pixels)
    log_alpha: np.ndarray  # float32 log of the 12-day AR(1) correlation (DS)
    ps_r: np.ndarray
    ps_c: np.ndarray
    ps_da: np.ndarray  # nominal amplitude dispersion of each PS
    a_ps: np.ndarray  # PS amplitude (before the date gain)
    sl_r: np.ndarray
    sl_c: np.ndarray
    sl_p: np.ndarray  # index of the primary PS of each sidelobe
    sl_k: np.ndarray  # sidelobe amplitude relative to its PS (signed)
    sl_da: np.ndarray  # nominal amplitude dispersion of the sidelobe pixels
    ds_mask: np.ndarray
    sigma_th: float


def _short_ds_mask(
    rng: np.random.Generator, grid: _CoarseGrid, ds_mask: np.ndarray, fraction: float
) -> np.ndarray:
    """The ``fraction`` of the DS pixels ``ds_mask`` where a smooth random field is largest:
    patches of about SHORT_DS_PATCH_M (fields, bare or sparsely vegetated ground)."""
    rows, cols = ds_mask.shape
    field = _smooth_field(rng, grid, rows, cols, SHORT_DS_BETA, SHORT_DS_PATCH_M)
    if fraction >= 1.0 or not ds_mask.any():
        return ds_mask.copy()
    return ds_mask & (field > np.quantile(field[ds_mask], 1.0 - fraction))


def _build_scene(
    seed: int, prof: Profile, geom: _Geometry, hgt: np.ndarray, valid: np.ndarray,
    grid: _CoarseGrid, h5: h5py.File, ds_short_fraction: float = 0.0,
    ds_short_alpha12: tuple[float, float] = (0.5, 0.9),
) -> tuple[_Scene, np.ndarray]:  # fmt: skip
    """Classify pixels (water, noise, PS, sidelobes, DS, short-lived DS) and set the SLC model
    terms.

    Returns the scene and the smooth field that also modulates the seasonal amplitude.
    """
    rows, cols = valid.shape
    frng = _rng(seed, "fields")
    outer = 2.0 * geom.extent
    texture = _smooth_field(frng, grid, rows, cols, 3.0, outer)
    urban = _smooth_field(frng, grid, rows, cols, 4.0, outer)
    water_f = _smooth_field(frng, grid, rows, cols, 4.0, outer)
    patch_f = _smooth_field(frng, grid, rows, cols, 3.5, outer)
    mod_f = _smooth_field(frng, grid, rows, cols, 4.0, outer)

    crng = _rng(seed, "classes")
    hv = hgt[valid]
    h_norm = (hgt - hv.min()) / max(float(np.ptp(hv)), 1.0)
    water_f -= 3.0 * h_norm  # water gathers in the valleys
    del h_norm
    water = valid & (water_f > np.quantile(water_f[valid], 1.0 - prof.water_fraction))
    del water_f
    noise = (
        valid & ~water & (patch_f > np.quantile(patch_f[valid], 1.0 - 0.5 * prof.noise_fraction))
    )
    del patch_f
    noise |= (
        valid & ~water & (crng.random((rows, cols), dtype=np.float32) < 0.5 * prof.noise_fraction)
    )
    land = valid & ~water & ~noise
    urban -= urban.min()
    urban *= 1.2 / max(float(urban.max()), 1e-6)
    urban += 0.4
    urban *= prof.ps_fraction / float(urban[land].mean())
    np.minimum(urban, 0.5, out=urban)
    ps_mask = land & (crng.random((rows, cols), dtype=np.float32) < urban)
    del urban
    ds_mask = land & ~ps_mask

    srng = _rng(seed, "scatterers")
    amp0 = 50.0
    sigma_th = prof.thermal_rel * amp0
    a_bg = srng.standard_normal((rows, cols), dtype=np.float32)
    a_bg *= 0.25
    a_bg += 0.4 * texture
    del texture
    np.exp(a_bg, out=a_bg)
    a_bg *= amp0
    psi = _uniform32(srng, 0.0, 2 * np.pi, (rows, cols))
    coh = np.empty((rows, cols), dtype=np.complex64)
    coh.real = np.cos(psi)
    coh.imag = np.sin(psi)
    del psi
    a_ar = np.zeros((rows, cols), dtype=np.float32)
    sig2 = np.zeros((rows, cols), dtype=np.float32)
    log_alpha = np.zeros((rows, cols), dtype=np.float32)

    # distributed scatterers: coherent part + AR(1) decorrelating part + thermal noise
    lo, hi = prof.ds_coh_inf
    mix = srng.standard_normal((rows, cols), dtype=np.float32)
    mix *= 0.2
    mix += 0.5 + 0.25 * mod_f
    np.clip(mix, 0.0, 1.0, out=mix)
    gam_inf = mix
    gam_inf *= hi - lo
    gam_inf += lo
    alpha12 = _uniform32(srng, *prof.ds_alpha12, (rows, cols))
    short = None
    if ds_short_fraction > 0:  # own stream: the draws above and below are those of the default
        shrng = _rng(seed, "ds_short")
        short = _short_ds_mask(shrng, grid, ds_mask, ds_short_fraction)
        gam_inf[short] = 0.0
        alpha12[short] = _uniform32(shrng, *ds_short_alpha12, int(short.sum()))
    scale = np.where(ds_mask, a_bg * np.sqrt(gam_inf), np.float32(0.0))
    a_ar[ds_mask] = (a_bg * np.sqrt(1.0 - gam_inf))[ds_mask]
    sig2[ds_mask] = sigma_th**2
    log_alpha[ds_mask] = np.log(alpha12[ds_mask])
    if short is not None:
        _h5_write(h5, "coherence_12day", np.where(ds_mask, alpha12, np.float32(0.0)), "1",
                  "12-day correlation alpha12 of the decorrelating part of distributed "
                  "scatterers (classes 3 and 5; 0 elsewhere)")  # fmt: skip
    del alpha12
    _h5_write(h5, "temporal_coherence_inf", np.where(ds_mask, gam_inf, np.float32(0.0)), "1",
              "long-term coherence of distributed scatterers")  # fmt: skip
    del gam_inf, mix
    # noise pixels and water: independent complex Gaussian at every date
    sig2[noise] = a_bg[noise] ** 2 + sigma_th**2
    sig2[water] = (0.1 * a_bg[water]) ** 2 + sigma_th**2

    # persistent scatterers: A_ps exp(j psi) + clutter of power a_bg^2 + thermal
    ps_r, ps_c = np.nonzero(ps_mask)
    n_ps = ps_r.size
    ps_da = _uniform32(srng, *prof.ps_da, n_ps)
    clutter2 = a_bg[ps_r, ps_c].astype(np.float64) ** 2 + sigma_th**2
    a_ps = np.sqrt(clutter2) / (np.sqrt(2.0) * ps_da)
    scale[ps_r, ps_c] = a_ps
    sig2[ps_r, ps_c] = clutter2
    coh *= scale
    del scale

    # leakage of each PS into its 8 neighbours through the SLC point-target response; a
    # neighbour whose leaked amplitude is at least its own clutter amplitude is the PS's sidelobe
    u_rg = _uniform32(srng, -0.5, 0.5, n_ps)
    u_az = _uniform32(srng, -0.5, 0.5, n_ps)
    peak = _point_response(u_rg * S1_RANGE_SAMPLING) * _point_response(u_az * S1_AZIMUTH_SAMPLING)
    parts: list[tuple[np.ndarray, ...]] = []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            rr, cc = ps_r + dr, ps_c + dc
            inside = (rr >= 0) & (rr < rows) & (cc >= 0) & (cc < cols)
            take = np.flatnonzero(inside)
            rr, cc = rr[inside], cc[inside]
            coef = (
                _point_response((dc - u_rg[take]) * S1_RANGE_SAMPLING)
                * _point_response((dr - u_az[take]) * S1_AZIMUTH_SAMPLING)
                / peak[take]
            )
            leak2 = (coef * a_ps[take]) ** 2
            dominant = ds_mask[rr, cc] & (
                leak2 >= a_bg[rr, cc].astype(np.float64) ** 2 + sigma_th**2
            )
            parts.append((rr[dominant], cc[dominant], take[dominant], coef[dominant]))
    sl_r, sl_c, sl_p, sl_k = (np.concatenate(x) for x in zip(*parts, strict=True))
    # a pixel next to two PS is the sidelobe of the one leaking the most into it
    order = np.lexsort((-np.abs(sl_k * a_ps[sl_p]), sl_r * cols + sl_c))
    first = np.unique((sl_r * cols + sl_c)[order], return_index=True)[1]
    keep = np.sort(order[first])
    sl_r, sl_c, sl_p = (
        sl_r[keep].astype(np.int64),
        sl_c[keep].astype(np.int64),
        sl_p[keep].astype(np.int64),
    )
    sl_k = sl_k[keep].astype(np.float32)
    sl_bg = a_bg[sl_r, sl_c].astype(np.float64) ** 2 + sigma_th**2
    sl_da = np.sqrt(sl_bg) / (np.sqrt(2.0) * np.abs(sl_k) * a_ps[sl_p])
    del a_bg

    pixel_class = np.zeros((rows, cols), dtype=np.uint8)
    pixel_class[ds_mask] = 3
    if short is not None:
        pixel_class[short] = 5
    pixel_class[noise | water] = 4
    pixel_class[ps_mask] = 1
    pixel_class[sl_r, sl_c] = 2
    _h5_write(h5, "valid_mask", valid.astype(np.uint8), "1", "1 = SLC data, 0 = zero-filled border")
    _h5_write(h5, "pixel_class", pixel_class, "class", "see the file attribute class_names")
    _h5_write(
        h5, "ps_mask", ps_mask.astype(np.uint8), "1", "true persistent scatterers (no sidelobes)"
    )
    _h5_write(
        h5,
        "ps_sidelobe_mask",
        (pixel_class == 2).astype(np.uint8),
        "1",
        "sidelobe pixels of bright PS",
    )
    _h5_write(h5, "water_mask", water.astype(np.uint8), "1")
    scene = _Scene(
        pixel_class=pixel_class, coh=coh, a_ar=a_ar, sig2=sig2, log_alpha=log_alpha,
        ps_r=ps_r.astype(np.int64), ps_c=ps_c.astype(np.int64), ps_da=ps_da, a_ps=a_ps,
        sl_r=sl_r, sl_c=sl_c, sl_p=sl_p, sl_k=sl_k, sl_da=sl_da, ds_mask=ds_mask, sigma_th=sigma_th,
    )  # fmt: skip
    return scene, mod_f


@dataclass
class _Deformation:
    """LOS deformation model and DEM errors."""

    vel: np.ndarray  # mm/yr, float32
    seas_amp: np.ndarray  # mm, float32
    seas_phase: float  # rad
    seas_t: np.ndarray  # sin(2 pi tau + phi) - sin(2 pi tau_ref + phi) per date
    bowl: dict


def _bowl_anywhere(rng: np.random.Generator, valid: np.ndarray) -> tuple[int, int]:
    """A pixel drawn uniformly among the ``valid`` ones (rejection sampling over the raster)."""
    rows, cols = valid.shape
    for _ in range(100_000):
        i, j = int(rng.integers(rows)), int(rng.integers(cols))
        if valid[i, j]:
            return i, j
    flat = np.flatnonzero(valid)  # (practically never: valid pixels are most of the scene)
    i, j = np.unravel_index(int(flat[rng.integers(flat.size)]), valid.shape)
    return int(i), int(j)


def _build_deformation(
    seed: int, prof: Profile, geom: _Geometry, east: np.ndarray, north: np.ndarray,
    scene: _Scene, mod_f: np.ndarray, dec_year: np.ndarray, t_years: np.ndarray, ref_ix: int,
    h5: h5py.File, bowl_centre: tuple[float, float] | None = None, bowl_anywhere: bool = False,
) -> tuple[_Deformation, np.ndarray]:  # fmt: skip
    """Subsidence bowl + regional rate + seasonal term, and the per-pixel DEM error (m;
    sidelobe pixels carry their PS's value).

    The bowl centre is drawn within the profile's central ``bowl_centre_spread`` of each side,
    or (``bowl_anywhere``) uniformly among the valid pixels, or put at the fractions
    ``bowl_centre`` (line, sample) of the scene; the profile draw is always made, so the other
    draws of the stream stay those of the default.
    """
    rows, cols = mod_f.shape
    drng = _rng(seed, "deformation")
    lo, hi = 0.5 - prof.bowl_centre_spread / 2, 0.5 + prof.bowl_centre_spread / 2
    bi = int(drng.integers(int(rows * lo), max(int(rows * lo) + 1, int(rows * hi))))
    bj = int(drng.integers(int(cols * lo), max(int(cols * lo) + 1, int(cols * hi))))
    placement = "profile"
    if bowl_anywhere:
        bi, bj = _bowl_anywhere(_rng(seed, "bowl"), scene.pixel_class > 0)
        placement = "anywhere"
    elif bowl_centre is not None:
        bi = int(round(bowl_centre[0] * (rows - 1)))
        bj = int(round(bowl_centre[1] * (cols - 1)))
        placement = "given"
    bowl_e, bowl_n = float(east[bi, bj]), float(north[bi, bj])
    bowl_sigma = prof.bowl_sigma_frac * geom.short_side
    r2 = (east - np.float32(bowl_e)) ** 2 + (north - np.float32(bowl_n)) ** 2
    r2 /= np.float32(bowl_sigma**2)
    _h5_write(
        h5, "bowl_mask", (r2 < 4.0).astype(np.uint8), "1", "within 2 sigma of the bowl centre"
    )
    _h5_write(
        h5, "bowl_core_mask", (r2 < 1.0).astype(np.uint8), "1", "within 1 sigma of the bowl centre"
    )
    vel = np.exp(-0.5 * r2)
    del r2
    vel *= np.float32(prof.bowl_peak_mm_yr)
    if prof.regional_std_mm_yr > 0:
        grid = _coarse_grid(rows, cols, geom.az_spacing, geom.rg_ground)
        vel += np.float32(prof.regional_std_mm_yr) * _smooth_field(
            drng, grid, rows, cols, 4.0, 4.0 * geom.extent
        )
    seas_amp = mod_f - mod_f.min()
    seas_amp *= np.float32(0.7 * prof.seasonal_amp_mm / max(float(seas_amp.max()), 1e-6))
    seas_amp += np.float32(0.3 * prof.seasonal_amp_mm)
    seas_phase = float(drng.uniform(-np.pi, np.pi))
    seas_t = np.sin(2 * np.pi * dec_year + seas_phase) - np.sin(
        2 * np.pi * dec_year[ref_ix] + seas_phase
    )
    dem_err = np.zeros((rows, cols), dtype=np.float32)
    ds = scene.ds_mask
    dem_err[ds] = drng.standard_normal(int(ds.sum()), dtype=np.float32) * np.float32(
        prof.dem_err_ds_std_m
    )
    dem_err[scene.ps_r, scene.ps_c] = drng.normal(0.0, prof.dem_err_ps_std_m, scene.ps_r.size)
    dem_err[scene.sl_r, scene.sl_c] = dem_err[scene.ps_r[scene.sl_p], scene.ps_c[scene.sl_p]]
    tc = t_years - t_years.mean()
    fit_gain = float(np.sum(tc * (seas_t - seas_t.mean())) / np.sum(tc**2))
    _h5_write(
        h5,
        "velocity_mm_yr",
        vel,
        "mm/yr",
        "linear LOS rate of the deformation model (toward satellite +)",
    )
    _h5_write(
        h5, "velocity_lsfit_mm_yr", vel + np.float32(fit_gain) * seas_amp, "mm/yr",
        "slope of the least-squares line through the true displacement at the acquisition dates",
    )  # fmt: skip
    _h5_write(h5, "seasonal_amp_mm", seas_amp, "mm", "amplitude of the seasonal LOS term")
    _h5_write(h5, "dem_error_m", dem_err, "m", "true scatterer height minus DEM height")
    bowl = {
        "center_e_m": bowl_e,
        "center_n_m": bowl_n,
        "sigma_m": bowl_sigma,
        "peak_mm_yr": prof.bowl_peak_mm_yr,
        "center_row": bi,
        "center_col": bj,
        "placement": placement,
    }
    return _Deformation(vel, seas_amp, seas_phase, seas_t, bowl), dem_err


@dataclass
class _Baselines:
    """Secondary orbit offsets in the zero-Doppler plane and the ISCE text baselines."""

    b_cross0: np.ndarray  # offset toward the look side, horizontal (m), per date
    b_up0: np.ndarray  # vertical offset (m), per date
    rate_cross: np.ndarray  # orbit convergence (m/s)
    rate_up: np.ndarray
    bperp_txt: np.ndarray  # 'Bperp (average)' of baselines/*.txt, 0 at the reference
    bpar_txt: np.ndarray

    def components(self, k: int, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cross-track and vertical offsets (m) of date ``k`` at times ``t`` (s)."""
        return self.b_cross0[k] + self.rate_cross[k] * t, self.b_up0[k] + self.rate_up[k] * t

    def at(self, k: int, t: np.ndarray, look: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ISCE-signed (Bperp, Bpar) in m of date ``k`` at times ``t`` (s), look angles (rad).

        ISCE: Bperp = sign(((T - M) x (S - M)) . v_M) |perp part of S - M|, Bpar = (S - M) . l.
        With the offset split into cross (toward the look side) and up components, that is
        Bperp = -(cross cos(look) + up sin(look)), Bpar = cross sin(look) - up cos(look).
        """
        bc, bu = self.components(k, t)
        return -(bc * np.cos(look) + bu * np.sin(look)), bc * np.sin(look) - bu * np.cos(look)


def _write_baselines(
    outdir: Path, seed: int, prof: Profile, geom: _Geometry, bursts: list[_Burst],
    date_str: list[str], ref_ix: int, text_copies: bool,
) -> _Baselines:  # fmt: skip
    """Draw the baselines and write ``baselines/REF_SEC/REF_SEC.txt`` (computeBaseline.py) and
    ``merged/baselines/SEC/SEC`` grids with ``.xml``, ``.vrt`` and ``.full.vrt``
    (baselineGrid.py)."""
    n_dates = len(date_str)
    rows, cols = geom.t_rows.size, geom.ranges.size
    brng = _rng(seed, "baselines")
    bperp_c = brng.normal(0.0, prof.bperp_std_m, n_dates)
    bpar_c = brng.normal(0.0, prof.bpar_std_m, n_dates)
    rate_cross = brng.normal(0.0, 0.02, n_dates)
    rate_up = brng.normal(0.0, 0.02, n_dates)
    bperp_c[ref_ix] = bpar_c[ref_ix] = rate_cross[ref_ix] = rate_up[ref_ix] = 0.0
    th = geom.theta_center
    base = _Baselines(
        b_cross0=-bperp_c * math.cos(th) + bpar_c * math.sin(th),
        b_up0=-bperp_c * math.sin(th) - bpar_c * math.cos(th),
        rate_cross=rate_cross,
        rate_up=rate_up,
        bperp_txt=np.zeros(n_dates),
        bpar_txt=np.zeros(n_dates),
    )
    r0, r_far = float(geom.ranges[0]), float(geom.ranges[-1])
    t0 = float(geom.t_rows[0])
    burst_mid_t = np.array(
        [t0 + (b.start_line + 0.5 * (b.n_lines - 1)) * AZIMUTH_TIME_INTERVAL_S for b in bursts]
    )
    mid_look = _look_angle(np.array([r0 + 0.5 * (cols - 1) * RANGE_PIXEL_M]))
    # baselineGrid.py: ceil(range span / 7 km) samples x ceil(duration in s) lines, corners
    # included; ISCE divides by (n - 1), so at least 2 of each here (small scenes)
    n_grid_r = max(2, math.ceil((r_far - r0) / BASELINE_GRID_SPACING_M))
    n_grid_a = max(2, math.ceil((rows - 1) * AZIMUTH_TIME_INTERVAL_S))
    grid_look = _look_angle(np.linspace(r0, r_far, n_grid_r))
    grid_t = np.linspace(t0, float(geom.t_rows[-1]), n_grid_a)
    ref_str = date_str[ref_ix]
    for k in range(n_dates):
        bp, bq = base.at(k, burst_mid_t, mid_look)
        base.bperp_txt[k] = float(np.mean(bp))
        base.bpar_txt[k] = float(np.mean(bq))
        if k == ref_ix:
            continue
        pair = f"{ref_str}_{date_str[k]}"
        text = (
            f"swath: IW1\nBperp (average): {base.bperp_txt[k]!s}\n"
            f"Bpar (average): {base.bpar_txt[k]!s}\n"
        )
        _write_text(outdir / "baselines" / pair / f"{pair}.txt", text)
        if text_copies:
            _write_text(outdir / "merged" / "baselines" / pair / f"{pair}.txt", text)
        grid_bperp, _ = base.at(k, grid_t[:, None], grid_look[None, :])
        gpath = outdir / "merged" / "baselines" / date_str[k] / date_str[k]
        with atomic_output(gpath) as tmp:
            grid_bperp.astype("<f4").tofile(tmp)
        write_sidecars(
            gpath, width=n_grid_r, length=n_grid_a, dtype="f4", scheme="BIP",
            recorded_path=f"{ISCE_ROOT}/merged/baselines/{date_str[k]}/{date_str[k]}", envi=False,
        )  # fmt: skip
        _write_text(
            gpath.with_name(f"{date_str[k]}.full.vrt"),
            resampled_vrt(
                source_vrt=f"{date_str[k]}.vrt", src_width=n_grid_r, src_length=n_grid_a,
                dst_width=cols, dst_length=rows,
            ),
        )  # fmt: skip
    return base


@dataclass
class _DateScalars:
    """Per-date gains, noise factors, atmosphere and ramp parameters."""

    cal: np.ndarray
    atm_std: np.ndarray
    strat: np.ndarray
    ramps: np.ndarray
    noise_factor: np.ndarray
    noisy_date: int | None


def _date_scalars(seed: int, prof: Profile, n_dates: int, ref_ix: int) -> _DateScalars:
    """Draw per-date gains (log-normal), atmosphere std (rad), stratified coefficient (rad/km),
    ramps (rad across the scene) and the noisy date (never the reference)."""
    vrng = _rng(seed, "date_scalars")
    cal = np.exp(vrng.normal(0.0, prof.calib_sigma, n_dates))
    atm_std = vrng.uniform(*prof.atm_std_rad, n_dates)
    strat = vrng.normal(0.0, prof.strat_std_rad_per_km, n_dates)
    ramps = vrng.normal(0.0, prof.ramp_std_rad, (n_dates, 2))
    noise_factor = np.ones(n_dates)
    noisy = None
    if prof.noisy_date_factor != 1.0 and n_dates > 2:
        noisy = int(vrng.choice([k for k in range(n_dates) if k != ref_ix]))
        noise_factor[noisy] = prof.noisy_date_factor
    return _DateScalars(cal, atm_std, strat, ramps, noise_factor, noisy)


@dataclass
class _PhaseTerms:
    """Static phase coefficients: DEM-error terms (rad per m of orbit offset), height (km)."""

    q1: np.ndarray  # float32: SLC phase gets b_cross * q1 + b_up * q2
    q2: np.ndarray
    hz: np.ndarray  # float32 height above the scene mean, km (stratified delay)
    ps_q1: np.ndarray  # q1, q2 and cos/sin(look angle) at the PS, float64
    ps_q2: np.ndarray
    ps_cos: np.ndarray
    ps_sin: np.ndarray


def _phase_terms(
    geom: _Geometry, hgt: np.ndarray, inc_deg: np.ndarray, look_deg: np.ndarray,
    dem_err: np.ndarray, scene: _Scene,
) -> _PhaseTerms:  # fmt: skip
    """DEM-error coefficients such that ref*conj(sec) holds +4 pi/lambda Bperp dz/(R sin inc).

    The SLC of a date with orbit offset (cross, up) holds -4 pi/lambda Bperp dz/(R sin inc)
    with Bperp = -(cross cos(look) + up sin(look)), i.e. cross * q1 + up * q2.
    """
    look = np.radians(look_deg)
    q1 = np.float32(_FOUR_PI_OVER_LAMBDA) * dem_err
    q1 /= geom.ranges.astype(np.float32)[None, :] * np.sin(np.radians(inc_deg))
    q2 = q1 * np.sin(look)
    q1 *= np.cos(look)
    pr, pc = scene.ps_r, scene.ps_c
    hv = hgt[scene.pixel_class > 0]
    hz = hgt - np.float32(hv.mean() if hv.size else 0.0)
    hz /= np.float32(1000.0)
    return _PhaseTerms(
        q1=q1, q2=q2, hz=hz,
        ps_q1=q1[pr, pc].astype(np.float64), ps_q2=q2[pr, pc].astype(np.float64),
        ps_cos=np.cos(look[pr, pc]).astype(np.float64),
        ps_sin=np.sin(look[pr, pc]).astype(np.float64),
    )  # fmt: skip


def _write_dates(
    outdir: Path, seed: int, dates: list[_dt.date], t_years: np.ndarray, geom: _Geometry,
    scene: _Scene, defo: _Deformation, base: _Baselines, sc: _DateScalars, grid: _CoarseGrid,
    terms: _PhaseTerms, disp_ds: h5py.Dataset | None, progress: bool,
    phase_ds: dict[str, h5py.Dataset] | None = None,
) -> np.ndarray:  # fmt: skip
    """Write every date's SLC (and the truth cubes: displacement ``disp_ds``, the phase terms
    ``phase_ds`` of PHASE_CUBES); return the nuisance phase (rad) of each date at the PS,
    (n_ps, n_dates) float32."""
    rows, cols = scene.pixel_class.shape
    n_dates = len(dates)
    ps_r, ps_c = scene.ps_r, scene.ps_c
    geo_phase = np.mod(-_FOUR_PI_OVER_LAMBDA * geom.ranges, 2 * np.pi)
    yn = (np.arange(rows) - 0.5 * (rows - 1)) / rows
    xn = (np.arange(cols) - 0.5 * (cols - 1)) / cols
    k_def = _FOUR_PI_OVER_LAMBDA / 1000.0
    nuisance = np.empty((ps_r.size, n_dates), dtype=np.float32)
    z = np.zeros((rows, cols), dtype=np.complex64)
    slc = np.empty((rows, cols), dtype=np.complex64)
    phase = np.empty((rows, cols), dtype=np.float32)
    sl_flat = scene.sl_r * cols + scene.sl_c
    sl_prim_flat = ps_r[scene.sl_p] * cols + ps_c[scene.sl_p]
    sl_coh = scene.sl_k * scene.coh.reshape(-1)[sl_prim_flat]
    slc_root = outdir / "merged" / "SLC"
    term_buf = np.empty((rows, cols), dtype=np.float32) if phase_ds else None
    for k in tqdm(range(n_dates), desc="synthetic SLCs", unit="date", disable=not progress):
        rng_k = _rng(seed, "date", k)
        atm = sc.atm_std[k] * _powerlaw_field(rng_k, grid, 8.0 / 3.0, 20000.0)
        bc_rows, bu_rows = base.components(k, geom.t_rows)
        dt_factor = 0.0 if k == 0 else (dates[k] - dates[k - 1]).days / 12.0
        extra = (sc.noise_factor[k] ** 2 - 1.0) * scene.sigma_th**2
        _date_kernel(
            rng_k, k == 0, dt_factor, sc.cal[k], extra,
            geo_phase, k_def * t_years[k], k_def * defo.seas_t[k], bc_rows, bu_rows,
            atm, grid.iy0, grid.wy, grid.ix0, grid.wx, sc.strat[k], terms.hz, sc.ramps[k, 0],
            sc.ramps[k, 1], yn, xn, defo.vel, defo.seas_amp, terms.q1, terms.q2, scene.pixel_class,
            scene.coh, scene.a_ar, scene.sig2, scene.log_alpha, z, slc, phase,
        )  # fmt: skip
        if sl_flat.size:
            leak = (
                sc.cal[k] * sl_coh * np.exp(1j * phase.reshape(-1)[sl_prim_flat].astype(np.float64))
            )
            slc.reshape(-1)[sl_flat] += leak.astype(np.complex64)
        d = dates[k].strftime("%Y%m%d")
        slc_path = slc_root / d / f"{d}.slc.full"
        with atomic_output(slc_path) as tmp:
            slc.tofile(tmp)
        write_sidecars(
            slc_path, width=cols, length=rows, dtype="c8", scheme="BIP",
            recorded_path=f"{ISCE_ROOT}/merged/SLC/{d}/{d}.slc.full", image_type="slc",
        )  # fmt: skip
        nuisance[:, k] = _nuisance_points(
            ps_r, ps_c, atm, grid.iy0, grid.wy, grid.ix0, grid.wx, sc.strat[k], terms.hz,
            sc.ramps[k, 0], sc.ramps[k, 1], yn, xn,
        )  # fmt: skip
        if disp_ds is not None:
            disp_ds[k] = defo.vel * np.float32(t_years[k]) + defo.seas_amp * np.float32(
                defo.seas_t[k]
            )
        for name, ds in (phase_ds or {}).items():
            _phase_term_grid(
                PHASE_CUBES[name][0], atm, grid.iy0, grid.wy, grid.ix0, grid.wx, sc.strat[k],
                terms.hz, sc.ramps[k, 0], sc.ramps[k, 1], yn, xn, bc_rows, bu_rows, terms.q1,
                terms.q2, term_buf,
            )  # fmt: skip
            ds[k] = term_buf
    return nuisance


def _write_ps_truth(
    h5: h5py.File, scene: _Scene, defo: _Deformation, base: _Baselines, terms: _PhaseTerms,
    geom: _Geometry, t_years: np.ndarray, nuisance: np.ndarray, ps_dem_err: np.ndarray, ref_ix: int,
) -> None:  # fmt: skip
    """Group ``ps``: PS then sidelobe pixels, with their PS's displacement and phase terms."""
    n_ps, n_sl = scene.ps_r.size, scene.sl_r.size
    n_dates = t_years.size
    pr, pc = scene.ps_r, scene.ps_c
    prim = np.concatenate([np.arange(n_ps), scene.sl_p]).astype(np.int64)
    da_all = np.concatenate([scene.ps_da, scene.sl_da]).astype(np.float32)
    g = h5.create_group("ps")
    _h5_write(
        g, "rows", np.concatenate([pr, scene.sl_r]).astype(np.int32), "line", "0-based azimuth line"
    )
    _h5_write(
        g,
        "cols",
        np.concatenate([pc, scene.sl_c]).astype(np.int32),
        "sample",
        "0-based range sample",
    )
    _h5_write(g, "is_sidelobe", np.repeat(np.array([0, 1], np.uint8), [n_ps, n_sl]), "1",
              "1 = sidelobe pixel of the PS at primary_index")  # fmt: skip
    _h5_write(
        g,
        "primary_index",
        prim.astype(np.int32),
        "index",
        "0-based entry of the primary PS in this group",
    )
    _h5_write(g, "amp_dispersion_nominal", da_all, "1", "expected amplitude dispersion")
    _h5_write(g, "scr", (1.0 / (2.0 * da_all.astype(np.float64) ** 2)).astype(np.float32), "1",
              "signal-to-clutter ratio, 1/(2 D_A^2)")  # fmt: skip
    _h5_write(g, "dem_error_m", ps_dem_err[prim], "m", "true scatterer height minus DEM height")
    vel = defo.vel[pr, pc]
    _h5_write(g, "velocity_mm_yr", vel[prim], "mm/yr")
    disp = np.empty((n_ps, n_dates), dtype=np.float32)
    seas = defo.seas_amp[pr, pc]
    for k in range(n_dates):
        disp[:, k] = vel * np.float32(t_years[k]) + seas * np.float32(defo.seas_t[k])
    _h5_write(g, "displacement_mm", disp[prim], "mm", "true LOS displacement per date")
    del disp
    row_t = geom.t_rows[pr]
    dem = np.empty((n_ps, n_dates), dtype=np.float32)
    for k in range(n_dates):
        bc, bu = base.components(k, row_t)
        dem[:, k] = bc * terms.ps_q1 + bu * terms.ps_q2
    dem = dem[:, [ref_ix]] - dem
    _h5_write(
        g,
        "dem_ifg_rad",
        dem[prim],
        "rad",
        "+4pi/lambda*bperp*dem_error/(R sin inc), ifg convention",
    )
    del dem
    _h5_write(g, "nuisance_ifg_rad", (nuisance[:, [ref_ix]] - nuisance)[prim], "rad",
              "nuisance(ref) - nuisance(date): atmosphere + stratified + orbital ramp")  # fmt: skip
    bperp = np.empty((n_ps, n_dates), dtype=np.float32)
    for k in range(n_dates):
        bc, bu = base.components(k, row_t)
        bperp[:, k] = -(bc * terms.ps_cos + bu * terms.ps_sin)
    _h5_write(g, "bperp_m", bperp[prim], "m", "perpendicular baseline at the pixel (ISCE sign)")


def generate_stack(
    outdir: str | Path,
    profile: str = "easy",
    rows: int = 200,
    cols: int = 400,
    n_dates: int | None = None,
    seed: int = 0,
    reference_date: str | None = None,
    start_date: str | None = None,
    truth_cube: str = "auto",
    pass_direction: str = "DESCENDING",
    multilooked: bool = True,
    baseline_text_copies: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    center_lat: float = 37.0,
    center_lon: float = -120.5,
    bowl_centre: tuple[float, float] | None = None,
    bowl_anywhere: bool = False,
    ds_short_fraction: float = 0.0,
    ds_short_alpha12: tuple[float, float] = (0.5, 0.9),
) -> dict:
    """Write a synthetic ISCE2 topsStack stack to ``outdir`` and its truth to ``outdir/truth.h5``.

    ``rows`` x ``cols`` are azimuth lines x range samples of the merged rasters; ``n_dates``
    defaults to the profile's; ``reference_date`` (YYYYMMDD) defaults to the middle date;
    ``start_date`` (YYYYMMDD) to 20210105; ``truth_cube`` ('auto'|'yes'|'no') stores the full
    (dates, rows, cols) displacement cube (auto: when it has at most 20 million values), and
    with it the cubes of the phase terms of every date (PHASE_CUBES: atmosphere, orbital ramp,
    DEM error).
    ``pass_direction`` is 'DESCENDING' (heading -168 deg) or 'ASCENDING' (heading -12 deg).
    ``baseline_text_copies`` also puts the text baselines in ``merged/baselines/REF_SEC/``.
    ``bowl_centre`` = (line fraction, sample fraction), each in [0, 1], puts the subsidence
    bowl centre there; ``bowl_anywhere`` draws it uniformly among the valid pixels of the whole
    scene (default: within the profile's central ``bowl_centre_spread``).
    ``ds_short_fraction`` (0..1) of the distributed scatterers, in spatial patches, become
    class 5 'distributed_short': no long-term coherence, 12-day correlation uniform in
    ``ds_short_alpha12``. With these four at their defaults the stack is the same as without
    them, byte for byte.
    Everything random derives from ``seed``: the same arguments give byte-identical files.
    Returns the paths written and a summary (counts, dates, timings).
    """
    wall0 = time.perf_counter()
    log = get_logger()
    if profile not in PROFILES:
        raise StampsError(f"profile: '{profile}' is not one of {', '.join(PROFILES)}")
    prof = PROFILES[profile]
    n_dates = prof.n_dates if n_dates is None else int(n_dates)
    rows, cols, seed = int(rows), int(cols), int(seed)
    if rows < 24 or cols < 48:
        raise StampsError(f"rows x cols: {rows} x {cols} is too small (at least 24 x 48)")
    if n_dates < 2:
        raise StampsError(f"dates: {n_dates} is too few (at least 2)")
    if seed < 0:
        raise StampsError(f"seed: {seed} must be a non-negative integer")
    if truth_cube not in ("auto", "yes", "no"):
        raise StampsError(f"truth_cube: '{truth_cube}' is not auto, yes or no")
    if bowl_centre is not None:
        if bowl_anywhere:
            raise StampsError("bowl centre: give either bowl_centre or bowl_anywhere, not both")
        bowl_centre = tuple(float(x) for x in bowl_centre)
        if len(bowl_centre) != 2 or not all(0.0 <= x <= 1.0 for x in bowl_centre):
            raise StampsError(
                f"bowl centre: {bowl_centre} must be 2 fractions (line, sample) in [0, 1]"
            )
    bowl_anywhere = bool(bowl_anywhere)
    ds_short_fraction = float(ds_short_fraction)
    if not 0.0 <= ds_short_fraction <= 1.0:
        raise StampsError(f"ds short fraction: {ds_short_fraction} is not in [0, 1]")
    ds_short_alpha12 = tuple(float(x) for x in ds_short_alpha12)
    if len(ds_short_alpha12) != 2 or not 0.0 < ds_short_alpha12[0] <= ds_short_alpha12[1] < 1.0:
        raise StampsError(
            f"ds short coherence: {ds_short_alpha12} must be LO HI with 0 < LO <= HI < 1"
        )
    pass_direction = pass_direction.upper()
    if pass_direction not in ("DESCENDING", "ASCENDING"):
        raise StampsError(f"pass_direction: '{pass_direction}' is not DESCENDING or ASCENDING")
    heading_nominal = -168.0 if pass_direction == "DESCENDING" else -12.0
    start = parse_yyyymmdd(start_date or "20210105", "start date")
    dates = make_dates(n_dates, start, prof, _rng(seed, "dates"))
    date_str = [d.strftime("%Y%m%d") for d in dates]
    if reference_date is None:
        ref_ix = n_dates // 2
    else:
        parse_yyyymmdd(reference_date, "reference date")
        if reference_date not in date_str:
            raise StampsError(
                f"reference date: {reference_date} is not an acquisition date "
                f"({n_dates} dates {date_str[0]}..{date_str[-1]}, e.g. {', '.join(date_str[:3])})"
            )
        ref_ix = date_str.index(reference_date)
    ref_str = date_str[ref_ix]
    t_years = np.array([(d - dates[ref_ix]).days / 365.25 for d in dates])
    dec_year = np.array([decimal_year(d) for d in dates])
    outdir = Path(outdir)
    _prepare_outdir(outdir, overwrite)
    log.info(
        "synthetic %s stack: %d x %d, %d dates %s..%s, reference %s, seed %d",
        profile, rows, cols, n_dates, date_str[0], date_str[-1], ref_str, seed,
    )  # fmt: skip

    def stage(name: str) -> None:
        log.debug(
            "%s: %.1f s, peak RSS %.0f MiB", name, time.perf_counter() - wall0, peak_memory_mb()
        )

    truth_path = outdir / "truth.h5"
    tmp_truth = outdir / f".truth.h5.tmp-{os.getpid()}"
    h5 = h5py.File(tmp_truth, "w")
    try:
        geom, pix = _build_geometry(
            outdir, rows, cols, seed, prof, heading_nominal, center_lat, center_lon, multilooked, h5
        )
        stage("geometry")
        bursts, valid = _make_bursts(rows, cols, _rng(seed, "bursts"))
        grid = _coarse_grid(rows, cols, geom.az_spacing, geom.rg_ground)
        scene, mod_f = _build_scene(
            seed, prof, geom, pix["hgt"], valid, grid, h5, ds_short_fraction, ds_short_alpha12
        )
        del valid
        stage("scene")
        defo, dem_err = _build_deformation(
            seed,
            prof,
            geom,
            pix.pop("east"),
            pix.pop("north"),
            scene,
            mod_f,
            dec_year,
            t_years,
            ref_ix,
            h5,
            bowl_centre,
            bowl_anywhere,
        )
        del mod_f
        terrain_height = float(pix["hgt"][scene.pixel_class > 0].mean())
        terms = _phase_terms(
            geom, pix.pop("hgt"), pix.pop("inc_deg"), pix.pop("look_deg"), dem_err, scene
        )
        ps_dem_err = dem_err[scene.ps_r, scene.ps_c]
        del dem_err
        stage("deformation")
        base = _write_baselines(
            outdir, seed, prof, geom, bursts, date_str, ref_ix, baseline_text_copies
        )
        sc = _date_scalars(seed, prof, n_dates, ref_ix)
        first_line_utc = _dt.datetime.combine(
            dates[ref_ix],
            _dt.time(14, 1, 12, 345678)
            if pass_direction == "DESCENDING"
            else _dt.time(1, 53, 40, 123456),
        )
        _write_text(
            outdir / "reference" / "IW1.xml",
            _reference_product_xml(
                bursts=bursts, cols=cols, first_line_utc=first_line_utc, orbit=geom.orbit,
                t_first_line=float(geom.t_rows[0]), starting_range=float(geom.ranges[0]),
                pass_direction=pass_direction, terrain_height=terrain_height,
            ),
        )  # fmt: skip
        params = {
            "args": {
                "profile": profile, "rows": rows, "cols": cols, "n_dates": n_dates, "seed": seed,
                "reference_date": ref_str, "start_date": start.strftime("%Y%m%d"),
                "truth_cube": truth_cube, "pass_direction": pass_direction,
                "multilooked": multilooked, "center_lat": center_lat, "center_lon": center_lon,
                "bowl_centre": None if bowl_centre is None else list(bowl_centre),
                "bowl_anywhere": bowl_anywhere, "ds_short_fraction": ds_short_fraction,
                "ds_short_alpha12": list(ds_short_alpha12),
            },
            "profile": asdict(prof),
            "wavelength_m": WAVELENGTH_M,
            "range_pixel_size_m": RANGE_PIXEL_M,
            "azimuth_time_interval_s": AZIMUTH_TIME_INTERVAL_S,
            "starting_range_m": float(geom.ranges[0]),
            "satellite_altitude_m": SATELLITE_ALTITUDE_M,
            "earth_radius_m": EARTH_RADIUS_M,
            "azimuth_ground_spacing_m": geom.az_spacing,
            "range_ground_spacing_center_m": geom.rg_ground,
            "heading_nominal_deg": heading_nominal,
            "seasonal_phase_rad": defo.seas_phase,
            "noisy_date": None if sc.noisy_date is None else date_str[sc.noisy_date],
            "thermal_sigma": scene.sigma_th,
            "bowl": defo.bowl,
            "bursts": [asdict(b) for b in bursts],
        }  # fmt: skip
        attrs = {
            "generator": "stamps_python.synthetic (ISCE2 topsStack layout)",
            "profile": profile,
            "seed": seed,
            "reference_date": ref_str,
            "wavelength_m": WAVELENGTH_M,
            "heading_deg": geom.heading_deg,
            "heading_nominal_deg": heading_nominal,
            "pass_direction": pass_direction,
            "seasonal_phase_rad": defo.seas_phase,
            "class_names": json.dumps({str(k): v for k, v in CLASS_NAMES.items()}),
            "params_json": json.dumps(params, sort_keys=True),
            "conventions": _CONVENTIONS,
        }
        for key, value in attrs.items():
            h5.attrs[key] = value
        _h5_write(h5, "dates", np.array(date_str, dtype="S8"), "YYYYMMDD")
        _h5_write(h5, "reference_date", np.bytes_(ref_str), "YYYYMMDD")
        _h5_write(h5, "decimal_year", dec_year, "year")
        _h5_write(h5, "t_years", t_years, "year", "time since the reference date, days/365.25")
        _h5_write(
            h5,
            "bperp_m",
            base.bperp_txt,
            "m",
            "perpendicular baseline as in baselines/*.txt (ISCE sign)",
        )
        _h5_write(h5, "bpar_m", base.bpar_txt, "m", "parallel baseline as in baselines/*.txt")
        _h5_write(
            h5, "amp_calibration", sc.cal, "1", "amplitude gain of each date (SLC = gain * scene)"
        )
        _h5_write(
            h5, "atm_std_rad", sc.atm_std, "rad", "std of the turbulent atmosphere of each date"
        )
        _h5_write(h5, "strat_rad_per_km", sc.strat, "rad/km", "stratified phase per km of height")
        _h5_write(
            h5, "ramp_coeffs_rad", sc.ramps, "rad", "orbital ramp across the scene (azimuth, range)"
        )
        _h5_write(
            h5, "noise_factor", sc.noise_factor, "1", "thermal noise amplitude factor of each date"
        )
        _h5_write(
            h5, "seasonal_term", defo.seas_t, "1", "sin(2 pi tau + phi) - sin(2 pi tau_ref + phi)"
        )
        _h5_write(h5, "wavelength_m", WAVELENGTH_M, "m", "radar wavelength")
        _h5_write(h5, "heading_deg", geom.heading_deg, "deg",
                  "azimuth direction of the lat/lon grids, clockwise from north")  # fmt: skip
        cube = truth_cube == "yes" or (
            truth_cube == "auto" and rows * cols * n_dates <= TRUTH_CUBE_AUTO_MAX
        )
        disp_ds = None
        phase_ds = None
        if cube:
            disp_ds = _h5_cube(
                h5, "displacement_mm", (n_dates, rows, cols), "mm",
                "true LOS displacement (toward satellite +) relative to the reference date",
            )  # fmt: skip
            phase_ds = {
                name: _h5_cube(
                    h5,
                    name,
                    (n_dates, rows, cols),
                    "rad",
                    f"{what} of each date, as added to its SLC phase; "
                    "interferogram (reference x conj(date)) phase = X[ref] - X[date]",
                )  # fmt: skip
                for name, (_, what) in PHASE_CUBES.items()
            }
        stage("baselines and metadata")

        nuisance = _write_dates(
            outdir,
            seed,
            dates,
            t_years,
            geom,
            scene,
            defo,
            base,
            sc,
            grid,
            terms,
            disp_ds,
            progress,
            phase_ds,
        )
        stage("dates")
        _write_ps_truth(h5, scene, defo, base, terms, geom, t_years, nuisance, ps_dem_err, ref_ix)
        n_ps, n_sl = scene.ps_r.size, scene.sl_r.size
        n_short = int(np.count_nonzero(scene.pixel_class == 5))

        h5.attrs["complete"] = True
    except BaseException:
        h5.close()
        tmp_truth.unlink(missing_ok=True)
        raise
    h5.close()
    tmp_truth.replace(truth_path)

    elapsed = time.perf_counter() - wall0
    summary = {
        "outdir": str(outdir),
        "truth": str(truth_path),
        "profile": profile,
        "seed": seed,
        "shape": (rows, cols),
        "dates": date_str,
        "reference_date": ref_str,
        "n_ps": int(n_ps),
        "n_sidelobes": int(n_sl),
        "n_ds_short": int(n_short),
        "truth_cube": bool(cube),
        "bperp_m": [float(b) for b in base.bperp_txt],
        "heading_deg": geom.heading_deg,
        "slc_dir": str(outdir / "merged" / "SLC"),
        "geom_dir": str(outdir / "merged" / "geom_reference"),
        "baselines_dir": str(outdir / "baselines"),
        "reference_xml": str(outdir / "reference" / "IW1.xml"),
        "elapsed_s": elapsed,
        "peak_rss_mb": peak_memory_mb(),
    }
    log.info(
        "wrote %s: %d PS (+%d sidelobes), %d dates, %.1f s, peak RSS %.0f MiB",
        outdir, n_ps, n_sl, n_dates, elapsed, summary["peak_rss_mb"],
    )  # fmt: skip
    return summary


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stamps_synthetic",
        formatter_class=HelpFormatter,
        description="Write a synthetic Sentinel-1 stack in the ISCE2 topsStack layout, "
        "with its ground truth in OUTDIR/truth.h5.",
    )
    p.add_argument("outdir", help="stack directory to create (merged/, baselines/, reference/)")
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="easy",
        help="scene and noise profile (docs/synthetic.md)",
    )
    p.add_argument("--rows", type=int, default=200, help="azimuth lines (default 200)")
    p.add_argument("--cols", type=int, default=400, help="range samples (default 400)")
    p.add_argument("--dates", type=int, default=None, help="number of dates (default: profile's)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed; the same arguments give byte-identical files",
    )
    p.add_argument("--reference-date", default=None, help="YYYYMMDD (default: middle date)")
    p.add_argument(
        "--start-date", default=None, help="YYYYMMDD of the first date (default 20210105)"
    )
    p.add_argument(
        "--truth-cube",
        choices=("auto", "yes", "no"),
        default="auto",
        help="write the per-date truth cubes to truth.h5 (auto: when dates x rows x cols <= 2e7)",
    )
    p.add_argument(
        "--pass-direction",
        choices=("DESCENDING", "ASCENDING"),
        default="DESCENDING",
        help="orbit direction of the simulated stack",
    )
    p.add_argument(
        "--no-multilooked", action="store_true", help="skip the 3x9-look geometry .rdr files"
    )
    p.add_argument(
        "--bowl-centre", type=float, nargs=2, default=None, metavar=("ROW_FRAC", "COL_FRAC"),
        help="put the subsidence bowl centre at these fractions (each in [0, 1]) of the lines "
        "and samples (default: drawn within the profile's central bowl_centre_spread)",
    )  # fmt: skip
    p.add_argument(
        "--bowl-anywhere", action="store_true",
        help="draw the bowl centre uniformly among the valid pixels of the whole scene "
        "(default: off)",
    )  # fmt: skip
    p.add_argument(
        "--ds-short-fraction", type=float, default=0.0, metavar="F",
        help="fraction (0..1) of the distributed scatterers, in spatial patches, that are "
        "coherent for 12-24 days only and decorrelate over months: class 5, no long-term "
        "coherence (default 0: none)",
    )  # fmt: skip
    p.add_argument(
        "--ds-short-coherence", type=float, nargs=2, default=(0.5, 0.9), metavar=("LO", "HI"),
        help="12-day coherence of those scatterers, uniform in [LO, HI] (default 0.5 0.9)",
    )  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing stack in OUTDIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: parse arguments, generate the stack, print a one-line summary."""
    from stamps_python.utils import setup_logging

    args = _parser().parse_args(argv)
    setup_logging()
    summary = generate_stack(
        args.outdir,
        profile=args.profile,
        rows=args.rows,
        cols=args.cols,
        n_dates=args.dates,
        seed=args.seed,
        reference_date=args.reference_date,
        start_date=args.start_date,
        truth_cube=args.truth_cube,
        pass_direction=args.pass_direction,
        multilooked=not args.no_multilooked,
        overwrite=args.overwrite,
        progress=not args.quiet,
        bowl_centre=args.bowl_centre,
        bowl_anywhere=args.bowl_anywhere,
        ds_short_fraction=args.ds_short_fraction,
        ds_short_alpha12=tuple(args.ds_short_coherence),
    )
    print(
        f"{summary['outdir']}: {summary['shape'][0]}x{summary['shape'][1]}, "
        f"{len(summary['dates'])} dates, reference {summary['reference_date']}, "
        f"{summary['n_ps']} PS, {summary['elapsed_s']:.1f} s, "
        f"peak RSS {summary['peak_rss_mb']:.0f} MiB"
    )
    return 0


def cli() -> int:
    """Console-script entry point ``stamps_synthetic``."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

"""Corner reflectors (``corner_reflectors`` > 0): bright point targets at known sub-pixel
positions, with their own LOS velocity, DEM error and nonlinear motion, added to every date's
SLC through the same Sentinel-1 point-target response as the PS; their truth (group ``cr/`` of
``truth.h5``) and the CR list ``corner_reflectors.csv`` that ``cr_insar`` reads.

A triangular trihedral corner reflector of inner leg a has a peak radar cross-section
sigma = 4 pi a^4 / (3 lambda^2): 31 dBm^2 for a = 1 m at C band, 38 dBm^2 for 1.5 m, 43 dBm^2
for 2 m. Vegetated ground (sigma0 about -10 dB) in a Sentinel-1 IW resolution cell (about
4 m x 22 m on the ground) backscatters about 10 dBm^2, so reflectors of 1.2-2 m give a
signal-to-clutter ratio of about 24-34 dB, the range drawn here. Everything random comes from
its own stream (``CR_STREAM``), so the rest of the stack is the stack without reflectors, pixel
for pixel, but for the reflectors' signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from scipy import ndimage

from stamps_python.synthetic.atmosphere import _nuisance_points
from stamps_python.synthetic.baselines import _Baselines
from stamps_python.synthetic.constants import _FOUR_PI_OVER_LAMBDA, RANGE_PIXEL_M
from stamps_python.synthetic.fields import _CoarseGrid
from stamps_python.synthetic.geometry import _Geometry
from stamps_python.synthetic.scatterers import (
    S1_AZIMUTH_SAMPLING,
    S1_HAMMING,
    S1_RANGE_SAMPLING,
    _point_response,
    _Scene,
)
from stamps_python.synthetic.truth import _h5_write
from stamps_python.utils import StampsError, atomic_output

CR_STREAM = 12  # SeedSequence key of the reflectors' stream, none of fields._STREAMS
CR_CSV = "corner_reflectors.csv"
CR_SCR_DB = (24.0, 34.0)  # peak signal-to-clutter ratio, dB
CR_VELOCITY_MAX_MM_YR = 40.0  # |v| of the moving reflectors, uniform
CR_DEM_ERROR_MAX_M = 15.0  # |dh| (phase centre above the DEM), uniform
CR_NONLINEAR_AMP_MM = (1.0, 4.0)  # sinusoid amplitude, uniform
CR_NONLINEAR_PERIOD_DAYS = (120.0, 400.0)
CR_HALF_WINDOW = 12  # the response is written on +-12 lines and samples
CR_CLEAR = (4, 8)  # no PS within +-4 lines, +-8 samples of a reflector
CR_MARGIN = 24  # pixels between a reflector and the edge of the valid data
CR_MIN_SEPARATION = 24  # pixels between two reflectors (larger of the line/sample offsets)
CR_SURVEY_STD_M = 2.0  # error of the listed position, per horizontal axis


@dataclass
class _CornerReflectors:
    """The reflectors (the first is the stable reference) and what each date adds."""

    names: list[str]
    line: np.ndarray  # true sub-pixel position (float64, pixel centres at integers)
    sample: np.ndarray
    ri: np.ndarray  # nearest pixel (int64)
    ci: np.ndarray
    amp: np.ndarray  # peak amplitude before the date gain
    scr_db: np.ndarray
    psi: np.ndarray  # scattering phase (rad)
    vel: np.ndarray  # mm/yr
    dem_err: np.ndarray  # m
    nonlinear: np.ndarray  # (n_cr, n_dates) mm
    disp: np.ndarray  # (n_cr, n_dates) mm, toward the satellite +, 0 at the reference date
    q1: np.ndarray  # DEM-error phase = b_cross q1 + b_up q2 (SLC convention)
    q2: np.ndarray
    cos_look: np.ndarray
    sin_look: np.ndarray
    geo_phase: np.ndarray  # -4 pi R / lambda at the reflector (rad)
    kernel: np.ndarray  # (n_cr, 2K+1, 2K+1) point-target response, 1 at the true peak
    win_r: np.ndarray  # (n_cr, 2K+1, 2K+1) lines and samples of the response
    win_c: np.ndarray
    nuisance: np.ndarray  # (n_cr, n_dates) nuisance phase of each date (rad), filled per date

    def add_to_date(
        self, k: int, slc: np.ndarray, cal: float, atm: np.ndarray, grid: _CoarseGrid,
        strat: float, hz: np.ndarray, ramp_az: float, ramp_rg: float, yn: np.ndarray,
        xn: np.ndarray, b_cross: np.ndarray, b_up: np.ndarray,
    ) -> None:  # fmt: skip
        """Add date ``k``'s reflector signal to its SLC ``slc`` (in place)."""
        nu = _nuisance_points(
            self.ri, self.ci, atm, grid.iy0, grid.wy, grid.ix0, grid.wx, strat, hz, ramp_az,
            ramp_rg, yn, xn,
        )  # fmt: skip
        self.nuisance[:, k] = nu
        phase = (
            self.geo_phase
            + _FOUR_PI_OVER_LAMBDA / 1000.0 * self.disp[:, k]
            + b_cross[self.ri] * self.q1
            + b_up[self.ri] * self.q2
            + nu
            + self.psi
        )
        signal = cal * self.amp[:, None, None] * self.kernel * np.exp(1j * phase)[:, None, None]
        np.add.at(slc, (self.win_r, self.win_c), signal.astype(np.complex64))


def _kernel(du: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """(n, 2K+1, 2K+1) response at the window pixels of reflectors at sub-pixel offsets ``du``
    (lines) and ``dv`` (samples) from their nearest pixel, normalised to 1 at the true peak."""
    k = np.arange(-CR_HALF_WINDOW, CR_HALF_WINDOW + 1, dtype=np.float64)
    az = _point_response((k[None, :] - du[:, None]) * S1_AZIMUTH_SAMPLING)
    rg = _point_response((k[None, :] - dv[:, None]) * S1_RANGE_SAMPLING)
    return az[:, :, None] * rg[:, None, :] / S1_HAMMING**2


def _place(rng: np.random.Generator, n: int, scene: _Scene) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of ``n`` reflectors on distributed scatterers (class 3 or 5), CR_MARGIN inside the
    valid data, with no PS within CR_CLEAR and CR_MIN_SEPARATION apart; drawn in random order."""
    pclass = scene.pixel_class
    rows, cols = pclass.shape
    valid = ndimage.binary_erosion(pclass > 0, np.ones((2 * CR_MARGIN + 1,) * 2), border_value=0)
    near_ps = ndimage.binary_dilation(
        pclass == 1, np.ones((2 * CR_CLEAR[0] + 1, 2 * CR_CLEAR[1] + 1))
    )
    ok = valid & ~near_ps & np.isin(pclass, (3, 5))
    cand = rng.permutation(np.flatnonzero(ok))
    taken_r: list[int] = []
    taken_c: list[int] = []
    for flat in cand:
        r, c = divmod(int(flat), cols)
        if all(max(abs(r - a), abs(c - b)) >= CR_MIN_SEPARATION for a, b in zip(taken_r, taken_c)):
            taken_r.append(r)
            taken_c.append(c)
            if len(taken_r) == n:
                break
    if len(taken_r) < n:
        raise StampsError(
            f"corner reflectors: only {len(taken_r)} of {n} fit in the {rows} x {cols} scene "
            f"({CR_MARGIN} pixels inside the data, {CR_MIN_SEPARATION} apart, away from PS); "
            "ask for fewer or a larger scene"
        )
    return np.array(taken_r, dtype=np.int64), np.array(taken_c, dtype=np.int64)


def _nonlinear(t_years: np.ndarray, amp: float, period_days: float, phase: float) -> np.ndarray:
    """A sinusoid (mm) minus its least-squares line over the dates: velocity_mm_yr stays the
    least-squares rate of the displacement."""
    s = amp * np.sin(2 * np.pi * t_years * 365.25 / period_days + phase)
    g = np.column_stack([np.ones_like(t_years), t_years])
    return s - g @ np.linalg.lstsq(g, s, rcond=None)[0]


def _build_corner_reflectors(
    seed: int, n: int, geom: _Geometry, scene: _Scene, pix: dict[str, np.ndarray],
    t_years: np.ndarray, ref_ix: int,
) -> _CornerReflectors:  # fmt: skip
    """Place ``n`` reflectors and draw their signal: the first is the stable reference (no
    motion, no DEM error)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, CR_STREAM]))
    ri, ci = _place(rng, n, scene)
    du = rng.uniform(-0.5, 0.5, n)
    dv = rng.uniform(-0.5, 0.5, n)
    scr_db = rng.uniform(*CR_SCR_DB, n)
    psi = rng.uniform(0.0, 2 * np.pi, n)
    vel = rng.uniform(-CR_VELOCITY_MAX_MM_YR, CR_VELOCITY_MAX_MM_YR, n)
    dem_err = rng.uniform(-CR_DEM_ERROR_MAX_M, CR_DEM_ERROR_MAX_M, n)
    amp_nl = rng.uniform(*CR_NONLINEAR_AMP_MM, n)
    per_nl = rng.uniform(*CR_NONLINEAR_PERIOD_DAYS, n)
    ph_nl = rng.uniform(0.0, 2 * np.pi, n)
    vel[0] = dem_err[0] = amp_nl[0] = 0.0
    nonlinear = np.stack([_nonlinear(t_years, amp_nl[i], per_nl[i], ph_nl[i]) for i in range(n)])
    nonlinear -= nonlinear[:, [ref_ix]]
    disp = vel[:, None] * t_years[None, :] + nonlinear
    k = np.arange(-CR_HALF_WINDOW, CR_HALF_WINDOW + 1)
    shape = (n, k.size, k.size)
    win_r = np.broadcast_to(ri[:, None, None] + k[None, :, None], shape).copy()
    win_c = np.broadcast_to(ci[:, None, None] + k[None, None, :], shape).copy()
    power = (
        np.abs(scene.coh[win_r, win_c]).astype(np.float64) ** 2
        + scene.a_ar[win_r, win_c].astype(np.float64) ** 2
        + scene.sig2[win_r, win_c]
    )
    clutter = np.median(power.reshape(n, -1), axis=1)
    sample = ci + dv
    rng_m = geom.ranges[0] + sample * RANGE_PIXEL_M
    inc = np.radians(pix["inc_deg"][ri, ci].astype(np.float64))
    look = np.radians(pix["look_deg"][ri, ci].astype(np.float64))
    q = _FOUR_PI_OVER_LAMBDA * dem_err / (rng_m * np.sin(inc))
    return _CornerReflectors(
        names=[f"CR{i + 1:02d}" for i in range(n)], line=ri + du, sample=sample, ri=ri, ci=ci,
        amp=np.sqrt(10 ** (scr_db / 10) * clutter), scr_db=scr_db, psi=psi, vel=vel,
        dem_err=dem_err, nonlinear=nonlinear, disp=disp, q1=q * np.cos(look),
        q2=q * np.sin(look), cos_look=np.cos(look), sin_look=np.sin(look),
        geo_phase=np.mod(-_FOUR_PI_OVER_LAMBDA * rng_m, 2 * np.pi), kernel=_kernel(du, dv),
        win_r=win_r, win_c=win_c, nuisance=np.zeros((n, t_years.size)),
    )  # fmt: skip


def _bilinear(field: h5py.Dataset, line: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """``field`` (rows, cols) interpolated bilinearly at sub-pixel positions."""
    out = np.empty(line.size)
    for i, (y, x) in enumerate(zip(line, sample)):
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        block = np.asarray(field[y0 : y0 + 2, x0 : x0 + 2], dtype=np.float64)
        fy, fx = y - y0, x - x0
        out[i] = (1 - fy) * ((1 - fx) * block[0, 0] + fx * block[0, 1]) + fy * (
            (1 - fx) * block[1, 0] + fx * block[1, 1]
        )
    return out


def _write_cr_truth(
    h5: h5py.File, outdir: Path, crs: _CornerReflectors, base: _Baselines, geom: _Geometry,
    seed: int, ref_ix: int,
) -> None:  # fmt: skip
    """Group ``cr`` of truth.h5 and ``OUTDIR/corner_reflectors.csv`` (name, lon, lat, height,
    reference; positions with a survey error of CR_SURVEY_STD_M per axis)."""
    n, n_dates = crs.disp.shape
    lat = _bilinear(h5["lat"], crs.line, crs.sample)
    lon = _bilinear(h5["lon"], crs.line, crs.sample)
    hgt = np.asarray(h5["hgt"][()], dtype=np.float64)[crs.ri, crs.ci]
    srng = np.random.default_rng(np.random.SeedSequence([seed, CR_STREAM, 1]))
    de, dn = srng.normal(0.0, CR_SURVEY_STD_M, (2, n))
    lat_l = lat + np.degrees(dn / 6371000.0)
    lon_l = lon + np.degrees(de / (6371000.0 * np.cos(np.radians(lat))))
    bperp = np.empty((n, n_dates))
    for k in range(n_dates):
        bc, bu = base.components(k, geom.t_rows[crs.ri])
        bperp[:, k] = -(bc * crs.cos_look + bu * crs.sin_look)
    g = h5.create_group("cr")
    _h5_write(g, "names", np.array(crs.names, dtype="S8"), "1", "reflector names, as in the CSV")
    _h5_write(g, "line", crs.line, "line", "true sub-pixel line (0-based, pixel centres)")
    _h5_write(g, "sample", crs.sample, "sample", "true sub-pixel sample (0-based)")
    _h5_write(g, "lat", lat, "deg", "latitude at the true position (lat.rdr.full, bilinear)")
    _h5_write(g, "lon", lon, "deg", "longitude at the true position")
    _h5_write(g, "lat_listed", lat_l, "deg", "latitude in corner_reflectors.csv (survey error)")
    _h5_write(g, "lon_listed", lon_l, "deg", "longitude in corner_reflectors.csv")
    _h5_write(g, "is_reference", (np.arange(n) == 0).astype(np.uint8), "1", "1 = the stable CR")
    _h5_write(g, "scr_db", crs.scr_db, "dB", "peak signal / mean clutter power")
    _h5_write(g, "amplitude", crs.amp, "1", "peak amplitude before the date gain")
    _h5_write(g, "velocity_mm_yr", crs.vel, "mm/yr", "LOS rate (toward the satellite +)")
    _h5_write(g, "dem_error_m", crs.dem_err, "m", "phase centre height minus DEM height")
    _h5_write(g, "nonlinear_mm", crs.nonlinear, "mm", "nonlinear LOS motion, 0 at the reference")
    _h5_write(g, "displacement_mm", crs.disp, "mm", "velocity * t_years + nonlinear")
    _h5_write(g, "nuisance_ifg_rad", crs.nuisance[:, [ref_ix]] - crs.nuisance, "rad",
              "nuisance(ref) - nuisance(date) at the reflector's pixel")  # fmt: skip
    _h5_write(g, "bperp_m", bperp, "m", "perpendicular baseline at the reflector (ISCE sign)")
    lines = ["name,lon,lat,height,reference"]
    for i in range(n):
        lines.append(
            f"{crs.names[i]},{lon_l[i]:.9f},{lat_l[i]:.9f},{hgt[i] + crs.dem_err[i]:.3f},"
            f"{int(i == 0)}"
        )
    with atomic_output(outdir / CR_CSV) as tmp:
        tmp.write_text("\n".join(lines) + "\n")

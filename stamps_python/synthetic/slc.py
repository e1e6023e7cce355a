"""The SLC of every date: the static phase terms, the per-date numba kernel, the truth phase
cubes, and the date-by-date loop that writes the SLCs and fills the cubes."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numba
import numpy as np

from stamps_python.synthetic.atmosphere import (
    _atmosphere,
    _DateScalars,
    _nuisance,
    _nuisance_points,
    _turbulent_screen,
)
from stamps_python.synthetic.baselines import _Baselines
from stamps_python.synthetic.constants import _FOUR_PI_OVER_LAMBDA
from stamps_python.synthetic.corner_reflectors import _CornerReflectors
from stamps_python.synthetic.deformation import _Deformation
from stamps_python.synthetic.fields import _CoarseGrid, _rng
from stamps_python.synthetic.geometry import _Geometry
from stamps_python.synthetic.isce_xml import _write_slc
from stamps_python.synthetic.scatterers import _Scene
from stamps_python.utils import progress_bar

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
    corner_reflectors: _CornerReflectors | None = None,
    misreg: Callable[[int, np.ndarray], None] | None = None,
) -> np.ndarray:  # fmt: skip
    """Write every date's SLC (and the truth cubes: displacement ``disp_ds``, the phase terms
    ``phase_ds`` of PHASE_CUBES; with ``corner_reflectors``, their signal added to each SLC);
    return the nuisance phase (rad) of each date at the PS, (n_ps, n_dates) float32."""
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
    term_buf = np.empty((rows, cols), dtype=np.float32) if phase_ds else None
    for k in progress_bar(range(n_dates), desc="synthetic SLCs", unit="date", hide=not progress):
        rng_k = _rng(seed, "date", k)
        atm = _turbulent_screen(rng_k, grid, sc.atm_std[k])
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
        if corner_reflectors is not None:
            corner_reflectors.add_to_date(
                k, slc, sc.cal[k], atm, grid, sc.strat[k], terms.hz, sc.ramps[k, 0],
                sc.ramps[k, 1], yn, xn, bc_rows, bu_rows,
            )  # fmt: skip
        if misreg is not None:  # azimuth misregistration of chosen dates (synthetic/misreg.py)
            misreg(k, slc)
        _write_slc(outdir, dates[k].strftime("%Y%m%d"), slc)
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

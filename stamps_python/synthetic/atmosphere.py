"""Per-date nuisance phase: turbulent atmosphere (bilinear from a coarse power-law screen),
stratified delay and orbital ramps; and the per-date scalars (gains, atmosphere std, stratified
coefficient, ramps, thermal noise factor)."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from stamps_python.synthetic.fields import _CoarseGrid, _powerlaw_field, _rng
from stamps_python.synthetic.profiles import Profile

# turbulent atmosphere of a date: power-law screen of spectrum (k^2 + 1/outer^2)^(-beta/2)
ATM_BETA = 8.0 / 3.0
ATM_OUTER_M = 20000.0


def _turbulent_screen(rng: np.random.Generator, grid: _CoarseGrid, std: float) -> np.ndarray:
    """A date's turbulent atmosphere (rad) on the coarse grid, standard deviation ``std``."""
    return std * _powerlaw_field(rng, grid, ATM_BETA, ATM_OUTER_M)


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

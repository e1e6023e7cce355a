"""LOS deformation (subsidence bowl, regional rate, seasonal term) and the DEM errors."""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from stamps_python.synthetic.fields import _coarse_grid, _rng, _smooth_field
from stamps_python.synthetic.geometry import _Geometry
from stamps_python.synthetic.profiles import Profile
from stamps_python.synthetic.scatterers import _Scene
from stamps_python.synthetic.truth import _h5_write


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

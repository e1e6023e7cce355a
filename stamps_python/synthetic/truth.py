"""Writing ``truth.h5``: datasets with deterministic bytes, the per-date truth cubes, the text of
the file's sign conventions."""

from __future__ import annotations

import h5py
import numpy as np

TRUTH_CUBE_AUTO_MAX = 20_000_000  # values (dates x rows x cols) below which the cube is stored

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

"""Seeded random streams, and smooth power-law random fields on a coarse grid upsampled
bilinearly to the full raster."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

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


def _uniform32(rng: np.random.Generator, lo: float, hi: float, shape) -> np.ndarray:
    """Float32 uniform draws in [lo, hi)."""
    out = rng.random(shape, dtype=np.float32)
    out *= np.float32(hi - lo)
    out += np.float32(lo)
    return out


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

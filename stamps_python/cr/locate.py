"""Sub-pixel location of each corner reflector and its signal-to-clutter ratio per date.

The SLC chip around the listed position is interpolated on a grid ``oversample`` times finer
than the pixels (exact band-limited interpolation: the chip's DFT evaluated at the fine
positions, the frequencies taken in the band centred on the chip's spectral centroid, so that a
TOPS azimuth spectrum off zero Doppler is handled too). The peak of the intensity averaged over
the dates, refined by a parabola through the fine-grid neighbours, is the CR's position; the
complex value there is its phase at each date.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLUTTER_GAP = (3, 4)  # lines, samples around the peak left out of the clutter estimate


@dataclass
class Located:
    """One CR: sub-pixel ``line``, ``sample`` (0-based, pixel centres at integers), the value
    at the peak per date ``values`` (complex), ``scr_db`` per date, ``on_edge`` when the peak
    lies on the edge of the search area; ``mean_amp`` the chip's mean amplitude and
    ``fine`` the oversampled mean intensity, with the chip's first pixel ``origin`` and the fine
    grid's axes ``fine_y``, ``fine_x`` (chip pixels)."""

    line: float
    sample: float
    values: np.ndarray
    scr_db: np.ndarray
    on_edge: bool
    mean_amp: np.ndarray
    fine: np.ndarray
    origin: tuple[int, int]
    fine_y: np.ndarray
    fine_x: np.ndarray


def spectral_centroid(chips: np.ndarray, axis: int) -> float:
    """Centroid (cycles per sample, in [-0.5, 0.5)) of the spectrum along ``axis``, from the
    phase of the lag-one correlation over every chip and date."""
    a = np.moveaxis(chips, axis, -1)
    corr = np.sum(a[..., 1:] * np.conj(a[..., :-1]))
    return float(np.angle(corr) / (2 * np.pi)) if corr != 0 else 0.0


def _dft_rows(n: int, pos: np.ndarray, centre: float) -> np.ndarray:
    """(len(pos), n): row i evaluates the band-limited interpolant at ``pos[i]`` from the DFT
    of n samples, frequencies in [centre - 1/2, centre + 1/2)."""
    f = np.fft.fftfreq(n)
    f = centre + ((f - centre + 0.5) % 1.0) - 0.5
    return np.exp(2j * np.pi * np.outer(pos, f)) / n


def interpolate(
    chips: np.ndarray, y: np.ndarray, x: np.ndarray, centre: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Chips (..., h, w) interpolated at lines ``y`` x samples ``x`` (chip pixel units):
    (..., len(y), len(x)) complex."""
    spec = np.fft.fft2(chips)
    ey = _dft_rows(chips.shape[-2], np.asarray(y, np.float64), centre[0])
    ex = _dft_rows(chips.shape[-1], np.asarray(x, np.float64), centre[1])
    return ey @ spec @ ex.T


def _parabola(left: float, mid: float, right: float) -> float:
    """Offset (-0.5..0.5 steps) of the vertex of the parabola through three samples."""
    den = left - 2 * mid + right
    return 0.0 if den >= 0 else float(np.clip(0.5 * (left - right) / den, -0.5, 0.5))


def locate(
    chips: np.ndarray, origin: tuple[int, int], line: float, sample: float, oversample: int,
    radius: float,
) -> Located:  # fmt: skip
    """Locate one CR in its chips (n_dates, h, w) whose first pixel is ``origin``, searching
    within ``radius`` pixels of the listed ``line``, ``sample``."""
    chips = np.asarray(chips, dtype=np.complex128)
    h, w = chips.shape[-2:]
    centre = (spectral_centroid(chips, -2), spectral_centroid(chips, -1))
    step = 1.0 / oversample
    y0, x0 = line - origin[0], sample - origin[1]
    fy = np.arange(max(0.0, y0 - radius), min(h - 1.0, y0 + radius) + 1e-9, step)
    fx = np.arange(max(0.0, x0 - radius), min(w - 1.0, x0 + radius) + 1e-9, step)
    fine = np.mean(np.abs(interpolate(chips, fy, fx, centre)) ** 2, axis=0)
    iy, ix = np.unravel_index(int(np.argmax(fine)), fine.shape)
    on_edge = iy in (0, fy.size - 1) or ix in (0, fx.size - 1)
    py, px = float(fy[iy]), float(fx[ix])
    if 0 < iy < fy.size - 1:
        py += step * _parabola(*np.log(fine[iy - 1 : iy + 2, ix] + 1e-30))
    if 0 < ix < fx.size - 1:
        px += step * _parabola(*np.log(fine[iy, ix - 1 : ix + 2] + 1e-30))
    values = interpolate(chips, np.array([py]), np.array([px]), centre)[..., 0, 0]
    yy, xx = np.mgrid[0:h, 0:w]
    far = (np.abs(yy - py) > CLUTTER_GAP[0]) | (np.abs(xx - px) > CLUTTER_GAP[1])
    clutter = np.median(np.abs(chips[:, far]) ** 2, axis=1) / np.log(2.0)
    signal = np.maximum(np.abs(values) ** 2 - clutter, 1e-12 * clutter + 1e-30)
    scr = 10 * np.log10(signal / np.maximum(clutter, 1e-30))
    return Located(
        line=origin[0] + py, sample=origin[1] + px, values=values, scr_db=scr, on_edge=on_edge,
        mean_amp=np.mean(np.abs(chips), axis=0), fine=fine, origin=origin, fine_y=fy, fine_x=fx,
    )  # fmt: skip

"""Combined Low-pass and Adaptive Phase (CLAP) filtering of gridded complex phase (StaMPS).

Port of StaMPS ``clap_filt.m`` / ``clap_filt_patch.m`` and of the Butterworth low-pass mask that
``ps_est_gamma_quick.m`` builds. All functions accept a stack of grids: the grid is in the last
two axes, any leading axes (e.g. interferograms) are filtered independently in one batch.

The filter response of one window is ``G = beta * max((H_s / median(H_s))**alpha - 1, 0) + L``,
where ``H_s`` is the magnitude spectrum of the window smoothed by a 7x7 Gaussian kernel and ``L``
the (fftshifted) low-pass mask. Phases are complex values (radians as angle); the filter is
linear in the input for a fixed response.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.ndimage import correlate1d

from stamps_python.utils import StampsError

# Upper bound on the complex spectra held at once by clap_filt (bytes): bounds memory on big grids.
_MAX_BATCH_BYTES = 16 * 1024 * 1024


def gausswin(n: int, alpha: float = 2.5) -> np.ndarray:
    """MATLAB ``gausswin(n, alpha)``: Gaussian window exp(-0.5 (alpha k / ((n-1)/2))^2)."""
    k = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    return np.exp(-0.5 * (alpha * k / ((n - 1) / 2.0)) ** 2)


def clap_low_pass(
    n_win: int, grid_size: float, low_pass_wavelength: float, order: int = 5
) -> np.ndarray:
    """Low-pass mask (n_win, n_win), fftshifted, as ``ps_est_gamma_quick`` builds it.

    The 1-D response is the Butterworth magnitude 1 / (1 + (f / f0)^(2 order)) with
    f0 = 1 / ``low_pass_wavelength`` (1/m) sampled at the FFT frequencies of an ``n_win``-cell
    window of ``grid_size`` m cells; the 2-D mask is the outer product, zero frequency at [0, 0].
    """
    n_win = int(n_win)
    freq0 = 1.0 / float(low_pass_wavelength)
    freq_i = np.arange(-n_win // 2, n_win - n_win // 2, dtype=np.float64) / (
        float(grid_size) * n_win
    )
    butter_i = 1.0 / (1.0 + (freq_i / freq0) ** (2 * order))
    return np.fft.fftshift(np.outer(butter_i, butter_i))


def _smooth_spectrum(h: np.ndarray) -> np.ndarray:
    """Smooth magnitude spectra (..., n, m) with the 7x7 Gaussian, centred (filter2 'same')."""
    kernel = gausswin(7)
    shifted = np.fft.fftshift(h, axes=(-2, -1))
    shifted = correlate1d(shifted, kernel, axis=-1, mode="constant", cval=0.0)
    shifted = correlate1d(shifted, kernel, axis=-2, mode="constant", cval=0.0)
    return np.fft.ifftshift(shifted, axes=(-2, -1))


def _clap_response(
    ph_fft: np.ndarray, alpha: float, beta: float, low_pass: np.ndarray
) -> np.ndarray:
    """Filter response G (..., n, m) of spectra ``ph_fft`` (adaptive part plus low-pass mask)."""
    h = _smooth_spectrum(np.abs(ph_fft))
    flat = h.reshape(h.shape[:-2] + (-1,))
    median_h = np.median(flat, axis=-1)[..., None, None]
    h = np.divide(h, median_h, out=h, where=median_h != 0)
    h = h**alpha - 1.0
    np.maximum(h, 0.0, out=h)
    return h * beta + low_pass


def clap_filt_patch(
    ph: np.ndarray, alpha: float = 0.5, beta: float = 0.1, low_pass: np.ndarray | None = None
) -> np.ndarray:
    """CLAP filter of whole grids (..., n, m) at once, no windowing (StaMPS ``clap_filt_patch``).

    NaN cells count as empty (0). ``low_pass`` is an (n, m) fftshifted mask (zeros when None).
    Returns complex128 of the same shape.
    """
    ph = np.array(ph, dtype=np.complex128)
    ph[np.isnan(ph)] = 0
    if low_pass is None:
        low_pass = np.zeros(ph.shape[-2:])
    ph_fft = scipy.fft.fft2(ph, axes=(-2, -1))
    response = _clap_response(ph_fft, alpha, beta, np.asarray(low_pass, dtype=np.float64))
    return scipy.fft.ifft2(ph_fft * response, axes=(-2, -1))


def _as_int(value: float, what: str) -> int:
    if float(value) != int(value):
        raise StampsError(f"clap filter: {what} = {value} must be a whole number of grid cells")
    return int(value)


def _window_function(n_win: int) -> np.ndarray:
    """Pyramid weight (n_win, n_win) peaking at the window centre, 1e-6 at the corners."""
    half = np.arange(n_win // 2, dtype=np.float64)
    quadrant = half[:, None] + half[None, :]
    top = np.hstack([quadrant, quadrant[:, ::-1]])
    return np.vstack([top, top[::-1, :]]) + 1e-6


def _window_starts(n: int, n_win: int, n_inc: int) -> tuple[np.ndarray, np.ndarray]:
    """0-based first cell of each window along one axis and the shift of the last (clipped) one."""
    n_windows = -(-n // n_inc) - 3
    starts = np.arange(max(n_windows, 0)) * n_inc
    shifts = np.maximum(starts + n_win - n, 0)
    return starts - shifts, shifts


def clap_filt(
    ph: np.ndarray,
    alpha: float = 0.5,
    beta: float = 0.1,
    n_win: float = 32,
    n_pad: float = 0,
    low_pass: np.ndarray | None = None,
) -> np.ndarray:
    """CLAP filter on overlapping windows (StaMPS ``clap_filt``) of grids (..., n_i, n_j).

    Windows of ``n_win`` cells every ``n_win/4`` cells are zero-padded to ``n_win + n_pad``,
    filtered in the frequency domain and summed back with a pyramid weight. ``low_pass`` is the
    (n_win + n_pad)^2 fftshifted mask (zeros when None). NaN cells count as empty (0).
    Returns complex128 of the same shape.

    StaMPS fails (negative index) or returns all zeros when a grid side is shorter than
    ``n_win``; here such a grid is zero-padded to ``n_win`` along that side, filtered, and cropped.
    """
    n_win_i = _as_int(n_win, "n_win")
    n_pad_i = _as_int(n_pad, "n_pad")
    if n_win_i < 4 or n_win_i % 2:
        raise StampsError(f"clap filter: window size n_win = {n_win} must be an even number >= 4")
    n_ex = n_win_i + n_pad_i
    if low_pass is None:
        low_pass = np.zeros((n_ex, n_ex))
    low_pass = np.asarray(low_pass, dtype=np.float64)
    if low_pass.shape != (n_ex, n_ex):
        raise StampsError(
            f"clap filter: low_pass mask is {low_pass.shape}, expected ({n_ex}, {n_ex})"
        )

    ph = np.array(ph, dtype=np.complex128)
    if ph.ndim < 2:
        raise StampsError("clap filter: input must be a grid (at least 2-D)")
    lead_shape = ph.shape[:-2]
    n_i0, n_j0 = ph.shape[-2:]
    ph = ph.reshape((-1, n_i0, n_j0))
    ph[np.isnan(ph)] = 0
    n_i, n_j = max(n_i0, n_win_i), max(n_j0, n_win_i)
    if (n_i, n_j) != (n_i0, n_j0):
        padded = np.zeros((ph.shape[0], n_i, n_j), dtype=np.complex128)
        padded[:, :n_i0, :n_j0] = ph
        ph = padded

    n_inc = n_win_i // 4
    start_i, shift_i = _window_starts(n_i, n_win_i, n_inc)
    start_j, shift_j = _window_starts(n_j, n_win_i, n_inc)
    wind = _window_function(n_win_i)
    offsets = np.arange(n_win_i)
    rows = start_i[:, None] + offsets[None, :]
    cols = start_j[:, None] + offsets[None, :]

    # The last window along an axis is moved back inside the grid; its weight is shifted with it
    # so each cell keeps the weight of the window position it would have had.
    weights = np.empty((len(start_i), len(start_j), n_win_i, n_win_i))
    for a, si in enumerate(shift_i):
        wf = np.zeros_like(wind)
        wf[si:, :] = wind[: n_win_i - si, :]
        for b, sj in enumerate(shift_j):
            weights[a, b] = 0.0
            weights[a, b, :, sj:] = wf[:, : n_win_i - sj]

    out = np.zeros_like(ph)
    per_layer = len(start_i) * len(start_j) * n_ex * n_ex * 16
    batch = max(1, _MAX_BATCH_BYTES // per_layer)
    for k0 in range(0, ph.shape[0], batch):
        layers = ph[k0 : k0 + batch]
        bits = layers[:, rows[:, None, :, None], cols[None, :, None, :]]
        spec = scipy.fft.fft2(bits, s=(n_ex, n_ex), axes=(-2, -1))
        spec *= _clap_response(spec, alpha, beta, low_pass)
        filt = scipy.fft.ifft2(spec, axes=(-2, -1))[..., :n_win_i, :n_win_i] * weights
        acc = out[k0 : k0 + batch]
        for a, i1 in enumerate(start_i):
            for b, j1 in enumerate(start_j):
                acc[:, i1 : i1 + n_win_i, j1 : j1 + n_win_i] += filt[:, a, b]
    return out[:, :n_i0, :n_j0].reshape(lead_shape + (n_i0, n_j0))

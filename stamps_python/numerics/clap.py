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

import numba
import numpy as np
import scipy.fft

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


_GAUSS7 = gausswin(7)


@numba.njit(cache=True)
def _kth_smallest(a: np.ndarray, k: int, n: int) -> float:
    """k-th smallest (0-based) of a[:n], partially reordering a (Hoare quickselect)."""
    lo, hi = 0, n - 1
    while lo < hi:
        pivot = a[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@numba.njit(cache=True)
def _median(values: np.ndarray, buf: np.ndarray, sample: np.ndarray) -> float:
    """Median of the 1-D ``values`` (no NaN; mean of the two middle ones for an even count).

    The two middle ranks are bracketed between two quantiles of a sample of 64 values (one in
    each run of n / 64, at staggered offsets so grid columns are mixed) and selected from the
    values inside the bracket only; when the bracket misses, from all values. ``buf`` (n) and
    ``sample`` (64) are scratch space.
    """
    n = values.size
    h = n // 2
    lo_rank = h if n % 2 else h - 1
    if n >= 256:
        step = n // 64
        for t in range(64):
            sample[t] = values[t * step + (7 * t) % step]
        sample.sort()
        lo_v, hi_v = sample[22], sample[41]
        below = 0
        count = 0
        for t in range(n):
            v = values[t]
            below += v < lo_v
            buf[count] = v
            count += (v >= lo_v) & (v <= hi_v)
        if below <= lo_rank and below + count > h:
            return _middle(buf, h - below, count, n % 2 == 1)
    buf[:n] = values
    return _middle(buf, h, n, n % 2 == 1)


@numba.njit(cache=True)
def _middle(buf: np.ndarray, k: int, count: int, odd: bool) -> float:
    """The k-th smallest of buf[:count], or its mean with the (k-1)-th when ``odd`` is False."""
    upper = _kth_smallest(buf, k, count)
    if odd:
        return upper
    lower = buf[0]
    for t in range(1, k):
        lower = max(lower, buf[t])
    return (lower + upper) / 2


@numba.njit(cache=True)
def _window_response(
    mag: np.ndarray,
    alpha: float,
    beta: float,
    low_pass: np.ndarray,
    out: np.ndarray,
    scratch: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Filter response G (n, m) of one magnitude spectrum ``mag`` (n, m), written into ``out``.

    ``mag`` is fftshifted, correlated with the separable 7x7 Gaussian with zeros outside
    (``filter2(B, .)``, 'same'), shifted back, divided by its median when that is not zero, raised
    to ``alpha``, reduced by 1 and clipped at 0, scaled by ``beta`` and added to ``low_pass``.
    ``scratch`` comes from ``_scratch(n, m)``.
    """
    shifted, rows, buf, sample = scratch
    n, m = mag.shape
    si, sj = n // 2, m // 2
    g0, g1, g2, g3 = _GAUSS7[3], _GAUSS7[4], _GAUSS7[5], _GAUSS7[6]
    for i in range(n):
        ii = (i + si) % n + 3
        for j in range(m):
            shifted[ii, (j + sj) % m + 3] = mag[i, j]
    for i in range(3, n + 3):
        for j in range(m):
            c = j + 3
            rows[i, j] = (
                g0 * shifted[i, c]
                + g1 * (shifted[i, c - 1] + shifted[i, c + 1])
                + g2 * (shifted[i, c - 2] + shifted[i, c + 2])
                + g3 * (shifted[i, c - 3] + shifted[i, c + 3])
            )
    for i in range(n):
        oi = (i - si) % n
        c = i + 3
        for j in range(m):
            out[oi, (j - sj) % m] = (
                g0 * rows[c, j]
                + g1 * (rows[c - 1, j] + rows[c + 1, j])
                + g2 * (rows[c - 2, j] + rows[c + 2, j])
                + g3 * (rows[c - 3, j] + rows[c + 3, j])
            )
    med = _median(out.ravel(), buf, sample)
    for i in range(n):
        for j in range(m):
            h = out[i, j] / med if med != 0 else out[i, j]
            if alpha != 1.0:
                h = h**alpha
            h -= 1.0
            if h < 0.0:
                h = 0.0
            out[i, j] = h * beta + low_pass[i, j]


@numba.njit(cache=True)
def _scratch(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Work arrays of ``_window_response``: zero-bordered shifted and row-smoothed spectra."""
    return np.zeros((n + 6, m + 6)), np.zeros((n + 6, m)), np.empty(n * m), np.empty(64)


@numba.njit(cache=True)
def _apply_response(
    spec: np.ndarray, mag: np.ndarray, alpha: float, beta: float, low_pass: np.ndarray
) -> None:
    """Multiply every spectrum of ``spec`` (k, n, m) by its CLAP response, in place.

    ``mag`` (k, n, m) is ``abs(spec)``.
    """
    n, m = spec.shape[1:]
    g = np.empty((n, m))
    scratch = _scratch(n, m)
    for k in range(spec.shape[0]):
        _window_response(mag[k], alpha, beta, low_pass, g, scratch)
        spec[k] *= g


@numba.njit(cache=True)
def _filtered_at(
    spec: np.ndarray,
    mag: np.ndarray,
    alpha: float,
    beta: float,
    low_pass: np.ndarray,
    cells: np.ndarray,
) -> np.ndarray:
    """Inverse DFT at one cell of each CLAP-filtered spectrum: spec (k, l, n, m), cells (k, 2).

    ``mag`` is ``abs(spec)``. Returns (k, l) complex:
    ``ifft2(spec[a, b] * G)[cells[a, 0], cells[a, 1]]``.
    """
    n_k, n_l, n, m = spec.shape
    out = np.empty((n_k, n_l), dtype=np.complex128)
    g = np.empty((n, m))
    scratch = _scratch(n, m)
    e_i = np.empty(n, dtype=np.complex128)
    e_j = np.empty(m, dtype=np.complex128)
    for a in range(n_k):
        ci, cj = cells[a, 0], cells[a, 1]
        for u in range(n):
            e_i[u] = np.exp(2j * np.pi * ((u * ci) % n) / n)
        for v in range(m):
            e_j[v] = np.exp(2j * np.pi * ((v * cj) % m) / m)
        for b in range(n_l):
            w = spec[a, b]
            _window_response(mag[a, b], alpha, beta, low_pass, g, scratch)
            total = 0j
            for u in range(n):
                row = 0j
                for v in range(m):
                    row += w[u, v] * g[u, v] * e_j[v]
                total += row * e_i[u]
            out[a, b] = total / (n * m)
    return out


@numba.njit(cache=True)
def _gather(grids: np.ndarray, origins: np.ndarray, n_win: int, out: np.ndarray) -> None:
    for a in range(origins.shape[0]):
        i0, j0 = origins[a, 0], origins[a, 1]
        for b in range(grids.shape[0]):
            out[a, b] = grids[b, i0 : i0 + n_win, j0 : j0 + n_win]


def windows_at(grids: np.ndarray, origins: np.ndarray, n_win: int) -> np.ndarray:
    """The ``n_win`` x ``n_win`` windows (k, l, n_win, n_win) of grids (l, n, m) at origins (k, 2).

    ``origins`` are 0-based first rows and columns; every window must lie inside the grids.
    """
    grids = np.ascontiguousarray(grids, dtype=np.complex128)
    origins = np.asarray(origins, dtype=np.int64).reshape(-1, 2)
    n, m = grids.shape[1:]
    if origins.size and (
        origins.min() < 0 or origins[:, 0].max() + n_win > n or origins[:, 1].max() + n_win > m
    ):
        raise StampsError(f"clap filter: a {n_win}-cell window lies outside the {n} x {m} grid")
    out = np.empty((origins.shape[0], grids.shape[0], n_win, n_win), dtype=np.complex128)
    _gather(grids, origins, int(n_win), out)
    return out


def _clap_response_into(spec: np.ndarray, alpha: float, beta: float, low_pass: np.ndarray) -> None:
    """Multiply C-contiguous spectra ``spec`` (..., n, m) by their CLAP responses in place."""
    if not spec.flags.c_contiguous:
        raise ValueError("CLAP response: spectra must be C-contiguous to be filtered in place")
    flat = spec.reshape((-1,) + spec.shape[-2:])
    lp = np.ascontiguousarray(low_pass, np.float64)
    _apply_response(flat, np.abs(flat), float(alpha), float(beta), lp)


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
    _clap_response_into(ph_fft, alpha, beta, low_pass)
    return scipy.fft.ifft2(ph_fft, axes=(-2, -1), overwrite_x=True)


def clap_filt_patch_at(
    ph: np.ndarray,
    cells: np.ndarray,
    alpha: float = 0.5,
    beta: float = 0.1,
    low_pass: np.ndarray | None = None,
) -> np.ndarray:
    """``clap_filt_patch`` of grids ph (k, l, n, m) evaluated only at one cell of each grid.

    ``cells`` (k, 2) holds the 0-based row and column read from the l grids of ``ph[k]``.
    Returns (k, l) complex128, ``clap_filt_patch(ph)[a, :, cells[a, 0], cells[a, 1]]`` up to
    rounding: the inverse transform is summed at that cell alone instead of over the grid.
    """
    ph = np.asarray(ph, dtype=np.complex128)
    nan = np.isnan(ph)
    if nan.any():
        ph = np.where(nan, 0, ph)
    if low_pass is None:
        low_pass = np.zeros(ph.shape[-2:])
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    if ph.ndim != 4 or cells.shape[0] != ph.shape[0]:
        raise StampsError("clap filter: expected grids (k, l, n, m) and one cell per k")
    spec = np.ascontiguousarray(scipy.fft.fft2(ph, axes=(-2, -1)))
    return _filtered_at(
        spec,
        np.abs(spec),
        float(alpha),
        float(beta),
        np.ascontiguousarray(low_pass, np.float64),
        cells,
    )


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
        _clap_response_into(spec, alpha, beta, low_pass)
        filt = scipy.fft.ifft2(spec, axes=(-2, -1))[..., :n_win_i, :n_win_i] * weights
        acc = out[k0 : k0 + batch]
        for a, i1 in enumerate(start_i):
            for b, j1 in enumerate(start_j):
                acc[:, i1 : i1 + n_win_i, j1 : j1 + n_win_i] += filt[:, a, b]
    return out[:, :n_i0, :n_j0].reshape(lead_shape + (n_i0, n_j0))

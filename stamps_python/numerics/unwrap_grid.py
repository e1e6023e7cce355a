"""Resampling of wrapped PS phase onto the unwrapping grid and its Goldstein prefilter (Step 6).

Ports of StaMPS ``uw_grid_wrapped.m`` and ``wrap_filt.m``. The PS phasors (complex, radians as
angle) of each interferogram are summed into square cells of ``unwrap_grid_size`` m (StaMPS'
``pix_size``, stored as such in the workspace); the non-empty cells are the grid *nodes*, numbered
in MATLAB column-major order (down each grid column, columns left to right), which is the order
every later unwrapping workspace uses. Optionally each gridded interferogram is Goldstein filtered
(adaptive, exponent ``unwrap_gold_alpha``) and/or low-pass filtered on overlapping windows of
``unwrap_gold_n_win`` cells.

Index conventions of the returned ``uw_grid`` workspace (see docs/steps/step6_unwrap.md):
``grid_ij`` (cell of every PS) and ``ij`` (cell of every node) are 0-based (row, column);
``nzix`` is the (n_i, n_j) boolean mask of non-empty cells.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.fft
from scipy.ndimage import correlate1d

from stamps_python.numerics.clap import gausswin
from stamps_python.numerics.matlab import matlab_round
from stamps_python.numerics.threads import run_blocks
from stamps_python.utils import StampsError, progress_bar

# Upper bound on the window spectra held at once (bytes), to bound memory on large grids.
_MAX_BATCH_BYTES = 32 * 1024 * 1024
# Most cells the unwrapping grid may have: each gridded interferogram is a few complex128 arrays
# of this size (about 4 GB at the limit) and snaphu unwraps the whole grid. A 250 x 170 km
# Sentinel-1 frame at 50 m is 17 million cells; more means unwrap_grid_size is mistyped.
MAX_GRID_CELLS = 50_000_000


def _pyramid(n_win: int) -> np.ndarray:
    """Window weight (n_win, n_win): i + j (1-based) in each quadrant, mirrored to the centre."""
    half = np.arange(1, n_win // 2 + 1, dtype=np.float64)
    quadrant = half[:, None] + half[None, :]
    top = np.hstack([quadrant, quadrant[:, ::-1]])
    return np.vstack([top, top[::-1, :]])


def _starts(n: int, n_win: int, n_inc: int, n_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """0-based first cell of each window along one axis, and how far the last ones moved back."""
    starts = np.arange(max(n_windows, 0)) * n_inc
    shifts = np.maximum(starts + n_win - n, 0)
    return starts - shifts, shifts


def _shifted_weights(wind: np.ndarray, shift_i: np.ndarray, shift_j: np.ndarray) -> np.ndarray:
    """Per-window weights (n_wi, n_wj, n_win, n_win): windows moved back inside the grid keep the
    weight of the cells at the position they would have had."""
    n_win = wind.shape[0]
    out = np.zeros((len(shift_i), len(shift_j), n_win, n_win))
    for a, si in enumerate(shift_i):
        for b, sj in enumerate(shift_j):
            out[a, b, si:, sj:] = wind[: n_win - si, : n_win - sj]
    return out


def _smooth_magnitude(h: np.ndarray) -> np.ndarray:
    """Magnitude spectra (..., n, n) smoothed by the 7x7 Gaussian (MATLAB ``gausswin(7)``),
    centred spectrum, zero outside (``filter2`` 'same')."""
    kernel = gausswin(7)
    centred = np.fft.fftshift(h, axes=(-2, -1))
    centred = correlate1d(centred, kernel, axis=-1, mode="constant", cval=0.0)
    centred = correlate1d(centred, kernel, axis=-2, mode="constant", cval=0.0)
    return np.fft.ifftshift(centred, axes=(-2, -1))


def wrap_filt(
    ph: np.ndarray,
    n_win: int,
    alpha: float,
    n_pad: int | None = None,
    low_flag: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Goldstein adaptive (and optionally Gaussian low-pass) filter of a complex grid (n_i, n_j).

    Windows of ``n_win`` cells every ``n_win/2`` cells are zero-padded to ``n_win + n_pad``
    (default ``round(n_win/4)``); each spectrum is multiplied by its 7x7-smoothed magnitude,
    normalised by its median and raised to ``alpha``; the filtered windows are summed back with a
    pyramid weight. The low-pass output uses a fixed Gaussian response (``gausswin(n, 16)``).
    Both outputs keep the magnitude of ``ph`` and take the filtered phase (radians as angle).
    NaN cells count as empty. The grid must be at least ``n_win`` cells along both sides.
    """
    ph = np.array(ph, dtype=np.complex128)
    ph[np.isnan(ph)] = 0
    n_i, n_j = ph.shape
    n_win = int(n_win)
    if n_pad is None:
        n_pad = matlab_round(n_win * 0.25)
    if min(n_i, n_j) < n_win:
        raise StampsError(
            f"Goldstein filter: grid {n_i} x {n_j} is smaller than the window ({n_win})"
        )
    n_ex = n_win + int(n_pad)
    n_inc = n_win // 2
    start_i, shift_i = _starts(n_i, n_win, n_inc, -(-n_i // n_inc) - 1)
    start_j, shift_j = _starts(n_j, n_win, n_inc, -(-n_j // n_inc) - 1)
    weights = _shifted_weights(_pyramid(n_win), shift_i, shift_j)
    g = gausswin(n_ex, 16)
    low_pass = np.fft.ifftshift(np.outer(g, g))

    offsets = np.arange(n_win)
    rows = start_i[:, None] + offsets[None, :]
    cols = start_j[:, None] + offsets[None, :]
    out = np.zeros_like(ph)
    out_low = np.zeros_like(ph) if low_flag else None
    per_row = len(start_j) * n_ex * n_ex * 16 * 3
    batch = max(1, _MAX_BATCH_BYTES // max(per_row, 1))
    for a0 in range(0, len(start_i), batch):
        a_sel = slice(a0, a0 + batch)
        bits = ph[rows[a_sel, None, :, None], cols[None, :, None, :]]
        spec = scipy.fft.fft2(bits, s=(n_ex, n_ex), axes=(-2, -1))
        h = _smooth_magnitude(np.abs(spec))
        med = np.median(h.reshape(h.shape[:2] + (-1,)), axis=-1)[..., None, None]
        h = np.divide(h, med, out=h, where=med != 0)
        filt = scipy.fft.ifft2(spec * h**alpha, axes=(-2, -1))[..., :n_win, :n_win]
        filt *= weights[a_sel]
        if low_flag:
            low = scipy.fft.ifft2(spec * low_pass, axes=(-2, -1))[..., :n_win, :n_win]
            low *= weights[a_sel]
        for a_loc, i1 in enumerate(start_i[a_sel]):
            for b, j1 in enumerate(start_j):
                out[i1 : i1 + n_win, j1 : j1 + n_win] += filt[a_loc, b]
                if out_low is not None:
                    out_low[i1 : i1 + n_win, j1 : j1 + n_win] += low[a_loc, b]
    if np.isnan(out).any():
        raise StampsError("Goldstein filter: filtered phase contains NaNs")
    mag = np.abs(ph)
    ph_out = mag * np.exp(1j * np.angle(out))
    ph_low = mag * np.exp(1j * np.angle(out_low)) if out_low is not None else None
    return ph_out, ph_low


def grid_cells(xy: np.ndarray, pix_size: float) -> tuple[np.ndarray, int, int, float, float]:
    """Grid cell (0-based row, column) of every PS at local ``xy`` (n, 2) [x, y] m.

    Cells are ``pix_size`` m squares from the smallest x / y; the last row and column are folded
    into the one before (as StaMPS does). Returns (grid_ij, n_i, n_j, grid_x_min, grid_y_min).
    """
    if not pix_size > 0:
        raise StampsError(f"parameter unwrap_grid_size: {pix_size} must be > 0 m")
    x = np.asarray(xy[:, 0], dtype=np.float64)
    y = np.asarray(xy[:, 1], dtype=np.float64)
    x_min, y_min = float(x.min()), float(y.min())
    check_cell_count(float(x.max()) - x_min, float(y.max()) - y_min, pix_size)
    gi = np.ceil((y - y_min + 1e-3) / pix_size).astype(np.int64)
    gi[gi == gi.max()] -= 1
    gj = np.ceil((x - x_min + 1e-3) / pix_size).astype(np.int64)
    gj[gj == gj.max()] -= 1
    n_i, n_j = int(gi.max()), int(gj.max())
    return np.column_stack([gi - 1, gj - 1]), n_i, n_j, x_min, y_min


def check_cell_count(width: float, height: float, pix_size: float) -> None:
    """Refuse a grid of ``pix_size`` m cells over a ``width`` x ``height`` m PS area with more
    than :data:`MAX_GRID_CELLS` cells: a one-line StampsError naming unwrap_grid_size, the grid
    it would make and the smallest cell size within the limit."""
    n_i, n_j = height / pix_size + 1, width / pix_size + 1
    if n_i * n_j <= MAX_GRID_CELLS:
        return
    smallest = math.sqrt((width + pix_size) * (height + pix_size) / MAX_GRID_CELLS)
    digits = 1 - math.floor(math.log10(smallest))
    suggest = math.ceil(smallest * 10.0**digits) / 10.0**digits
    raise StampsError(
        f"parameter unwrap_grid_size: {pix_size:g} m cells over the {width:.0f} x {height:.0f} m "
        f"PS area make a {n_i:,.0f} x {n_j:,.0f} grid ({n_i * n_j:.2g} cells, more than "
        f"{MAX_GRID_CELLS:,}); use unwrap_grid_size >= {suggest:g} m (StaMPS default 200)"
    )


def check_grid(xy: np.ndarray, unwrap_grid_size: float, unwrap_gold_n_win: int) -> None:
    """Check, before any gridding, that the grid of ``unwrap_grid_size`` m cells of the PS at
    ``xy`` (n, 2) [x, y] m is neither too large (:func:`check_cell_count`) nor narrower than the
    Goldstein window of ``unwrap_gold_n_win`` cells."""
    _, n_i, n_j, _, _ = grid_cells(xy, unwrap_grid_size)
    _check_window(n_i, n_j, unwrap_gold_n_win, unwrap_grid_size)


def _check_window(n_i: int, n_j: int, prefilt_win: int, pix_size: float) -> None:
    if min(n_i, n_j) < prefilt_win:
        raise StampsError(
            f"Minimum dimension of the resampled grid ({min(n_i, n_j)} pixels) is less than "
            f"prefilter window size ({prefilt_win}); lower unwrap_grid_size (now {pix_size:g} m) "
            f"or unwrap_gold_n_win"
        )


def _node_order(nzix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of the non-empty cells in MATLAB ``find`` (column-major) order."""
    nz_j, nz_i = np.nonzero(nzix.T)
    return nz_i, nz_j


def uw_grid_wrapped(
    ph_in: np.ndarray,
    xy_in: np.ndarray,
    unwrap_grid_size: float,
    unwrap_gold_n_win: int,
    unwrap_prefilter_flag: bool,
    lowfilt_flag: bool,
    unwrap_gold_alpha: float,
    ph_in_predef: np.ndarray | None = None,
    progress: bool = True,
    n_threads: int = 1,
) -> dict[str, Any]:
    """Grid and prefilter the wrapped phase ``ph_in`` (n_ps, n_ifg) of PS at ``xy_in`` (n_ps, 3).

    ``ph_in`` is complex (phasors) or real (radians); ``xy_in`` columns are [id, x m, y m].
    Cells are ``unwrap_grid_size`` m squares; with ``unwrap_prefilter_flag`` each interferogram
    is Goldstein filtered (exponent ``unwrap_gold_alpha``), with ``lowfilt_flag`` low-pass
    filtered too, on windows of ``unwrap_gold_n_win`` cells (StaMPS' ``pix_size``,
    ``prefilt_win``, ``goldfilt_flag``, ``gold_alpha``).
    ``ph_in_predef`` (radians, NaN where unknown) are previously unwrapped values to hold.
    The interferograms are gridded and filtered on ``n_threads`` threads (same result).
    Returns the ``uw_grid`` workspace: ``ph`` (n_nodes, n_ifg) complex64 gridded (filtered)
    phase, ``ph_lowpass`` (or None), ``ph_uw_predef`` (or None), ``xy`` (node id, x, y of cell
    centres, m), ``ij`` (0-based node cells), ``nzix``, ``grid_ij``, ``n_i``, ``n_j``, ``n_ps``
    (nodes), ``n_ifg``, ``grid_x_min``, ``grid_y_min``, ``pix_size``, ``ph_in``, ``ph_in_predef``.
    """

    ph_in = np.asarray(ph_in)
    n_ifg = ph_in.shape[1]
    is_complex = np.iscomplexobj(ph_in)
    if is_complex and np.any(ph_in == 0):
        raise StampsError("Some phase values are zero")
    grid_ij, n_i, n_j, grid_x_min, grid_y_min = grid_cells(
        np.asarray(xy_in)[:, 1:3], unwrap_grid_size
    )
    _check_window(n_i, n_j, unwrap_gold_n_win, unwrap_grid_size)
    flat_cell = grid_ij[:, 0] * n_j + grid_ij[:, 1]

    def grid_of(i1: int) -> np.ndarray:
        col = ph_in[:, i1]
        col = col.astype(np.complex128) if is_complex else np.exp(1j * col.astype(np.float64))
        acc = np.bincount(flat_cell, weights=col.real, minlength=n_i * n_j) + 1j * np.bincount(
            flat_cell, weights=col.imag, minlength=n_i * n_j
        )
        return acc.reshape(n_i, n_j)

    first = grid_of(0)
    nzix = first != 0
    nz_i, nz_j = _node_order(nzix)
    n_nodes = len(nz_i)
    ph = np.zeros((n_nodes, n_ifg), dtype=np.complex64)
    ph_lowpass = np.zeros((n_nodes, n_ifg), dtype=np.complex64) if lowfilt_flag else None
    predef = ph_in_predef is not None
    ph_uw_predef = np.zeros((n_nodes, n_ifg), dtype=np.float32) if predef else None
    bar = progress_bar(
        total=n_ifg, desc="grid + filter", unit="ifg", hide=not progress, leave=False
    )

    def one(i1: int) -> None:
        ph_grid = first if i1 == 0 else grid_of(i1)
        if unwrap_prefilter_flag or lowfilt_flag:
            gold, low = wrap_filt(ph_grid, unwrap_gold_n_win, unwrap_gold_alpha, None, lowfilt_flag)
            if low is not None:
                ph_lowpass[:, i1] = low[nz_i, nz_j]
        ph[:, i1] = (gold if unwrap_prefilter_flag else ph_grid)[nz_i, nz_j]
        if predef:
            vals = np.asarray(ph_in_predef[:, i1], dtype=np.float64)
            ok = ~np.isnan(vals)
            total = np.bincount(flat_cell[ok], weights=vals[ok], minlength=n_i * n_j)
            count = np.bincount(flat_cell[ok], minlength=n_i * n_j)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_uw = (total / count).reshape(n_i, n_j)[nz_i, nz_j]
            known = ~np.isnan(mean_uw)
            diff = np.angle(ph[known, i1].astype(np.complex128) * np.exp(-1j * mean_uw[known]))
            # a difference above 1 rad cannot be rounded to a cycle with confidence
            diff[np.abs(diff) > 1] = np.nan
            col = mean_uw.copy()
            col[known] = mean_uw[known] + diff
            ph_uw_predef[:, i1] = col
        bar.update(1)

    try:
        run_blocks(lambda s, e: [one(i1) for i1 in range(s, e)], n_ifg, n_threads, 1)
    finally:
        bar.close()
    xy = np.column_stack(
        [
            np.arange(1, n_nodes + 1),
            (nz_j + 0.5) * unwrap_grid_size,
            (nz_i + 0.5) * unwrap_grid_size,
        ]
    )
    return {
        "ph": ph,
        "ph_in": ph_in,
        "ph_lowpass": ph_lowpass,
        "ph_uw_predef": ph_uw_predef,
        "ph_in_predef": ph_in_predef,
        "xy": xy,
        "ij": np.column_stack([nz_i, nz_j]),
        "nzix": nzix,
        "grid_x_min": grid_x_min,
        "grid_y_min": grid_y_min,
        "n_i": n_i,
        "n_j": n_j,
        "n_ifg": n_ifg,
        "n_ps": n_nodes,
        "grid_ij": grid_ij,
        "pix_size": float(unwrap_grid_size),
    }

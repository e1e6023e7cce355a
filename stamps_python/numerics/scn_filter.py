"""Filters of Step 8 (ps_scn_filt): Gaussian high-pass in time, Gaussian low-pass in space.

Pure functions on arrays: phase in radians, dates in days, coordinates in metres.
"""

from __future__ import annotations

import numba
import numpy as np

from stamps_python.utils import progress_bar

_PAIR_BUDGET = 4_000_000  # PS pairs held at once by the spatial filter
_ROW_CHUNK = 131072


def time_lowpass_weights(day: np.ndarray, time_win: float, master_col: int | None) -> np.ndarray:
    """(n, n) row-normalised Gaussian weights in time (std ``time_win`` days) of dates ``day``.

    Row i holds the weights that image i gives every image; the master column gets weight 0.
    """
    day = np.asarray(day, dtype=np.float64)
    w = np.exp(-((day[:, None] - day[None, :]) ** 2) / (2.0 * time_win**2))
    if master_col is not None:
        w[:, master_col] = 0.0
    return w / w.sum(axis=1, keepdims=True)


def time_highpass(
    ph: np.ndarray, day: np.ndarray, time_win: float, master_col: int | None
) -> np.ndarray:
    """``ph`` (n_ps, n) minus its Gaussian moving average in time, per PS row (float32 out).

    Computed in float64 over row chunks.
    """
    W = time_lowpass_weights(day, time_win, master_col)
    op = np.eye(len(W)) - W.T
    out = np.empty(ph.shape, dtype=np.float32)
    for r0 in range(0, ph.shape[0], _ROW_CHUNK):
        rows = slice(r0, r0 + _ROW_CHUNK)
        out[rows] = np.asarray(ph[rows], dtype=np.float64) @ op
    return out


def plane_fit(xy_m: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Least-squares plane ``c + a x + b y`` (x, y in m) of each column of ``data``: the fit."""
    G = np.column_stack([np.ones(len(xy_m)), xy_m[:, 0], xy_m[:, 1]])
    coeff = np.linalg.lstsq(G, np.asarray(data, dtype=np.float64), rcond=None)[0]
    return G @ coeff


@numba.njit(cache=True, nogil=True, inline="always")
def _first_at_least(win_xy: np.ndarray, lo: int, hi: int, y: float) -> int:
    """First position in lo .. hi of a window sorted by y with y >= ``y`` (hi if none)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if win_xy[mid, 1] < y:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True, inline="always")
def _window_range(
    win_xy: np.ndarray, win_start: np.ndarray, w: int, span: int, y: float, reach: float
) -> tuple[int, int]:
    """Positions of window ``w`` to visit for a point at ``y``: with ``span`` 1 (windows sorted
    by y) only those within ``reach`` of it in y."""
    lo, hi = win_start[w], win_start[w + 1]
    if span:
        lo = _first_at_least(win_xy, lo, hi, y - reach)
        hi = _first_at_least(win_xy, lo, hi, y + reach)
    return lo, hi


@numba.njit(parallel=True, cache=True, nogil=True)
def _count_candidates(
    xy: np.ndarray,
    win_xy: np.ndarray,
    win_start: np.ndarray,
    cell_of: np.ndarray,
    n_cx: int,
    n_cy: int,
    span: int,
    reach: float,
    max_sq: float,
    rows: np.ndarray,
    counts: np.ndarray,
) -> None:
    """Number of points with squared distance at most ``max_sq`` to each point ``rows``."""
    for t in numba.prange(rows.size):
        i = rows[t]
        cy, cx = cell_of[i] // n_cx, cell_of[i] % n_cx
        m = 0
        for r in range(max(cy - span, 0), min(cy + span + 1, n_cy)):
            p0, p1 = _window_range(win_xy, win_start, r * n_cx + cx, span, xy[i, 1], reach)
            for p in range(p0, p1):
                dx = xy[i, 0] - win_xy[p, 0]
                dy = xy[i, 1] - win_xy[p, 1]
                m += dx * dx + dy * dy <= max_sq
        counts[t] = m


@numba.njit(parallel=True, cache=True, nogil=True)
def _list_neighbours(
    xy: np.ndarray,
    win_xy: np.ndarray,
    win_ix: np.ndarray,
    win_start: np.ndarray,
    cell_of: np.ndarray,
    n_cx: int,
    n_cy: int,
    span: int,
    reach: float,
    radius: float,
    max_sq: float,
    two_var: float,
    rows: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    nb: np.ndarray,
    arg: np.ndarray,
) -> None:
    """The neighbours (closer than ``radius``) of each point ``rows[t]``, in ascending order,
    from ``starts[t]`` on (room for the candidates :func:`_count_candidates` counts and a spare
    slot): index ``nb``, Gaussian exponent ``arg`` = -distance^2 / ``two_var`` (0 in the
    unused slots), and their number ``lengths[t]``."""
    for t in numba.prange(rows.size):
        i = rows[t]
        cy, cx = cell_of[i] // n_cx, cell_of[i] % n_cx
        lo = starts[t]
        m = lo
        for r in range(max(cy - span, 0), min(cy + span + 1, n_cy)):
            p0, p1 = _window_range(win_xy, win_start, r * n_cx + cx, span, xy[i, 1], reach)
            for p in range(p0, p1):
                dx = xy[i, 0] - win_xy[p, 0]
                dy = xy[i, 1] - win_xy[p, 1]
                dist_sq = dx * dx + dy * dy
                # written unconditionally (faster than a branch), kept if within max_sq; the
                # last write may land on the spare slot
                nb[m] = win_ix[p]
                arg[m] = dist_sq
                m += dist_sq <= max_sq
        end = m
        far = 0
        for q in range(lo, end):
            dist = np.sqrt(arg[q])  # the distance as scipy's cKDTree computes it
            far += dist >= radius
            arg[q] = dist
        if far:  # drop the few candidates within max_sq that are not closer than the radius
            k = lo
            for q in range(lo, end):
                if arg[q] < radius:
                    nb[k] = nb[q]
                    arg[k] = arg[q]
                    k += 1
            m = k
        for q in range(lo, m):
            arg[q] = -(arg[q] * arg[q]) / two_var
        lengths[t] = m - lo
        for q in range(m, end + 1):
            arg[q] = 0.0  # no overflow in the exponential of unused slots


@numba.njit(parallel=True, cache=True, nogil=True)
def _weighted_means(
    vals: np.ndarray,
    rows: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    nb: np.ndarray,
    w: np.ndarray,
    out: np.ndarray,
) -> None:
    """Each point ``rows[t]``'s mean of ``vals`` over its neighbours ``nb`` (as
    :func:`_list_neighbours` puts them) with the weights ``w`` normalised to sum 1 (float64),
    cast to float32 and summed in float32 in ascending order."""
    n_col = vals.shape[1]
    for t in numba.prange(rows.size):
        lo, hi = starts[t], starts[t] + lengths[t]
        total = 0.0
        for q in range(lo, hi):
            total += w[q]
        acc = np.zeros(n_col, dtype=np.float32)
        for q in range(lo, hi):
            a = np.float32(w[q] / total)
            j = nb[q]
            for k in range(n_col):
                acc[k] += a * vals[j, k]
        out[rows[t], :] = acc


def _cell_windows(
    xy: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, int]:
    """Square cells of side ``radius`` and windows of cells, each listing its points in
    ascending order, such that the windows of cell rows ``r - span .. r + span`` at column c
    hold every point closer than ``radius`` to a point of cell (r, c), in ascending order.

    When the points are sorted by y (as the PS of ps2), every cell row's points come before the
    next row's, and a window is a row of 3 cells (the cell and its left and right neighbours),
    ``span`` 1; otherwise a window is the 3 x 3 cells about its cell, ``span`` 0. Returns the
    windows' points ``win_ix`` (int32), their x, y ``win_xy``, the start of each window
    ``win_start``, each point's cell, the points in cell order, the numbers of cell columns and
    rows, and ``span``."""
    # a hair larger than the radius, so that rounding never puts a pair closer than the
    # radius two cells apart
    cell = radius * (1.0 + 1e-9)
    cxy = np.floor((xy - xy.min(axis=0)) / cell).astype(np.int64)
    n_cx, n_cy = int(cxy[:, 0].max()) + 1, int(cxy[:, 1].max()) + 1
    cell_of = cxy[:, 1] * n_cx + cxy[:, 0]
    span = 1 if bool(np.all(np.diff(xy[:, 1]) >= 0)) else 0
    # each point belongs to the windows centred on the cells it is a neighbour of
    dy, dx = np.meshgrid(np.arange(span - 1, 2 - span), np.arange(-1, 2), indexing="ij")
    dy, dx = dy.ravel(), dx.ravel()
    cy, cx = cxy[:, 1:] + dy, cxy[:, :1] + dx
    inside = (cx >= 0) & (cx < n_cx) & (cy >= 0) & (cy < n_cy)
    window = (cy * n_cx + cx)[inside]
    point = np.repeat(np.arange(len(xy), dtype=np.int32), inside.sum(axis=1))
    del cxy, cx, cy, inside
    order = np.argsort(window, kind="stable")  # stable: ascending points within a window
    win_ix = point[order]
    win_start = np.zeros(n_cx * n_cy + 1, dtype=np.int64)
    np.cumsum(np.bincount(window, minlength=n_cx * n_cy), out=win_start[1:])
    by_cell = np.argsort(cell_of, kind="stable")
    return win_ix, xy[win_ix], win_start, cell_of, by_cell, n_cx, n_cy, span


def spatial_lowpass(
    xy_m: np.ndarray, values: np.ndarray, wavelength: float, show_progress: bool = True
) -> np.ndarray:
    """Gaussian-weighted mean (std ``wavelength`` m) over PS closer than 4 x ``wavelength``.

    ``xy_m`` (n, 2) metres, ``values`` (n, k). The weights of each PS are normalised to sum 1
    (the PS itself included). Computed in single precision, as StaMPS (double weights times
    single phase, summed over the neighbours in ascending order); returns (n, k) float32.

    The neighbours are found in square cells of the radius' size (:func:`_cell_windows`,
    numba), cell by cell, in blocks of about ``_PAIR_BUDGET`` pairs.
    """
    xy = np.ascontiguousarray(xy_m, dtype=np.float64)
    vals = np.ascontiguousarray(values, dtype=np.float32)
    n = len(xy)
    out = np.empty((n, vals.shape[1]), dtype=np.float32)
    if n == 0:
        return out
    radius = 4.0 * wavelength
    win_ix, win_xy, win_start, cell_of, rows, n_cx, n_cy, span = _cell_windows(xy, radius)
    # candidates: squared distance within a hair of the radius' square; then the distance
    # itself decides, as a k-d tree's pairs "closer than the radius"
    max_sq = radius * radius * (1.0 + 1e-9)
    reach = radius * (1.0 + 1e-9)  # no point farther than this in y is a candidate
    room = np.empty(n, dtype=np.int64)
    _count_candidates(xy, win_xy, win_start, cell_of, n_cx, n_cy, span, reach, max_sq, rows, room)
    room += 1  # a spare slot per point
    ends = np.cumsum(room)
    blocks = [0]
    while blocks[-1] < n:  # blocks of about _PAIR_BUDGET pairs (at least one point)
        done = int(ends[blocks[-1] - 1]) if blocks[-1] else 0
        blocks.append(max(blocks[-1] + 1, int(np.searchsorted(ends, done + _PAIR_BUDGET, "right"))))
    size = max(int(ends[b - 1] - (ends[a - 1] if a else 0)) for a, b in zip(blocks, blocks[1:]))
    nb = np.zeros(size, dtype=np.int32)
    w = np.zeros(size, dtype=np.float64)
    lengths = np.empty(n, dtype=np.int64)
    two_var = 2.0 * wavelength**2
    for t0, t1 in progress_bar(
        list(zip(blocks[:-1], blocks[1:])),
        desc="low-pass filtering in space",
        unit="chunk",
        hide=not show_progress or len(blocks) < 3,
    ):
        starts = np.zeros(t1 - t0, dtype=np.int64)
        np.cumsum(room[t0 : t1 - 1], out=starts[1:])
        used = int(starts[-1] + room[t1 - 1])
        _list_neighbours(
            xy,
            win_xy,
            win_ix,
            win_start,
            cell_of,
            n_cx,
            n_cy,
            span,
            reach,
            radius,
            max_sq,
            two_var,
            rows[t0:t1],
            starts,
            lengths[t0:t1],
            nb,
            w,
        )
        np.exp(w[:used], out=w[:used])
        _weighted_means(vals, rows[t0:t1], starts, lengths[t0:t1], nb, w, out)
    return out

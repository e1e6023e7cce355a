"""Amplitude calibration (StaMPS ``calamp``) and amplitude dispersion (StaMPS ``selpsc_patch``).

calamp: the calibration constant of an SLC is its mean amplitude over pixels with amplitude
above ``CALAMP_MIN_AMPLITUDE``. selpsc: with calibrated amplitudes a_i = |SLC_i| / c_i over all N
images (the reference included), D_A = sqrt(N * sum(a_i^2) / sum(a_i)^2 - 1) (population std
over mean); a pixel with any calibrated amplitude <= ``SELPSC_ZERO_AMPLITUDE`` is never a
candidate (no data in that image). selsbc (small baselines): the amplitude-difference
dispersion over the pairs, :func:`sb_dispersion`.
"""

from __future__ import annotations

import numba
import numpy as np

CALAMP_MIN_AMPLITUDE = 0.001
SELPSC_ZERO_AMPLITUDE = 0.00005


@numba.njit(parallel=True, cache=True, nogil=True)
def _accumulate(
    block: np.ndarray, weight: float, s1: np.ndarray, s2: np.ndarray
) -> tuple[float, int]:
    """Add weighted amplitudes of one image block to s1/s2; return (sum, count) for calamp."""
    rows, cols = block.shape
    total = 0.0
    count = 0
    for r in numba.prange(rows):
        for c in range(cols):
            v = block[r, c]
            a = np.sqrt(np.float64(v.real) * v.real + np.float64(v.imag) * v.imag)
            if a > CALAMP_MIN_AMPLITUDE:
                total += a
                count += 1
            w = a * weight
            s1[r, c] += w
            s2[r, c] += w * w
    return total, count


def accumulate_amplitudes(
    block: np.ndarray, weight: float, s1: np.ndarray, s2: np.ndarray
) -> tuple[float, int]:
    """Accumulate ``weight * |block|`` and its square into ``s1``/``s2`` (float64, in place).

    Returns the calamp partial sums of this block: (sum of amplitudes > 0.001, their count).
    """
    return _accumulate(np.ascontiguousarray(block, dtype=np.complex64), float(weight), s1, s2)


# fastmath and single-precision amplitudes let the loop vectorise (2.5x faster). The passes only
# have to keep a superset whose bound is wider than the sampled constants' error (>= 0.2 %), so
# float32 amplitudes (1e-7) cannot drop a candidate; exact dispersions are recomputed in float64.
@numba.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _weighted_row(row: np.ndarray, weight: float, out: np.ndarray) -> tuple[float, int]:
    """``out[c] = weight * |row[c]|`` for one line of one image; returns the calamp partial sums
    of the line (sum of amplitudes above CALAMP_MIN_AMPLITUDE, their count)."""
    floor = np.float32(CALAMP_MIN_AMPLITUDE)
    total = 0.0
    count = 0
    for c in range(row.size):
        v = row[c]
        a32 = np.sqrt(v.real * v.real + v.imag * v.imag)
        above = a32 > floor
        a = np.float64(a32)
        total += a if above else 0.0
        count += 1 if above else 0
        out[c] = a * weight
    return total, count


# Pixel states of a pass block: not a candidate, possibly one (exact D_A decides after the
# pass), surely one.
DROP, MAYBE, SURE = 0, 1, 2
# A pixel is sure only if its smallest provisionally calibrated amplitude exceeds this multiple
# of SELPSC_ZERO_AMPLITUDE (the sample's constants may be off by a common factor).
SURE_ZERO_FACTOR = 4.0


def flat_view(block: np.ndarray) -> tuple[np.ndarray, int, int]:
    """A 1-D C-contiguous view over (n, rows, cols) ``block`` whose lines are contiguous (as
    :class:`stamps_python.io.isce.BlockStack` returns them), with the image and line strides in
    elements: element [i, r, c] is ``flat[i * s_image + r * s_line + c]``. A block of any other
    layout is copied first. Kernels index this view so that their inner loops vectorise."""
    item = block.itemsize
    s0, s1, s2 = block.strides
    if s2 != item or s0 % item or s1 % item or s0 < 0 or s1 < 0 or block.size == 0:
        block = np.ascontiguousarray(block)
        s0, s1, s2 = block.strides
    n, rows, cols = block.shape
    if block.size == 0:
        return block.reshape(-1), 0, 0
    span = (n - 1) * (s0 // item) + (rows - 1) * (s1 // item) + cols
    flat = np.lib.stride_tricks.as_strided(block, shape=(span,), strides=(item,), writeable=False)
    return flat, s0 // item, s1 // item


@numba.njit(parallel=True, cache=True, nogil=True, fastmath=True)
def _block_pass(
    flat: np.ndarray,
    s_image: int,
    s_line: int,
    n: int,
    rows: int,
    cols: int,
    weights: np.ndarray,
    maybe: float,
    sure: float,
    floor: float,
    state: np.ndarray,
    row_sums: np.ndarray,
    row_counts: np.ndarray,
) -> None:
    for r in numba.prange(rows):
        s1 = np.zeros(cols)
        s2 = np.zeros(cols)
        low = np.full(cols, 1e300)
        a = np.empty(cols)
        for i in range(n):
            base = i * s_image + r * s_line
            row_sums[r, i], row_counts[r, i] = _weighted_row(
                flat[base : base + cols], weights[i], a
            )
            for c in range(cols):
                s1[c] += a[c]
                s2[c] += a[c] * a[c]
                low[c] = min(low[c], a[c])
        m2 = maybe * maybe
        u2 = sure * sure
        for c in range(cols):
            state[r, c] = DROP
            if s1[c] > 0:
                d2 = n * s2[c] / (s1[c] * s1[c]) - 1.0
                if d2 < u2 and low[c] > floor:
                    state[r, c] = SURE
                elif d2 < m2:
                    state[r, c] = MAYBE


def block_pass(
    block: np.ndarray, weights: np.ndarray, maybe: float, sure: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block of lines of every image (n, rows, cols) complex64, in one sweep over memory.

    With amplitudes weighted by ``weights``, a pixel's dispersion below ``sure`` (and every
    weighted amplitude above SURE_ZERO_FACTOR x SELPSC_ZERO_AMPLITUDE) makes it SURE, below
    ``maybe`` MAYBE, else DROP. Returns (state (rows, cols) uint8, sums, counts): the states and
    per image the calamp partial sums (sum of amplitudes above 0.001, their count).
    """
    n, rows, cols = block.shape
    state = np.empty((rows, cols), dtype=np.uint8)
    row_sums = np.empty((rows, n))
    row_counts = np.empty((rows, n), dtype=np.int64)
    flat, s_image, s_line = flat_view(block)
    _block_pass(
        flat,
        s_image,
        s_line,
        n,
        rows,
        cols,
        np.asarray(weights, dtype=np.float64),
        float(maybe),
        float(sure),
        SURE_ZERO_FACTOR * SELPSC_ZERO_AMPLITUDE,
        state,
        row_sums,
        row_counts,
    )
    return state, row_sums.sum(axis=0), row_counts.sum(axis=0)


@numba.njit(parallel=True, cache=True, nogil=True)
def _gather(
    flat: np.ndarray, s_image: int, s_line: int, rows: np.ndarray, cols: np.ndarray, out: np.ndarray
) -> None:
    for i in numba.prange(out.shape[0]):
        base = i * s_image
        for p in range(rows.size):
            out[i, p] = flat[base + rows[p] * s_line + cols[p]]


def gather_pixels(block: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``block[:, rows, cols]`` of an (n, lines, samples) block: (n, k), without numpy's fancy
    indexing over a strided block."""
    out = np.empty((block.shape[0], len(rows)), dtype=block.dtype)
    if out.size:
        flat, s_image, s_line = flat_view(block)
        _gather(
            flat,
            s_image,
            s_line,
            np.asarray(rows, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            out,
        )
    return out


@numba.njit(parallel=True, cache=True, nogil=True)
def _exact_dispersion(
    values: np.ndarray, inv_cal: np.ndarray, d_a: np.ndarray, has_zero: np.ndarray
) -> None:
    n, m = values.shape
    for p in numba.prange(m):
        s1 = 0.0
        s2 = 0.0
        zero = False
        for i in range(n):
            v = values[i, p]
            a = np.sqrt(np.float64(v.real) * v.real + np.float64(v.imag) * v.imag) * inv_cal[i]
            if a <= SELPSC_ZERO_AMPLITUDE:
                zero = True
            s1 += a
            s2 += a * a
        has_zero[p] = zero
        if s1 > 0:
            d_a[p] = np.sqrt(max(n * s2 / (s1 * s1) - 1.0, 0.0))
        else:
            d_a[p] = np.nan


def amplitude_dispersion(values: np.ndarray, calconst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact selpsc D_A of pixels ``values`` (n_images, n_px) complex with constants ``calconst``.

    Returns (D_A, has_zero): has_zero marks pixels with a calibrated amplitude <= 5e-5 in any
    image (selpsc never selects those).
    """
    values = np.asarray(values)
    d_a = np.empty(values.shape[1])
    has_zero = np.empty(values.shape[1], dtype=np.bool_)
    _exact_dispersion(values, 1.0 / np.asarray(calconst, dtype=np.float64), d_a, has_zero)
    return d_a, has_zero


@numba.njit(parallel=True, cache=True, nogil=True)
def _interferograms(values: np.ndarray, ref: int, out: np.ndarray) -> None:
    n, m = values.shape
    for p in numba.prange(m):
        r = values[ref, p]
        k = 0
        for i in range(n):
            if i != ref:
                out[p, k] = r * np.conj(values[i, p])
                k += 1


def interferograms(values: np.ndarray, ref: int) -> np.ndarray:
    """Reference x conj(secondary) of pixels ``values`` (n_images, n_px): (n_px, n_images - 1)."""
    values = np.asarray(values)
    out = np.empty((values.shape[1], values.shape[0] - 1), dtype=np.complex64)
    _interferograms(values, int(ref), out)
    return out


def superset_threshold(d_thresh: float, max_weight_error: float) -> float:
    """Provisional-weight D_A threshold that is sure to keep every pixel with true D_A < d_thresh.

    If each provisional weight is within a relative ``max_weight_error`` of the exact one (up to a
    common factor), then 1 + D_true^2 >= ((1 - e) / (1 + e))^2 (1 + D_prov^2), so any pixel with
    provisional D_A at or above the returned value has a true D_A at or above ``d_thresh``.
    """
    e = max_weight_error
    return float(np.sqrt((1 + d_thresh**2) * ((1 + e) / (1 - e)) ** 2 - 1))


def subset_threshold(d_thresh: float, max_weight_error: float) -> float:
    """Provisional-weight D_A threshold below which a pixel surely has true D_A < d_thresh.

    The counterpart of :func:`superset_threshold`: with each provisional weight within a relative
    ``max_weight_error`` of the exact one (up to a common factor), 1 + D_true^2 <=
    ((1 + e) / (1 - e))^2 (1 + D_prov^2).
    """
    e = max_weight_error
    return float(np.sqrt(max((1 + d_thresh**2) * ((1 - e) / (1 + e)) ** 2 - 1, 0.0)))


def weight_error(provisional_calconst: np.ndarray, exact_calconst: np.ndarray) -> float:
    """Largest relative error of the weights 1/c from provisional constants (up to a factor)."""
    ratio = np.asarray(provisional_calconst, dtype=np.float64) / np.asarray(
        exact_calconst, dtype=np.float64
    )
    g = 0.5 * (ratio.max() + ratio.min())
    return float(np.max(np.abs(ratio / g - 1.0)))


# Relative slack on the SB superset test, so that rounding can never drop a pixel the exact test
# keeps.
SB_SLACK = 1e-9


@numba.njit(parallel=True, cache=True, nogil=True)
def _sb_block_pass(
    block: np.ndarray,
    weights: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    used: np.ndarray,
    threshold: float,
    margin: float,
    keep: np.ndarray,
    row_sums: np.ndarray,
    row_counts: np.ndarray,
) -> None:
    n, rows, cols = block.shape
    n_pairs = first.size
    for r in numba.prange(rows):
        amp = np.empty((n, cols))
        for i in range(n):
            row_sums[r, i], row_counts[r, i] = _weighted_row(block[i, r], weights[i], amp[i])
        for c in range(cols):
            zero = False
            for i in used:
                if amp[i, c] == 0.0:
                    zero = True
            d2 = 0.0
            s1 = 0.0
            s2 = 0.0
            for p in range(n_pairs):
                a1 = amp[first[p], c]
                a2 = amp[second[p], c]
                d2 += (a1 - a2) * (a1 - a2)
                s1 += a1 + a2
                s2 += (a1 + a2) * (a1 + a2)
            lower = np.sqrt(d2 / n_pairs) - margin * np.sqrt(s2 / n_pairs)
            keep[r, c] = (
                not zero
                and s1 > 0
                and lower < threshold * (1.0 + margin) * (1.0 + SB_SLACK) * s1 / (2 * n_pairs)
            )


def sb_block_pass(
    block: np.ndarray, weights: np.ndarray, pairs: np.ndarray, threshold: float, margin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SB counterpart of ``block_pass``: calamp sums and a superset of the selsbc candidates.

    ``block`` (n_images, rows, cols) complex64, ``weights`` provisional 1/calconst per image,
    ``pairs`` (n_pairs, 2) 0-based image indices. If each provisional weight is within a relative
    ``margin`` of the exact one (up to a common factor), then with provisional calibrated
    amplitudes a', RMS over the pairs of the exact difference >= RMS(a'_1 - a'_2) - margin
    RMS(a'_1 + a'_2) and the exact mean sum <= (1 + margin) mean(a'_1 + a'_2): a pixel whose
    bound on D_a_sb so obtained is not below ``threshold`` cannot be a candidate. Pixels with an
    exactly zero amplitude in an image of a pair are dropped. Returns (keep, sums, counts).
    """
    n, rows, cols = block.shape
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    keep = np.empty((rows, cols), dtype=np.bool_)
    row_sums = np.empty((rows, n))
    row_counts = np.empty((rows, n), dtype=np.int64)
    _sb_block_pass(
        block,
        np.asarray(weights, dtype=np.float64),
        np.ascontiguousarray(pairs[:, 0]),
        np.ascontiguousarray(pairs[:, 1]),
        np.unique(pairs),
        float(threshold),
        float(margin),
        keep,
        row_sums,
        row_counts,
    )
    return keep, row_sums.sum(axis=0), row_counts.sum(axis=0)


@numba.njit(parallel=True, cache=True, nogil=True)
def _sb_exact(
    values: np.ndarray,
    inv_cal: np.ndarray,
    first: np.ndarray,
    second: np.ndarray,
    used: np.ndarray,
    d_a: np.ndarray,
    has_zero: np.ndarray,
) -> None:
    n, m = values.shape
    n_pairs = first.size
    for k in numba.prange(m):
        amp = np.empty(n)
        for i in range(n):
            v = values[i, k]
            amp[i] = np.sqrt(np.float64(v.real) * v.real + np.float64(v.imag) * v.imag) * inv_cal[i]
        zero = False
        for i in used:
            if amp[i] <= SELPSC_ZERO_AMPLITUDE:
                zero = True
        d2 = 0.0
        s1 = 0.0
        for p in range(n_pairs):
            a1 = amp[first[p]]
            a2 = amp[second[p]]
            d2 += (a1 - a2) * (a1 - a2)
            s1 += a1 + a2
        has_zero[k] = zero
        if s1 > 0:
            d_a[k] = np.sqrt(d2 / n_pairs) / (s1 / (2 * n_pairs))
        else:
            d_a[k] = np.nan


def sb_dispersion(
    values: np.ndarray, calconst: np.ndarray, pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """selsbc amplitude-difference dispersion of pixels ``values`` (n_images, n_px), complex SLC
    values or their amplitudes.

    With calibrated amplitudes A_i = |SLC_i| / calconst_i and the ``pairs`` (n_pairs, 2) 0-based:
    D_a_sb = sqrt(sum_p (A_1 - A_2)^2 / n_pairs) / (sum_p (A_1 + A_2) / (2 n_pairs)). Returns
    (D_a_sb, has_zero): has_zero marks pixels with a calibrated amplitude <= 5e-5 in an image of
    some pair (no data there; never a candidate), D_a_sb is NaN where all amplitudes are 0.
    """
    values = np.asarray(values)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    d_a = np.empty(values.shape[1])
    has_zero = np.empty(values.shape[1], dtype=np.bool_)
    _sb_exact(
        values,
        1.0 / np.asarray(calconst, dtype=np.float64),
        np.ascontiguousarray(pairs[:, 0]),
        np.ascontiguousarray(pairs[:, 1]),
        np.unique(pairs),
        d_a,
        has_zero,
    )
    return d_a, has_zero


def load_kernels(small_baseline: bool = False) -> None:
    """Load the pass kernels (from numba's cache, or compile them) on tiny inputs.

    The first call of a numba kernel costs tens of milliseconds; prep_isce calls this while the
    calamp sample is being read, so that cost overlaps disk I/O instead of adding to it.
    """
    block = np.ones((2, 1, 1), dtype=np.complex64)
    weights = np.ones(2)
    accumulate_amplitudes(block[0], 1.0, np.zeros((1, 1)), np.zeros((1, 1)))
    if small_baseline:
        pairs = np.array([[0, 1]])
        sb_block_pass(block, weights, pairs, 0.6, 0.0)
        sb_dispersion(np.ones((2, 1), dtype=np.float32), weights, pairs)
    else:
        block_pass(block, weights, 0.4, 0.39)
        gather_pixels(block, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
        amplitude_dispersion(block[:, 0], weights)
        interferograms(block[:, 0], 0)

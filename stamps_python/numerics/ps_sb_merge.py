"""The arithmetic of StaMPS ``ps_sb_merge``: single-master PS values as small-baseline pairs,
the would-be small-baseline coherence of a PS pixel and the SNR-weighted combination of a pixel
measured by both methods. Pure functions, no I/O.

Conventions: ``ifgday_ix`` (n_ifg, 2) holds the 0-based first and second image of every pair;
the design matrix G (n_ifg, n_image) has -1 at the first image and +1 at the second, so that a
pair's phase is the single-master phase of its second image minus that of its first
(docs/small_baseline.md, 'Phase sign').
"""

from __future__ import annotations

import numpy as np

# The largest coherence credited when turning coherence into SNR: a coherence of exactly 1 (a
# noise-free pixel) would give an infinite SNR and swamp the other method's phase.
MAX_COHERENCE = 0.9999


def pair_design_matrix(ifgday_ix: np.ndarray, n_image: int) -> np.ndarray:
    """G (n_ifg, n_image) of the pairs ``ifgday_ix``: -1 at the first image, +1 at the second
    (StaMPS' G of ps_sb_merge, master column included)."""
    ix = np.asarray(ifgday_ix, dtype=np.int64).reshape(-1, 2)
    G = np.zeros((ix.shape[0], int(n_image)))
    rows = np.arange(ix.shape[0])
    G[rows, ix[:, 0]] = -1.0
    G[rows, ix[:, 1]] = 1.0
    return G


def to_pairs(values: np.ndarray, ifgday_ix: np.ndarray) -> np.ndarray:
    """``values`` (n, n_image) per image (radians, metres...) as values per pair (n, n_ifg):
    the second image's minus the first's, i.e. (G @ values.T).T without forming G."""
    ix = np.asarray(ifgday_ix, dtype=np.int64).reshape(-1, 2)
    values = np.asarray(values)
    return values[:, ix[:, 1]] - values[:, ix[:, 0]]


def insert_master(values: np.ndarray, master_ix: int, fill: float | np.ndarray) -> np.ndarray:
    """(n, n_image - 1) ``values`` of the secondary images with the master column ``fill`` (a
    scalar or one value per row) inserted at 0-based ``master_ix``."""
    values = np.asarray(values)
    col = np.broadcast_to(np.asarray(fill, dtype=values.dtype).reshape(-1), (values.shape[0],))
    return np.insert(values, master_ix, col, axis=1)


def pair_phasors(phase_sm: np.ndarray, ifgday_ix: np.ndarray) -> np.ndarray:
    """Unit phasors (n, n_ifg) complex64 of the pairs from single-master phase ``phase_sm``
    (n, n_image), radians, master column included."""
    d = to_pairs(np.asarray(phase_sm, dtype=np.float64), ifgday_ix)
    return np.exp(1j * d).astype(np.complex64)


def would_be_coherence(
    ph_res: np.ndarray, master_ix: int, ifgday_ix: np.ndarray, master_residual: float = 0.0
) -> np.ndarray:
    """Coherence (n,) a PS pixel would have in the small-baseline pairs.

    ``ph_res`` (n, n_image - 1), radians: the PS run's residual phase of every secondary image
    (pm2 ``ph_res``: relative to the master, its offset C_ps not removed). The master image's
    residual relative to itself, ``master_residual``, is 0; each pair's residual is then
    exactly the difference of the PS residuals of its two images, and the coherence is
    |sum over pairs of exp(1i residual)| / n_ifg, as the SB run's coh_ps.
    """
    full = insert_master(np.asarray(ph_res, dtype=np.float64), master_ix, master_residual)
    ix = np.asarray(ifgday_ix, dtype=np.int64).reshape(-1, 2)
    return np.abs(np.mean(np.exp(1j * to_pairs(full, ix)), axis=1))


def coherence_snr(coh: np.ndarray) -> np.ndarray:
    """Signal-to-noise ratio 1 / (1 / coh^2 - 1) of coherence ``coh`` (coherence capped at
    :data:`MAX_COHERENCE`, 0 for coherence 0)."""
    c = np.clip(np.asarray(coh, dtype=np.float64), 0.0, MAX_COHERENCE)
    with np.errstate(divide="ignore"):
        return np.where(c > 0, 1.0 / (1.0 / np.where(c > 0, c, 1.0) ** 2 - 1.0), 0.0)


def unit(ph: np.ndarray) -> np.ndarray:
    """Complex ``ph`` scaled to unit magnitude; zeros stay zero."""
    ph = np.asarray(ph, dtype=np.complex128)
    mag = np.abs(ph)
    return np.divide(ph, mag, out=np.zeros_like(ph), where=mag > 0)


def snr_combine(
    ph_a: np.ndarray, snr_a: np.ndarray, ph_b: np.ndarray, snr_b: np.ndarray
) -> np.ndarray:
    """Unit phasors (n, n_ifg) complex64 of the SNR-weighted sum of two measurements of the
    same pixels: unit(ph_a) x snr_a + unit(ph_b) x snr_b (``snr_*`` one value per row), scaled
    to unit magnitude. Where the sum is 0 (both SNR 0) it is unit(ph_a)."""
    a, b = unit(ph_a), unit(ph_b)
    total = a * np.asarray(snr_a, dtype=np.float64).reshape(-1, 1)
    total += b * np.asarray(snr_b, dtype=np.float64).reshape(-1, 1)
    return np.where(total != 0, unit(total), a).astype(np.complex64)


def duplicated_rows(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Mask of the rows of ``rows`` (n, k) equal to a row of ``others`` (m, k) or to an earlier
    row of ``rows``: what StaMPS' ``setdiff(rows, others, 'rows')`` leaves out."""
    rows = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    others = np.asarray(others, dtype=np.float64).reshape(len(others), -1)
    both = np.concatenate([others, rows])
    _, first, inverse = np.unique(both, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    return first[inverse[len(others) :]] != np.arange(len(others), len(both))


def match_pixels(ij_a: np.ndarray, ij_b: np.ndarray) -> np.ndarray:
    """For every (line, sample) pixel of ``ij_a`` (n, 2), the row of ``ij_b`` (m, 2) at the same
    pixel, -1 where there is none; of several rows of ``ij_b`` at one pixel the last counts
    (as StaMPS' grid assignment)."""
    a = np.asarray(ij_a, dtype=np.int64).reshape(-1, 2)
    b = np.asarray(ij_b, dtype=np.int64).reshape(-1, 2)
    out = np.full(len(a), -1, dtype=np.int64)
    if not len(a) or not len(b):
        return out
    lo = np.minimum(a.min(axis=0), b.min(axis=0))
    width = int(max(a[:, 1].max(), b[:, 1].max()) - lo[1] + 1)
    key_a = (a[:, 0] - lo[0]) * width + (a[:, 1] - lo[1])
    key_b = (b[:, 0] - lo[0]) * width + (b[:, 1] - lo[1])
    rev = np.arange(len(b))[::-1]
    keys, first_rev = np.unique(key_b[rev], return_index=True)
    last = rev[first_rev]
    pos = np.searchsorted(keys, key_a)
    pos = np.minimum(pos, len(keys) - 1)
    hit = keys[pos] == key_a
    out[hit] = last[pos[hit]]
    return out

"""Closure loops of a small-baseline network and the pixels that close them (StaMPS
``sb_make_closure_loops`` and ``sb_identify_good_pixels``).

A loop is a row of +1 / -1 / 0 over the interferograms: +1 for a pair (a, b) traversed from the
earlier image a to the later b, -1 the other way. The sum of the unwrapped phases around a loop is
a multiple of 2 pi only where every pair in it is unwrapped consistently; StaMPS uses this to keep
such values fixed when Step 6 is run again (``unwrap_hold_good_values``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from stamps_python.numerics.sb_network import sb_design_matrix

CLOSURE_TOLERANCE = 1.0  # rad: |loop residual| <= this marks the loop's pairs good at a pixel


def _triangles(pairs: dict[tuple[int, int], int]) -> list[list[int]]:
    """Loops (i, j, k), i < j < k, with pairs i-j, j-k and i-k all present: +ij +jk -ik.

    As sb_make_closure_loops: for every first image i, the triangles among i and the images it is
    paired with (as the earlier image), taken in order of i, then j, then k.
    """
    later: dict[int, list[int]] = {}
    for a, b in pairs:
        later.setdefault(a, []).append(b)
    loops = []
    for i in sorted(later):
        partners = sorted(later[i])
        for x, j in enumerate(partners):
            for k in partners[x + 1 :]:
                if (j, k) in pairs:
                    loops.append([pairs[(i, j)] + 1, pairs[(j, k)] + 1, -(pairs[(i, k)] + 1)])
    return loops


def image_bperp(
    ifgday_ix: np.ndarray, bperp: np.ndarray, n_image: int, master_ix: int
) -> np.ndarray:
    """Perpendicular baseline (n_image,) m of every image relative to the master ``master_ix``,
    from the pairs' ``bperp`` (n_ifg,) m over ``ifgday_ix`` (n_ifg, 2) 0-based images: least
    squares, exact when those are differences of image baselines; 0 for images in no pair."""
    G = sb_design_matrix(np.asarray(ifgday_ix, dtype=np.int64), int(n_image), int(master_ix))
    cols = np.flatnonzero(np.abs(G).sum(axis=0) > 0)
    out = np.zeros(int(n_image))
    out[cols] = np.linalg.lstsq(
        G[:, cols], np.asarray(bperp, dtype=np.float64).ravel(), rcond=None
    )[0]
    return out


def closure_loops(
    ifgday_ix: np.ndarray, day: np.ndarray, bperp_image: np.ndarray, drop_ifg: Sequence[int] = ()
) -> np.ndarray:
    """Loop matrix (n_loops, n_ifg) int8 of the network, as ``sb_make_closure_loops``.

    ``ifgday_ix`` (n_ifg, 2) 0-based image pairs (earlier first), ``day`` (n_image,) days,
    ``bperp_image`` (n_image,) m, ``drop_ifg`` 0-based pairs left out. Every triangle of pairs
    is a loop. A pair in no triangle whose images both have other pairs gets the loop closed by
    the shortest other path between its images (Dijkstra, segment length the distance in
    (day, bperp)), traversed from its earlier image; a pair with no such path (a bridge) is in no
    loop. A loop found again from another of its pairs is kept once, as first found (pair order).
    """
    ifgday_ix = np.asarray(ifgday_ix, dtype=np.int64)
    n_ifg = len(ifgday_ix)
    dropped = set(int(k) for k in drop_ifg)
    used = [k for k in range(n_ifg) if k not in dropped]
    pairs = {(int(ifgday_ix[k, 0]), int(ifgday_ix[k, 1])): k for k in used}
    loops = _triangles(pairs)
    in_triangle = {abs(x) - 1 for loop in loops for x in loop}

    degree = np.zeros(len(day), dtype=np.int64)
    for a, b in pairs:
        degree[a] += 1
        degree[b] += 1
    missing = [
        k
        for k in used
        if k not in in_triangle and degree[ifgday_ix[k, 0]] != 1 and degree[ifgday_ix[k, 1]] != 1
    ]
    coords = np.column_stack(
        [np.asarray(day, dtype=np.float64), np.asarray(bperp_image, dtype=np.float64)]
    )
    higher: dict[tuple[int, ...], list[int]] = {}  # by the set of pairs: the first loop found
    for k in missing:
        others = [m for m in used if m != k]
        a_ix, b_ix = ifgday_ix[others, 0], ifgday_ix[others, 1]
        # a zero-length segment would vanish from a sparse graph: keep it by a tiny length
        length = np.maximum(np.hypot(*(coords[a_ix] - coords[b_ix]).T), 1e-9)
        graph = csr_matrix((length, (a_ix, b_ix)), shape=(len(day), len(day)))
        start, finish = int(ifgday_ix[k, 0]), int(ifgday_ix[k, 1])
        dist, pred = dijkstra(graph, directed=False, indices=start, return_predecessors=True)
        if not math.isfinite(dist[finish]):
            continue  # a bridge between two looped networks: in no loop (StaMPS says so)
        path = [finish]
        while path[-1] != start:
            path.append(int(pred[path[-1]]))
        path.reverse()
        path.append(start)
        loop = []
        for u, v in zip(path[:-1], path[1:]):
            pair = (min(u, v), max(u, v))
            loop.append((pairs[pair] + 1) * (1 if v > u else -1))
        higher.setdefault(tuple(sorted(abs(x) for x in loop)), loop)
    loops.extend(higher.values())

    out = np.zeros((len(loops), n_ifg), dtype=np.int8)
    for row, loop in enumerate(loops):
        for x in loop:
            out[row, abs(x) - 1] = 1 if x > 0 else -1
    return out


def identify_good_pixels(
    ph_uw: np.ndarray, loops: np.ndarray, tolerance: float = CLOSURE_TOLERANCE
) -> np.ndarray:
    """(n_ps, n_ifg) bool: pairs of a pixel closing at least one loop (sb_identify_good_pixels).

    Per loop, the signed sum of the unwrapped phases ``ph_uw`` (n_ps, n_ifg, rad) minus the
    multiple of 2 pi nearest its mean over the pixels (NaN skipped) is the residual; where it is
    within +-``tolerance`` rad every pair of the loop is good for that pixel.
    """
    ph = np.asarray(ph_uw, dtype=np.float64)
    good = np.zeros(ph.shape, dtype=bool)
    for loop in np.asarray(loops):
        members = np.flatnonzero(loop)
        if members.size == 0:
            continue
        total = ph[:, members] @ loop[members].astype(np.float64)
        with np.errstate(invalid="ignore"):
            offset = (
                2 * np.pi * np.round(np.nanmean(total) / (2 * np.pi))
                if np.isfinite(total).any()
                else 0.0
            )
        ok = np.abs(total - offset) <= tolerance
        good[np.ix_(ok, members)] = True
    return good

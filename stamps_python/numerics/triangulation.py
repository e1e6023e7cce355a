"""Delaunay triangulation arcs of scattered points (StaMPS uses the Triangle program or MATLAB).

StaMPS builds its network of arcs (pairs of neighbouring PS) from a 2-D Delaunay triangulation of
the local x/y coordinates: ``triangle -e`` when the Triangle program is installed, otherwise
MATLAB's ``delaunay`` + ``edges``. Here scipy's Qhull triangulation gives the same set of edges
for points in general position (co-circular point sets have several valid triangulations, and any
two programs may pick different diagonals there: regular grids of points are the common case).
Edges are returned 0-based, each as ``(low, high)`` and sorted by rows, which is the order
MATLAB's ``edges`` gives; triangles are returned 0-based as Qhull orders them.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay, QhullError


def _collinear_chain(xy: np.ndarray) -> np.ndarray:
    """Edges joining consecutive points along the line of collinear (or coincident) points."""
    centred = xy - xy.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    position = centred @ vt[0]
    order = np.lexsort((np.arange(len(xy)), position))
    keep = np.ones(len(order), dtype=bool)
    keep[1:] = np.any(xy[order[1:]] != xy[order[:-1]], axis=1)
    order = order[keep]
    return np.column_stack((order[:-1], order[1:]))


def _simplices(xy: np.ndarray) -> np.ndarray | None:
    """Delaunay triangles (n_tri, 3) of ``xy`` (n, 2), or None when the points span no area."""
    if xy.shape[0] < 3:
        return None
    try:
        simplices = Delaunay(xy).simplices.astype(np.int64)
    except QhullError:
        return None
    return simplices if simplices.shape[0] else None


def _check_xy(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"xy must have shape (n, 2), got {xy.shape}")
    return xy


def delaunay_edges(xy: np.ndarray) -> np.ndarray:
    """Unique edges of the Delaunay triangulation of points ``xy`` (n, 2), in metres.

    Returns an (n_edge, 2) int64 array of 0-based point indices with ``edges[:, 0] <
    edges[:, 1]``, rows in ascending lexicographic order. Points repeating an earlier point get no
    edge. Fewer than three distinct points, or all of them on a line, give the chain of edges
    joining neighbours along the line (the degenerate triangulation), so two points give one edge.
    """
    xy = _check_xy(xy)
    if xy.shape[0] < 2:
        return np.zeros((0, 2), dtype=np.int64)
    simplices = _simplices(xy)
    if simplices is None:
        pairs = _collinear_chain(xy)
    else:
        pairs = np.concatenate(
            (simplices[:, [0, 1]], simplices[:, [1, 2]], simplices[:, [2, 0]]), axis=0
        )
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    return pairs.astype(np.int64)

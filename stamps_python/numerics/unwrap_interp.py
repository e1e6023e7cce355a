"""Nearest-node interpolation of the unwrapping grid and its edge network (StaMPS ``uw_interp``).

Every cell of the (nrow, ncol) unwrapping grid takes the node (non-empty cell) nearest to it;
StaMPS finds it with ``dsearchn`` on a Delaunay triangulation of the nodes, which is a plain
nearest-neighbour search (ties go to the lowest node number, as Octave's ``dsearchn`` does).
Two grid-adjacent cells that take different nodes define an *edge* between those nodes; the
unique edges are the arcs whose phase differences Step 6 unwraps in time and then in space.

Returned workspace (``uw_interp``):

- ``Z`` (nrow, ncol) int64: 0-based node of every cell;
- ``edgs`` (n_edge, 3) int64: [edge number (1-based), first node, second node] with 0-based nodes,
  first < second, rows in lexicographic order (MATLAB ``unique(..., 'rows')``);
- ``colix`` (nrow, ncol-1) and ``rowix`` (nrow-1, ncol) int64: for the grid arc between cell
  (i, j) and (i, j+1) / (i+1, j), the 1-based edge number, negative when the arc runs from the
  higher to the lower node, 0 when both cells take the same node (StaMPS' signed convention,
  kept because a 0-based number could not carry the sign of edge 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree


def nearest_node(nodes_ij: np.ndarray, nrow: int, ncol: int) -> np.ndarray:
    """0-based index of the node nearest to every cell of an (nrow, ncol) grid.

    ``nodes_ij`` (n, 2) are 0-based (row, column) node cells. Distances are Euclidean in cells;
    equidistant nodes resolve to the lowest index.
    """
    nodes = np.asarray(nodes_ij, dtype=np.float64)
    tree = cKDTree(nodes)
    ii, jj = np.meshgrid(np.arange(nrow), np.arange(ncol), indexing="ij")
    cells = np.column_stack([ii.ravel(), jj.ravel()]).astype(np.float64)
    k = min(8, len(nodes))
    while True:
        dist, idx = tree.query(cells, k=k)
        dist = np.atleast_2d(dist.reshape(len(cells), -1))
        idx = np.atleast_2d(idx.reshape(len(cells), -1))
        # exact: squared distances between integer cells are integers
        d2 = np.rint(dist**2)
        best = d2[:, :1]
        tied = d2 == best
        if k >= len(nodes) or not np.any(tied[:, -1]):
            break
        k = min(4 * k, len(nodes))
    choice = np.where(tied, idx, np.iinfo(np.int64).max).min(axis=1)
    return choice.reshape(nrow, ncol).astype(np.int64)


def uw_interp(nzix: np.ndarray) -> dict[str, Any]:
    """Nearest-node map and edge network of the grid whose non-empty cells are ``nzix`` (bool).

    Nodes are numbered in column-major order of ``nzix`` (as ``uw_grid_wrapped``). See the module
    docstring for the returned arrays (``Z``, ``edgs``, ``n_edge``, ``colix``, ``rowix``).
    """
    nzix = np.asarray(nzix, dtype=bool)
    nrow, ncol = nzix.shape
    nz_j, nz_i = np.nonzero(nzix.T)
    Z = nearest_node(np.column_stack([nz_i, nz_j]), nrow, ncol)

    col_a, col_b = Z[:, :-1].ravel(), Z[:, 1:].ravel()
    row_a, row_b = Z[:-1, :].ravel(), Z[1:, :].ravel()
    a = np.concatenate([col_a, row_a])
    b = np.concatenate([col_b, row_b])
    low, high = np.minimum(a, b), np.maximum(a, b)
    sign = np.where(a <= b, 1, -1)
    distinct = low != high
    pairs = np.column_stack([low[distinct], high[distinct]])
    edges, inverse = np.unique(pairs, axis=0, return_inverse=True)
    # StaMPS drops the first unique row assuming it is the same-node (0,0) marker; when no two
    # neighbouring cells share a node that drops a real edge. Same-node arcs are excluded here
    # before numbering, so no edge is ever lost.
    number = np.zeros(len(a), dtype=np.int64)
    number[distinct] = (inverse.ravel() + 1) * sign[distinct]
    n_col = col_a.size
    colix = number[:n_col].reshape(nrow, ncol - 1)
    rowix = number[n_col:].reshape(nrow - 1, ncol)
    n_edge = len(edges)
    edgs = np.column_stack([np.arange(1, n_edge + 1), edges]).astype(np.int64)
    return {"edgs": edgs, "n_edge": n_edge, "rowix": rowix, "colix": colix, "Z": Z}

"""Spatial unwrapping of the gridded interferograms with snaphu statistical costs (Step 6).

Ports of StaMPS ``uw_stat_costs.m`` and ``uw_unwrap_from_grid.m``.

For every edge of the unwrapping network, the time smoothing of ``uw_space_time`` predicts the
unwrapped phase difference (``dph_space_uw - dph_noise``) and its uncertainty (the standard
deviation of ``dph_noise`` in time). They become snaphu deformation-mode costs on the grid arcs:
``offset`` is the predicted departure, in 1/200 cycle, of the wrapped difference from the
unwrapped one (so snaphu prefers adding those cycles), ``sigsq`` the variance (in (1/200 cycle)^2
over 100, times the number of grid arcs sharing the edge), ``dzmax`` 32000 and ``laycost``
-32000 (no cost shelf) or 1 for edges without statistics. Costs follow StaMPS' int16 arithmetic
(rounded half away from zero, NaN to 0, saturating at -32768 / 32767).

The grid is filled with the phase of each cell's nearest node, unwrapped by snaphu
(:func:`stamps_python.io.snaphu.uw_stat_costs` runs it), and read back at the nodes;
``uw_unwrap_from_grid`` then gives every PS the unwrapped phase of its cell plus its own wrapped
departure from it (radians).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stamps_python.numerics.matlab import matlab_round_array
from stamps_python.numerics.threads import run_rows

COSTSCALE = 100
NSHORTCYCLE = 200
MAXSHORT = 32000


def to_int16(x: np.ndarray) -> np.ndarray:
    """MATLAB ``int16(x)``: rounded half away from zero, NaN to 0, saturating."""
    x = np.asarray(x, dtype=np.float64)
    r = matlab_round_array(np.nan_to_num(x, nan=0.0, posinf=np.inf, neginf=-np.inf))
    return np.clip(r, -32768, 32767).astype(np.int16)


def _add_int16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MATLAB int16 addition (saturating)."""
    return np.clip(a.astype(np.int32) + b.astype(np.int32), -32768, 32767).astype(np.int16)


def _neg_int16(a: np.ndarray) -> np.ndarray:
    return np.clip(-a.astype(np.int32), -32768, 32767).astype(np.int16)


def cost_setup(
    unwrap_method: str,
    uw_grid: dict[str, Any],
    uw_interp: dict[str, Any],
    uw_space_time: dict[str, Any],
    variance: np.ndarray | None = None,
) -> dict[str, Any]:
    """Interferogram-independent part of the snaphu costs (StaMPS ``uw_stat_costs`` set-up).

    Returns the per-edge ``sigsq`` (int16), the number of grid arcs per edge ``n_edges``, the
    predicted smooth edge phase ``dph_smooth`` (rad), the grid arc edge numbers ``rowix`` /
    ``colix`` as floats (NaN for arcs of edges without statistics) and the fixed cost fields.
    """
    nzix = np.asarray(uw_grid["nzix"], dtype=bool)
    nrow, ncol = nzix.shape
    edgs = np.asarray(uw_interp["edgs"], dtype=np.int64)
    n_edge = len(edgs)
    rowix = np.asarray(uw_interp["rowix"], dtype=np.float64).copy()
    colix = np.asarray(uw_interp["colix"], dtype=np.float64).copy()
    grid_edges = np.abs(np.concatenate([colix[colix != 0], rowix[rowix != 0]])).astype(np.int64)
    n_edges = np.bincount(grid_edges - 1, minlength=n_edge)[:n_edge].astype(np.float64)

    dph_space_uw = np.asarray(uw_space_time["dph_space_uw"], dtype=np.float32)
    if unwrap_method.upper() == "2D":
        nz_j, nz_i = np.nonzero(nzix.T)
        a, b = edgs[:, 1], edgs[:, 2]
        edge_length = np.hypot(nz_j[b] - nz_j[a], nz_i[b] - nz_i[a])
        pix_size = float(uw_grid["pix_size"]) or 5.0
        if variance is None:
            sigsq_noise = np.zeros(n_edge)
        else:
            variance = np.asarray(variance, dtype=np.float64)
            sigsq_noise = variance[a] + variance[b]
        sigsq_aps = (2 * np.pi) ** 2
        aps_range = 20000.0
        decorrelation = 1 - np.exp(-edge_length * pix_size * 3 / aps_range)
        sigsq_noise = sigsq_noise + sigsq_aps * decorrelation
        sigsq_noise = sigsq_noise / 10
        dph_smooth = dph_space_uw
    else:
        dph_noise = np.asarray(uw_space_time["dph_noise"], dtype=np.float32)
        sigsq_noise = (np.std(dph_noise, axis=1, ddof=1, dtype=np.float64) / 2 / np.pi) ** 2
        dph_smooth = dph_space_uw - dph_noise

    nostats = np.isnan(sigsq_noise)
    for arr in (rowix, colix):
        ref = np.abs(arr).astype(np.int64)
        bad = (ref > 0) & nostats[np.maximum(ref, 1) - 1]
        arr[bad] = np.nan
    sigsq = to_int16(sigsq_noise * NSHORTCYCLE**2 / COSTSCALE * n_edges)
    sigsq[sigsq < 1] = 1
    return {
        "nrow": nrow,
        "ncol": ncol,
        "sigsq": sigsq,
        "n_edges": n_edges,
        "rowix": rowix,
        "colix": colix,
        "dph_smooth": dph_smooth,
        "dph_space_uw": dph_space_uw,
        "spread": np.asarray(uw_space_time["spread"]),
        "predef_ix": uw_space_time.get("predef_ix"),
    }


def ifg_costs(setup: dict[str, Any], i1: int) -> tuple[np.ndarray, np.ndarray]:
    """snaphu cost records (rowcost (nrow-1, ncol, 4), colcost (nrow, ncol-1, 4)) int16 for
    interferogram ``i1`` (0-based column of the space-time workspace)."""
    nrow, ncol = setup["nrow"], setup["ncol"]
    spread = np.abs(np.asarray(setup["spread"][:, i1], dtype=np.float64))
    spread = to_int16(spread * NSHORTCYCLE**2 / 6 / COSTSCALE * setup["n_edges"])
    sigsqtot = _add_int16(setup["sigsq"], spread)
    predef_ix = setup["predef_ix"]
    if predef_ix is not None:
        sigsqtot[np.asarray(predef_ix)[:, i1]] = 1
    dph_uw = setup["dph_space_uw"][:, i1].astype(np.float64)
    smooth = setup["dph_smooth"][:, i1].astype(np.float64)
    offset_cycle = (np.angle(np.exp(1j * dph_uw)) - smooth) / 2 / np.pi

    def records(ix: np.ndarray, shape: tuple[int, int], negate: bool) -> np.ndarray:
        cost = np.zeros(shape + (4,), dtype=np.int16)
        with np.errstate(invalid="ignore"):
            nz = np.abs(ix) > 0
        ref = np.abs(ix[nz]).astype(np.int64) - 1
        std = np.ones(shape, dtype=np.int16)
        std[nz] = sigsqtot[ref]
        off = np.zeros(shape, dtype=np.int16)
        off[nz] = to_int16(offset_cycle[ref] * np.sign(ix[nz]) * NSHORTCYCLE)
        cost[..., 0] = _neg_int16(off) if negate else off
        cost[..., 1] = std
        cost[..., 2] = MAXSHORT
        cost[..., 3] = np.where(np.isnan(ix), 1, -MAXSHORT)
        return cost

    rowcost = records(setup["rowix"], (nrow - 1, ncol), negate=True)
    colcost = records(setup["colix"], (nrow, ncol - 1), negate=False)
    return rowcost, colcost


def grid_msd(ifguw: np.ndarray) -> float:
    """Mean square of the non-zero differences between neighbouring cells (rad^2)."""
    d1 = ifguw[:-1, :] - ifguw[1:, :]
    d2 = ifguw[:, :-1] - ifguw[:, 1:]
    d1 = d1[d1 != 0]
    d2 = d2[d2 != 0]
    n = d1.size + d2.size
    if n == 0:
        return float("nan")
    return float((np.sum(d1.astype(np.float64) ** 2) + np.sum(d2.astype(np.float64) ** 2)) / n)


def uw_unwrap_from_grid(
    uw_grid: dict[str, Any], ph_uw_grid: np.ndarray, n_threads: int = 1
) -> np.ndarray:
    """Unwrapped phase (n_ps, n_ifg) float32 radians of every PS from the unwrapped grid nodes.

    Each PS takes its cell's unwrapped phase plus its own wrapped difference from it; PS whose
    cell is empty are NaN. Predefined (held) values replace the result where given, shifted by the
    whole number of cycles that best matches the new solution. Blocks of PS run on
    ``n_threads`` threads.
    """
    ph_in = np.asarray(uw_grid["ph_in"])
    nzix = np.asarray(uw_grid["nzix"], dtype=bool)
    grid_ij = np.asarray(uw_grid["grid_ij"], dtype=np.int64)
    gridix = np.full(nzix.shape, -1, dtype=np.int64)
    nz_j, nz_i = np.nonzero(nzix.T)
    gridix[nz_i, nz_j] = np.arange(len(nz_i))
    node = gridix[grid_ij[:, 0], grid_ij[:, 1]]
    have = node >= 0
    node = np.maximum(node, 0)
    ph_uw_grid = np.asarray(ph_uw_grid)
    ph_uw = np.empty(ph_in.shape, dtype=np.float32)
    is_complex = np.iscomplexobj(ph_in)

    def block(rows: slice) -> None:
        for j in range(ph_in.shape[1]):
            uw_pix = ph_uw_grid[node[rows], j].astype(np.float64)
            if is_complex:
                resid = np.angle(ph_in[rows, j] * np.exp(-1j * uw_pix))
            else:
                resid = np.angle(np.exp(1j * (ph_in[rows, j] - uw_pix)))
            ph_uw[rows, j] = np.where(have[rows], uw_pix + resid, np.nan)

    run_rows(block, ph_in.shape[0], n_threads)
    predef = uw_grid.get("ph_in_predef")
    if predef is not None:
        predef = np.asarray(predef, dtype=np.float64)
        predef_ix = ~np.isnan(predef)
        diff = ph_uw - predef
        counts = np.sum(~np.isnan(diff), axis=0)
        meandiff = np.where(counts > 0, np.nansum(diff, axis=0) / np.maximum(counts, 1), np.nan)
        meandiff = 2 * np.pi * matlab_round_array(meandiff / 2 / np.pi)
        shifted = predef + meandiff[None, :]
        ph_uw[predef_ix] = shifted[predef_ix]
    return ph_uw

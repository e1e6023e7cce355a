"""StaMPS Step 4 (``ps_weed``): weed the selected PS and write the stage-2 products.

From the pixels kept by Step 3 (``select1.h5``), ``ps_weed`` drops, in this order:

1. adjacent pixels (``weed_neighbours = 'y'``): in each group of touching pixels only the one with
   the highest re-estimated coherence survives;
2. pixels with zero elevation (``weed_zero_elevation = 'y'``, ``hgt < 1e-6`` m);
3. pixels sharing the same local x/y with another pixel (the highest coherence one is kept);
4. noisy pixels: the PS are triangulated (Delaunay), the phase of every arc (double difference,
   after removing each PS's look-angle error ``K_ps * bperp``) is smoothed in time with a Gaussian
   window of ``weed_time_win`` days, an arc look-angle error is removed, and the standard deviation
   and largest absolute value of the residual arc noise (radians) are taken per arc. Each PS gets
   the smallest of these over its arcs (``ps_std``, ``ps_max``) and is kept when ``ps_std <
   weed_standard_dev`` and ``ps_max < weed_max_noise``.

Products written in the patch directory (MATLAB names, indices 0-based):

- ``weed1.h5``: ``ix_weed`` (bool mask over the Step-3 kept pixels ``ix[keep_ix]``),
  ``ix_weed2`` (bool mask, over the pixels left before noise weeding, of those passing it),
  ``ps_std``, ``ps_max`` (radians, float32, over the same pixels), ``ifg_index`` (0-based
  interferograms used for the noise estimate, ``drop_ifg_index`` removed);
- ``pm2.h5`` (``ph_patch``, ``ph_res``, ``coh_ps``, ``K_ps``, ``C_ps``), ``ph2.h5`` (``ph``),
  ``ps2.h5`` (``ps1`` with ``xy``, ``ij``, ``lonlat``, ``n_ps`` of the kept PS and without
  ``sort_ix``), and ``hgt2.h5``, ``la2.h5``, ``inc2.h5``, ``bp2.h5`` when the stage-1 product
  exists. Stage-2 products of later steps (``scla2``, ``scla_smooth2``, ``aps2``, ``scn2``, ...)
  are deleted, as StaMPS does, since they no longer match the PS set.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numba
import numpy as np

from stamps_python.io.products import ifg_label, load_product, product_path, save_product
from stamps_python.numerics.matlab import wrap_rint
from stamps_python.numerics.triangulation import delaunay_edges
from stamps_python.parms import drop_ifg_index0, flag, number
from stamps_python.utils import get_logger, progress_bar, timed

STALE_STAGE2 = ("scla_smooth", "scla", "scla_smooth_sb", "scla_sb", "aps", "scn")
_EDGE_CHUNK = 4096


def adjacent_weed_mask(ij: np.ndarray, coh: np.ndarray) -> np.ndarray:
    """Keep mask after StaMPS' adjacent-pixel weeding of pixels at (line, sample) ``ij`` (n, 2).

    Reproduces ps_weed's grouping exactly: each pixel is attached to the lowest-numbered pixel
    among its 8 neighbours; groups are collected by following these attachments from each pixel
    in index order, and in every group all but the pixel of highest coherence ``coh`` (the first
    one on ties) are dropped.
    """
    ij = np.asarray(ij, dtype=np.int64)
    n = ij.shape[0]
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    shifted = ij - ij.min(axis=0) + 1
    width = int(shifted[:, 1].max()) + 2
    key = shifted[:, 0] * width + shifted[:, 1]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    parent = np.full(n, n, dtype=np.int64)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == 0 and dj == 0:
                continue
            target = key + di * width + dj
            pos = np.searchsorted(sorted_key, target)
            pos_c = np.minimum(pos, n - 1)
            found = sorted_key[pos_c] == target
            parent = np.where(found, np.minimum(parent, order[pos_c]), parent)
    has_parent = parent < n
    child = np.nonzero(has_parent)[0]
    par = parent[has_parent]
    by_parent = np.lexsort((child, par))
    child = child[by_parent]
    par = par[by_parent]
    start = np.searchsorted(par, np.arange(n + 1))
    consumed = np.zeros(n, dtype=bool)
    coh = np.asarray(coh, dtype=np.float64)
    for root in np.unique(par):
        if consumed[root]:
            continue
        group = [int(root)]
        k = 0
        while k < len(group):
            node = group[k]
            if not consumed[node]:
                consumed[node] = True
                group.extend(child[start[node] : start[node + 1]].tolist())
            k += 1
        members = np.unique(np.asarray(group, dtype=np.int64))
        member_coh = np.where(np.isnan(coh[members]), -np.inf, coh[members])
        best = members[int(np.argmax(member_coh))]
        keep[members[members != best]] = False
    return keep


def duplicate_weed_mask(xy: np.ndarray, coh: np.ndarray) -> np.ndarray:
    """Keep mask dropping pixels that share x/y (``xy`` (n, 2), m) with one of higher ``coh``.

    In each set of pixels with identical coordinates the highest coherence one (the first on
    ties) is kept.
    """
    xy = np.asarray(xy)
    n = xy.shape[0]
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    _, inverse, counts = np.unique(xy, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    dup = counts[inverse] > 1
    if not np.any(dup):
        return keep
    idx = np.nonzero(dup)[0]
    neg_coh = -np.asarray(coh, dtype=np.float64)[idx]
    order = idx[np.lexsort((idx, neg_coh, inverse[idx]))]
    groups = inverse[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = groups[1:] != groups[:-1]
    keep[order[~first]] = False
    return keep


def _local_line_operators(day: np.ndarray, time_win: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian time weights (n, n) (row i: weights around epoch i, summing to 1) and the
    weighted least-squares operators (n, 2, n) of a local line (offset, slope in rad/day)."""
    day = np.asarray(day, dtype=np.float64)
    time_diff = day[:, None] - day[None, :]
    weight = np.exp(-(time_diff**2) / 2.0 / time_win**2)
    weight /= weight.sum(axis=1, keepdims=True)
    n = day.size
    ops = np.empty((n, 2, n))
    for i in range(n):
        sqrt_w = np.sqrt(weight[i])
        design = np.column_stack((np.ones(n), time_diff[i])) * sqrt_w[:, None]
        ops[i] = np.linalg.pinv(design) * sqrt_w[None, :]
    return weight, ops


def _weighted_k(noise: np.ndarray, bperp: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Per-arc look-angle error (rad/m) fitting ``noise`` (n_edge, n) to ``bperp`` (n,) with
    weights 1/``variance``; equal weights when a variance is zero or undefined."""
    if np.all(np.isfinite(variance)) and np.all(variance > 0):
        w = 1.0 / variance
    else:
        w = np.ones_like(bperp)
    denom = np.sum(w * bperp**2)
    if denom == 0:
        return np.zeros(noise.shape[0])
    return (noise @ (w * bperp)) / denom


@numba.njit(cache=True)
def _wrap_rint(x: float) -> float:
    return x - np.rint(x * (0.5 / np.pi)) * (2.0 * np.pi)


@numba.njit(cache=True)
def _arc_time_noise(
    d: np.ndarray,
    weight: np.ndarray,
    weight_loo: np.ndarray,
    ops: np.ndarray,
    time_diff: np.ndarray,
    noise: np.ndarray,
    noise_loo: np.ndarray,
) -> None:
    """Temporal noise of arcs d (n_arc, n) (unit phasors), written into noise and noise_loo.

    For each epoch i the arc phase is reduced by the angle ``mu`` of its Gaussian-weighted mean
    (``weight[i]``), a weighted local line (``ops[i]``: offset and slope against ``time_diff[i]``
    days) is fitted to the wrapped remainder and a second offset to what is left; the smoothed
    phase is ``mu`` plus both offsets and ``noise`` the wrapped difference from it (0 when the
    weighted mean is 0). ``noise_loo`` is the angle of the arc against its weighted mean without
    epoch i (``weight_loo``). Radians.
    """
    n_arc, n = d.shape
    phi = np.empty(n)
    adj = np.empty(n)
    for e in range(n_arc):
        for k in range(n):
            phi[k] = np.angle(d[e, k])
        for i in range(n):
            mean = 0j
            mean_loo = 0j
            for k in range(n):
                mean += weight[i, k] * d[e, k]
                mean_loo += weight_loo[i, k] * d[e, k]
            noise_loo[e, i] = np.angle(d[e, i] * np.conj(mean_loo))
            if mean == 0:
                noise[e, i] = 0.0
                continue
            mu = np.angle(mean)
            m0 = 0.0
            m1 = 0.0
            for k in range(n):
                adj[k] = _wrap_rint(phi[k] - mu)
                m0 += adj[k] * ops[i, 0, k]
                m1 += adj[k] * ops[i, 1, k]
            offset2 = 0.0
            for k in range(n):
                offset2 += _wrap_rint(adj[k] - m0 - m1 * time_diff[i, k]) * ops[i, 0, k]
            noise[e, i] = _wrap_rint(phi[i] - (mu + (m0 + offset2)))


def arc_noise(
    dph_space: np.ndarray,
    day: np.ndarray,
    bperp: np.ndarray,
    time_win: float,
    small_baseline: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviation and largest absolute value (radians) of the noise of each arc.

    ``dph_space`` (n_edge, n_use) is the unit-modulus double-difference phase of every arc in the
    interferograms used, ``day`` their datenums (days) and ``bperp`` their perpendicular baselines
    (m). PS: the arc phase is smoothed in time (Gaussian weights of width ``time_win`` days, a
    weighted mean plus two passes of a weighted local line), the residual is the noise; an arc
    look-angle error is fitted to it (weights 1 / variance per interferogram of the
    leave-one-out residual) and removed. Small baselines: the look-angle error is fitted to the
    arc phase itself.
    """
    dph_space = np.asarray(dph_space, dtype=np.complex128)
    n_edge, n_use = dph_space.shape
    bperp = np.asarray(bperp, dtype=np.float64)
    if n_edge == 0:
        return np.zeros(0), np.zeros(0)
    if small_baseline:
        # StaMPS computes the variance and the look-angle fit on the complex phasors and then
        # subtracts K*bperp from them, mixing phasors and radians; here both act on the arc phase.
        phase = np.angle(dph_space)
        variance = np.var(phase, axis=0, ddof=1) if n_edge > 1 else np.zeros(n_use)
        noise = phase - _weighted_k(phase, bperp, variance)[:, None] * bperp[None, :]
        noise = wrap_rint(noise)
        return np.std(noise, axis=1, ddof=1), np.max(np.abs(noise), axis=1)

    weight, ops = _local_line_operators(day, time_win)
    day = np.asarray(day, dtype=np.float64)
    time_diff = day[:, None] - day[None, :]
    weight_loo = weight.copy()
    np.fill_diagonal(weight_loo, 0.0)
    noise = np.empty((n_edge, n_use))
    noise_loo = np.empty((n_edge, n_use))
    chunks = range(0, n_edge, _EDGE_CHUNK)
    bar = progress_bar(chunks, desc="arc noise", unit="chunk", hide=len(chunks) < 20, leave=False)
    for start in bar:
        stop = min(start + _EDGE_CHUNK, n_edge)
        _arc_time_noise(
            dph_space[start:stop],
            weight,
            weight_loo,
            ops,
            time_diff,
            noise[start:stop],
            noise_loo[start:stop],
        )
    variance = np.var(noise_loo, axis=0, ddof=1) if n_edge > 1 else np.zeros(n_use)
    del noise_loo
    noise -= _weighted_k(noise, bperp, variance)[:, None] * bperp[None, :]
    return np.std(noise, axis=1, ddof=1), np.max(np.abs(noise), axis=1)


def ps_noise_from_arcs(
    edges: np.ndarray, edge_std: np.ndarray, edge_max: np.ndarray, n_ps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-PS minimum over its arcs of ``edge_std`` and of ``edge_max`` (float32, radians; inf
    for a PS without arcs)."""
    ps_std = np.full(n_ps, np.inf, dtype=np.float32)
    ps_max = np.full(n_ps, np.inf, dtype=np.float32)
    for col in (0, 1):
        np.minimum.at(ps_std, edges[:, col], edge_std.astype(np.float32))
        np.minimum.at(ps_max, edges[:, col], edge_max.astype(np.float32))
    return ps_std, ps_max


def _load_optional(patch_dir: Path, name: str, key: str) -> np.ndarray | None:
    path = product_path(patch_dir, name, 1)
    if not path.is_file():
        return None
    return load_product(path, [key])[key]


def run(
    patch_dir: str | Path,
    parms: Mapping[str, Any],
    *,
    no_weed_adjacent: bool | None = None,
    no_weed_noisy: bool | None = None,
) -> Path:
    """Run Step 4 on ``patch_dir`` and return the path of ``weed1.h5``.

    ``no_weed_adjacent`` / ``no_weed_noisy`` override ps_weed's defaults (adjacent weeding when
    ``weed_neighbours = 'y'`` and never for small baselines, as ``stamps`` calls it; noise
    weeding unless both ``weed_standard_dev`` and ``weed_max_noise`` are at least pi).
    """
    patch_dir = Path(patch_dir)
    log = get_logger()
    small_baseline = flag(parms, "small_baseline_flag")
    time_win = number(parms, "weed_time_win")
    weed_standard_dev = number(parms, "weed_standard_dev")
    weed_max_noise = number(parms, "weed_max_noise")
    weed_zero_elevation = flag(parms, "weed_zero_elevation")
    if no_weed_adjacent is None:
        no_weed_adjacent = small_baseline or not flag(parms, "weed_neighbours")
    if no_weed_noisy is None:
        no_weed_noisy = weed_standard_dev >= np.pi and weed_max_noise >= np.pi

    with timed(f"Step 4 (ps_weed) in {patch_dir}"):
        ps = load_product(product_path(patch_dir, "ps", 1))
        sl = load_product(product_path(patch_dir, "select", 1))
        ph_all = load_product(product_path(patch_dir, "ph", 1), ["ph"])["ph"]
        pm = load_product(product_path(patch_dir, "pm", 1), ["ph_patch"])
        log.info("read ps1, ph1, select1, pm1 from %s", patch_dir)
        n_ifg = int(ps["n_ifg"])
        day = np.asarray(ps["day"], dtype=np.float64)
        bperp = np.asarray(ps["bperp"], dtype=np.float64).ravel()
        drop = drop_ifg_index0(parms, n_ifg)
        ifg_index = np.setdiff1d(np.arange(n_ifg), drop)

        keep_ix = np.asarray(sl["keep_ix"], dtype=bool).ravel()
        ix2 = np.asarray(sl["ix"], dtype=np.int64).ravel()[keep_ix]
        k_ps2 = np.asarray(sl["K_ps2"], dtype=np.float64).ravel()[keep_ix]
        c_ps2 = np.asarray(sl["C_ps2"], dtype=np.float64).ravel()[keep_ix]
        coh_ps2 = np.asarray(sl["coh_ps2"], dtype=np.float64).ravel()[keep_ix]
        ph_res2 = np.asarray(sl["ph_res2"])[keep_ix] if "ph_res2" in sl else None
        ij2 = np.asarray(ps["ij"])[ix2]
        xy2 = np.asarray(ps["xy"])[ix2]
        lonlat2 = np.asarray(ps["lonlat"])[ix2]
        ph2 = np.asarray(ph_all)[ix2]
        ph_patch2 = np.asarray(pm["ph_patch"])[ix2]
        del ph_all, pm
        hgt_all = _load_optional(patch_dir, "hgt", "hgt")
        hgt = None if hgt_all is None else np.asarray(hgt_all).ravel()[ix2]

        n_ps = ix2.size
        ix_weed = np.ones(n_ps, dtype=bool)
        log.info("%d low D_A PS, 0 high D_A PS", n_ps)

        if not no_weed_adjacent and n_ps > 0:
            ix_weed = adjacent_weed_mask(ij2[:, 1:3], coh_ps2)
            log.info("%d PS kept after dropping adjacent pixels", int(ix_weed.sum()))

        if weed_zero_elevation and hgt is not None:
            ix_weed &= ~(hgt < 1e-6)
            log.info("%d PS kept after weeding zero elevation", int(ix_weed.sum()))

        left = np.nonzero(ix_weed)[0]
        dup_keep = duplicate_weed_mask(xy2[left, 1:3], coh_ps2[left])
        n_dups = int((~dup_keep).sum())
        ix_weed[left[~dup_keep]] = False
        if n_dups:
            log.info("%d PS with duplicate x/y dropped", n_dups)

        left = np.nonzero(ix_weed)[0]
        n_left = left.size
        ix_weed2 = np.ones(n_left, dtype=bool)
        ps_std = np.zeros(n_left, dtype=np.float32)
        ps_max = np.zeros(n_left, dtype=np.float32)
        if n_left > 0 and not no_weed_noisy:
            xy_weed = np.asarray(xy2[left, 1:3], dtype=np.float64)
            edges = delaunay_edges(xy_weed)
            log.info("%d arcs from the Delaunay triangulation of %d PS", edges.shape[0], n_left)
            ph_weed = ph2[left].astype(np.complex128) * np.exp(
                -1j * k_ps2[left, None] * bperp[None, :]
            )
            ph_weed = ph_weed / np.abs(ph_weed)
            if not small_baseline:
                ph_weed[:, int(ps["master_ix"])] = np.exp(1j * c_ps2[left])
            for k in drop:
                log.info("%s dropped from noise estimation", ifg_label(ps, int(k), small_baseline))
            # arc phases built in chunks of arcs into one array (no full-size temporaries)
            ph_use = ph_weed[:, ifg_index]
            del ph_weed
            dph_space = np.empty((len(edges), len(ifg_index)), dtype=np.complex128)
            for start in range(0, len(edges), _EDGE_CHUNK):
                arcs = edges[start : start + _EDGE_CHUNK]
                np.multiply(
                    ph_use[arcs[:, 1]],
                    np.conj(ph_use[arcs[:, 0]]),
                    out=dph_space[start : start + _EDGE_CHUNK],
                )
            del ph_use
            log.info("Estimating noise for all arcs...")
            edge_std, edge_max = arc_noise(
                dph_space, day[ifg_index], bperp[ifg_index], time_win, small_baseline
            )
            del dph_space
            ps_std, ps_max = ps_noise_from_arcs(edges, edge_std, edge_max, n_left)
            ix_weed2 = (ps_std < weed_standard_dev) & (ps_max < weed_max_noise)
            ix_weed[left] = ix_weed2
            log.info("%d PS kept after dropping noisy pixels", int(ix_weed.sum()))

        n_kept = int(ix_weed.sum())
        if n_kept == 0:
            log.warning("no PS left in %s after weeding", patch_dir)

        weed_path = save_product(
            product_path(patch_dir, "weed", 1),
            {
                "ix_weed": ix_weed,
                "ix_weed2": ix_weed2,
                "ps_std": ps_std,
                "ps_max": ps_max,
                "ifg_index": ifg_index.astype(np.int64),
            },
        )
        save_product(
            product_path(patch_dir, "pm", 2),
            {
                "ph_patch": ph_patch2[ix_weed],
                "ph_res": None if ph_res2 is None else ph_res2[ix_weed],
                "coh_ps": coh_ps2[ix_weed],
                "K_ps": k_ps2[ix_weed],
                "C_ps": c_ps2[ix_weed],
            },
        )
        save_product(product_path(patch_dir, "ph", 2), {"ph": ph2[ix_weed]})
        ps2 = {k: v for k, v in ps.items() if k not in ("ph", "sort_ix")}
        ps2.update(xy=xy2[ix_weed], ij=ij2[ix_weed], lonlat=lonlat2[ix_weed], n_ps=n_kept)
        save_product(product_path(patch_dir, "ps", 2), ps2)
        written = ["weed1", "pm2", "ph2", "ps2"]
        if hgt is not None:
            save_product(product_path(patch_dir, "hgt", 2), {"hgt": hgt[ix_weed]})
            written.append("hgt2")
        for name, key in (("la", "la"), ("inc", "inc"), ("bp", "bperp_mat")):
            values = _load_optional(patch_dir, name, key)
            if values is not None:
                kept_values = np.asarray(values)[ix2][ix_weed]
                save_product(product_path(patch_dir, name, 2), {key: kept_values})
                written.append(f"{name}2")
        for name in STALE_STAGE2:
            stale = product_path(patch_dir, name, 2)
            if stale.is_file():
                stale.unlink()
                log.info("deleted stale %s", stale.name)
        log.info("%d PS kept; wrote %s in %s", n_kept, ", ".join(written), patch_dir)
    return weed_path

"""Step 5, merge (ps_merge_patches): combine the weeded patches into one set of workspaces.

For each patch in ``patch.list`` the PS inside its core (``patch_noover.in``) are kept; a PS in an
overlap is kept from the first patch that has it, unless a later patch has it in its core, whose
values then replace it. With ``merge_resample_size`` > 0 (m) the PS of each core are instead
resampled onto a grid of that size: phases summed with SNR weights, K/C/look angle/height/Bperp
averaged with inverse-noise weights, cells whose total weight is below 1/merge_standard_dev^2
dropped. Then PS with duplicate lon/lat keep the one of highest coherence, local xy are recomputed
(rotated by the heading) and everything is sorted by y then x, as Step 1 does.

Writes, in the run directory: ps2, ph2, rc2, pm2, bp2, la2, inc2 (when present), hgt2.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import load_product, product_path, require, save_product
from stamps_python.numerics.geodesy import llh2local, rotate_to_scene_axes
from stamps_python.parms import flag, number
from stamps_python.rundir import read_patch_core, read_patch_list
from stamps_python.utils import StampsError, get_logger

PHASE_ACCURACY = np.radians(10.0)  # best phase accuracy credited to one PS when weighting


def _core_mask(ij: np.ndarray, patch_dir: Path) -> np.ndarray:
    rg1, rg2, az1, az2 = read_patch_core(patch_dir)
    return (
        (ij[:, 1] >= az1 - 1)
        & (ij[:, 1] <= az2 - 1)
        & (ij[:, 2] >= rg1 - 1)
        & (ij[:, 2] <= rg2 - 1)
    )


def _max_coherence() -> float:
    """Coherence of a PS whose phase noise is PHASE_ACCURACY (seeded simulation, as StaMPS)."""
    rng = np.random.default_rng(1001)
    return float(np.abs(np.mean(np.exp(1j * rng.standard_normal(1000) * PHASE_ACCURACY))))


_CELL_ORIGIN_M = 1.0  # local x, y (m) the resampling cells are aligned to, as StaMPS


def _group_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts, axis=0)


def resample_cells(xy: np.ndarray, grid_size: float) -> np.ndarray:
    """Resampling cell number of every PS (``xy`` rows: id, x m, y m), ordered as MATLAB's
    ``unique(g_ij, 'rows')`` (by cell row, then column).

    StaMPS takes ``xy_min = min(ps.xy(ix,:), 1)``: the element-wise minimum with 1, whose 2nd
    and 3rd elements are 1 (the PS numbers start at 1), so its cells are aligned to the local
    coordinates' (1 m, 1 m) in every patch, not to the patch's own corner. That is kept: the
    cells of neighbouring patches line up.
    """
    xy = np.asarray(xy, dtype=np.float64)
    gi = np.ceil((xy[:, 2] - _CELL_ORIGIN_M + 1e-9) / grid_size).astype(np.int64)
    gj = np.ceil((xy[:, 1] - _CELL_ORIGIN_M + 1e-9) / grid_size).astype(np.int64)
    gi -= gi.min()
    gj -= gj.min()
    return gi * (gj.max() + 1) + gj


def _resample_patch(
    data: dict[str, np.ndarray],
    ix: np.ndarray,
    grid_size: float,
    min_weight: float,
    small_baseline: bool,
) -> dict[str, np.ndarray] | None:
    """Weighted resampling of a patch's core PS ``ix`` onto a ``grid_size`` (m) grid."""
    cell = resample_cells(data["xy"][ix], grid_size)
    order = np.argsort(cell, kind="stable")
    ix, cell = ix[order], cell[order]

    ph_res = np.angle(np.exp(1j * (data["ph_res"] - data["C_ps"].reshape(-1, 1))))
    if not small_baseline:
        ph_res = np.column_stack([ph_res, data["C_ps"].reshape(-1, 1)])
    n_ifg = data["ph"].shape[1]
    sigsq = np.maximum(np.var(ph_res, axis=1, ddof=1), PHASE_ACCURACY**2)
    coh_all = np.minimum(np.abs(np.sum(np.exp(1j * ph_res), axis=1)) / n_ifg, _max_coherence())
    weight = 1.0 / sigsq[ix]
    snr = 1.0 / (1.0 / coh_all[ix] ** 2 - 1.0)

    starts = np.flatnonzero(np.r_[True, np.diff(cell) != 0])
    keep_cell = _group_sum(weight, starts) >= min_weight
    counts = np.diff(np.r_[starts, len(cell)])
    keep = np.repeat(keep_cell, counts)
    if not keep.any():
        return None
    ix, cell, weight, snr = ix[keep], cell[keep], weight[keep], snr[keep]
    starts = np.flatnonzero(np.r_[True, np.diff(cell) != 0])
    wsum = _group_sum(weight, starts)

    def wmean(v: np.ndarray) -> np.ndarray:
        v = v[ix]
        w = weight.reshape((-1,) + (1,) * (v.ndim - 1))
        return _group_sum(v * w, starts) / wsum.reshape((-1,) + (1,) * (v.ndim - 1))

    def snr_sum(v: np.ndarray) -> np.ndarray:
        return _group_sum(v[ix] * snr[:, None], starts)

    bp_weight = np.where(weight == 0, 1e-9, weight)
    out = {
        "ij": np.round(wmean(data["ij"][:, 1:].astype(np.float64))).astype(np.int64),
        "lonlat": wmean(data["lonlat"]),
        "ph": snr_sum(data["ph"]),
        "ph_rc": snr_sum(data["ph_rc"]),
        "ph_patch": snr_sum(data["ph_patch"]),
        "ph_res": snr_sum(data["ph_res"]),
        "K_ps": wmean(data["K_ps"]),
        "C_ps": wmean(data["C_ps"]),
        "coh_ps": np.sqrt(1.0 / (1.0 + 1.0 / np.sqrt(_group_sum(snr**2, starts)))),
        "bperp_mat": _group_sum(data["bperp_mat"][ix] * bp_weight[:, None], starts)
        / _group_sum(bp_weight, starts)[:, None],
    }
    if "ph_reref" in data:
        out["ph_reref"] = snr_sum(data["ph_reref"])
    for name in ("la", "inc", "hgt"):
        if name in data:
            out[name] = wmean(data[name])
    return out


def _load_patch(patch_dir: Path) -> dict[str, np.ndarray]:
    for name in ("ps2", "ph2", "rc2", "pm2", "bp2"):
        require(product_path(patch_dir, name), f"Steps 4-5 on {patch_dir.name}")
    ps = load_product(product_path(patch_dir, "ps2"))
    data: dict[str, Any] = {
        "ps": ps,
        "ij": np.asarray(ps["ij"]),
        "xy": np.asarray(ps["xy"]),
        "lonlat": np.asarray(ps["lonlat"]),
    }
    data["ph"] = load_product(product_path(patch_dir, "ph2"), ["ph"])["ph"]
    data.update(load_product(product_path(patch_dir, "rc2")))
    pm = load_product(product_path(patch_dir, "pm2"))
    for key in ("ph_patch", "ph_res", "K_ps", "C_ps", "coh_ps"):
        data[key] = np.asarray(pm[key])
    data["bperp_mat"] = load_product(product_path(patch_dir, "bp2"), ["bperp_mat"])["bperp_mat"]
    for name in ("la", "inc", "hgt"):
        path = product_path(patch_dir, f"{name}2")
        if path.is_file():
            data[name] = np.asarray(load_product(path, [name])[name])
    return data


PER_PS = (
    "ph",
    "ph_rc",
    "ph_reref",
    "ph_patch",
    "ph_res",
    "K_ps",
    "C_ps",
    "coh_ps",
    "bperp_mat",
    "la",
    "inc",
    "hgt",
)


def merge_patches(
    run_dir: str | Path, parms: Mapping[str, Any], patch_dirs: list[Path] | None = None
) -> dict[str, Any]:
    """Merge the patches of ``run_dir`` (default: all of patch.list); returns merged arrays."""
    log = get_logger()
    run_dir = Path(run_dir)
    grid_size = number(parms, "merge_resample_size")
    merge_stdev = number(parms, "merge_standard_dev")
    min_weight = 1.0 / merge_stdev**2
    small_baseline = flag(parms, "small_baseline_flag")

    pieces: dict[str, list[np.ndarray]] = {k: [] for k in ("ij", "lonlat", *PER_PS)}
    position: dict[tuple[int, int], int] = {}
    removed: list[int] = []
    n_total = 0
    last_ps: dict[str, Any] | None = None
    for patch_dir in patch_dirs if patch_dirs is not None else read_patch_list(run_dir):
        data = _load_patch(patch_dir)
        last_ps = data["ps"]
        ij = data["ij"]
        core = _core_mask(ij, patch_dir)
        if grid_size == 0:
            keys = list(zip(ij[:, 1].tolist(), ij[:, 2].tolist()))
            present = np.array([k in position for k in keys], dtype=bool)
            removed.extend(position[k] for k, c, p in zip(keys, core, present) if c and p)
            ix = np.flatnonzero(core | ~present)
            chunk = {"ij": ij[ix, 1:], "lonlat": data["lonlat"][ix]}
            chunk.update({k: data[k][ix] for k in PER_PS if k in data})
        else:
            ix = np.flatnonzero(core)
            chunk = (
                _resample_patch(data, ix, grid_size, min_weight, small_baseline)
                if ix.size
                else None
            )
            if chunk is None:
                log.warning("%s: no PS left after resampling to %g m", patch_dir.name, grid_size)
                continue
        n_new = len(chunk["ij"])
        if grid_size == 0:
            for j, k in enumerate(zip(chunk["ij"][:, 0].tolist(), chunk["ij"][:, 1].tolist())):
                position[k] = n_total + j
        for key in pieces:
            if key in chunk:
                pieces[key].append(np.asarray(chunk[key]))
        n_total += n_new
        log.info("   %s: %d PS kept of %d", patch_dir.name, n_new, len(ij))
    if last_ps is None or n_total == 0:
        raise StampsError(f"{run_dir}: no PS in any patch to merge")

    # one array at a time: the pieces of a dataset are freed as soon as they are joined
    n_pieces = len(pieces["ij"])
    merged = {}
    for key in list(pieces):
        parts = pieces.pop(key)
        if parts and len(parts) == n_pieces:
            merged[key] = np.concatenate(parts)
        del parts
    keep = np.ones(n_total, dtype=bool)
    keep[removed] = False

    lonlat = merged["lonlat"]
    kept_ix = np.flatnonzero(keep)
    _, inverse, counts = np.unique(lonlat[kept_ix], axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    n_dups = int(np.sum(counts[counts > 1] - 1))
    if n_dups:
        coh = merged["coh_ps"][kept_ix]
        best = np.full(len(counts), -1)
        order = np.lexsort((-coh, inverse))
        first = np.r_[True, np.diff(inverse[order]) != 0]
        best[inverse[order][first]] = order[first]
        drop = np.setdiff1d(np.arange(len(kept_ix)), best)
        keep[kept_ix[drop]] = False
        log.info("   %d PS with duplicate lon/lat dropped", n_dups)

    kept_ix = np.flatnonzero(keep)
    lonlat = lonlat[kept_ix]
    ll0 = (lonlat.max(axis=0) + lonlat.min(axis=0)) / 2.0
    heading = number(parms, "heading")
    xy, rotation = rotate_to_scene_axes(
        llh2local(lonlat, ll0), heading if np.isfinite(heading) else 0.0
    )
    xy = xy.astype(np.float32)
    order = np.lexsort((xy[:, 0], xy[:, 1]))
    xy = np.round(xy[order] * np.float32(1000)) / np.float32(1000)
    sort_ix = kept_ix[order]
    n_ps = len(sort_ix)

    out = {}
    for key in list(merged):  # reorder one array at a time, freeing the unsorted one
        out[key] = merged.pop(key)[sort_ix]
    ph_rc = out["ph_rc"]
    nz = ph_rc != 0
    ph_rc[nz] = ph_rc[nz] / np.abs(ph_rc[nz])
    ps_new = {
        k: v
        for k, v in last_ps.items()
        if k not in ("ij", "xy", "lonlat", "n_ps", "ll0", "sort_ix")
    }
    ps_new.update(
        {
            "n_ps": n_ps,
            "ll0": ll0,
            "xy_rotation_deg": rotation,
            "ij": np.column_stack([np.arange(1, n_ps + 1), out["ij"]]).astype(np.int32),
            "xy": np.column_stack([np.arange(1, n_ps + 1, dtype=np.float32), xy]).astype(
                np.float32
            ),
            "lonlat": out["lonlat"],
        }
    )
    out["ps"] = ps_new
    return out


def run(
    run_dir: str | Path, parms: Mapping[str, Any], patch_dirs: list[Path] | None = None
) -> Path:
    """ps_merge_patches: write the merged ps2/ph2/rc2/pm2/bp2/la2/inc2/hgt2 in ``run_dir``."""
    log = get_logger()
    start = time.perf_counter()
    run_dir = Path(run_dir)
    m = merge_patches(run_dir, parms, patch_dirs)
    # each product is written and its arrays dropped before the next (no copies when the
    # arrays already have the stored type)
    save_product(product_path(run_dir, "ph2"), {"ph": np.asarray(m.pop("ph"), np.complex64)})
    rc = {"ph_rc": np.asarray(m.pop("ph_rc"), np.complex64)}
    if "ph_reref" in m:
        rc["ph_reref"] = np.asarray(m.pop("ph_reref"), np.complex64)
    save_product(product_path(run_dir, "rc2"), rc)
    del rc
    save_product(
        product_path(run_dir, "pm2"),
        {k: m.pop(k) for k in ("ph_patch", "ph_res", "K_ps", "C_ps", "coh_ps")},
    )
    save_product(
        product_path(run_dir, "bp2"), {"bperp_mat": np.asarray(m.pop("bperp_mat"), np.float32)}
    )
    for name in ("la", "inc", "hgt"):
        if name in m:
            save_product(product_path(run_dir, f"{name}2"), {name: m[name]})
    path = save_product(product_path(run_dir, "ps2"), m["ps"])
    log.info(
        "Step 5 merge: wrote ps2/ph2/rc2/pm2/bp2/la2/hgt2 with %d PS in %.1f s",
        m["ps"]["n_ps"],
        time.perf_counter() - start,
    )
    return path

"""Step 5, merge (ps_merge_patches): combine the weeded patches into one set of workspaces.

For each patch in ``patch.list`` the PS inside its core (``patch_noover.in``) are kept; a PS in an
overlap is kept from the first patch that has it, unless a later patch has it in its core, whose
values then replace it. With ``merge_resample_size`` > 0 (m) the PS of each core are instead
resampled onto a grid of that size: phases summed with SNR weights, K/C/look angle/height/Bperp
averaged with inverse-noise weights, cells whose total weight is below 1/merge_standard_dev^2
dropped. Then PS with duplicate lon/lat keep the one of highest coherence, local xy are recomputed
(rotated by the heading) and everything is sorted by y then x, as Step 1 does.

Writes, in the run directory: ps2, ph2, rc2, pm2, bp2, la2, inc2 (when present), hgt2.

Memory: a first pass reads only the per-PS vectors (ij, lonlat, core, K/C/coh, la/inc/hgt and,
when resampling, one patch's ``ph_res`` at a time), decides which rows are kept and their order;
then every (n_ps, n_ifg) dataset is written into its pre-sized HDF5 dataset by blocks of output
rows, read from slabs of the patches (resampled patches go through a scratch file first).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stamps_python.io.products import (
    create_rows_dataset,
    load_product,
    new_products,
    product_path,
    require,
    write_dataset,
)
from stamps_python.numerics.geodesy import llh2local, rotate_to_scene_axes
from stamps_python.parms import flag, number
from stamps_python.rundir import read_patch_core, read_patch_list
from stamps_python.utils import StampsError, get_logger

PHASE_ACCURACY = np.radians(10.0)  # best phase accuracy credited to one PS when weighting
BLOCK_BYTES = 64 << 20  # size of one block of output rows of a merged (n_ps, n_ifg) dataset


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


def _resample_groups(
    xy: np.ndarray,
    ph_res: np.ndarray,
    C_ps: np.ndarray,
    n_ifg: int,
    ix: np.ndarray,
    grid_size: float,
    min_weight: float,
    small_baseline: bool,
) -> dict[str, np.ndarray] | None:
    """Cells of a patch's core PS ``ix`` on a ``grid_size`` (m) grid and their weights (None when
    no cell reaches ``min_weight``): what the resampled values of every quantity need."""
    cell = resample_cells(xy[ix], grid_size)
    order = np.argsort(cell, kind="stable")
    ix, cell = ix[order], cell[order]

    ph_res = np.angle(np.exp(1j * (ph_res - C_ps.reshape(-1, 1))))
    if not small_baseline:
        ph_res = np.column_stack([ph_res, C_ps.reshape(-1, 1)])
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
    return {
        "ix": ix,
        "starts": starts,
        "weight": weight,
        "wsum": _group_sum(weight, starts),
        "snr": snr,
        "bp_weight": np.where(weight == 0, 1e-9, weight),
    }


def _wmean(g: Mapping[str, np.ndarray], v: np.ndarray) -> np.ndarray:
    """Inverse-noise weighted mean of ``v`` over each cell of ``g``."""
    v = v[g["ix"]]
    shape = (-1,) + (1,) * (v.ndim - 1)
    return _group_sum(v * g["weight"].reshape(shape), g["starts"]) / g["wsum"].reshape(shape)


def _resampled_rows(g: Mapping[str, np.ndarray], key: str, v: np.ndarray) -> np.ndarray:
    """Resampled (cells, n) rows of quantity ``key``: Bperp weighted-averaged, phases SNR-summed."""
    if key == "bperp_mat":
        w = g["bp_weight"]
        return (
            _group_sum(v[g["ix"]] * w[:, None], g["starts"]) / _group_sum(w, g["starts"])[:, None]
        )
    return _group_sum(v[g["ix"]] * g["snr"][:, None], g["starts"])


def _resampled_vectors(
    g: Mapping[str, np.ndarray], ij: np.ndarray, lonlat: np.ndarray, vec: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    out = {
        "ij": np.round(_wmean(g, ij[:, 1:].astype(np.float64))).astype(np.int64),
        "lonlat": _wmean(g, lonlat),
        "K_ps": _wmean(g, vec["K_ps"]),
        "C_ps": _wmean(g, vec["C_ps"]),
        "coh_ps": np.sqrt(1.0 / (1.0 + 1.0 / np.sqrt(_group_sum(g["snr"] ** 2, g["starts"])))),
    }
    for name in ("la", "inc", "hgt"):
        if name in vec:
            out[name] = _wmean(g, vec[name])
    return out


# the (n_ps, n_ifg) quantities, each with the product it is read from and written to
ROW_PRODUCT = {
    "ph": "ph2",
    "ph_rc": "rc2",
    "ph_reref": "rc2",
    "ph_patch": "pm2",
    "ph_res": "pm2",
    "bperp_mat": "bp2",
}
STORED_DTYPE = {
    "ph": np.complex64,
    "ph_rc": np.complex64,
    "ph_reref": np.complex64,
    "bperp_mat": np.float32,
}  # dtype written, where it is not that of the merged rows
PER_PS = tuple(ROW_PRODUCT) + ("K_ps", "C_ps", "coh_ps", "la", "inc", "hgt")


@dataclass
class _Patch:
    """A patch's contribution: its candidate rows before the duplicate removal and sorting."""

    directory: Path
    n_rows: int
    rows: np.ndarray | None = None  # no resampling: patch row of each candidate row
    groups: dict[str, np.ndarray] | None = None  # resampling: cells and weights
    row_meta: dict[str, tuple[np.dtype, tuple[int, ...]]] = field(default_factory=dict)


@dataclass
class MergePlan:
    """What the merge writes, known before any (n_ps, n_ifg) array is read."""

    patches: list[_Patch]
    offsets: np.ndarray  # first candidate row of each patch
    sort_ix: np.ndarray  # candidate row of each merged PS, in the merged order
    vectors: dict[str, np.ndarray]  # merged per-PS vectors (ij, lonlat, K_ps, ...), sorted
    row_meta: dict[str, tuple[np.dtype, tuple[int, ...]]]  # merged dtype and trailing shape
    ps: dict[str, Any]
    resampled: bool

    @property
    def n_ps(self) -> int:
        return len(self.sort_ix)


def _row_meta(patch_dir: Path) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """dtype and trailing shape of each (n, n_ifg) quantity stored in the patch."""
    meta = {}
    for key, product in ROW_PRODUCT.items():
        path = product_path(patch_dir, product)
        try:
            with h5py.File(path, "r") as f:
                if key in f:
                    meta[key] = (f[key].dtype, tuple(f[key].shape[1:]))
        except OSError as exc:
            raise StampsError(f"{path}: not a readable HDF5 product ({exc})") from None
    return meta


def plan_merge(
    run_dir: str | Path, parms: Mapping[str, Any], patch_dirs: list[Path] | None = None
) -> MergePlan:
    """First pass: which PS of which patch are kept and in which order, from the per-PS vectors
    only (and, when resampling, each patch's ``ph_res`` in turn)."""
    log = get_logger()
    run_dir = Path(run_dir)
    grid_size = number(parms, "merge_resample_size")
    merge_stdev = number(parms, "merge_standard_dev")
    min_weight = 1.0 / merge_stdev**2
    small_baseline = flag(parms, "small_baseline_flag")

    pieces: dict[str, list[np.ndarray]] = {k: [] for k in ("ij", "lonlat", *PER_PS)}
    patches: list[_Patch] = []
    position: dict[tuple[int, int], int] = {}
    removed: list[int] = []
    n_total = 0
    last_ps: dict[str, Any] | None = None
    for patch_dir in patch_dirs if patch_dirs is not None else read_patch_list(run_dir):
        for name in ("ps2", "ph2", "rc2", "pm2", "bp2"):
            require(product_path(patch_dir, name), f"Steps 4-5 on {patch_dir.name}")
        ps = load_product(product_path(patch_dir, "ps2"))
        last_ps = ps
        ij, lonlat = np.asarray(ps["ij"]), np.asarray(ps["lonlat"])
        pm = load_product(product_path(patch_dir, "pm2"), ["K_ps", "C_ps", "coh_ps"])
        vec = {k: np.asarray(v) for k, v in pm.items()}
        for name in ("la", "inc", "hgt"):
            path = product_path(patch_dir, f"{name}2")
            if path.is_file():
                vec[name] = np.asarray(load_product(path, [name])[name])
        meta = _row_meta(patch_dir)
        core = _core_mask(ij, patch_dir)
        if grid_size == 0:
            keys = list(zip(ij[:, 1].tolist(), ij[:, 2].tolist()))
            present = np.array([k in position for k in keys], dtype=bool)
            removed.extend(position[k] for k, c, p in zip(keys, core, present) if c and p)
            ix = np.flatnonzero(core | ~present)
            chunk = {"ij": ij[ix, 1:], "lonlat": lonlat[ix]}
            chunk.update({k: v[ix] for k, v in vec.items()})
            patch = _Patch(patch_dir, len(ix), rows=ix, row_meta=meta)
        else:
            ix = np.flatnonzero(core)
            groups = None
            if ix.size:
                ph_res = np.asarray(
                    load_product(product_path(patch_dir, "pm2"), ["ph_res"])["ph_res"]
                )
                if "ph" not in meta:
                    raise StampsError(f"{product_path(patch_dir, 'ph2')}: dataset 'ph' missing")
                groups = _resample_groups(
                    np.asarray(ps["xy"]),
                    ph_res,
                    vec["C_ps"],
                    meta["ph"][1][0],
                    ix,
                    grid_size,
                    min_weight,
                    small_baseline,
                )
                del ph_res
            if groups is None:
                log.warning("%s: no PS left after resampling to %g m", patch_dir.name, grid_size)
                continue
            chunk = _resampled_vectors(groups, ij, lonlat, vec)
            meta = {k: (np.result_type(dt, np.float64), tail) for k, (dt, tail) in meta.items()}
            patch = _Patch(patch_dir, len(chunk["ij"]), groups=groups, row_meta=meta)
        n_new = patch.n_rows
        if grid_size == 0:
            for j, k in enumerate(zip(chunk["ij"][:, 0].tolist(), chunk["ij"][:, 1].tolist())):
                position[k] = n_total + j
        for key in pieces:
            if key in chunk:
                pieces[key].append(np.asarray(chunk[key]))
        patches.append(patch)
        n_total += n_new
        log.info("   %s: %d PS kept of %d", patch_dir.name, n_new, len(ij))
    if last_ps is None or n_total == 0:
        raise StampsError(f"{run_dir}: no PS in any patch to merge")

    n_pieces = len(patches)
    merged = {k: np.concatenate(v) for k, v in pieces.items() if v and len(v) == n_pieces}
    del pieces
    row_meta = {}
    for key in ROW_PRODUCT:
        metas = [p.row_meta[key] for p in patches if key in p.row_meta]
        if len(metas) != n_pieces:
            continue
        if len({tail for _, tail in metas}) != 1:
            raise StampsError(f"{run_dir}: patches have '{key}' of different widths; rerun Step 1")
        row_meta[key] = (np.result_type(*[dt for dt, _ in metas]), metas[0][1])
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

    vectors = {key: merged.pop(key)[sort_ix] for key in list(merged)}
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
            "ij": np.column_stack([np.arange(1, n_ps + 1), vectors["ij"]]).astype(np.int32),
            "xy": np.column_stack([np.arange(1, n_ps + 1, dtype=np.float32), xy]).astype(
                np.float32
            ),
            "lonlat": vectors["lonlat"],
        }
    )
    offsets = np.cumsum([0] + [p.n_rows for p in patches[:-1]])
    return MergePlan(patches, offsets, sort_ix, vectors, row_meta, ps_new, grid_size > 0)


def _fill_scratch(plan: MergePlan, key: str, path: Path) -> None:
    """Resampled rows of ``key`` of every patch, in candidate order, in scratch file ``path``
    (one patch's input array in memory at a time)."""
    dtype, tail = plan.row_meta[key]
    with h5py.File(path, "w") as f:
        ds = create_rows_dataset(
            f, key, (int(plan.offsets[-1]) + plan.patches[-1].n_rows, *tail), dtype
        )
        for start, patch in zip(plan.offsets.tolist(), plan.patches):
            v = load_product(product_path(patch.directory, ROW_PRODUCT[key]), [key])[key]
            ds[start : start + patch.n_rows] = _resampled_rows(patch.groups, key, np.asarray(v))


def merged_rows(plan: MergePlan, key: str, scratch_dir: Path) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) of the merged (n_ps, n_ifg) quantity ``key``, in merged row order, in
    blocks of about BLOCK_BYTES; each block is read from one slab of each patch it takes rows from.
    Resampled rows are first computed patch by patch into a scratch file of ``scratch_dir``."""
    dtype, tail = plan.row_meta[key]
    step = max(1, BLOCK_BYTES // max(1, int(np.prod(tail)) * dtype.itemsize))
    with ExitStack() as stack:
        if plan.resampled:
            scratch = Path(scratch_dir) / f"{key}.h5"
            stack.callback(scratch.unlink, missing_ok=True)
            _fill_scratch(plan, key, scratch)
            shared = stack.enter_context(h5py.File(scratch, "r"))[key]
        datasets: dict[int, h5py.Dataset] = {}
        for r0 in range(0, plan.n_ps, step):
            src = plan.sort_ix[r0 : r0 + step]
            patch_of = np.searchsorted(plan.offsets, src, side="right") - 1
            block = np.empty((len(src), *tail), dtype)
            for p in np.unique(patch_of).tolist():
                sel = np.flatnonzero(patch_of == p)
                if plan.resampled:
                    rows, ds = src[sel], shared
                else:
                    rows = plan.patches[p].rows[src[sel] - plan.offsets[p]]
                    if p not in datasets:
                        path = product_path(plan.patches[p].directory, ROW_PRODUCT[key])
                        datasets[p] = stack.enter_context(h5py.File(path, "r"))[key]
                    ds = datasets[p]
                lo, hi = int(rows.min()), int(rows.max()) + 1
                block[sel] = ds[lo:hi][rows - lo]
            if key == "ph_rc":
                nz = block != 0
                block[nz] = block[nz] / np.abs(block[nz])
            yield r0, block


def merge_patches(
    run_dir: str | Path, parms: Mapping[str, Any], patch_dirs: list[Path] | None = None
) -> dict[str, Any]:
    """Merge the patches of ``run_dir`` (default: all of patch.list) in memory; returns the merged
    arrays (``ps``: the merged ps2). :func:`run` writes the same without holding them."""
    plan = plan_merge(run_dir, parms, patch_dirs)
    out: dict[str, Any] = dict(plan.vectors)
    with tempfile.TemporaryDirectory(dir=run_dir, prefix=".merge-scratch-") as scratch_dir:
        for key in plan.row_meta:
            out[key] = np.concatenate([b for _, b in merged_rows(plan, key, Path(scratch_dir))])
    out["ps"] = plan.ps
    return out


def run(
    run_dir: str | Path, parms: Mapping[str, Any], patch_dirs: list[Path] | None = None
) -> Path:
    """ps_merge_patches: write the merged ps2/ph2/rc2/pm2/bp2/la2/inc2/hgt2 in ``run_dir``, each
    (n_ps, n_ifg) dataset block of rows by block; all are renamed into place only at the end."""
    log = get_logger()
    start = time.perf_counter()
    run_dir = Path(run_dir)
    plan = plan_merge(run_dir, parms, patch_dirs)
    names = ["ps2", "ph2", "rc2", "pm2", "bp2"]
    names += [f"{n}2" for n in ("la", "inc", "hgt") if n in plan.vectors]
    with (
        tempfile.TemporaryDirectory(dir=run_dir, prefix=".merge-scratch-") as scratch_dir,
        new_products([product_path(run_dir, n) for n in names]) as files,
    ):
        out = dict(zip(names, files))
        for key, dest in ROW_PRODUCT.items():
            if key not in plan.row_meta:
                continue
            dtype = np.dtype(STORED_DTYPE.get(key, plan.row_meta[key][0]))
            ds = create_rows_dataset(out[dest], key, (plan.n_ps, *plan.row_meta[key][1]), dtype)
            for r0, block in merged_rows(plan, key, Path(scratch_dir)):
                ds[r0 : r0 + len(block)] = np.asarray(block, dtype)
        for key in ("K_ps", "C_ps", "coh_ps"):
            write_dataset(out["pm2"], key, plan.vectors[key])
        for name in ("la", "inc", "hgt"):
            if name in plan.vectors:
                write_dataset(out[f"{name}2"], name, plan.vectors[name])
        for key, value in plan.ps.items():
            if value is not None:
                write_dataset(out["ps2"], key, value)
    log.info(
        "Step 5 merge: wrote ps2/ph2/rc2/pm2/bp2/la2/hgt2 with %d PS in %.1f s",
        plan.n_ps,
        time.perf_counter() - start,
    )
    return product_path(run_dir, "ps2")

"""Combined PS + SB processing (StaMPS ``ps_sb_merge``): merge a PS run and an SB run after Step 5.

Both runs are made on the same stack and reference date up to Step 5. The PS run's
single-master values are turned into the SB run's pairs with the design matrix G (-1 at the
first image, +1 at the second): phase ``ph_patch`` / ``ph_rc`` (radians) and ``bperp_mat`` (m).
Every PS pixel gets the coherence it would have in the pairs, from its Step 2-4 residual
``ph_res``. Then:

- a PS pixel at the pixel (line, sample) of an SB point is combined with it: the SNR-weighted
  sum of the two unit phasors, SNR = 1 / (1 / coh^2 - 1), kept at the SB point's place;
- a PS pixel on no SB point ("PS only") is kept when its would-be coherence exceeds the smallest
  SB ``coh_ps`` (and it has no SB point at the same lon/lat);
- every SB point is kept.

The points (PS only, then SB) get new local xy (rotated by the heading) and are sorted by y
then x, as Step 5 does. Written in the MERGED run directory, which then runs Steps 6-8 and the
export as an SB run: ps2, pm2 (``ph_patch``, ``coh_ps``), rc2 (``ph_rc``), bp2, hgt2 / la2 /
inc2 (when both runs have them) and merge2 (``psu_ix``, ``psu_coh``, ``psnu_ix``, ``sbnu_ix``,
``psnu_coh``, ``sbnu_coh``, ``G``, ``sort_ix``, ``coh_threshold``; indices 0-based), plus the SB
run's parms.json, metadata.json, small_baselines.list, patch.list and patch folders.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stamps_python import __version__
from stamps_python.io.products import (
    load_product,
    new_products,
    product_path,
    require,
    write_dataset,
)
from stamps_python.numerics.geodesy import llh2local, rotate_to_scene_axes
from stamps_python.numerics.ps_sb_merge import (
    coherence_snr,
    duplicated_rows,
    insert_master,
    match_pixels,
    pair_design_matrix,
    pair_phasors,
    snr_combine,
    to_pairs,
    would_be_coherence,
)
from stamps_python.parms import PARMS_FILE, find_parms_file, flag, load_parms, number
from stamps_python.rundir import (
    METADATA,
    PATCH_IN,
    PATCH_NOOVER,
    PATCH_PREFIX,
    metadata_path,
    read_metadata,
    read_patch_list,
    sb_list_path,
    write_metadata,
    write_patch_list,
)
from stamps_python.utils import LOG_FILE, StampsError, datestr, get_logger

ROW_CHUNK = 65536  # PS rows turned into pairs at a time
STEP5 = ("ps2", "pm2", "rc2", "bp2")  # the Step-5 products both runs must have
OPTIONAL = {"hgt2": "hgt", "la2": "la", "inc2": "inc"}  # per-point products merged when in both
PER_POINT_PS2 = ("ij", "xy", "lonlat", "n_ps", "ll0", "sort_ix", "xy_rotation_deg")
MERGE_KEY = "ps_sb_merge"  # metadata.json section that marks a MERGED run


@dataclass
class _Run:
    """One input run: its directory, effective parameters, metadata (None when it has none) and
    ps2."""

    path: Path
    label: str
    parms: dict[str, Any]
    meta: dict[str, Any] | None
    ps: dict[str, Any]

    @property
    def n_ps(self) -> int:
        return int(self.ps["n_ps"])


def _load_run(path: Path, small_baseline: bool) -> _Run:
    label = "SB_RUN" if small_baseline else "PS_RUN"
    if not path.is_dir():
        raise StampsError(f"{path}: no such run directory ({label})")
    parms = load_parms(path)
    is_sb = flag(parms, "small_baseline_flag")
    if is_sb != small_baseline:
        kind = "a small-baseline" if is_sb else "a PS"
        want = "an SB run" if small_baseline else "a PS run"
        raise StampsError(
            f"{path}: {label} is {kind} run (small_baseline_flag '{'y' if is_sb else 'n'}'), "
            f"{label} must be {want}: ps_sb_merge PS_RUN SB_RUN --output MERGED"
        )
    for name in STEP5:
        require(product_path(path, name), f"Steps 1-5 on {label} {path}")
    meta = read_metadata(path) if metadata_path(path).is_file() else None
    if meta is not None and MERGE_KEY in meta:
        raise StampsError(f"{path}: {label} is a MERGED run of ps_sb_merge, not a {label[:2]} run")
    ps = load_product(product_path(path, "ps2"))
    keys = ["ij", "lonlat", "day", "master_ix", "master_day", "n_ps"]
    keys += ["ifgday_ix", "n_ifg", "n_image"] if small_baseline else []
    missing = [k for k in keys if k not in ps]
    if missing:
        hint = "small_baseline_flag 'y' from Step 1 on" if small_baseline else "Step 5 again"
        raise StampsError(
            f"{product_path(path, 'ps2')}: has no {', '.join(missing)}; is {label} a run of "
            f"Steps 1-5 ({hint})?"
        )
    return _Run(path, label, parms, meta, ps)


def _dates(days: np.ndarray) -> list[str]:
    return [datestr(d) for d in np.asarray(days, dtype=np.float64).ravel()]


def check_same_stack(ps: _Run, sb: _Run) -> None:
    """The two runs come from one stack, pixel grid, set of images and reference date; else a
    one-line StampsError saying what differs."""
    if ps.meta is not None and sb.meta is not None:
        a, b = ps.meta.get("merged_dir"), sb.meta.get("merged_dir")
        if a and b and Path(a).resolve() != Path(b).resolve():
            raise StampsError(
                f"{sb.path}: SB_RUN was prepared from stack {b}, PS_RUN {ps.path} from {a}: "
                f"both runs must come from the same stack"
            )
        size_a = (ps.meta.get("length"), ps.meta.get("width"))
        size_b = (sb.meta.get("length"), sb.meta.get("width"))
        if None not in size_a + size_b and size_a != size_b:
            raise StampsError(
                f"{sb.path}: SB_RUN's pixel grid is {size_b[0]} x {size_b[1]}, PS_RUN's "
                f"{size_a[0]} x {size_a[1]} (lines x samples): both runs must come from the "
                f"same stack, uncropped"
            )
        ref_a, ref_b = ps.meta.get("reference_date"), sb.meta.get("reference_date")
        if ref_a and ref_b and str(ref_a) != str(ref_b):
            raise StampsError(
                f"{sb.path}: SB_RUN's reference date is {ref_b}, PS_RUN's {ref_a}: both runs "
                f"must use the same reference date (prep_isce --reference-date)"
            )
    md_a, md_b = float(np.ravel(ps.ps["master_day"])[0]), float(np.ravel(sb.ps["master_day"])[0])
    if md_a != md_b:
        raise StampsError(
            f"{product_path(sb.path, 'ps2')}: SB_RUN's reference date is {datestr(md_b)}, "
            f"PS_RUN's {datestr(md_a)}: both runs must use the same reference date"
        )
    day_a, day_b = _dates(ps.ps["day"]), _dates(sb.ps["day"])
    if day_a != day_b:
        only_a = sorted(set(day_a) - set(day_b))
        only_b = sorted(set(day_b) - set(day_a))
        what = "; ".join(
            p
            for p in (
                f"only in PS_RUN: {', '.join(only_a)}" if only_a else "",
                f"only in SB_RUN: {', '.join(only_b)}" if only_b else "",
            )
            if p
        )
        raise StampsError(
            f"{product_path(sb.path, 'ps2')}: the image dates differ from PS_RUN's "
            f"({what or 'same dates in another order'}): both runs must use the same images"
        )
    n_image = len(day_b)
    if int(sb.ps["n_image"]) != n_image or int(ps.ps["master_ix"]) != int(sb.ps["master_ix"]):
        raise StampsError(
            f"{product_path(sb.path, 'ps2')}: n_image / master_ix disagree with its day list "
            f"or with PS_RUN's; run Step 5 again"
        )
    ifgday_ix = np.asarray(sb.ps["ifgday_ix"], dtype=np.int64).reshape(-1, 2)
    if (
        ifgday_ix.shape[0] != int(sb.ps["n_ifg"])
        or not ifgday_ix.size
        or ifgday_ix.min() < 0
        or ifgday_ix.max() >= n_image
    ):
        raise StampsError(
            f"{product_path(sb.path, 'ps2')}: ifgday_ix does not index its {n_image} images "
            f"for {int(sb.ps['n_ifg'])} pairs; run Step 5 again"
        )
    if sb.meta is not None and None not in (sb.meta.get("length"), sb.meta.get("width")):
        shape = (int(sb.meta["length"]), int(sb.meta["width"]))
        for run in (ps, sb):
            ij = np.asarray(run.ps["ij"])[:, 1:3]
            if ij.size and (
                ij.min() < 0 or ij[:, 0].max() >= shape[0] or ij[:, 1].max() >= shape[1]
            ):
                raise StampsError(
                    f"{product_path(run.path, 'ps2')}: pixels outside the {shape[0]} x "
                    f"{shape[1]} grid of the stack: both runs must come from the same stack"
                )


def check_output(merged: Path, ps_run: Path, sb_run: Path) -> None:
    """MERGED must be neither input run, and empty, new or an earlier ps_sb_merge output."""
    ps_r, sb_r, out_r = (p.resolve() for p in (ps_run, sb_run, merged))
    if ps_r == sb_r:
        raise StampsError(f"{ps_run}: PS_RUN and SB_RUN are the same run directory")
    for label, r, given in (("PS_RUN", ps_r, ps_run), ("SB_RUN", sb_r, sb_run)):
        if out_r == r:
            raise StampsError(
                f"--output {merged}: is {label} {given}; ps_sb_merge does not write into its "
                f"inputs: choose another directory"
            )
        if r in out_r.parents and out_r.relative_to(r).parts[0].startswith(PATCH_PREFIX):
            raise StampsError(f"--output {merged}: is inside a patch folder of {label} {given}")
    if not merged.exists():
        return
    if not merged.is_dir():
        raise StampsError(f"--output {merged}: exists and is not a directory")
    if (merged / METADATA).is_file():
        meta = read_metadata(merged)
        if MERGE_KEY in meta:
            return
        raise StampsError(
            f"--output {merged}: holds a run that ps_sb_merge did not write; choose a new directory"
        )
    if product_path(merged, "merge2").is_file():
        return
    if any(p.name != LOG_FILE for p in merged.iterdir()):
        raise StampsError(f"--output {merged}: not empty; choose a new directory")


@dataclass
class MergePlan:
    """Which PS and SB rows the MERGED run holds and in which order (no phase read yet)."""

    psu_ix: np.ndarray  # PS rows kept on their own (0-based rows of PS_RUN's ps2)
    psu_coh: np.ndarray
    psnu_ix: np.ndarray  # PS rows at an SB point's pixel
    sbnu_ix: np.ndarray  # the SB rows they are combined with
    psnu_coh: np.ndarray
    sbnu_coh: np.ndarray
    coh_threshold: float  # smallest SB coh_ps
    sort_ix: np.ndarray  # row of [PS only; SB] of every merged point, in merged order
    n_dup_lonlat: int
    n_low_coh: int
    ps2: dict[str, Any]


def _would_be_coherence(ps: _Run, ifgday_ix: np.ndarray) -> np.ndarray:
    """Would-be SB coherence of every PS of ``ps`` (rows of pm2 ph_res in chunks)."""
    path = product_path(ps.path, "pm2")
    master_ix = int(ps.ps["master_ix"])
    n_image = len(np.ravel(ps.ps["day"]))
    try:
        with h5py.File(path, "r") as f:
            if "ph_res" not in f:
                raise StampsError(f"{path}: dataset 'ph_res' missing; run Steps 2-5 again")
            ds = f["ph_res"]
            if ds.shape != (ps.n_ps, n_image - 1):
                raise StampsError(
                    f"{path}: ph_res has shape {ds.shape}, expected ({ps.n_ps}, "
                    f"{n_image - 1}) (PS x secondary images); run Step 5 again"
                )
            coh = np.empty(ps.n_ps)
            for r0 in range(0, ps.n_ps, ROW_CHUNK):
                rows = slice(r0, r0 + ROW_CHUNK)
                coh[rows] = would_be_coherence(ds[rows], master_ix, ifgday_ix)
    except OSError as exc:
        raise StampsError(f"{path}: not a readable HDF5 product ({exc})") from None
    return coh


def _vector(run: _Run, product: str, key: str) -> np.ndarray:
    path = product_path(run.path, product)
    values = np.asarray(load_product(path, [key])[key])
    if values.shape[0] != run.n_ps:
        raise StampsError(
            f"{path}: {key} has {values.shape[0]} rows but ps2.h5 has {run.n_ps}; "
            f"run Step 5 of {run.label} again"
        )
    return values


def plan_merge(ps: _Run, sb: _Run) -> MergePlan:
    """Match the PS pixels to the SB points, choose the kept PS and the merged order."""
    ifgday_ix = np.asarray(sb.ps["ifgday_ix"], dtype=np.int64).reshape(-1, 2)
    ij_ps = np.asarray(ps.ps["ij"])[:, 1:3]
    ij_sb = np.asarray(sb.ps["ij"])[:, 1:3]
    pssb_ix = match_pixels(ij_ps, ij_sb)
    psnu_ix = np.flatnonzero(pssb_ix >= 0)
    sbnu_ix = pssb_ix[psnu_ix]
    if np.unique(sbnu_ix).size < sbnu_ix.size:
        # several PS at one SB point (a resampled PS run): the last one counts, as MATLAB's
        # assignment; the others are treated as PS only
        rev = np.arange(sbnu_ix.size)[::-1]
        _, first_rev = np.unique(sbnu_ix[rev], return_index=True)
        last = np.sort(rev[first_rev])
        psnu_ix, sbnu_ix = psnu_ix[last], sbnu_ix[last]
    psu_ix = np.setdiff1d(np.arange(ps.n_ps), psnu_ix)

    lonlat_ps = np.asarray(ps.ps["lonlat"], dtype=np.float64)
    lonlat_sb = np.asarray(sb.ps["lonlat"], dtype=np.float64)
    dup = duplicated_rows(lonlat_ps[psu_ix], lonlat_sb)
    psu_ix = psu_ix[~dup]

    coh_ps2 = _would_be_coherence(ps, ifgday_ix)
    coh_sb = _vector(sb, "pm2", "coh_ps").astype(np.float64).ravel()
    threshold = float(coh_sb.min())
    high = coh_ps2[psu_ix] > threshold
    n_low = int(np.sum(~high))
    psu_ix = psu_ix[high]

    lonlat = np.concatenate([lonlat_ps[psu_ix], lonlat_sb])
    ij = np.concatenate([ij_ps[psu_ix], ij_sb]).astype(np.int64)
    ll0 = (lonlat.max(axis=0) + lonlat.min(axis=0)) / 2.0
    heading = number(sb.parms, "heading")
    xy, rotation = rotate_to_scene_axes(
        llh2local(lonlat, ll0), heading if np.isfinite(heading) else 0.0
    )
    xy = xy.astype(np.float32)
    sort_ix = np.lexsort((xy[:, 0], xy[:, 1]))
    xy = np.round(xy[sort_ix] * np.float32(1000)) / np.float32(1000)
    n = len(sort_ix)

    ps2 = {k: v for k, v in sb.ps.items() if k not in PER_POINT_PS2}
    ps2.update(
        {
            "n_ps": n,
            "ll0": ll0,
            "xy_rotation_deg": rotation,
            "ij": np.column_stack([np.arange(1, n + 1), ij[sort_ix]]).astype(np.int32),
            "xy": np.column_stack([np.arange(1, n + 1, dtype=np.float32), xy]).astype(np.float32),
            "lonlat": lonlat[sort_ix],
        }
    )
    return MergePlan(
        psu_ix=psu_ix,
        psu_coh=coh_ps2[psu_ix],
        psnu_ix=psnu_ix,
        sbnu_ix=sbnu_ix,
        psnu_coh=coh_ps2[psnu_ix],
        sbnu_coh=coh_sb[sbnu_ix],
        coh_threshold=threshold,
        sort_ix=sort_ix,
        n_dup_lonlat=int(dup.sum()),
        n_low_coh=n_low,
        ps2=ps2,
    )


def _ps_rows_as_pairs(
    values: np.ndarray, rows: np.ndarray, master_ix: int, ifgday_ix: np.ndarray, kind: str
) -> np.ndarray:
    """PS ``values`` of ``rows`` as pairs, in chunks: ``kind`` 'patch' (complex, no master
    column: angle, master phase 0), 'rc' (complex, master column included: angle) or 'bperp'
    (m, no master column: master 0 m)."""
    n_ifg = ifgday_ix.shape[0]
    out = np.empty((rows.size, n_ifg), dtype=np.float32 if kind == "bperp" else np.complex64)
    for r0 in range(0, rows.size, ROW_CHUNK):
        block = np.asarray(values[rows[r0 : r0 + ROW_CHUNK]])
        if kind == "bperp":
            full = insert_master(block.astype(np.float64), master_ix, 0.0)
            out[r0 : r0 + ROW_CHUNK] = to_pairs(full, ifgday_ix)
            continue
        phase = np.angle(block.astype(np.complex128))
        if kind == "patch":
            phase = insert_master(phase, master_ix, 0.0)
        out[r0 : r0 + ROW_CHUNK] = pair_phasors(phase, ifgday_ix)
    return out


def _ps_matrix(ps: _Run, product: str, key: str, n_col: int) -> np.ndarray:
    path = product_path(ps.path, product)
    values = np.asarray(load_product(path, [key])[key])
    if values.shape != (ps.n_ps, n_col):
        raise StampsError(
            f"{path}: {key} has shape {values.shape}, expected ({ps.n_ps}, {n_col}); run "
            f"Step 5 of PS_RUN again"
        )
    return values


def _sb_matrix(sb: _Run, product: str, key: str) -> np.ndarray:
    path = product_path(sb.path, product)
    values = np.asarray(load_product(path, [key])[key])
    n_ifg = int(sb.ps["n_ifg"])
    if values.shape != (sb.n_ps, n_ifg):
        raise StampsError(
            f"{path}: {key} has shape {values.shape}, expected ({sb.n_ps}, {n_ifg}); run "
            f"Step 5 of SB_RUN again"
        )
    return values


def merged_arrays(ps: _Run, sb: _Run, plan: MergePlan) -> dict[str, dict[str, Any]]:
    """{product: {dataset: value}} of the MERGED run (without its ps2 and merge2)."""
    ifgday_ix = np.asarray(sb.ps["ifgday_ix"], dtype=np.int64).reshape(-1, 2)
    master_ix = int(ps.ps["master_ix"])
    n_image = len(np.ravel(ps.ps["day"]))
    psnu_snr = coherence_snr(plan.psnu_coh)
    sbnu_snr = coherence_snr(plan.sbnu_coh)
    order = plan.sort_ix

    n_psu = plan.psu_ix.size
    pos = np.empty(order.size, dtype=np.int64)  # merged row of every row of [PS only; SB]
    pos[order] = np.arange(order.size)

    def merged_rows(ps_values: np.ndarray, sb_values: np.ndarray, kind: str) -> np.ndarray:
        dtype = np.float32 if kind == "bperp" else np.complex64
        rows = np.empty((order.size, ifgday_ix.shape[0]), dtype=dtype)
        rows[pos[:n_psu]] = _ps_rows_as_pairs(ps_values, plan.psu_ix, master_ix, ifgday_ix, kind)
        rows[pos[n_psu:]] = sb_values
        if kind != "bperp" and plan.psnu_ix.size:
            both = _ps_rows_as_pairs(ps_values, plan.psnu_ix, master_ix, ifgday_ix, kind)
            rows[pos[n_psu + plan.sbnu_ix]] = snr_combine(
                sb_values[plan.sbnu_ix], sbnu_snr, both, psnu_snr
            )
        return rows

    out: dict[str, dict[str, Any]] = {}
    # a combined point keeps the SB coh_ps: both phases of a pixel come from the same SLC
    # values, so the sum is no independent second measurement and has no higher coherence
    coh_sb = _vector(sb, "pm2", "coh_ps").astype(np.float64).ravel()
    out["pm2"] = {
        "ph_patch": merged_rows(
            _ps_matrix(ps, "pm2", "ph_patch", n_image - 1),
            _sb_matrix(sb, "pm2", "ph_patch"),
            "patch",
        ),
        "coh_ps": np.concatenate([plan.psu_coh, coh_sb])[order].astype(np.float32),
    }
    out["rc2"] = {
        "ph_rc": merged_rows(
            _ps_matrix(ps, "rc2", "ph_rc", n_image), _sb_matrix(sb, "rc2", "ph_rc"), "rc"
        )
    }
    out["bp2"] = {
        "bperp_mat": merged_rows(
            _ps_matrix(ps, "bp2", "bperp_mat", n_image - 1),
            _sb_matrix(sb, "bp2", "bperp_mat"),
            "bperp",
        )
    }
    for product, key in OPTIONAL.items():
        in_ps = product_path(ps.path, product).is_file()
        in_sb = product_path(sb.path, product).is_file()
        if in_ps and in_sb:
            v_ps = _vector(ps, product, key)[plan.psu_ix]
            v_sb = _vector(sb, product, key)
            out[product] = {key: np.concatenate([v_ps, v_sb.astype(v_ps.dtype)])[order]}
        elif in_ps or in_sb:
            get_logger().warning(
                "%s: only %s has it; not written to the MERGED run",
                product,
                "PS_RUN" if in_ps else "SB_RUN",
            )
    return out


def _copy_run_files(sb: _Run, ps: _Run, merged: Path, plan: MergePlan) -> None:
    """parms.json (kept when MERGED has one), metadata.json, small_baselines.list, patch.list
    and the patch folders (patch.in / patch_noover.in) of the SB run, so that Steps 6-8 and
    the export run on MERGED as on an SB run."""
    if not (merged / PARMS_FILE).is_file():
        source = find_parms_file(sb.path)
        if source is None:
            raise StampsError(f"{sb.path}: no {PARMS_FILE} to copy to the MERGED run")
        shutil.copyfile(source, merged / PARMS_FILE)
    meta = dict(sb.meta or {})
    meta[MERGE_KEY] = {
        "ps_run": str(ps.path.resolve()),
        "sb_run": str(sb.path.resolve()),
        "n_ps_only": int(plan.psu_ix.size),
        "n_combined": int(plan.sbnu_ix.size),
        "n_sb": int(sb.n_ps),
        "n_points": int(plan.sort_ix.size),
        "coh_threshold": plan.coh_threshold,
        "stamps_python_version": __version__,
    }
    write_metadata(merged, json.loads(json.dumps(meta, default=float)))
    sb_list = sb_list_path(sb.path, sb.meta)
    if sb_list.is_file():
        shutil.copyfile(sb_list, merged / sb_list.name)
    patches = read_patch_list(sb.path)
    for patch in patches:
        target = merged / patch.name
        target.mkdir(exist_ok=True)
        for name in (PATCH_IN, PATCH_NOOVER):
            if (patch / name).is_file():
                shutil.copyfile(patch / name, target / name)
    write_patch_list(merged, [p.name for p in patches])


def ps_sb_merge(ps_run: str | Path, sb_run: str | Path, merged_run: str | Path) -> Path:
    """Merge PS run ``ps_run`` and SB run ``sb_run`` (both after Step 5, same stack and
    reference date) into the run directory ``merged_run``; returns its ps2.h5.

    Errors (StampsError, nothing written): a run missing or of the wrong kind, Step 5 products
    missing, runs of different stacks, images or reference dates, ``merged_run`` being one of
    the inputs or a directory holding something else. A rerun replaces an earlier merge (its
    Step 6-8 products are deleted).
    """
    log = get_logger()
    start = time.perf_counter()
    ps_run, sb_run, merged = Path(ps_run), Path(sb_run), Path(merged_run)
    check_output(merged, ps_run, sb_run)
    ps = _load_run(ps_run, small_baseline=False)
    sb = _load_run(sb_run, small_baseline=True)
    check_same_stack(ps, sb)
    n_ifg, n_image = int(sb.ps["n_ifg"]), int(sb.ps["n_image"])
    resample = number(sb.parms, "merge_resample_size")
    log.info(
        "ps_sb_merge %s: PS_RUN %s (%d PS), SB_RUN %s (%d points, %d pairs of %d images, "
        "reference %s)",
        __version__,
        ps_run,
        ps.n_ps,
        sb_run,
        sb.n_ps,
        n_ifg,
        n_image,
        datestr(float(np.ravel(sb.ps["master_day"])[0])),
    )
    if number(ps.parms, "merge_resample_size") > 0:
        log.warning(
            "PS_RUN was resampled in Step 5 (merge_resample_size %g m): its points are cell "
            "averages, not pixels",
            number(ps.parms, "merge_resample_size"),
        )
    plan = plan_merge(ps, sb)
    if resample > 0:
        log.warning(
            "SB_RUN was resampled in Step 5 (merge_resample_size %g m): its points are cell "
            "averages placed at the rounded mean pixel of their cell, so only the %d PS at "
            "exactly such a pixel are combined with one; the other PS are added beside the "
            "cells. For pixel-by-pixel combination run Step 5 of SB_RUN with "
            "merge_resample_size 0",
            resample,
            plan.psnu_ix.size,
        )
    log.info("   %d PS at an SB point's pixel: combined with it (SNR-weighted)", plan.psnu_ix.size)
    log.info(
        "   %d PS only kept (would-be SB coherence above %.3f, the smallest SB coh_ps); %d "
        "below it dropped; %d with the lon/lat of another point dropped",
        plan.psu_ix.size,
        plan.coh_threshold,
        plan.n_low_coh,
        plan.n_dup_lonlat,
    )
    arrays = merged_arrays(ps, sb, plan)
    G = pair_design_matrix(np.asarray(sb.ps["ifgday_ix"]), n_image)
    arrays["merge2"] = {
        "psu_ix": plan.psu_ix.astype(np.int64),
        "psu_coh": plan.psu_coh,
        "psnu_ix": plan.psnu_ix.astype(np.int64),
        "sbnu_ix": plan.sbnu_ix.astype(np.int64),
        "psnu_coh": plan.psnu_coh,
        "sbnu_coh": plan.sbnu_coh,
        "G": G,
        "sort_ix": plan.sort_ix.astype(np.int64),
        "coh_threshold": plan.coh_threshold,
    }
    arrays = {"ps2": plan.ps2, **arrays}

    merged.mkdir(parents=True, exist_ok=True)
    names = list(arrays)
    with new_products([product_path(merged, n) for n in names]) as files:
        for name, f in zip(names, files):
            for key, value in arrays[name].items():
                if value is not None:
                    write_dataset(f, key, value)
    written = {product_path(merged, n).name for n in names}
    for stale in merged.glob("*.h5"):
        if stale.name not in written:
            stale.unlink()
            log.info("   removed %s of an earlier merge", stale.name)
    _copy_run_files(sb, ps, merged, plan)
    log.info(
        "ps_sb_merge wrote %s in %s: %d points (%d PS only, %d SB of which %d combined) in %.1f s",
        ", ".join(f"{n}.h5" for n in names),
        merged,
        plan.sort_ix.size,
        plan.psu_ix.size,
        sb.n_ps,
        plan.sbnu_ix.size,
        time.perf_counter() - start,
    )
    return product_path(merged, "ps2")

"""Step 1 (PS): load the candidates of a patch into the StaMPS workspaces, as ps_load_initial_isce.

Input: ``PATCH_n/pscands.h5`` written by prep_isce (the equivalent of mt_prep's pscands.1.ij,
.ph, .ll, .hgt, .da files plus the stack-wide day/bperp/calamp lists). Output: ``ps1.h5``,
``ph1.h5``, ``bp1.h5``, ``la1.h5``, ``inc1.h5`` (when incidence angles were prepared), ``da1.h5``,
``hgt1.h5`` (see docs/products.md).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.isce import sample_grids
from stamps_python.io.products import (
    load_product,
    product_path,
    require,
    save_product,
    save_product_rows,
)
from stamps_python.numerics.geodesy import llh2local
from stamps_python.utils import StampsError, datenum, get_logger

PSCANDS = "pscands.h5"


def rotate_to_scene_axes(xy: np.ndarray, heading_deg: float) -> tuple[np.ndarray, float]:
    """Rotate local xy (n, 2; m) by the heading so scene axes roughly align with x and y.

    As StaMPS: the rotation angle is (180 - heading) deg, wrapped to (-pi, pi]; the rotation is
    kept only if it shrinks the extent along both axes. Returns (xy, angle in degrees applied).
    """
    theta = np.radians(180.0 - heading_deg)
    if theta > np.pi:
        theta -= 2 * np.pi
    c, s = np.cos(theta), np.sin(theta)
    rotated = np.column_stack([c * xy[:, 0] + s * xy[:, 1], -s * xy[:, 0] + c * xy[:, 1]])
    span = np.ptp(xy, axis=0) if len(xy) else np.zeros(2)
    span_rot = np.ptp(rotated, axis=0) if len(xy) else np.zeros(2)
    if span_rot[0] < span[0] and span_rot[1] < span[1]:
        return rotated, float(np.degrees(theta))
    return xy, 0.0


def step1_layout(cands: Mapping[str, Any]) -> dict[str, Any]:
    """Everything of Step 1 except the (n_ps, n_ifg) matrices: ps1 and the orders to apply
    (also the base of the small-baseline ps1, see ``sb_load_initial``)."""
    dates = [str(d) for d in cands["dates"]]
    master = str(cands["master_date"])
    if master not in dates:
        raise StampsError(f"reference date {master} is not among the stack dates")
    sec_dates = [d for d in dates if d != master]
    bperp_all = dict(zip(dates, np.asarray(cands["bperp"], dtype=np.float64)))
    cal_all = dict(zip(dates, np.asarray(cands["calconst"], dtype=np.float64)))

    slave_day = np.array([datenum(d) for d in sec_dates], dtype=np.float64)
    day_ix = np.argsort(slave_day, kind="stable")
    slave_day = slave_day[day_ix]
    master_day = float(datenum(master))
    master_ix = int(np.sum(slave_day < master_day))
    day = np.insert(slave_day, master_ix, master_day)
    sec_sorted = [sec_dates[i] for i in day_ix]
    all_sorted = sec_sorted[:master_ix] + [master] + sec_sorted[master_ix:]
    bperp = np.insert(np.array([bperp_all[d] for d in sec_sorted]), master_ix, 0.0)
    calconst = np.array([cal_all[d] for d in sec_sorted])

    ij_in = np.asarray(cands["ij"], dtype=np.int64).reshape(-1, 2)
    n_ps = len(ij_in)
    if n_ps == 0:
        raise StampsError("no PS candidates in this patch")
    lonlat = np.asarray(cands["lonlat"], dtype=np.float64).reshape(-1, 2)
    ll0 = (lonlat.max(axis=0) + lonlat.min(axis=0)) / 2.0
    xy, rotation = rotate_to_scene_axes(llh2local(lonlat, ll0), float(cands["heading"]))
    xy = xy.astype(np.float32)
    sort_ix = np.lexsort((xy[:, 0], xy[:, 1]))
    xy = xy[sort_ix]
    xy = np.round(xy * np.float32(1000)) / np.float32(1000)
    ps1 = {
        "ij": np.column_stack([np.arange(1, n_ps + 1), ij_in[sort_ix]]).astype(np.int32),
        "lonlat": lonlat[sort_ix],
        "xy": np.column_stack([np.arange(1, n_ps + 1, dtype=np.float32), xy]).astype(np.float32),
        "bperp": bperp, "day": day, "dates": all_sorted, "master_day": master_day,
        "master_date": master, "master_ix": master_ix, "n_ifg": len(day), "n_image": len(day),
        "n_ps": n_ps, "sort_ix": sort_ix.astype(np.int64), "ll0": ll0, "calconst": calconst,
        "day_ix": day_ix.astype(np.int64), "xy_rotation_deg": rotation,
    }
    return ps1


def _ph_rows(ph: np.ndarray, ps1: Mapping[str, Any], start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of ph1: sorted candidates, secondaries by date / calconst, master = 1."""
    rows = ps1["sort_ix"][start:stop]
    block = np.asarray(ph[rows], dtype=np.complex64)[:, ps1["day_ix"]]
    block /= ps1["calconst"].astype(np.float32)[None, :]
    return np.insert(block, ps1["master_ix"], np.complex64(1.0), axis=1)


def candidate_bperp(cands: Mapping[str, Any], rows: np.ndarray) -> np.ndarray | None:
    """Bperp (m) of pscands rows ``rows`` for each secondary in ``cands['dates']`` order,
    (k, n_sec) float32, from the topsStack baseline grids; None when the stack has none.

    pscands.h5 holds either the coarse grids whole (``bperp_grids``, interpolated here at the
    candidates as ps_load_initial_isce does) or full-resolution values per candidate
    (``bperp_mat``).
    """
    if cands.get("bperp_mat") is not None:
        return np.asarray(cands["bperp_mat"], dtype=np.float32)[rows]
    if cands.get("bperp_grids") is None:
        return None
    ij = np.asarray(cands["ij"], dtype=np.int64).reshape(-1, 2)[rows]
    length, width = (int(v) for v in cands["image_size"])
    return sample_grids(np.asarray(cands["bperp_grids"]), ij[:, 0], ij[:, 1], length,
                        width).astype(np.float32)


def _bp_rows(cands: Mapping[str, Any], ps1: Mapping[str, Any], start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of bperp_mat (m): baseline grids at the PS, or the per-date values."""
    grid = candidate_bperp(cands, ps1["sort_ix"][start:stop])
    if grid is not None:
        return grid[:, ps1["day_ix"]]
    row = np.delete(ps1["bperp"], ps1["master_ix"]).astype(np.float32)
    return np.repeat(row[None, :], stop - start, axis=0)


def step1_vectors(cands: Mapping[str, Any], ps1: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-candidate workspaces la1, da1, hgt1 (and inc1) in ps1's sort order (angles in
    radians, heights in m)."""
    sort_ix = ps1["sort_ix"]
    out: dict[str, dict[str, Any]] = {
        "la1": {"la": np.radians(np.asarray(cands["la"], dtype=np.float64)[sort_ix])},
        "da1": {"D_A": np.asarray(cands["D_A"], dtype=np.float64)[sort_ix]},
        "hgt1": {"hgt": np.asarray(cands["hgt"], dtype=np.float64)[sort_ix]},
    }
    if cands.get("inc") is not None:
        out["inc1"] = {"inc": np.radians(np.asarray(cands["inc"], dtype=np.float64)[sort_ix])}
    return out


def build_step1(cands: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Build the Step-1 workspaces of one patch in memory (see :func:`write_step1`).

    ``cands`` holds: ``ij`` (n, 2) azimuth line / range sample (0-based); ``ph`` (n, n_sec)
    complex reference x conj(secondary), secondaries in ``dates`` order without the reference;
    ``lonlat`` (n, 2) deg; ``hgt`` (n,) m; ``D_A`` (n,); ``la`` (n,) deg; optional ``inc`` (n,)
    deg; optional ``bperp_grids`` (n_sec, ny, nx) m with ``image_size`` (lines, samples), or
    ``bperp_mat`` (n, n_sec) m; ``dates`` (all images, YYYYMMDD); ``master_date``;
    ``bperp`` per image (m, 0 at the reference); ``calconst`` per image; ``heading`` (deg).
    Returns {product name: {dataset: value}} for ps1, ph1, bp1, la1, (inc1), da1, hgt1.
    """
    ps1 = step1_layout(cands)
    n = ps1["n_ps"]
    return {"ps1": ps1, "ph1": {"ph": _ph_rows(np.asarray(cands["ph"]), ps1, 0, n)},
            "bp1": {"bperp_mat": _bp_rows(cands, ps1, 0, n)}, **step1_vectors(cands, ps1)}


def write_step1(patch_dir: str | Path, cands: Mapping[str, Any], chunk: int = 65536) -> dict:
    """Write the Step-1 workspaces of one patch, the big matrices in blocks of ``chunk`` rows.

    Same content as :func:`build_step1`; only ``cands['ph']`` (and the baseline grids) are held
    in memory whole. Returns ps1.
    """
    patch_dir = Path(patch_dir)
    ps1 = step1_layout(cands)
    n, n_ifg = ps1["n_ps"], ps1["n_ifg"]
    ph = np.asarray(cands["ph"])
    starts = range(0, n, chunk)
    save_product_rows(product_path(patch_dir, "ph1"), "ph", (n, n_ifg), np.complex64,
                      ((i, _ph_rows(ph, ps1, i, min(i + chunk, n))) for i in starts))
    save_product_rows(product_path(patch_dir, "bp1"), "bperp_mat", (n, n_ifg - 1), np.float32,
                      ((i, _bp_rows(cands, ps1, i, min(i + chunk, n))) for i in starts))
    for name, data in step1_vectors(cands, ps1).items():
        save_product(product_path(patch_dir, name), data)
    save_product(product_path(patch_dir, "ps1"), ps1)
    return ps1


def run(patch_dir: str | Path, parms: Mapping[str, Any] | None = None) -> Path:
    """Step 1 for one patch: read ``pscands.h5``, write ps1/ph1/bp1/la1/(inc1)/da1/hgt1.h5."""
    log = get_logger()
    patch_dir = Path(patch_dir)
    start = time.perf_counter()
    src = require(patch_dir / PSCANDS, "prep_isce on this run directory")
    cands = load_product(src)
    ps1 = write_step1(patch_dir, cands)
    names = ["ps1", "ph1", "bp1", "la1", "da1", "hgt1"] + (["inc1"] if "inc" in cands else [])
    log.info(
        "Step 1 %s: read %s (%d candidates, %d images, reference %s); wrote %s in %.1f s",
        patch_dir.name, src.name, ps1["n_ps"], ps1["n_ifg"], ps1["master_date"],
        ", ".join(f"{n}.h5" for n in names), time.perf_counter() - start,
    )
    return product_path(patch_dir, "ps1")

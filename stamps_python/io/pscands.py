"""``PATCH_n/pscands.h5`` (written by prep_isce) read into the Step-1 layout shared by
``ps_load_initial`` and ``sb_load_initial``: ps1 and its sort orders, candidate baselines and the
per-candidate vectors (la1, da1, hgt1, inc1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from stamps_python.io.isce import sample_grids
from stamps_python.numerics.geodesy import llh2local, rotate_to_scene_axes
from stamps_python.utils import StampsError, datenum

PSCANDS = "pscands.h5"


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
        "bperp": bperp,
        "day": day,
        "dates": all_sorted,
        "master_day": master_day,
        "master_date": master,
        "master_ix": master_ix,
        "n_ifg": len(day),
        "n_image": len(day),
        "n_ps": n_ps,
        "sort_ix": sort_ix.astype(np.int64),
        "ll0": ll0,
        "calconst": calconst,
        "day_ix": day_ix.astype(np.int64),
        "xy_rotation_deg": rotation,
    }
    return ps1


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
    return sample_grids(np.asarray(cands["bperp_grids"]), ij[:, 0], ij[:, 1], length, width).astype(
        np.float32
    )


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

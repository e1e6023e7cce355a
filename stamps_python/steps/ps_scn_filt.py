"""Step 8 (ps_scn_filt): spatially correlated noise (SCN), high-pass in time, low-pass in space.

The unwrapped phase (rad) minus the Step-7 SCLA, master AOE ``C_ps_uw`` and ramps is, per PS,
high-pass filtered in time: a Gaussian moving average in time (standard deviation
``scn_time_win`` days, the master image given zero weight) is subtracted. Interferograms listed
in ``scn_deramp_ifg`` are deramped first and their ramp is added back to the high-pass part.
That part, ``ph_hpt`` (relative to the first PS), is then low-pass filtered in space with a
Gaussian of standard deviation ``scn_wavelength`` m over the PS within 4 x ``scn_wavelength``,
and referenced to the first PS: ``ph_scn_slave`` (n_ps, n_ifg; master column 0).

StaMPS filters the phase differences of Delaunay arcs in time and integrates them back to PS by
least squares. Both operations are linear and the arc differences of a per-PS field are exactly
integrable, so for a connected triangulation (always, for PS at distinct positions) the result
equals the per-PS time filter referenced to the first PS; it is computed that way here, without
the arc system.

Writes ``scn2.h5``: ``ph_scn_slave``, ``ph_hpt`` (n_ps, n_used), ``ph_ramp`` (n_ps, n_deramp),
as StaMPS; ``ph_noise_res`` (n_ps, n_ifg) = ph_hpt - SCN and ``std_ph_noise`` (n_ps,), as the
kriging variant saves; and ``ph_scn_master`` (n_ps,), the SCN estimate of the master column
that StaMPS computes and zeroes, with its sign flipped so that it follows ``C_ps_uw`` (what the
master adds to every interferogram).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial import cKDTree
from tqdm import tqdm

from stamps_python.io.products import load_product, product_path, require, save_product
from stamps_python.parms import flag, ifg_index0, with_defaults
from stamps_python.steps.ps_calc_scla import (
    check_rows,
)
from stamps_python.utils import StampsError, get_logger

_PAIR_BUDGET = 4_000_000  # PS pairs held at once by the spatial filter
_ROW_CHUNK = 131072


def time_lowpass_weights(day: np.ndarray, time_win: float,
                         master_col: int | None) -> np.ndarray:
    """(n, n) row-normalised Gaussian weights in time (std ``time_win`` days) of dates ``day``.

    Row i holds the weights that image i gives every image; the master column gets weight 0.
    """
    day = np.asarray(day, dtype=np.float64)
    w = np.exp(-((day[:, None] - day[None, :]) ** 2) / (2.0 * time_win**2))
    if master_col is not None:
        w[:, master_col] = 0.0
    return w / w.sum(axis=1, keepdims=True)


def time_highpass(ph: np.ndarray, day: np.ndarray, time_win: float,
                  master_col: int | None) -> np.ndarray:
    """``ph`` (n_ps, n) minus its Gaussian moving average in time, per PS row (float32 out).

    Computed in float64 over row chunks.
    """
    W = time_lowpass_weights(day, time_win, master_col)
    op = np.eye(len(W)) - W.T
    out = np.empty(ph.shape, dtype=np.float32)
    for r0 in range(0, ph.shape[0], _ROW_CHUNK):
        rows = slice(r0, r0 + _ROW_CHUNK)
        out[rows] = np.asarray(ph[rows], dtype=np.float64) @ op
    return out


def plane_fit(xy_m: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Least-squares plane ``c + a x + b y`` (x, y in m) of each column of ``data``: the fit."""
    G = np.column_stack([np.ones(len(xy_m)), xy_m[:, 0], xy_m[:, 1]])
    coeff = np.linalg.lstsq(G, np.asarray(data, dtype=np.float64), rcond=None)[0]
    return G @ coeff


def spatial_lowpass(xy_m: np.ndarray, values: np.ndarray, wavelength: float,
                    show_progress: bool = True) -> np.ndarray:
    """Gaussian-weighted mean (std ``wavelength`` m) over PS closer than 4 x ``wavelength``.

    ``xy_m`` (n, 2) metres, ``values`` (n, k). The weights of each PS are normalised to sum 1
    (the PS itself included). Computed in single precision, as StaMPS (double weights times
    single phase); returns (n, k) float32.
    """
    xy = np.asarray(xy_m, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float32)
    n = len(xy)
    radius = 4.0 * wavelength
    tree = cKDTree(xy)
    out = np.empty((n, vals.shape[1]), dtype=np.float32)
    sample = xy[:: max(1, n // 2000)]  # mean neighbour count from an evenly strided sample
    density = float(np.mean(tree.query_ball_point(sample, radius, return_length=True)))
    chunk = int(max(1, min(n, _PAIR_BUDGET // max(density, 1.0))))
    starts = range(0, n, chunk)
    for r0 in tqdm(starts, desc="low-pass filtering in space", unit="chunk",
                   disable=not show_progress or len(starts) < 2):
        rows = np.arange(r0, min(n, r0 + chunk))
        pairs = cKDTree(xy[rows]).sparse_distance_matrix(tree, radius, output_type="ndarray")
        keep = pairs["v"] < radius  # the query includes pairs at exactly the radius
        i, j = pairs["i"][keep], pairs["j"][keep]
        dist_sq = pairs["v"][keep] ** 2
        w = np.exp(-dist_sq / (2.0 * wavelength**2))
        w /= np.bincount(i, weights=w, minlength=len(rows))[i]
        out[rows] = csr_matrix((w.astype(np.float32), (i, j)), shape=(len(rows), n)) @ vals
    return out


def run(run_dir: str | Path, parms: Mapping[str, Any]) -> Path:
    """ps_scn_filt in ``run_dir``: writes ``scn2.h5`` (see module docstring)."""
    log = get_logger()
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    p = with_defaults(parms)
    if flag(p, "scn_kriging_flag"):
        raise StampsError("scn_kriging_flag = 'y' (ps_scn_filt_krig) is not available in "
                          "stamps_python; set scn_kriging_flag to 'n'")
    log.info("Estimating other spatially-correlated noise ...")
    time_win = float(p["scn_time_win"])
    wavelength = float(p["scn_wavelength"])
    sb_flag = flag(p, "small_baseline_flag")

    ps_path = require(product_path(run_dir, "ps2"), "Step 5")
    phuw_path = require(product_path(run_dir, "phuw", 2), "Step 6")
    ps = load_product(ps_path)
    n_ps, n_ifg = int(ps["n_ps"]), int(ps["n_ifg"])
    ph_uw = check_rows(phuw_path, np.asarray(load_product(phuw_path, ["ph_uw"])["ph_uw"]), n_ps,
                       "Step 6")
    n_col = ph_uw.shape[1]
    n_image = int(ps.get("n_image", n_ifg))
    day_all = np.asarray(ps["day"], dtype=np.float64)
    if sb_flag:
        uii = np.arange(n_image)
    else:
        uii = np.setdiff1d(np.arange(n_ifg),
                           ifg_index0(p.get("drop_ifg_index", []), n_ifg, "drop_ifg_index"))
    day = day_all[uii]
    master_ix = int(np.sum(float(ps["master_day"]) > day_all))  # 0-based, in the full list
    hits = np.flatnonzero(uii == master_ix)
    # StaMPS zeroes the time weight of column master_ix of the *used* interferograms, which is
    # another image once an interferogram before the master is dropped; the master's own
    # position among the used ones is taken here.
    master_col = int(hits[0]) if hits.size else None
    n_use = uii.size
    log.info("Number of points per ifg: %d", n_ps)

    ph_all = np.array(ph_uw[:, uii], dtype=np.float32)
    del ph_uw
    scla_path = product_path(run_dir, "scla", 2)
    if scla_path.is_file():
        scla = load_product(scla_path, ["ph_scla", "C_ps_uw", "ph_ramp"])
        check_rows(scla_path, scla["ph_scla"], n_ps, "Step 7")
        ph_all -= np.asarray(scla["ph_scla"], dtype=np.float32)[:, uii]
        C_ps_uw = np.asarray(scla["C_ps_uw"], dtype=np.float64).ravel()
        ph_all -= C_ps_uw.astype(np.float32)[:, None]
        ramp7 = np.asarray(scla["ph_ramp"])
        if ramp7.size:
            ph_all -= ramp7.astype(np.float32)[:, uii]
        log.info("subtracted ph_scla, C_ps_uw%s of %s", " and ph_ramp" if ramp7.size else "",
                 scla_path.name)
    else:
        log.warning("%s not found: SCN estimated without removing the SCLA (run Step 7 first "
                    "to remove it)", scla_path.name)
    ph_all[np.isnan(ph_all)] = 0.0

    deramp_ifg = ifg_index0(p.get("scn_deramp_ifg", []), n_col, "scn_deramp_ifg",
                             allow_all=True)
    deramp_ix = np.flatnonzero(np.isin(uii, deramp_ifg))
    xy = np.asarray(ps["xy"], dtype=np.float64)[:, 1:3]
    ph_ramp = np.zeros((n_ps, deramp_ix.size), dtype=np.float32)
    if deramp_ix.size:
        log.info("deramping selected ifgs: %s", (uii[deramp_ix] + 1).tolist())
        ramp = plane_fit(xy, ph_all[:, deramp_ix])
        ph_all[:, deramp_ix] -= ramp.astype(np.float32)
        ph_ramp = ramp.astype(np.float32)

    log.info("high-pass filtering in time (scn_time_win %g days) ...", time_win)
    ph_hpt = time_highpass(ph_all, day, time_win, master_col)
    del ph_all
    ph_hpt -= ph_hpt[0].copy()
    ph_hpt[:, deramp_ix] += ph_ramp

    log.info("low-pass filtering in space (scn_wavelength %g m) ...", wavelength)
    ph_scn = spatial_lowpass(xy, ph_hpt, wavelength)
    ph_scn -= ph_scn[0]

    ph_scn_slave = np.zeros((n_ps, n_col), dtype=np.float32)
    ph_scn_slave[:, uii] = ph_scn
    ph_noise_res = np.zeros((n_ps, n_col), dtype=np.float32)
    ph_noise_res[:, uii] = ph_hpt - ph_scn
    std_ph_noise = (np.std(ph_noise_res[:, uii], axis=1, ddof=1) if n_use > 1
                    else np.full(n_ps, np.nan))
    if master_col is not None:
        ph_scn_master = -ph_scn[:, master_col]
    else:
        ph_scn_master = np.zeros(n_ps, dtype=np.float32)
    if master_ix < n_col:
        ph_scn_slave[:, master_ix] = 0.0

    out_path = product_path(run_dir, "scn", 2)
    save_product(out_path, {"ph_scn_slave": ph_scn_slave, "ph_hpt": ph_hpt, "ph_ramp": ph_ramp,
                            "ph_noise_res": ph_noise_res, "std_ph_noise": std_ph_noise,
                            "ph_scn_master": ph_scn_master})
    log.info("SCN rms %.3f rad, residual noise rms %.3f rad over %d ifgs",
             float(np.sqrt(np.mean(ph_scn_slave[:, uii] ** 2))),
             float(np.sqrt(np.mean(ph_noise_res[:, uii] ** 2))), n_use)
    log.info("Step 8 ps_scn_filt: read %s, %s; wrote %s in %.1f s", ps_path.name,
             phuw_path.name, out_path.name, time.perf_counter() - t_start)
    return out_path

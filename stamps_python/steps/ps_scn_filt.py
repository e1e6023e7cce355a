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

from stamps_python.io.products import (
    check_rows,
    load_product,
    product_path,
    require,
    save_product,
)
from stamps_python.numerics.defo_model import fit_rows, model_design, residual_deramp
from stamps_python.numerics.lscov import lscov_operator
from stamps_python.numerics.scn_filter import plane_fit, spatial_lowpass, time_highpass
from stamps_python.parms import flag, ifg_index0, number, required
from stamps_python.utils import StampsError, get_logger


def auto_time_win(day: np.ndarray, time_win: float) -> float:
    """Time window (days) that follows the stack: min(time_win, max(span / 8, 2 x the median
    spacing of the dates ``day``))."""
    d = np.sort(np.asarray(day, dtype=np.float64).ravel())
    spacing = float(np.median(np.diff(d))) if d.size > 1 else time_win
    return float(min(time_win, max(np.ptp(d) / 8.0, 2.0 * spacing)))


def _model_fit(
    ph: np.ndarray, day: np.ndarray, ref_day: float, model: str, fit_cols: np.ndarray
) -> np.ndarray:
    """Each row's least-squares ``model`` fit (rad, float32, at all columns of ``ph``) to the
    columns ``fit_cols``."""
    G = model_design(day[fit_cols], ref_day, model)
    coef_op = lscov_operator(G).T
    G_all = model_design(day, ref_day, model)
    return fit_rows(ph[:, fit_cols], coef_op @ G_all.T).astype(np.float32)


def run(run_dir: str | Path, parms: Mapping[str, Any]) -> Path:
    """ps_scn_filt in ``run_dir``: writes ``scn2.h5`` (see module docstring)."""
    log = get_logger()
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    if flag(parms, "scn_kriging_flag"):
        raise StampsError(
            "scn_kriging_flag = 'y' (ps_scn_filt_krig) is not available in "
            "stamps_python; set scn_kriging_flag to 'n'"
        )
    log.info("Estimating other spatially-correlated noise ...")
    time_win = number(parms, "scn_time_win")
    wavelength = number(parms, "scn_wavelength")
    sb_flag = flag(parms, "small_baseline_flag")

    ps_path = require(product_path(run_dir, "ps2"), "Step 5")
    phuw_path = require(product_path(run_dir, "phuw", 2), "Step 6")
    ps = load_product(ps_path)
    n_ps, n_ifg = int(ps["n_ps"]), int(ps["n_ifg"])
    ph_uw = check_rows(
        phuw_path, np.asarray(load_product(phuw_path, ["ph_uw"])["ph_uw"]), n_ps, "Step 6"
    )
    n_col = ph_uw.shape[1]
    n_image = int(ps.get("n_image", n_ifg))
    day_all = np.asarray(ps["day"], dtype=np.float64)
    if sb_flag:
        uii = np.arange(n_image)
    else:
        uii = np.setdiff1d(
            np.arange(n_ifg), ifg_index0(required(parms, "drop_ifg_index"), n_ifg, "drop_ifg_index")
        )
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
        log.info(
            "subtracted ph_scla, C_ps_uw%s of %s",
            " and ph_ramp" if ramp7.size else "",
            scla_path.name,
        )
    else:
        log.warning(
            "%s not found: SCN estimated without removing the SCLA (run Step 7 first to remove it)",
            scla_path.name,
        )
    ph_all[np.isnan(ph_all)] = 0.0

    fit_cols = np.flatnonzero(np.arange(n_use) != (-1 if master_col is None else master_col))
    model = str(required(parms, "defo_model"))
    if flag(parms, "detrend_scn"):
        ph_all -= _model_fit(ph_all, day, float(ps["master_day"]), model, fit_cols)
        log.info("removed each PS's %s deformation model before filtering (detrend_scn)", model)

    deramp_ifg = ifg_index0(
        required(parms, "scn_deramp_ifg"), n_col, "scn_deramp_ifg", allow_all=True
    )
    deramp_ix = np.flatnonzero(np.isin(uii, deramp_ifg))
    xy = np.asarray(ps["xy"], dtype=np.float64)[:, 1:3]
    ph_ramp = np.zeros((n_ps, deramp_ix.size), dtype=np.float32)
    if deramp_ix.size:
        log.info("deramping selected ifgs: %s", (uii[deramp_ix] + 1).tolist())
        if str(required(parms, "deramp_method")) == "model" and not flag(parms, "detrend_scn"):
            G = model_design(day[fit_cols], float(ps["master_day"]), model)
            ramp_all = np.zeros((n_ps, n_use))
            ramp_all[:, fit_cols] = residual_deramp(ph_all[:, fit_cols], xy, G)[1]
            ramp = ramp_all[:, deramp_ix]
        else:
            ramp = plane_fit(xy, ph_all[:, deramp_ix])
        ph_all[:, deramp_ix] -= ramp.astype(np.float32)
        ph_ramp = ramp.astype(np.float32)

    if flag(parms, "auto_scn_time_win"):
        time_win = auto_time_win(day_all, time_win)
        log.info(
            "auto_scn_time_win: time window %.1f days for a %.0f-day stack",
            time_win,
            float(np.ptp(day_all)),
        )
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
    std_ph_noise = (
        np.std(ph_noise_res[:, uii], axis=1, ddof=1) if n_use > 1 else np.full(n_ps, np.nan)
    )
    if master_col is not None:
        ph_scn_master = -ph_scn[:, master_col]
    else:
        ph_scn_master = np.zeros(n_ps, dtype=np.float32)
    if master_ix < n_col:
        ph_scn_slave[:, master_ix] = 0.0

    out_path = product_path(run_dir, "scn", 2)
    save_product(
        out_path,
        {
            "ph_scn_slave": ph_scn_slave,
            "ph_hpt": ph_hpt,
            "ph_ramp": ph_ramp,
            "ph_noise_res": ph_noise_res,
            "std_ph_noise": std_ph_noise,
            "ph_scn_master": ph_scn_master,
        },
    )
    log.info(
        "SCN rms %.3f rad, residual noise rms %.3f rad over %d ifgs",
        float(np.sqrt(np.mean(ph_scn_slave[:, uii] ** 2))),
        float(np.sqrt(np.mean(ph_noise_res[:, uii] ** 2))),
        n_use,
    )
    log.info(
        "Step 8 ps_scn_filt: read %s, %s; wrote %s in %.1f s",
        ps_path.name,
        phuw_path.name,
        out_path.name,
        time.perf_counter() - t_start,
    )
    return out_path

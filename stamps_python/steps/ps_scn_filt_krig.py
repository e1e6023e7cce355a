"""Step 8 with ``scn_kriging_flag = 'y'`` (StaMPS ps_scn_filt_krig): SCN by kriging.

The unwrapped phase (rad) minus the Step-7 SCLA, master AOE ``C_ps_uw`` and ramps, with a plane
removed from every interferogram used (``ph_ramp``), is differenced along the Delaunay arcs.
Per arc:

1. a deformation model (quadratic in time, annual sine and cosine, constant; years since
   2000) is fitted and removed (``modeled_defo_edges``);
2. exponential temporal variograms are fitted (ps_fit_vario) to the residual of up to 15 000
   randomly drawn arcs; the reliable ones (range, sill and nugget within StaMPS' bounds) are
   modelled as second-degree surfaces over the arc positions, giving every arc a variogram;
3. with more than 50 reliable arcs, the residual is kriged in time (ps_kriging): leaving each
   epoch out flags 2 pi differences as ``unwrapping_errors`` (saved, not applied), and the
   kriged value at each epoch is the low-pass part; otherwise a Gaussian moving average of
   ``scn_time_win`` days (master weight 0) is, as in ps_scn_filt.

The high-pass arc phase is integrated to the PS by least squares (PS 1 at 0): ``ph_hpt``. Per
interferogram, a second-degree surface is fitted to a random sample of PS and removed, an
exponential spatial variogram is fitted to the sample, and every PS is kriged from its 50
nearest PS within 4 ranges; the screen is the kriged value plus the surface plus ``ph_ramp``,
referenced to PS 1.

Writes ``scn2.h5`` (``ph_scn_slave``, ``ph_hpt``, ``ph_ramp``, ``ph_noise_res``,
``std_ph_noise``, ``ph_scn_master`` as ps_scn_filt; ``aps_variogram``), ``modeled_defo_edges.h5``
and, when the arcs were kriged, ``unwrapping_errors_edges.h5`` and ``temp_vario.h5``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import check_rows, load_product, product_path, require, save_product
from stamps_python.numerics.kriging import (
    arc_model_design,
    empirical_variogram,
    fit_variogram,
    integrate_arcs,
    quadratic_design,
    spatial_kriging,
    temporal_kriging,
    unique_draws,
)
from stamps_python.numerics.matlab import matlab_round_array
from stamps_python.numerics.scn_filter import plane_fit, time_lowpass_weights
from stamps_python.numerics.triangulation import delaunay_edges
from stamps_python.parms import flag, ifg_index0, number, required
from stamps_python.utils import StampsError, datenum, get_logger, progress_bar, timed

SEED = 2011  # seeds the arc and PS samples (MATLAB draws them from its unseeded global stream)
MAX_OB_VARIO = 15000  # draws of arcs (and of PS) for the variograms
MIN_RELIABLE_ARCS = 50  # more reliable temporal variograms than this: kriging in time
TIME_VARIO = {"a0": 0.25, "c10": 1.0, "c20": 2.0, "max_dist": 1.5, "n_lags": 25}  # years
SPACE_VARIO = {"a0": 15000.0, "c10": 1.0, "c20": 1.0, "max_dist": 30000.0, "n_lags": 30}  # m
SPACE_N_MAX = 50  # PS kriged from
YEAR_ZERO = datenum("20000101")  # origin of ps_scn_filt_krig's years


def _corrected_phase(
    run_dir: Path, ps: Mapping[str, Any], ph_uw: np.ndarray, uii: np.ndarray
) -> np.ndarray:
    """ph_uw of the used columns minus scla2's ph_scla, C_ps_uw and ph_ramp (when scla2 exists),
    NaN set to 0, float32."""
    log = get_logger()
    n_ps = int(ps["n_ps"])
    ph_all = np.array(ph_uw[:, uii], dtype=np.float32)
    scla_path = product_path(run_dir, "scla", 2)
    if scla_path.is_file():
        scla = load_product(scla_path, ["ph_scla", "C_ps_uw", "ph_ramp"])
        check_rows(scla_path, scla["ph_scla"], n_ps, "Step 7")
        ph_all -= np.asarray(scla["ph_scla"], dtype=np.float32)[:, uii]
        ph_all -= np.asarray(scla["C_ps_uw"], dtype=np.float32).ravel()[:, None]
        ramp7 = np.asarray(scla["ph_ramp"])
        if ramp7.size:
            ph_all -= ramp7.astype(np.float32)[:, uii]
        what = "ph_scla, C_ps_uw" + (", ph_ramp" if ramp7.size else "")
        log.info("read %s: subtracted %s", scla_path.name, what)
    else:
        log.warning("%s not found: SCN estimated without removing the SCLA", scla_path.name)
    ph_all[np.isnan(ph_all)] = 0.0
    return ph_all


def _fit_arc_variograms(
    years: np.ndarray, dph: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Temporal variograms (a years, c1, c2 rad^2) of up to MAX_OB_VARIO drawn arcs; NaN for
    the arcs not drawn."""
    n_edges = dph.shape[0]
    a, c1, c2 = (np.full(n_edges, np.nan, dtype=np.float32) for _ in range(3))
    drawn = unique_draws(rng, n_edges, MAX_OB_VARIO)
    coords = np.column_stack([years, np.zeros_like(years)])
    lags, semi, _ = empirical_variogram(
        coords, dph[drawn].T, TIME_VARIO["max_dist"], TIME_VARIO["n_lags"]
    )
    for col, n in enumerate(progress_bar(drawn, desc="temporal variograms", unit="arc", hide=None)):
        a[n], c1[n], c2[n] = fit_variogram(
            lags, semi[:, col], TIME_VARIO["a0"], TIME_VARIO["c10"], TIME_VARIO["c20"]
        )
    return a, c1, c2


def _arc_variogram_models(
    xe: np.ndarray,
    ye: np.ndarray,
    a: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
    ind_in: np.ndarray,
    mean_year: float,
    mean_std: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every arc's variogram from second-degree surfaces fitted to the reliable ones; values at
    or below StaMPS' lower bounds replaced by the mean of the reliable ones."""
    mean_x, mean_y = float(np.nanmean(xe)), float(np.nanmean(ye))
    G = quadratic_design(xe[ind_in], ye[ind_in], mean_x, mean_y)
    G_all = quadratic_design(xe, ye, mean_x, mean_y)
    out = []
    for v, low in ((a, mean_year / 50), (c1, mean_std / 50), (c2, mean_std / 50)):
        coef = np.linalg.lstsq(G, v[ind_in].astype(np.float64), rcond=None)[0]
        model = G_all @ coef
        model[model <= low] = float(np.mean(v[ind_in]))
        out.append(model)
    return out[0], out[1], out[2]


def _aps_kriging(
    xy: np.ndarray, ph_hpt: np.ndarray, rng: np.random.Generator, ifg_numbers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``ph_hpt`` (interferogram ``ifg_numbers``, 1-based, for the log): surface
    + kriged residual at every PS, and the variograms (a m, c1, c2 rad^2)."""
    log = get_logger()
    n_ps, n_col = ph_hpt.shape
    sample = unique_draws(rng, n_ps, min(MAX_OB_VARIO, n_ps))
    mean_x, mean_y = (float(v) for v in np.mean(xy[sample], axis=0))
    G = quadratic_design(xy[sample, 0], xy[sample, 1], mean_x, mean_y)
    G_all = quadratic_design(xy[:, 0], xy[:, 1], mean_x, mean_y)
    coef = np.linalg.lstsq(G, ph_hpt[sample].astype(np.float64), rcond=None)[0]
    trend = G_all @ coef
    resid = ph_hpt - trend
    lags, semi, _ = empirical_variogram(
        xy[sample], resid[sample], SPACE_VARIO["max_dist"], SPACE_VARIO["n_lags"]
    )
    vario = np.empty((n_col, 3))
    for k in range(n_col):
        vario[k] = fit_variogram(
            lags, semi[:, k], SPACE_VARIO["a0"], SPACE_VARIO["c10"], SPACE_VARIO["c20"]
        )
        if not (np.isfinite(vario[k, 0]) and vario[k, 0] > 0):
            log.warning(
                "interferogram %d: no usable spatial variogram range; using %g m",
                int(ifg_numbers[k]),
                SPACE_VARIO["a0"],
            )
            vario[k, 0] = SPACE_VARIO["a0"]
        if not np.all(np.isfinite(vario[k, 1:])) or vario[k, 1] + vario[k, 2] <= 0:
            vario[k, 1:] = (0.0, 1.0)  # no structure: the mean of the neighbours
    log.info(
        "spatial variograms (%d PS sampled): range median %.0f m, sill median %.3f rad^2, "
        "nugget median %.3f rad^2",
        sample.size,
        float(np.median(vario[:, 0])),
        float(np.median(vario[:, 1])),
        float(np.median(vario[:, 2])),
    )
    with timed(f"kriging {n_ps} PS x {n_col} interferograms in space"):
        aps = spatial_kriging(xy, resid, vario, SPACE_N_MAX)
    return aps + trend, vario


def run(run_dir: str | Path, parms: Mapping[str, Any]) -> Path:
    """ps_scn_filt_krig in ``run_dir``: writes ``scn2.h5`` and the arc products (module
    docstring); returns the scn2 path."""
    log = get_logger()
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    log.info("Estimating other spatially-correlated noise by kriging (ps_scn_filt_krig) ...")
    time_win = number(parms, "scn_time_win")
    sb_flag = flag(parms, "small_baseline_flag")
    rng = np.random.default_rng(SEED)

    ps_path = require(product_path(run_dir, "ps2"), "Step 5")
    phuw_path = require(product_path(run_dir, "phuw", 2), "Step 6")
    ps = load_product(ps_path)
    n_ps, n_ifg = int(ps["n_ps"]), int(ps["n_ifg"])
    ph_uw = check_rows(
        phuw_path, np.asarray(load_product(phuw_path, ["ph_uw"])["ph_uw"]), n_ps, "Step 6"
    )
    log.info("read %s, %s", ps_path.name, phuw_path.name)
    n_col = ph_uw.shape[1]
    day_all = np.asarray(ps["day"], dtype=np.float64).ravel()
    if sb_flag:
        uii = np.arange(int(ps.get("n_image", n_ifg)))
    else:
        drop = ifg_index0(required(parms, "drop_ifg_index"), n_ifg, "drop_ifg_index")
        uii = np.setdiff1d(np.arange(n_ifg), drop)
    day = day_all[uii]
    master_ix = int(np.sum(float(ps["master_day"]) > day_all))
    hits = np.flatnonzero(uii == master_ix)
    master_col = int(hits[0]) if hits.size else None
    n_use = uii.size
    log.info("Number of points per ifg: %d, interferograms used: %d", n_ps, n_use)
    if n_ps < 3 or n_use < 2:
        raise StampsError(
            f"{ps_path}: kriging needs at least 3 PS and 2 interferograms, got {n_ps} and {n_use}"
        )

    ph_all = _corrected_phase(run_dir, ps, ph_uw, uii)
    del ph_uw
    xy = np.asarray(ps["xy"], dtype=np.float64)[:, 1:3]
    # ps_scn_filt_krig deramps every interferogram used, whatever scn_deramp_ifg says
    ph_ramp = plane_fit(xy, ph_all).astype(np.float32)
    ph_all -= ph_ramp

    edges = delaunay_edges(xy)
    n_edges = len(edges)
    dph = ph_all[edges[:, 1]].astype(np.float64) - ph_all[edges[:, 0]]
    del ph_all
    x_edges = 0.5 * (xy[edges[:, 1], 0] + xy[edges[:, 0], 0])
    y_edges = 0.5 * (xy[edges[:, 1], 1] + xy[edges[:, 0], 1])
    log.info("%d arcs of the Delaunay triangulation", n_edges)

    years = (day - YEAR_ZERO) / 365.25
    A_time = arc_model_design(years)
    coef = np.linalg.lstsq(A_time, dph.T, rcond=None)[0].T
    dph -= coef @ A_time.T
    with timed("temporal variograms of the arcs"):
        a, c1, c2 = _fit_arc_variograms(years, dph, rng)
    mean_year = float(np.mean(years))
    mean_std = float(np.nanmean(np.std(dph, axis=0, ddof=1))) if n_edges > 1 else math.nan
    with np.errstate(invalid="ignore"):
        ind_in = (
            (a < mean_year * 3)
            & (a > mean_year / 50)
            & (c1 > mean_std / 50)
            & (c1 < 4 * mean_std)
            & (c2 > mean_std / 50)
            & (c2 < 4 * mean_std)
            & ~np.isnan(a)
        )
    n_reliable = int(ind_in.sum())
    log.info("%d of %d fitted temporal variograms reliable", n_reliable, int(np.sum(~np.isnan(a))))
    defo_path = run_dir / "modeled_defo_edges.h5"
    save_product(
        defo_path,
        {
            "modeled_defo_edges": coef.astype(np.float32),
            "A_time": A_time,
            "a": a,
            "c1": c1,
            "c2": c2,
            "years": years,
            "mean_std": mean_std,
        },
    )
    log.info("wrote %s", defo_path.name)

    err_path, vario_path = run_dir / "unwrapping_errors_edges.h5", run_dir / "temp_vario.h5"
    if n_reliable > MIN_RELIABLE_ARCS:
        a_e, c1_e, c2_e = _arc_variogram_models(
            x_edges, y_edges, a, c1, c2, ind_in, mean_year, mean_std
        )
        n_max = math.ceil(mean_year + 2 * float(np.std(years, ddof=1)))
        with timed(f"kriging {n_edges} arcs in time"):
            jumps = temporal_kriging(years, dph, a_e, c1_e, c2_e, n_max, leave_one_out=True)
            jumps -= dph
            jumps /= 2.01 * np.pi
            unwrapping_errors = np.clip(np.nan_to_num(matlab_round_array(jumps)), -128, 127).astype(
                np.int8
            )
            del jumps
            dph_lpt = temporal_kriging(years, dph, a_e, c1_e, c2_e, n_max, leave_one_out=False)
        n_jumps = int(np.count_nonzero(unwrapping_errors))
        log.info("%d arc phases differ from their kriged value by about 2 pi", n_jumps)
        save_product(
            err_path,
            {
                "x_edges": x_edges,
                "y_edges": y_edges,
                "unwrapping_errors": unwrapping_errors,
                "edges": edges,
            },
        )
        save_product(
            vario_path,
            {
                "ind_in": ind_in,
                "a": a,
                "c1": c1,
                "c2": c2,
                "years": years,
                "dph_lpt": dph_lpt.astype(np.float32),
                "dph": dph.astype(np.float32),
                "corrected_dph": (dph + 2 * np.pi * unwrapping_errors).astype(np.float32),
            },
        )
        log.info("wrote %s, %s", err_path.name, vario_path.name)
    else:
        if flag(parms, "auto_scn_time_win"):
            d = np.sort(day_all)
            spacing = float(np.median(np.diff(d))) if d.size > 1 else time_win
            time_win = min(time_win, max(float(np.ptp(d)) / 8.0, 2.0 * spacing))
        log.info(
            "%d reliable temporal variograms (need more than %d): Gaussian time filter of %g days",
            n_reliable,
            MIN_RELIABLE_ARCS,
            time_win,
        )
        dph_lpt = dph @ time_lowpass_weights(day, time_win, master_col).T
        for stale in (err_path, vario_path):
            if stale.is_file():
                stale.unlink()
                log.info("removed %s of an earlier run", stale.name)

    with timed("solving for high-frequency (in time) pixel phase"):
        ph_hpt, solved = integrate_arcs(edges, n_ps, dph - dph_lpt)
    if not solved.all():
        log.warning("%d PS on no arc connected to PS 1: their ph_hpt is 0", int((~solved).sum()))
    ph_hpt = ph_hpt.astype(np.float32)

    ph_scn, vario = _aps_kriging(xy, ph_hpt.astype(np.float64), rng, uii + 1)
    ph_scn += ph_ramp
    ph_scn -= ph_scn[0]
    ph_scn = ph_scn.astype(np.float32)

    ph_scn_slave = np.zeros((n_ps, n_col), dtype=np.float32)
    ph_scn_slave[:, uii] = ph_scn
    # the screen of what was kriged: without the ramps, which ph_hpt does not hold
    ph_noise_res = np.zeros((n_ps, n_col), dtype=np.float32)
    ph_noise_res[:, uii] = ph_hpt - (ph_scn - (ph_ramp - ph_ramp[0]))
    std_ph_noise = (
        np.std(ph_noise_res[:, uii], axis=1, ddof=1) if n_use > 1 else np.full(n_ps, np.nan)
    )
    ph_scn_master = (
        -ph_scn[:, master_col] if master_col is not None else np.zeros(n_ps, dtype=np.float32)
    )
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
            "std_ph_noise": std_ph_noise.astype(np.float32),
            "ph_scn_master": ph_scn_master,
            "aps_variogram": vario,
        },
    )
    log.info(
        "SCN rms %.3f rad, residual noise rms %.3f rad over %d ifgs",
        float(np.sqrt(np.mean(ph_scn_slave[:, uii] ** 2))),
        float(np.sqrt(np.mean(ph_noise_res[:, uii] ** 2))),
        n_use,
    )
    log.info(
        "Step 8 ps_scn_filt_krig: wrote %s in %.1f s", out_path.name, time.perf_counter() - t_start
    )
    return out_path

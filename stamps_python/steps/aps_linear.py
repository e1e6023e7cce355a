"""TRAIN ``aps_linear``: the topography-correlated troposphere fitted to the unwrapped phase.

For every interferogram the unwrapped phase of Step 6 (``phuw2.h5``, or ``phuw_sb2.h5`` in a
small-baseline run) is fitted as ``K * h + c`` over the PS (``hgt2.h5``: km when above 10 m;
NaN phase left out; with a non-deforming polygon only the PS inside it), optionally after
removing each PS's fit to the perpendicular baseline (TRAIN's ``powerlaw_DEM_corr``). Writes
``ph_tropo_linear`` (n_ps x n_ifg, rad) with ``K_tropo`` (rad/km) and ``c_tropo`` (rad) per
interferogram into ``tca2.h5`` (PS) or ``tca_sb2.h5`` (SB); in a small-baseline run also the
single-reference inversion of MATLAB's ``sb_invert_aps`` into ``tca2.h5``. Datasets of other
TRAIN methods already in those files are kept. Then ``tropo_method 'a_l'`` selects it for
``subtr_tropo`` (Steps 6, 7) and the export's ``a`` letter.

Differs from TRAIN: with a polygon, TRAIN's aps_linear.m leaves exactly the PS *inside* it out
of the fit; here the fit uses those PS, as the method means (docs/differences.md).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import load_product, product_path, require
from stamps_python.io.train import update_tca
from stamps_python.numerics.tropo import sb_invert_tropo
from stamps_python.numerics.tropo_linear import (
    dem_error_removed,
    heights_km,
    linear_tropo,
    points_in_polygon,
)
from stamps_python.parms import drop_ifg_index0, flag, load_parms
from stamps_python.utils import StampsError, get_logger, peak_memory_mb

MIN_IFG_DEM_CORR = 5  # TRAIN: the DEM-error fit needs more interferograms than this


def aps_linear(
    run_dir: str | Path,
    non_defo: Any | None = None,
    non_defo_name: str = "",
    dem_corr: bool = False,
) -> list[Path]:
    """Fit and write the linear tropospheric phase of run ``run_dir``; returns the paths written.

    ``non_defo``: a shapely (multi)polygon in lon/lat (deg) of the non-deforming area (None: all
    PS), ``non_defo_name`` where it came from (for messages); ``dem_corr``: remove each PS's
    linear fit to the perpendicular baseline before the fit (TRAIN ``powerlaw_DEM_corr``).
    """
    log = get_logger()
    start = time.perf_counter()
    run_dir = Path(run_dir)
    parms = load_parms(run_dir)
    small_baseline = flag(parms, "small_baseline_flag")
    ps_path = require(product_path(run_dir, "ps2"), "Step 5 (stamps_main --start 5 --end 5)")
    phuw_name = "phuw_sb2" if small_baseline else "phuw2"
    phuw_path = require(product_path(run_dir, phuw_name), "Step 6 (stamps_main --start 6 --end 6)")
    hgt_path = require(product_path(run_dir, "hgt2"), "Step 5 (stamps_main --start 5 --end 5)")
    names = ["n_ps", "n_ifg", "lonlat", "bperp"]
    if small_baseline:  # what sb_invert_aps needs
        names += ["n_image", "master_ix", "master_day", "ifgday", "ifgday_ix"]
    ps = load_product(ps_path, names)
    n_ps = int(ps["n_ps"])
    ph_uw = np.asarray(load_product(phuw_path, ["ph_uw"])["ph_uw"])
    hgt = np.asarray(load_product(hgt_path, ["hgt"])["hgt"], dtype=np.float64).ravel()
    n_ifg = ph_uw.shape[1] if ph_uw.ndim == 2 else -1
    expected_cols = int(ps["n_ifg"])
    if ph_uw.ndim != 2 or ph_uw.shape[0] != n_ps or n_ifg != expected_cols:
        raise StampsError(
            f"{phuw_path}: ph_uw has shape {ph_uw.shape}, expected ({n_ps}, {expected_cols}) "
            f"as {ps_path.name}; rerun Step 6"
        )
    if hgt.size != n_ps:
        raise StampsError(f"{hgt_path}: {hgt.size} heights for {n_ps} PS; rerun Step 5")
    log.info(
        "aps_linear: %s, %d PS x %d %sinterferograms from %s, heights from %s",
        run_dir,
        n_ps,
        n_ifg,
        "small-baseline " if small_baseline else "",
        phuw_path.name,
        hgt_path.name,
    )

    fit_mask = None
    if non_defo is not None:
        fit_mask = points_in_polygon(np.asarray(ps["lonlat"], dtype=np.float64), non_defo)
        n_in = int(fit_mask.sum())
        if n_in < 2:
            raise StampsError(
                f"non-deforming polygon {non_defo_name}: {n_in} of the {n_ps} PS lie inside it; "
                f"the fit needs at least 2 (is it in lon/lat degrees?)"
            )
        log.info("   fit on the %d PS inside the non-deforming polygon %s", n_in, non_defo_name)

    ph_fit = ph_uw
    if dem_corr:
        if n_ifg > MIN_IFG_DEM_CORR:
            ph_fit = dem_error_removed(ph_uw, np.asarray(ps["bperp"], dtype=np.float64))
            log.info("   removed each PS's fit to the perpendicular baseline (DEM error)")
        else:
            log.warning(
                "   %d interferograms are too few for the DEM-error fit (more than %d needed): "
                "skipped",
                n_ifg,
                MIN_IFG_DEM_CORR,
            )
    h_km = heights_km(hgt)
    ph_tropo, K, c = linear_tropo(ph_fit, h_km, fit_mask)
    del ph_fit
    failed = np.flatnonzero(~np.isfinite(K))
    if failed.size:
        log.warning(
            "   no fit for interferogram(s) %s (fewer than two PS with phase, or one height): "
            "no correction for them (0)",
            ", ".join(str(k + 1) for k in failed),
        )
        ph_tropo[:, failed] = 0.0
    if np.isfinite(K).any():
        log.info(
            "   K_tropo (rad/km) over the interferograms: std %.3f, largest |K| %.3f",
            float(np.nanstd(K)),
            float(np.nanmax(np.abs(K))),
        )
    attrs = {
        "train_method": "aps_linear",
        "non_defo": non_defo_name or "none (all PS)",
        "dem_corr": "y" if dem_corr else "n",
        "units": "ph_tropo_linear rad; K_tropo rad/km; c_tropo rad",
    }
    written = []
    name = "tca_sb2" if small_baseline else "tca2"
    written.append(
        update_tca(
            product_path(run_dir, name),
            {"ph_tropo_linear": ph_tropo, "K_tropo": K, "c_tropo": c},
            attrs,
        )
    )
    if small_baseline:
        drop0 = drop_ifg_index0(parms, n_ifg)
        sm = sb_invert_tropo(ps, ph_tropo, drop0)
        k_sm = sb_invert_tropo(ps, np.nan_to_num(K)[None, :], drop0)[0].astype(np.float64)
        written.append(
            update_tca(
                product_path(run_dir, "tca2"),
                {"ph_tropo_linear": sm, "K_tropo": k_sm},
                {**attrs, "inverted_from": "tca_sb2.h5 (sb_invert_aps)"},
            )
        )
    log.info(
        "aps_linear wrote %s in %.1f s (peak memory %.0f MiB)",
        ", ".join(p.name for p in written),
        time.perf_counter() - start,
        peak_memory_mb(),
    )
    return written

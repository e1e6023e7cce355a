"""Step 7 (ps_calc_scla): spatially correlated look-angle error (SCLA) and master AOE.

From the unwrapped phase (radians) of every PS, a phase gradient with perpendicular baseline
``K_ps_uw`` (rad/m; the look-angle / DEM error), optionally a mean velocity (rad/day, not saved)
and a constant are fitted by weighted least squares with one design matrix shared by all PS (the
PS-mean baseline of each interferogram), exactly as StaMPS:

- single-master pass (``use_small_baselines=False``; PS, or the SB network inverted to single
  master by Step 6): the fit is to the differences between consecutive images (in date order),
  which reduces the influence of deformation; afterwards ``C_ps_uw`` (rad), the phase common to
  all interferograms (master atmosphere and orbit error), is the intercept at the master date of
  a weighted linear fit in time of ``ph_uw - ph_scla`` (``coest_mean_vel``), or its mean;
- small-baseline pass (``use_small_baselines=True``): the fit is to the SB interferograms
  themselves, weighted by their covariance, and ``C_ps_uw`` is zero.

Before the fit, the TRAIN tropospheric correction (``subtr_tropo``), planar ramps
(``scla_deramp``) and an older ``aps2`` correction are removed, and every interferogram is
referenced to the mean of the reference PS (``ref_lon``/``ref_lat``/``ref_radius``, as
``ps_setref``). Writes ``scla2.h5`` / ``scla_sb2.h5``: ``ph_scla`` = K_ps_uw x bperp (rad),
``K_ps_uw``, ``C_ps_uw``, ``ph_ramp`` (rad; empty (0, 0) when not deramped) and ``ifg_vcm``
(rad^2).
"""

from __future__ import annotations

import datetime as _dt
import os
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
from stamps_python.numerics.baselines import bperp_with_master, sb_design, sm_bperp_from_sb
from stamps_python.numerics.defo_model import model_design, residual_deramp
from stamps_python.numerics.deramp import ps_deramp
from stamps_python.numerics.lscov import lscov_operator
from stamps_python.numerics.rows import ROW_CHUNK, nanmean_rows, rows_matmul
from stamps_python.numerics.timeseries import reference_ps_from_parms
from stamps_python.numerics.tropo import sb_invert_tropo, tropo_correction
from stamps_python.parms import flag, ifg_index0, required
from stamps_python.utils import StampsError, datestr, get_logger

_L1_MAX_ITER = 200
_L1_EPS = 1e-6  # rad: floor on |residual| in the L1 reweighting

# ------------------------------------------------------------------------------ numerics


def l1_fit(G: np.ndarray, D: np.ndarray, m0: np.ndarray) -> np.ndarray:
    """Least-absolute-deviation fit of ``G m = d`` for every row d of ``D`` (n_ps, n), batched.

    Iteratively reweighted least squares from the starting models ``m0`` (n_ps, p); rows with
    non-finite data keep ``m0``. Returns (n_ps, p).
    """
    G = np.asarray(G, dtype=np.float64)
    D = np.asarray(D, dtype=np.float64)
    m = np.array(m0, dtype=np.float64)
    ok = np.isfinite(D).all(axis=1) & np.isfinite(m).all(axis=1)
    active = np.flatnonzero(ok)
    for _ in range(_L1_MAX_ITER):
        if active.size == 0:
            break
        r = D[active] - m[active] @ G.T
        w = 1.0 / np.maximum(np.abs(r), _L1_EPS)
        lhs = np.einsum("ni,ij,ik->njk", w, G, G)
        rhs = np.einsum("ni,ij,ni->nj", w, G, D[active])
        try:
            new = np.linalg.solve(lhs, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            new = np.einsum("njk,nk->nj", np.linalg.pinv(lhs), rhs)
        change = np.abs(new - m[active]).max(axis=1)
        m[active] = new
        active = active[change > 1e-10 * (1.0 + np.abs(new).max(axis=1))]
    return m


# ------------------------------------------------------------------------------ inputs


def _model_deramp(
    ps: Mapping[str, Any],
    ph_uw: np.ndarray,
    uii: np.ndarray,
    master_ix: int,
    model: str,
    use_sb: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """deramp_method 'model': planes fitted to the residual of the per-PS ``model`` over the
    interferograms ``uii`` (master excluded); other columns keep ramp 0. Returns the deramped
    phase (float32) and the ramps (n_ps, n_col)."""
    day_all = np.asarray(ps["day"], dtype=np.float64).ravel()
    ref_day = float(ps["master_day"])
    if use_sb:
        G_img = model_design(day_all, ref_day, model)
        G = (sb_design(ps) @ G_img)[uii]
        G = G[:, np.any(np.abs(G) > 1e-12, axis=0)]  # the offset cancels in every pair
        cols = np.asarray(uii)
    else:
        cols = np.setdiff1d(uii, [master_ix])
        G = model_design(day_all[cols], ref_day, model)
    xy = np.asarray(ps["xy"], dtype=np.float64)[:, 1:3]
    ramp = np.zeros(ph_uw.shape, dtype=np.float64)
    ramp[:, cols] = residual_deramp(ph_uw[:, cols], xy, G)[1]
    return (ph_uw - ramp).astype(np.float32), ramp


def _backup_old(path: Path) -> None:
    """Rename an existing product to ``tmp_<name>_YYYYMMDD_HHMMSS.h5`` (its time), as StaMPS."""
    if path.is_file():
        stamp = _dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y%m%d_%H%M%S")
        backup = path.with_name(f"tmp_{path.stem}_{stamp}.h5")
        os.replace(path, backup)
        get_logger().info("moved the previous %s to %s", path.name, backup.name)


# ------------------------------------------------------------------------------ step


def run(
    run_dir: str | Path,
    parms: Mapping[str, Any],
    *,
    use_small_baselines: bool = False,
    coest_mean_vel: bool = True,
) -> Path:
    """ps_calc_scla(use_small_baselines, coest_mean_vel) in ``run_dir``: writes scla(_sb)2.h5."""
    log = get_logger()
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    sb_flag = flag(parms, "small_baseline_flag")
    use_sb = bool(use_small_baselines)
    if use_sb and not sb_flag:
        raise StampsError(
            "ps_calc_scla: small baselines requested but small_baseline_flag is "
            "'n' (there are no small-baseline interferograms)"
        )
    log.info(
        "Estimating spatially-correlated look angle error%s ...",
        " (small baseline interferograms)" if use_sb else "",
    )

    ps_path = require(product_path(run_dir, "ps2"), "Step 5")
    phuw_path = require(product_path(run_dir, "phuw_sb" if use_sb else "phuw", 2), "Step 6")
    res_path = product_path(run_dir, "phuw_sb_res", 2)
    if sb_flag:
        require(res_path, "Step 6")
    ps = load_product(ps_path)
    n_ps, n_ifg = int(ps["n_ps"]), int(ps["n_ifg"])
    n_image = int(ps.get("n_image", n_ifg))
    master_ix = int(ps["master_ix"])
    day_all = np.asarray(ps["day"], dtype=np.float64)
    uw = load_product(phuw_path)
    ph_uw = np.array(check_rows(phuw_path, uw["ph_uw"], n_ps, "Step 6"), dtype=np.float32)
    n_col = ph_uw.shape[1]
    log.info("read %s, %s (%d PS, %d interferograms)", ps_path.name, phuw_path.name, n_ps, n_col)

    bp_path = product_path(run_dir, "bp2")
    if bp_path.is_file():
        bperp_in = np.asarray(
            check_rows(bp_path, load_product(bp_path, ["bperp_mat"])["bperp_mat"], n_ps, "Step 5"),
            np.float32,
        )
    else:
        bperp = np.asarray(ps["bperp"], dtype=np.float32).ravel()
        if not sb_flag:
            bperp = np.delete(bperp, master_ix)
        bperp_in = np.tile(bperp, (n_ps, 1))
        log.info("%s not found: using the scene baselines of ps2 for every PS", bp_path.name)

    drop0 = ifg_index0(required(parms, "drop_ifg_index"), n_ifg, "drop_ifg_index")
    if sb_flag and not use_sb:
        uii = np.arange(n_image)
    else:
        uii = np.setdiff1d(np.arange(n_ifg), drop0)

    if flag(parms, "subtr_tropo"):
        method = str(required(parms, "tropo_method"))
        tca_name = "tca_sb" if (use_sb or sb_flag) else "tca"
        tca = load_product(
            require(
                product_path(run_dir, tca_name, 2),
                f"aps_linear {run_dir} (or TRAIN and aps_import) for the tropospheric "
                f"correction subtr_tropo 'y' asks for, or set subtr_tropo 'n',",
            )
        )
        corr = tropo_correction(tca, method)
        if sb_flag and not use_sb:
            corr = sb_invert_tropo(ps, corr, drop0)
        ph_uw -= corr.astype(np.float32)
        log.info("subtracted the TRAIN correction %s", method)

    ph_ramp = np.zeros((0, 0), dtype=np.float32)
    model = str(required(parms, "defo_model"))
    if flag(parms, "scla_deramp"):
        if str(required(parms, "deramp_method")) == "model":
            log.info("deramping ifgs (ramps of the %s-model residual) ...", model)
            ph_uw, ramp = _model_deramp(ps, ph_uw, uii, master_ix, model, use_sb)
        else:
            log.info("deramping ifgs ...")
            ph_uw, ramp = ps_deramp(ps, ph_uw)
            ph_uw[:, np.isnan(ramp).all(axis=0)] = np.nan
        ph_ramp = ramp.astype(np.float32)

    drop_name = "sb_scla_drop_index" if use_sb else "scla_drop_index"
    uii = np.setdiff1d(uii, ifg_index0(required(parms, drop_name), n_col, drop_name))

    aps_path = product_path(run_dir, "aps_sb" if use_sb else "aps", 2)
    if aps_path.is_file():
        if flag(parms, "subtr_tropo"):
            log.warning(
                "atmosphere removed twice: %s is subtracted and subtr_tropo is 'y'", aps_path.name
            )
        ph_uw -= np.asarray(load_product(aps_path, ["ph_aps_slave"])["ph_aps_slave"], np.float32)
        log.info("subtracted ph_aps_slave of %s", aps_path.name)

    ref_ps = reference_ps_from_parms(ps["lonlat"], ps.get("ll0"), parms)
    if ref_ps is not None:
        ph_uw -= nanmean_rows(ph_uw, ref_ps).astype(np.float32)
        log.info("%d reference PS", ref_ps.size)

    if not use_sb:
        if sb_flag:
            G_sb = sb_design(ps)
            if "unwrap_ifg_index_sm" in uw:
                sm_ix = np.asarray(uw["unwrap_ifg_index_sm"], dtype=np.int64).ravel()
                uii = np.setdiff1d(sm_ix, ifg_index0(required(parms, drop_name), n_col, drop_name))
            uii = np.setdiff1d(uii, [master_ix])
            bperp_mat = sm_bperp_from_sb(bperp_in, G_sb, uii, n_image)
        else:
            bperp_mat = bperp_with_master(bperp_in, master_ix)
        day = np.diff(day_all[uii])
        op = np.zeros((uii.size, max(uii.size - 1, 0)))  # consecutive differences
        op[np.arange(uii.size - 1), np.arange(uii.size - 1)] = -1.0
        op[np.arange(1, uii.size), np.arange(uii.size - 1)] = 1.0
    else:
        bperp_mat = bperp_in
        ifgday = np.asarray(ps["ifgday"], dtype=np.float64)
        day = ifgday[uii, 1] - ifgday[uii, 0]
        op = np.eye(uii.size)
    # PS-mean baseline of each fitted interferogram (or consecutive difference), m
    bprint = np.mean(bperp_mat[:, uii], axis=0, dtype=np.float64) @ op
    n_used = op.shape[1]
    if n_used == 0:
        raise StampsError(
            "ps_calc_scla: no interferograms left for the estimate "
            "(check drop_ifg_index / scla_drop_index)"
        )

    log.info("%d ifgs used in estimation:", n_used)
    for i in range(n_used):
        if use_sb:
            d0, d1 = ifgday[uii[i], 0], ifgday[uii[i], 1]
        else:
            d0, d1 = day_all[uii[i]], day_all[uii[i + 1]]
        log.info(
            "   %s to %s %5d days %5d m", datestr(d0), datestr(d1), round(day[i]), round(bprint[i])
        )

    with_vel = coest_mean_vel and uii.size >= 4
    seasonal = []
    if with_vel and model == "seasonal" and uii.size >= 6:
        # the annual terms of the deformation model, fitted beside the rate (defo_model)
        if use_sb:
            G_img = model_design(day_all, float(ps["master_day"]), model)[:, 2:]
            seasonal = list((sb_design(ps)[uii] @ G_img).T)
        else:
            seasonal = list(
                (op.T @ model_design(day_all[uii], float(ps["master_day"]), model)[:, 2:]).T
            )
        log.info("annual deformation terms fitted beside the rate (defo_model seasonal)")
    G = np.column_stack([np.ones(n_used), bprint] + ([day] if with_vel else []) + seasonal)

    ifg_vcm = None
    if sb_flag:
        key = "sb_cov" if use_sb else "sm_cov"
        res = load_product(res_path)
        if key in res:
            ifg_vcm = np.asarray(res[key], dtype=np.float64)
    else:
        std_path = product_path(run_dir, "ifgstd2")
        if std_path.is_file():
            std = np.asarray(load_product(std_path, ["ifg_std"])["ifg_std"], np.float64).ravel()
            ifg_vcm = np.diag(np.radians(std) ** 2)
    if ifg_vcm is None:
        # StaMPS uses eye(n_ifg) here; for the single-master pass of an SB run that is the
        # number of SB interferograms, not of images, so the images' count is used instead.
        ifg_vcm = np.eye(n_image if (sb_flag and not use_sb) else n_ifg)
    V_use = None if not use_sb else ifg_vcm[np.ix_(uii, uii)]

    M = lscov_operator(G, V_use)
    coeffs = rows_matmul(ph_uw, uii, op @ M.T)
    if str(required(parms, "scla_method")).upper() == "L1":
        log.info("L1-norm fit of every PS ...")
        for r0 in range(0, n_ps, ROW_CHUNK):
            rows = slice(r0, r0 + ROW_CHUNK)
            d = np.asarray(ph_uw[rows][:, uii], dtype=np.float64) @ op
            coeffs[rows] = l1_fit(G, d, coeffs[rows])
    K_ps_uw = coeffs[:, 1].copy()
    ph_scla = (K_ps_uw[:, None].astype(np.float32) * bperp_mat).astype(np.float32)

    if not use_sb:
        uic = np.setdiff1d(uii, [master_ix])
        if not coest_mean_vel:
            C_ps_uw = rows_matmul(
                ph_uw, uic, np.full(uic.size, 1.0 / uic.size)
            ) - K_ps_uw * rows_matmul(bperp_mat, uic, np.full(uic.size, 1.0 / uic.size))
        else:
            G2 = np.column_stack([np.ones(uic.size), day_all[uic] - day_all[master_ix]])
            if seasonal:
                G2 = np.column_stack(
                    [G2, model_design(day_all[uic], float(ps["master_day"]), model)[:, 2:]]
                )
            M2 = lscov_operator(G2, ifg_vcm[np.ix_(uic, uic)])
            C_ps_uw = rows_matmul(ph_uw, uic, M2[0]) - K_ps_uw * rows_matmul(bperp_mat, uic, M2[0])
    else:
        C_ps_uw = np.zeros(n_ps)

    out_path = product_path(run_dir, "scla_sb" if use_sb else "scla", 2)
    if not use_sb:
        mv = product_path(run_dir, "mv", 2)
        if mv.is_file():
            mv.unlink()
    _backup_old(out_path)
    save_product(
        out_path,
        {
            "ph_scla": ph_scla,
            "K_ps_uw": K_ps_uw,
            "C_ps_uw": C_ps_uw,
            "ph_ramp": ph_ramp,
            "ifg_vcm": ifg_vcm,
        },
    )
    log.info(
        "K_ps_uw: median %.3g, 5-95%% range %.3g..%.3g rad/m; C_ps_uw std %.3f rad",
        *np.nanpercentile(K_ps_uw, [50, 5, 95]),
        float(np.nanstd(C_ps_uw)),
    )
    log.info(
        "Step 7 ps_calc_scla: wrote %s in %.1f s", out_path.name, time.perf_counter() - t_start
    )
    return out_path

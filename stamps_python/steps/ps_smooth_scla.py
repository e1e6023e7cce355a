"""Step 7 (ps_smooth_scla): clip outliers of the SCLA and master AOE to their neighbours' range.

The PS are triangulated (Delaunay arcs of their local x/y). For every PS the smallest and largest
``K_ps_uw`` (rad/m) and ``C_ps_uw`` (rad) among its arc neighbours are found; a value above the
neighbours' largest is lowered to it and one below their smallest is raised to it (StaMPS'
filtering since 2012 only removes such outliers). ``ph_scla`` = K_ps_uw x bperp is then rebuilt
(rad) for every interferogram. Reads ``scla2.h5`` (``scla_sb2.h5``), writes ``scla_smooth2.h5``
(``scla_smooth_sb2.h5``): ``K_ps_uw``, ``C_ps_uw``, ``ph_scla``, ``ph_ramp``.
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
from stamps_python.numerics.baselines import bperp_with_master, sb_design, sm_bperp_from_sb
from stamps_python.numerics.triangulation import delaunay_edges
from stamps_python.parms import flag
from stamps_python.utils import StampsError, get_logger


def neighbour_range(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Smallest and largest of ``values`` over each point's arc neighbours (float32, as StaMPS).

    ``edges`` (n_edge, 2) are 0-based point pairs. NaN neighbours are ignored (as MATLAB's
    ``min``/``max``); a point without (non-NaN) neighbours gets (+inf, -inf).
    """
    v = np.asarray(values, dtype=np.float32)
    lo = np.full(v.shape, np.inf, dtype=np.float32)
    hi = np.full(v.shape, -np.inf, dtype=np.float32)
    a, b = edges[:, 0], edges[:, 1]
    for this, other in ((a, b), (b, a)):
        np.fmin.at(lo, this, v[other])
        np.fmax.at(hi, this, v[other])
    return lo, hi


def clip_to_neighbours(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``values`` with each one above (below) all its arc neighbours set to their max (min).

    Clipped values take the float32 neighbour value, as StaMPS stores the neighbour extremes in
    single precision. Points without any arc keep their value (StaMPS would set them to +inf).
    """
    out = np.array(values, dtype=np.float64)
    lo, hi = neighbour_range(out, edges)
    above = out > hi
    below = out < lo
    # An isolated point has lo=+inf, hi=-inf; MATLAB applies both replacements and ends with
    # +inf. Such a point has no neighbours to compare with, so it is left unchanged here.
    isolated = np.isinf(lo) & np.isinf(hi)
    above &= ~isolated
    below &= ~isolated
    out[above] = hi[above]
    out[below] = lo[below]
    return out


def run(
    run_dir: str | Path, parms: Mapping[str, Any], *, use_small_baselines: bool = False
) -> Path:
    """ps_smooth_scla(use_small_baselines) in ``run_dir``: writes scla_smooth(_sb)2.h5."""
    log = get_logger()
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    sb_flag = flag(parms, "small_baseline_flag")
    use_sb = bool(use_small_baselines)
    if use_sb and not sb_flag:
        raise StampsError(
            "ps_smooth_scla: small baselines requested but small_baseline_flag is 'n'"
        )
    log.info("Smoothing spatially-correlated look angle error ...")
    ps_path = require(product_path(run_dir, "ps2"), "Step 5")
    scla_name = "scla_sb" if use_sb else "scla"
    scla_path = require(product_path(run_dir, scla_name, 2), "ps_calc_scla (Step 7)")
    bp_path = require(product_path(run_dir, "bp2"), "Step 5")
    ps = load_product(ps_path)
    scla = load_product(scla_path, ["K_ps_uw", "C_ps_uw", "ph_ramp"])
    n_ps = int(ps["n_ps"])
    check_rows(scla_path, np.ravel(scla["K_ps_uw"]), n_ps, "ps_calc_scla (Step 7)")
    log.info("Number of points per ifg: %d", n_ps)

    xy = np.asarray(ps["xy"], dtype=np.float64)[:, 1:3]
    edges = delaunay_edges(xy)
    log.info("Number of arcs per ifg=%d", len(edges))
    K_ps_uw = clip_to_neighbours(np.asarray(scla["K_ps_uw"]).ravel(), edges)
    C_ps_uw = clip_to_neighbours(np.asarray(scla["C_ps_uw"]).ravel(), edges)
    n_k = int(np.count_nonzero(K_ps_uw != np.asarray(scla["K_ps_uw"]).ravel()))
    n_c = int(np.count_nonzero(C_ps_uw != np.asarray(scla["C_ps_uw"]).ravel()))
    log.info("clipped %d K_ps_uw and %d C_ps_uw outliers to their neighbours' range", n_k, n_c)

    bp = np.asarray(load_product(bp_path, ["bperp_mat"])["bperp_mat"], dtype=np.float32)
    master_ix = int(ps["master_ix"])
    if not use_sb:
        if sb_flag:
            n_image = int(ps["n_image"])
            others = np.setdiff1d(np.arange(n_image), [master_ix])
            bperp_mat = sm_bperp_from_sb(bp, sb_design(ps), others, n_image)
        else:
            bperp_mat = bperp_with_master(bp, master_ix)
    else:
        bperp_mat = bp
    ph_scla = (K_ps_uw[:, None].astype(np.float32) * bperp_mat).astype(np.float32)

    out_path = product_path(run_dir, "scla_smooth_sb" if use_sb else "scla_smooth", 2)
    save_product(
        out_path,
        {
            "K_ps_uw": K_ps_uw,
            "C_ps_uw": C_ps_uw,
            "ph_scla": ph_scla,
            "ph_ramp": np.asarray(scla["ph_ramp"]),
        },
    )
    log.info(
        "Step 7 ps_smooth_scla: read %s, %s; wrote %s in %.1f s",
        ps_path.name,
        scla_path.name,
        out_path.name,
        time.perf_counter() - t_start,
    )
    return out_path

"""StaMPS Step 6 (``ps_unwrap`` -> ``uw_3d``): 3-D phase unwrapping of the merged PS.

Reads the merged workspaces of the run directory (``ps2``, ``rc2`` or ``pm2``, ``bp2``, ``la2``,
and when Step 7 has run ``scla_smooth2`` / ``scla_smooth_sb2``, plus ``tca2`` / ``tca_sb2`` when
``subtr_tropo = 'y'``) and unwraps the wrapped phase of every kept interferogram:

1. wrapped phase: the re-referenced phase ``ph_rc`` with the uncorrelated look-angle error
   ``K_ps * bperp`` put back (or, ``unwrap_patch_phase = 'y'``, the filtered patch phase), minus
   the spatially correlated look-angle error, master atmosphere and orbital ramps of Step 7 and
   the tropospheric estimate when present (the StaMPS 6-7-6 iteration);
2. ``uw_3d`` with the :class:`UnwrapOptions` of the run's parameters: grid to
   ``unwrap_grid_size`` m and Goldstein filter (``uw_grid_wrapped``), nearest-node network
   (``uw_interp``), unwrapping of the network edges in time (``uw_sb_unwrap_space_time``),
   snaphu with statistical costs per interferogram (``uw_stat_costs``), back to the PS
   (``uw_unwrap_from_grid``);
3. everything subtracted in 1 is added back; dropped interferograms (``drop_ifg_index``) and, for
   PS, the master are 0.

Writes ``phuw2.h5`` (PS) or ``phuw_sb2.h5`` (small baselines), with ``ph_uw`` (n_ps, n_ifg)
float32 radians and ``msd`` (n_ifg,) rad^2, and StaMPS' intermediate workspaces ``uw_grid.h5``,
``uw_interp.h5``, ``uw_space_time.h5`` and ``uw_phaseuw.h5`` in the run directory.

For small baselines with ``unwrap_hold_good_values = 'y'`` and a previous ``phuw_sb2.h5``, Step 6
first runs StaMPS' ``sb_identify_good_pixels`` (with ``sb_make_closure_loops``), as ps_unwrap.m
does: it writes ``phuw_loops2.h5`` (``intfg_loops`` (n_loops, n_ifg) int8: +1 / -1 / 0 per pair
of each closure loop) and ``phuw_good2.h5`` (``good_pixels`` (n_ps, n_ifg) bool: the pair closes
a loop within 1 rad at that PS), and the good values are held in the new unwrapping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import load_product, product_path, require, save_product
from stamps_python.io.snaphu import find_snaphu, remove_stale_snaphu_dirs, uw_stat_costs
from stamps_python.numerics.sb_closure import closure_loops, identify_good_pixels, image_bperp
from stamps_python.numerics.threads import run_rows
from stamps_python.numerics.tropo import tropo_correction
from stamps_python.numerics.unwrap_costs import uw_unwrap_from_grid
from stamps_python.numerics.unwrap_grid import check_grid, uw_grid_wrapped
from stamps_python.numerics.unwrap_interp import uw_interp
from stamps_python.numerics.unwrap_space_time import ANNEAL_SEED, uw_sb_unwrap_space_time
from stamps_python.parms import drop_ifg_index0, flag, number, required
from stamps_python.utils import StampsError, get_logger

RHO = 830000.0  # mean slant range (m) StaMPS assumes for the look-angle-error search range


@dataclass(frozen=True)
class UnwrapOptions:
    """How :func:`uw_3d` unwraps, under the StaMPS parameter names (MATLAB ``uw_3d`` option in
    brackets, for readers of StaMPS).

    Build it from resolved parameters with :meth:`from_parms`: the parameters' defaults are those
    of the parameter spec (``stamps_python.parms``), none is repeated here.

    - ``unwrap_method``: '3D', '3D_QUICK', '3D_FULL', '3D_NEW', '3D_SMALL_DEF', '3D_NO_DEF' or
      '2D' [unwrap_method];
    - ``unwrap_grid_size``: m, side of the square cells the PS phase is resampled to [grid_size];
    - ``unwrap_gold_n_win``: grid cells, window of the Goldstein and low-pass filters and of the
      local phase gradients of the spatial cost function [prefilt_win];
    - ``unwrap_prefilter_flag``: Goldstein-filter the gridded phase [goldfilt_flag];
    - ``unwrap_gold_alpha``: exponent of the Goldstein filter [gold_alpha];
    - ``unwrap_time_win``: days, standard deviation of the Gaussian smoothing in time [time_win];
    - ``unwrap_la_error_flag``: estimate and remove a look-angle error per edge [la_flag];
    - ``unwrap_spatial_cost_func_flag``: predict the edge phase from local phase gradients too,
      where that leaves less noise than the smoothing in time [scf_flag];
    - ``n_trial_wraps``: phase cycles the look-angle error may make between neighbouring grid
      nodes; ps_unwrap derives it from ``max_topo_err`` and ``lambda`` (:func:`n_trial_wraps_of`)
      [n_trial_wraps];
    - ``lowfilt_flag``: low-pass filter the grid as well; ps_unwrap sets 'n' for PS and SB alike,
      ``uw_3d`` turns it on for multi-reference '3D' / '3D_NEW' [lowfilt_flag];
    - ``seed``: seed of the simulated annealing of multi-reference '3D' (not in StaMPS, which
      draws from MATLAB's global random state).
    """

    unwrap_method: str
    unwrap_grid_size: float
    unwrap_gold_n_win: int
    unwrap_prefilter_flag: bool
    unwrap_gold_alpha: float
    unwrap_time_win: float
    unwrap_la_error_flag: bool
    unwrap_spatial_cost_func_flag: bool
    n_trial_wraps: float
    lowfilt_flag: bool = False
    seed: int = ANNEAL_SEED

    @classmethod
    def from_parms(cls, parms: Mapping[str, Any], n_trial_wraps: float) -> UnwrapOptions:
        """The options of resolved parameters ``parms`` (``load_parms`` / ``with_defaults``), as
        ps_unwrap sets them; a missing parameter is a one-line StampsError naming it."""
        return cls(
            unwrap_method=str(required(parms, "unwrap_method")),
            unwrap_grid_size=number(parms, "unwrap_grid_size"),
            unwrap_gold_n_win=int(number(parms, "unwrap_gold_n_win")),
            unwrap_prefilter_flag=flag(parms, "unwrap_prefilter_flag"),
            unwrap_gold_alpha=number(parms, "unwrap_gold_alpha"),
            unwrap_time_win=number(parms, "unwrap_time_win"),
            unwrap_la_error_flag=flag(parms, "unwrap_la_error_flag"),
            unwrap_spatial_cost_func_flag=flag(parms, "unwrap_spatial_cost_func_flag"),
            n_trial_wraps=float(n_trial_wraps),
        )


def uw_3d(
    ph: np.ndarray,
    xy: np.ndarray,
    day: np.ndarray,
    ifgday_ix: np.ndarray,
    bperp: np.ndarray,
    options: UnwrapOptions,
    work_dir: str | Path,
    *,
    ph_uw_predef: np.ndarray | None = None,
    variance: np.ndarray | None = None,
    progress: bool = True,
    snaphu_exe: str | Path | None = None,
    executor: Any = None,
    n_workers: int = 1,
    n_threads: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Unwrap the phase time series ``ph`` (n_ps, n_ifg) (StaMPS ``uw_3d``).

    ``ph`` complex phasors or radians; ``xy`` (n_ps, 3) [id, x m, y m] (or (n_ps, 2) [x, y]);
    ``day`` (n_image,) days relative to the master; ``ifgday_ix`` (n_ifg, 2) 0-based first /
    second image of each interferogram; ``bperp`` (n_ifg,) m; ``options`` see
    :class:`UnwrapOptions`. ``ph_uw_predef`` (n_ps, n_ifg) radians, NaN where unknown: values to
    hold; ``variance`` (n_ps,) for the '2D' costs (both uw_3d options in MATLAB). The workspaces
    uw_grid/uw_interp/uw_space_time/uw_phaseuw.h5 are written to ``work_dir``. ``snaphu_exe``
    defaults to :func:`~stamps_python.io.snaphu.find_snaphu`, looked up before any gridding.
    ``executor`` (of ``n_workers``) runs the snaphu calls; the gridding, filtering and the way
    back to the PS run on ``n_threads`` threads (the result does not depend on either).
    Returns (ph_uw (n_ps, n_ifg) float32 radians, msd (n_ifg,) rad^2).
    """
    log = get_logger()
    snaphu_exe = Path(snaphu_exe) if snaphu_exe is not None else find_snaphu()
    work_dir = Path(work_dir)
    ifgday_ix = np.asarray(ifgday_ix, dtype=np.int64)
    xy = np.asarray(xy, dtype=np.float64)
    if xy.shape[1] == 2:  # [x, y] without the id column
        xy = np.column_stack([np.arange(1, len(xy) + 1), xy])

    unwrap_method = options.unwrap_method.upper()
    lowfilt_flag = options.lowfilt_flag
    if unwrap_method in ("3D", "3D_NEW"):
        if len(np.unique(ifgday_ix[:, 0])) == 1:
            unwrap_method = "3D_FULL"
        else:
            lowfilt_flag = True

    log.info("Resampling phase to grid (%g m)", options.unwrap_grid_size)
    ug = uw_grid_wrapped(
        ph,
        xy,
        unwrap_grid_size=options.unwrap_grid_size,
        unwrap_gold_n_win=options.unwrap_gold_n_win,
        unwrap_prefilter_flag=options.unwrap_prefilter_flag,
        lowfilt_flag=lowfilt_flag,
        unwrap_gold_alpha=options.unwrap_gold_alpha,
        ph_in_predef=ph_uw_predef,
        progress=progress,
        n_threads=n_threads,
    )
    log.info(
        "   %d interferograms, %d points, %d resampled points", ph.shape[1], ph.shape[0], ug["n_ps"]
    )
    save_product(work_dir / "uw_grid.h5", ug)
    log.info("Interpolating grid")
    ui = uw_interp(ug["nzix"])
    log.info("   Number of unique edges in grid: %d", ui["n_edge"])
    save_product(work_dir / "uw_interp.h5", ui)
    log.info("Unwrapping in time-space (%s)", unwrap_method)
    ut = uw_sb_unwrap_space_time(
        day,
        ifgday_ix,
        unwrap_method=unwrap_method,
        unwrap_time_win=options.unwrap_time_win,
        unwrap_la_error_flag=options.unwrap_la_error_flag,
        bperp=bperp,
        n_trial_wraps=options.n_trial_wraps,
        unwrap_gold_n_win=options.unwrap_gold_n_win,
        unwrap_spatial_cost_func_flag=options.unwrap_spatial_cost_func_flag,
        uw_grid=ug,
        uw_interp=ui,
        seed=options.seed,
        progress=progress,
    )
    save_product(work_dir / "uw_space_time.h5", ut)
    log.info("Unwrapping in space (snaphu)")
    pu = uw_stat_costs(
        unwrap_method,
        ug,
        ui,
        ut,
        work_dir,
        variance,
        snaphu_exe=snaphu_exe,
        progress=progress,
        executor=executor,
        n_workers=n_workers,
    )
    save_product(work_dir / "uw_phaseuw.h5", pu)
    log.info("Unwrapping from grid")
    return uw_unwrap_from_grid(ug, pu["ph_uw"], n_threads), pu["msd"]


def n_trial_wraps_of(run_dir: Path, ps: Mapping[str, Any], parms: Mapping[str, Any]) -> float:
    """Phase cycles the look-angle error may make between neighbouring nodes, as ps_unwrap: a DEM
    error of ``max_topo_err`` m over the range of the ps2 ``bperp`` (m), at slant range
    :data:`RHO` and the mean incidence (ps2 ``mean_incidence``, else la2 look angle + 3 deg,
    else 21 deg), with radar wavelength ``lambda`` m."""
    lam = number(parms, "lambda")
    if not np.isfinite(lam):
        raise StampsError("parameter lambda: unset (nan); set the radar wavelength in m")
    if "mean_incidence" in ps:
        inc_mean = float(ps["mean_incidence"])
    elif product_path(run_dir, "la2").is_file():
        la = np.asarray(load_product(product_path(run_dir, "la2"), ["la"])["la"], dtype=np.float64)
        inc_mean = float(la.mean()) + 0.052
    else:
        inc_mean = np.radians(21.0)
    max_k = number(parms, "max_topo_err") / (lam * RHO * np.sin(inc_mean) / 4 / np.pi)
    bperp = np.asarray(ps["bperp"], dtype=np.float64).ravel()
    return (bperp.max() - bperp.min()) * max_k / (2 * np.pi)


def _rotate(
    ph: np.ndarray, phase_of: Callable[[slice, int], np.ndarray], n_threads: int = 1
) -> None:
    """Multiply complex ``ph`` in place by exp(1i * phase_of(rows, j)) (radians) for every
    column j, over blocks of rows on ``n_threads`` threads."""

    def block(rows: slice) -> None:
        for j in range(ph.shape[1]):
            ph[rows, j] *= np.exp(1j * phase_of(rows, j)).astype(ph.dtype)

    run_rows(block, ph.shape[0], n_threads)


def _patch_phase(
    pm_path: Path, master_ix: int, small_baseline: bool, master_value: float
) -> np.ndarray:
    """Unit patch phase (n_ps, n_ifg) complex64; for PS with ``master_value`` as master column."""
    ph = np.asarray(load_product(pm_path, ["ph_patch"])["ph_patch"], dtype=np.complex64)
    with np.errstate(invalid="ignore", divide="ignore"):
        ph = ph / np.abs(ph)
    if not small_baseline:
        ph = np.insert(ph, master_ix, master_value, axis=1)
    return ph


def _require(run_dir: Path, names: tuple[str, ...]) -> None:
    for name in names:
        require(product_path(run_dir, name), "Step 5")


def _load_scla(run_dir: Path, name: str, n_ps: int) -> dict[str, Any] | None:
    """Step 7 smoothed SCLA product, or None (deleted, as StaMPS does, if it has other PS)."""
    path = product_path(run_dir, name)
    if not path.is_file():
        return None
    scla = load_product(path)
    if np.asarray(scla["K_ps_uw"]).shape[0] != n_ps:
        get_logger().warning("   wrong number of PS in %s - subtraction skipped", path.name)
        path.unlink()
        return None
    return scla


def _identify_good_pixels(run_dir: Path, parms: Mapping[str, Any], ph_uw: np.ndarray) -> np.ndarray:
    """StaMPS ``sb_make_closure_loops`` + ``sb_identify_good_pixels``: the closure loops of the
    kept pairs of ``run_dir`` and the good values of ``ph_uw`` (the previous phuw_sb2 ``ph_uw``);
    writes phuw_loops2.h5 and phuw_good2.h5, returns good_pixels (n_ps, n_ifg) bool."""
    log = get_logger()
    start = time.perf_counter()
    ps_path = require(product_path(run_dir, "ps2"), "Step 5")
    ps = load_product(
        ps_path, ["ifgday_ix", "day", "bperp", "n_image", "n_ifg", "n_ps", "master_ix"]
    )
    n_ps, n_ifg = int(ps["n_ps"]), int(ps["n_ifg"])
    if ph_uw.shape != (n_ps, n_ifg):
        raise StampsError(
            f"{product_path(run_dir, 'phuw_sb2')}: ph_uw has shape {ph_uw.shape}, "
            f"ps2 has {n_ps} PS and {n_ifg} interferograms; run Step 6 again with "
            f"unwrap_hold_good_values 'n'"
        )
    drop = drop_ifg_index0(parms, n_ifg)
    bperp_image = image_bperp(
        ps["ifgday_ix"], ps["bperp"], int(ps["n_image"]), int(ps["master_ix"])
    )
    loops = closure_loops(
        ps["ifgday_ix"], np.asarray(ps["day"], dtype=np.float64).ravel(), bperp_image, drop
    )
    good = identify_good_pixels(ph_uw, loops)
    save_product(product_path(run_dir, "phuw_loops2"), {"intfg_loops": loops})
    save_product(product_path(run_dir, "phuw_good2"), {"good_pixels": good})
    in_loop = np.abs(loops).sum(axis=0) > 0
    log.info(
        "   closure loops: %d (%d of %d interferograms in a loop); good values: %.1f %% of "
        "PS x interferograms; wrote phuw_loops2.h5, phuw_good2.h5 in %.1f s",
        len(loops),
        int(in_loop.sum()),
        n_ifg,
        100.0 * good.mean() if good.size else 0.0,
        time.perf_counter() - start,
    )
    return good


def _good_pixel_predef(
    run_dir: Path, parms: Mapping[str, Any], phuw_name: str, n_ps: int, n_ifg: int
) -> np.ndarray:
    """Previously unwrapped values that close their loops (``unwrap_hold_good_values``, the
    closure test of :func:`_identify_good_pixels`), NaN elsewhere."""
    uw = np.asarray(load_product(run_dir / phuw_name, ["ph_uw"])["ph_uw"])
    predef = np.full((n_ps, n_ifg), np.nan, dtype=np.float32)
    if uw.shape != (n_ps, n_ifg):
        get_logger().warning("   wrong number of PS in keep good pixels - skipped")
        return predef
    good = _identify_good_pixels(run_dir, parms, uw)
    predef[good] = uw[good]
    return predef


def run(
    run_dir: str | Path,
    parms: Mapping[str, Any],
    progress: bool = True,
    executor: Any = None,
    n_workers: int = 1,
    n_threads: int = 1,
) -> Path:
    """ps_unwrap on the merged workspaces of ``run_dir``; returns the path of phuw2/phuw_sb2.h5.

    ``executor`` (a concurrent.futures.Executor of ``n_workers``) runs the snaphu calls of the
    interferograms side by side, and the loops over PS and interferograms run on ``n_threads``
    threads of this process; the products are those of a serial run."""
    log = get_logger()
    start = time.perf_counter()
    run_dir = Path(run_dir)
    small_baseline = flag(parms, "small_baseline_flag")
    patch_phase = flag(parms, "unwrap_patch_phase")
    scla_deramp = flag(parms, "scla_deramp")
    subtr_tropo = flag(parms, "subtr_tropo")
    _require(run_dir, ("ps2", "rc2", "pm2") if patch_phase else ("ps2", "rc2"))
    suffix = "_sb" if small_baseline else ""
    scla_name, aps_name, phuw_name = f"scla_smooth{suffix}2", f"tca{suffix}2", f"phuw{suffix}2.h5"
    if subtr_tropo and not product_path(run_dir, aps_name).is_file():
        raise StampsError(
            f"{product_path(run_dir, aps_name)} not found: subtr_tropo is 'y'; write it with "
            f"aps_linear {run_dir} (or aps_import {run_dir} {aps_name}.mat from TRAIN), or set "
            f"subtr_tropo 'n'"
        )
    for stale in remove_stale_snaphu_dirs(run_dir):
        log.info("   removed %s, left by an interrupted Step 6", stale.name)
    snaphu_exe = find_snaphu()

    ps = load_product(product_path(run_dir, "ps2"))
    n_ps, n_ifg = int(ps["n_ps"]), int(ps["n_ifg"])
    check_grid(  # before any other product is read
        np.asarray(ps["xy"], dtype=np.float64)[:, 1:3],
        number(parms, "unwrap_grid_size"),
        int(number(parms, "unwrap_gold_n_win")),
    )
    day = np.asarray(ps["day"], dtype=np.float64).ravel()
    bperp = np.asarray(ps["bperp"], dtype=np.float64).ravel()
    master_ix = int(ps["master_ix"])
    master_day = float(ps["master_day"]) if "master_day" in ps else float(day[master_ix])
    unwrap_ix = np.setdiff1d(np.arange(n_ifg), drop_ifg_index0(parms, n_ifg))

    bp_path = product_path(run_dir, "bp2")
    if bp_path.is_file():
        bperp_mat = np.asarray(load_product(bp_path, ["bperp_mat"])["bperp_mat"], dtype=np.float32)
    else:
        b = bperp if small_baseline else np.delete(bperp, master_ix)
        bperp_mat = np.tile(b.astype(np.float32), (n_ps, 1))
    if not small_baseline:
        bperp_mat = np.insert(bperp_mat, master_ix, 0.0, axis=1)

    pm_path = product_path(run_dir, "pm2")
    if patch_phase:
        ph_w = _patch_phase(pm_path, master_ix, small_baseline, master_value=1.0)
    else:
        ph_w = np.array(
            load_product(product_path(run_dir, "rc2"), ["ph_rc"])["ph_rc"], dtype=np.complex64
        )
        if pm_path.is_file():
            pm = load_product(pm_path)
            k_ps = np.asarray(pm.get("K_ps", np.zeros(0)), dtype=np.float64).ravel()
            if k_ps.size:
                _rotate(ph_w, lambda r, j: k_ps[r] * bperp_mat[r, j], n_threads)

    def unit_magnitude(rows: slice) -> None:  # zeros stay zero
        for j in range(n_ifg):
            col = ph_w[rows, j]
            mag = np.abs(col)
            np.divide(col, mag, out=col, where=mag != 0)

    run_rows(unit_magnitude, n_ps, n_threads)

    hold_good = flag(parms, "unwrap_hold_good_values")
    predef = None
    if not small_baseline or not (run_dir / phuw_name).is_file():
        hold_good = False
    if hold_good:
        predef = _good_pixel_predef(run_dir, parms, phuw_name, n_ps, n_ifg)

    scla = _load_scla(run_dir, scla_name, n_ps)
    ramp = None
    k_uw = c_uw = None
    if scla is not None:
        log.info("   subtracting scla%s", "" if small_baseline else " and master aoe")
        k_uw = np.asarray(scla["K_ps_uw"], dtype=np.float64).ravel()
        _rotate(ph_w, lambda r, j: -k_uw[r] * bperp_mat[r, j], n_threads)
        if predef is not None:
            predef = predef - k_uw[:, None] * bperp_mat
        if not small_baseline:
            c_uw = np.asarray(scla["C_ps_uw"], dtype=np.float64).ravel()
            _rotate(ph_w, lambda r, j: -c_uw[r], n_threads)
        ph_ramp = scla.get("ph_ramp")
        if scla_deramp and ph_ramp is not None and np.asarray(ph_ramp).shape[0] == n_ps:
            ramp = np.asarray(ph_ramp)
            _rotate(ph_w, lambda r, j: -ramp[r, j].astype(np.float64), n_threads)
            if predef is not None:
                predef = predef - ramp

    aps_path = product_path(run_dir, aps_name)
    aps_corr = None
    if subtr_tropo:
        log.info("   subtracting slave aps")
        aps_corr = tropo_correction(load_product(aps_path), str(required(parms, "tropo_method")))
        if aps_corr.shape != (n_ps, n_ifg):
            raise StampsError(
                f"{aps_path}: the {required(parms, 'tropo_method')} correction has shape "
                f"{aps_corr.shape}, expected ({n_ps}, {n_ifg}); rerun aps_linear / aps_import"
            )
        _rotate(ph_w, lambda r, j: -aps_corr[r, j], n_threads)
        if predef is not None:
            predef = predef - aps_corr

    options = UnwrapOptions.from_parms(parms, n_trial_wraps_of(run_dir, ps, parms))
    log.info("n_trial_wraps=%f", options.n_trial_wraps)

    if small_baseline:
        ifgday_ix = np.asarray(ps["ifgday_ix"], dtype=np.int64)
    else:
        ifgday_ix = np.column_stack([np.full(n_ifg, master_ix), np.arange(n_ifg)])
        # the master-master interferogram is only noise
        unwrap_ix = np.setdiff1d(unwrap_ix, [int(np.sum(master_day > day))])
    rel_day = day - master_day
    if unwrap_ix.size == 0:
        raise StampsError("no interferogram left to unwrap (check drop_ifg_index)")
    ph_uw_some, msd_some = uw_3d(
        ph_w[:, unwrap_ix],
        np.asarray(ps["xy"], dtype=np.float64),
        rel_day,
        ifgday_ix[unwrap_ix],
        bperp[unwrap_ix],
        options,
        run_dir,
        ph_uw_predef=None if predef is None else predef[:, unwrap_ix],
        progress=progress,
        snaphu_exe=snaphu_exe,
        executor=executor,
        n_workers=n_workers,
        n_threads=n_threads,
    )

    ph_uw = np.zeros((n_ps, n_ifg), dtype=np.float32)
    msd = np.zeros(n_ifg, dtype=np.float32)
    ph_uw[:, unwrap_ix] = ph_uw_some
    msd[unwrap_ix] = msd_some
    del ph_uw_some
    if scla is not None:
        log.info("Adding back SCLA%s", "" if small_baseline else " and master AOE")

        def add_scla(rows: slice) -> None:
            for j in range(n_ifg):
                ph_uw[rows, j] += k_uw[rows] * bperp_mat[rows, j]
                if c_uw is not None:
                    ph_uw[rows, j] += c_uw[rows]
                if ramp is not None:
                    ph_uw[rows, j] += ramp[rows, j]

        run_rows(add_scla, n_ps, n_threads)
    if aps_corr is not None:
        log.info("Adding back slave APS")

        def add_aps(rows: slice) -> None:
            ph_uw[rows] += aps_corr[rows]

        run_rows(add_aps, n_ps, n_threads)
    if patch_phase:
        ph_patch = _patch_phase(pm_path, master_ix, small_baseline, master_value=0.0)
        ph_rc = load_product(product_path(run_dir, "rc2"), ["ph_rc"])["ph_rc"]

        def add_patch(rows: slice) -> None:
            for j in range(n_ifg):
                ph_uw[rows, j] += np.angle(ph_rc[rows, j] * np.conj(ph_patch[rows, j]))

        run_rows(add_patch, n_ps, n_threads)
    not_unwrapped = np.setdiff1d(np.arange(n_ifg), unwrap_ix)
    ph_uw[:, not_unwrapped] = 0
    path = save_product(run_dir / phuw_name, {"ph_uw": ph_uw, "msd": msd})
    log.info(
        "Step 6 (ps_unwrap): %d PS, %d of %d interferograms unwrapped; wrote %s in %.1f s",
        n_ps,
        unwrap_ix.size,
        n_ifg,
        path.name,
        time.perf_counter() - start,
    )
    return path

"""StaMPS Step 3 (``ps_select``): select stable-phase pixels from the Step-2 coherences.

1. Coherence threshold. Candidates are binned by amplitude dispersion D_A (bins of 2000
   candidates, 10 000 from 50 000 candidates up; one bin below 10 000 candidates). In each bin the
   coherence histogram ``Na`` is compared with the random-phase histogram ``Nr`` of Step 2, scaled
   to match ``Na`` over the low coherences (the first 31 bins, 15 for small baselines).
   ``select_method = 'DENSITY'``: the threshold is the coherence above which the expected number
   of random-phase pixels falls below ``density_rand`` (per km^2, patch area from ``xy``) times the
   area, shared between the bins; ``'PERCENT'``: where their percentage falls below
   ``percent_rand``. The crossing is interpolated with a cubic fitted (centred and scaled, as
   MATLAB's ``polyfit`` with ``mu``) to the six histogram bins around it; a crossing in the first
   three bins gives no threshold (NaN) for that bin. A straight line fitted to the bin thresholds
   against the bins' mean D_A gives each pixel's threshold (one constant threshold when the slope
   is not positive or only one bin has a threshold; 0.3 when none has).
2. Optional rejection of part-time PS (``gamma_stdev_reject > 0``): the bootstrap standard
   deviation of the coherence of the Step-2 residual phase must be below it.
3. Re-estimation (``select_reest_gamma_flag = 'y'``): the patch phase of every selected pixel is
   filtered again (CLAP, ``clap_win`` grid cells around it) with the pixel's own grid cell left out,
   ``K``, ``C`` and the coherence are re-fitted against it, the thresholds recomputed with the new
   coherences, and pixels are kept when their new coherence is above the threshold and their
   look-angle-error term changed by less than 2 pi / (bperp range).

Writes ``select1.h5`` with ps_select's variables; indices 0-based: ``ix`` (candidates selected
initially, into the ps1 order), ``keep_ix`` (bool over ``ix``), ``ifg_index`` (interferograms
used, into the Step-2 interferograms: for PS the master column removed).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import ifg_label, load_product, product_path, save_product
from stamps_python.numerics.clap import clap_filt_patch_at, windows_at
from stamps_python.numerics.random_phase import hist_centres
from stamps_python.numerics.topofit import ps_topofit
from stamps_python.parms import drop_ifg_index0, flag, number, required
from stamps_python.utils import StampsError, get_logger, progress_bar, timed

BOOTSTRAP_SEED = 2006
N_BOOTSTRAP = 100
DEFAULT_THRESHOLD = 0.3
_REEST_BYTES = 48 * 1024 * 1024


def da_bin_limits(d_a: np.ndarray | None, n_ps: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper D_A limits of the bins, with 0 prepended, and the D_A values used for binning.

    With 10 000 candidates or more (and D_A known) the sorted D_A are cut every 2000 candidates
    (10 000 from 50 000 up), the last bin taking the remainder; otherwise one bin (0, 1] holds all
    candidates, each given D_A = 1.
    """
    if d_a is not None and d_a.size >= 10000:
        d_sort = np.sort(d_a)
        bin_size = 10000 if d_a.size >= 50000 else 2000
        inner = d_sort[bin_size - 1 : d_a.size - bin_size : bin_size]
        return np.concatenate(([0.0], inner, [d_sort[-1]])), d_a
    return np.array([0.0, 1.0]), np.ones(n_ps)


def _fit_crossing(percent_rand: np.ndarray, max_percent_rand: float) -> float:
    """Coherence at which ``percent_rand`` (per coherence bin, non-increasing) crosses below
    ``max_percent_rand``: 1 when it never does, NaN when it does within the first three bins."""
    ok = np.nonzero(percent_rand < max_percent_rand)[0]
    if ok.size == 0:
        return 1.0
    first = int(ok[0]) + 1  # MATLAB 1-based bin number
    min_fit = first - 3
    if min_fit <= 0:
        return np.nan
    max_fit = min(first + 2, 100, percent_rand.size)
    x = percent_rand[min_fit - 1 : max_fit]
    y = np.arange(min_fit, max_fit + 1) * 0.01
    mu = x.mean()
    sigma = x.std(ddof=1) if x.size > 1 else 0.0
    if not np.isfinite(sigma) or sigma == 0:
        return np.nan
    xs = (x - mu) / sigma
    coeffs = np.linalg.lstsq(np.vander(xs, 4), y, rcond=None)[0]
    return float(np.polyval(coeffs, (max_percent_rand - mu) / sigma))


def bin_thresholds(
    coh_ps: np.ndarray,
    d_a: np.ndarray,
    d_a_max: np.ndarray,
    nr_dist: np.ndarray,
    coh_bins: np.ndarray,
    max_percent_rand: float,
    select_method: str = "DENSITY",
    low_coh_thresh: int = 31,
) -> tuple[np.ndarray, np.ndarray]:
    """Coherence threshold ``min_coh`` and mean D_A ``D_A_mean`` of each D_A bin (NaN: none).

    ``coh_ps`` (n_ps,) coherences (0 = not computed, ignored); ``nr_dist`` (100,) random-phase
    coherence histogram over ``coh_bins``; bins are ``d_a_max[i] < D_A <= d_a_max[i+1]``.
    """
    n_bins = len(d_a_max) - 1
    min_coh = np.empty(n_bins)
    d_a_mean = np.empty(n_bins)
    nr_dist = np.asarray(nr_dist, dtype=np.float64).ravel()
    percent = str(select_method).upper() == "PERCENT"
    for i in range(n_bins):
        in_bin = (d_a > d_a_max[i]) & (d_a <= d_a_max[i + 1])
        d_a_mean[i] = d_a[in_bin].mean() if np.any(in_bin) else np.nan
        chunk = coh_ps[in_bin]
        na = hist_centres(chunk[chunk != 0], coh_bins)
        with np.errstate(divide="ignore", invalid="ignore"):
            nr = nr_dist * na[:low_coh_thresh].sum() / nr_dist[:low_coh_thresh].sum()
            na[na == 0] = 1
            rand_above = np.cumsum(nr[::-1])[::-1]
            if percent:
                percent_rand = rand_above / np.cumsum(na[::-1])[::-1] * 100
            else:
                percent_rand = rand_above
            min_coh[i] = _fit_crossing(percent_rand, max_percent_rand)
    return min_coh, d_a_mean


def fit_threshold(
    min_coh: np.ndarray, d_a_mean: np.ndarray, d_a: np.ndarray
) -> tuple[np.ndarray | float, np.ndarray]:
    """Threshold per value of ``d_a`` from the bin thresholds, and the line coefficients.

    A line ``coh_thresh = c0 * D_A + c1`` is fitted to the bins with a threshold. With a positive
    slope it gives each pixel's threshold (array like ``d_a``); otherwise the line's value at
    D_A = 0.35 is used for all (scalar). One bin with a threshold: that value; none: 0.3. The
    coefficients are returned empty unless the per-pixel line is used. Thresholds below 0 are 0.
    """
    ok = ~np.isnan(min_coh)
    coeffs = np.zeros(0)
    if not np.any(ok):
        get_logger().warning(
            "Not enough random phase pixels to set gamma threshold - using default threshold of 0.3"
        )
        thresh: np.ndarray | float = DEFAULT_THRESHOLD
    elif ok.sum() > 1:
        line = np.polyfit(d_a_mean[ok], min_coh[ok], 1)
        if line[0] > 0:
            thresh = np.polyval(line, d_a)
            coeffs = line
        else:
            thresh = float(np.polyval(line, 0.35))
    else:
        thresh = float(min_coh[ok][0])
    if np.ndim(thresh):
        thresh = np.maximum(thresh, 0.0)
    else:
        thresh = max(float(thresh), 0.0)
    return thresh, coeffs


def coherence_stdev(
    ph_res: np.ndarray, seed: int = BOOTSTRAP_SEED, n_boot: int = N_BOOTSTRAP
) -> np.ndarray:
    """Bootstrap standard deviation of the coherence |mean(exp(j ph_res))| of each row.

    ``ph_res`` (n, n_ifg) residual phase, radians; ``n_boot`` resamples with replacement of the
    interferograms per row, drawn from a generator seeded with ``seed``.
    """
    ph_res = np.asarray(ph_res, dtype=np.float64)
    n, m = ph_res.shape
    out = np.empty(n)
    rng = np.random.default_rng(seed)
    cpx = np.exp(1j * ph_res)
    step = max(1, 4_000_000 // max(n_boot * m, 1))
    for s in range(0, n, step):
        block = cpx[s : s + step]
        draw = rng.integers(0, m, size=(block.shape[0], n_boot, m))
        samples = np.take_along_axis(block[:, None, :], draw, axis=2)
        out[s : s + step] = np.std(np.abs(samples.sum(axis=2)) / m, axis=1, ddof=1)
    return out


def window_origins(cells: np.ndarray, n_grid: tuple[int, int], n_win: int) -> np.ndarray:
    """0-based first row/column of the ``n_win`` window around each 0-based grid cell (n, 2).

    The window starts ``n_win / 2`` cells before the cell and is moved to stay inside the grid.
    """
    half = n_win // 2
    upper = np.array([n_grid[0] - n_win, n_grid[1] - n_win])
    return np.minimum(np.maximum(cells - half, 0), upper)


def reestimate_patch_phase(
    ph_grid: np.ndarray,
    cells: np.ndarray,
    n_win: int,
    clap_alpha: float,
    clap_beta: float,
    low_pass: np.ndarray,
    slc_osf: int = 1,
) -> np.ndarray:
    """Filtered patch phase at each grid cell with the cell itself left out (n_cells, n_ifg).

    ``ph_grid`` (n_i, n_j, n_ifg) complex gridded phase of Step 2, ``cells`` (n_cells, 2) 0-based
    grid cells. For every cell the ``n_win`` x ``n_win`` window around it is taken, the cell (and
    with ``slc_osf`` > 1 the cells within ``slc_osf - 1`` of it) is set to zero in every
    interferogram, the window is CLAP filtered and the value at the cell returned. All pixels in
    one grid cell share the result, so each distinct cell is filtered once.
    """
    ph_grid = np.asarray(ph_grid)
    n_i, n_j, n_ifg = ph_grid.shape
    if n_i < n_win or n_j < n_win:
        # StaMPS gives every pixel a zero patch phase (and so drops the patch) when the grid is
        # smaller than the filter window; here the grid is zero-padded to the window size.
        padded = np.zeros((max(n_i, n_win), max(n_j, n_win), n_ifg), dtype=ph_grid.dtype)
        padded[:n_i, :n_j] = ph_grid
        ph_grid = padded
        n_i, n_j = ph_grid.shape[:2]
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    origins = window_origins(cells, (n_i, n_j), n_win)
    local = cells - origins
    ph_t = np.ascontiguousarray(np.moveaxis(ph_grid, 2, 0), dtype=np.complex128)
    out = np.zeros((cells.shape[0], n_ifg), dtype=np.complex128)
    step = max(1, _REEST_BYTES // (n_ifg * n_win * n_win * 16))
    chunks = range(0, cells.shape[0], step)
    bar = progress_bar(
        chunks, desc="gamma re-estimation", unit="chunk", hide=len(chunks) < 10, leave=False
    )
    for s in bar:
        o = origins[s : s + step]
        windows = windows_at(ph_t, o, n_win)
        k = np.arange(o.shape[0])
        li, lj = local[s : s + step, 0], local[s : s + step, 1]
        reach = max(int(slc_osf), 1) - 1
        for di in range(-reach, reach + 1):
            for dj in range(-reach, reach + 1):
                # StaMPS zeroes the oversampling neighbours in the first interferogram only
                # (two subscripts on a 3-D array); here they are left out of every one.
                ni, nj = li + di, lj + dj
                inside = (ni >= 0) & (ni < n_win) & (nj >= 0) & (nj < n_win)
                windows[k[inside], :, ni[inside], nj[inside]] = 0
        cells_local = np.stack([li, lj], axis=1)
        out[s : s + step] = clap_filt_patch_at(
            windows, cells_local, clap_alpha, clap_beta, low_pass
        )
    return out


def _reestimate(
    ph_sel: np.ndarray,
    bperp_sel: np.ndarray,
    cells: np.ndarray,
    pm: Mapping[str, Any],
    n_win: int,
    clap_alpha: float,
    clap_beta: float,
    ifg_index: np.ndarray,
    slc_osf: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Patch phase, K, C, coherence and residual phase of the selected pixels, re-estimated."""
    n_sel, n_ifg = ph_sel.shape
    unique_cells, inverse = np.unique(cells, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    get_logger().info("re-estimating patch phase in %d grid cells", unique_cells.shape[0])
    patch = reestimate_patch_phase(
        pm["ph_grid"], unique_cells, n_win, clap_alpha, clap_beta, pm["low_pass"], slc_osf
    )
    ph_patch2 = patch[inverse].astype(np.complex64)
    k_ps2 = np.full(n_sel, np.nan)
    c_ps2 = np.zeros(n_sel)
    coh_ps2 = np.full(n_sel, np.nan)
    ph_res2 = np.zeros((n_sel, n_ifg), dtype=np.float32)
    psdph = ph_sel.astype(np.complex128) * np.conj(ph_patch2.astype(np.complex128))
    good = np.all(psdph != 0, axis=1)
    if np.any(good):
        unit = psdph[good][:, ifg_index]
        unit = unit / np.abs(unit)
        k, c, coh, residual = ps_topofit(
            unit, bperp_sel[good][:, ifg_index], float(pm["n_trial_wraps"])
        )
        k_ps2[good] = k
        c_ps2[good] = c
        coh_ps2[good] = coh
        res = np.zeros((int(good.sum()), n_ifg), dtype=np.float32)
        res[:, ifg_index] = np.angle(residual)
        ph_res2[good] = res
    return ph_patch2, k_ps2, c_ps2, coh_ps2, ph_res2


def run(patch_dir: str | Path, parms: Mapping[str, Any], *, reest_flag: int | None = None) -> Path:
    """Run Step 3 on ``patch_dir`` and return the path of ``select1.h5``.

    ``reest_flag`` as ps_select's argument: 0 re-estimate the coherence of the selected pixels,
    1 skip re-estimation, 2 reuse the re-estimation of an existing ``select1.h5``, 3 re-estimate
    for all candidates. By default 0 when ``quick_est_gamma_flag`` and ``select_reest_gamma_flag``
    are both 'y', else 1 (as ``stamps`` calls it).
    """
    patch_dir = Path(patch_dir)
    log = get_logger()
    if reest_flag is None:
        reest = flag(parms, "quick_est_gamma_flag") and flag(parms, "select_reest_gamma_flag")
        reest_flag = 0 if reest else 1
    if reest_flag not in (0, 1, 2, 3):
        raise StampsError(f"ps_select: reest_flag {reest_flag} must be 0, 1, 2 or 3")
    small_baseline = flag(parms, "small_baseline_flag")
    clap_alpha = number(parms, "clap_alpha")
    clap_beta = number(parms, "clap_beta")
    n_win = int(number(parms, "clap_win"))
    slc_osf = int(number(parms, "slc_osf"))
    select_method = str(required(parms, "select_method")).upper()
    gamma_stdev_reject = number(parms, "gamma_stdev_reject")
    if select_method == "PERCENT":
        max_percent_rand = number(parms, "percent_rand")
    else:
        max_density_rand = number(parms, "density_rand")
    low_coh_thresh = 15 if small_baseline else 31
    select_path = product_path(patch_dir, "select", 1)

    with timed(f"Step 3 (ps_select) in {patch_dir}"):
        ps = load_product(product_path(patch_dir, "ps", 1))
        ph = np.asarray(load_product(product_path(patch_dir, "ph", 1), ["ph"])["ph"])
        pm_names = ["coh_ps", "K_ps", "C_ps", "Nr", "coh_bins", "n_trial_wraps"]
        if reest_flag in (0, 3):
            pm_names += ["ph_grid", "grid_ij", "low_pass"]
        if reest_flag == 1 or gamma_stdev_reject > 0:
            pm_names += ["ph_patch", "ph_res"]
        pm = load_product(product_path(patch_dir, "pm", 1), pm_names)
        da_path = product_path(patch_dir, "da", 1)
        d_a_in = None
        if da_path.is_file():
            d_a_in = np.asarray(load_product(da_path, ["D_A"])["D_A"]).ravel()
        log.info("read ps1, ph1, pm1%s from %s", ", da1" if d_a_in is not None else "", patch_dir)

        n_ifg_all = int(ps["n_ifg"])
        bperp = np.asarray(ps["bperp"], dtype=np.float64).ravel()
        drop = drop_ifg_index0(parms, n_ifg_all)
        ifg_index = np.setdiff1d(np.arange(n_ifg_all), drop)
        if not small_baseline:
            master_ix = int(ps["master_ix"])
            master_pos = int(np.sum(float(ps["master_day"]) > np.asarray(ps["day"])))
            no_master = np.delete(np.arange(n_ifg_all), master_ix)
            ifg_index = np.setdiff1d(ifg_index, [master_ix])
            ifg_index[ifg_index > master_pos] -= 1
            ph = ph[:, no_master]
            bperp = bperp[no_master]
        n_ps = int(ps["n_ps"])
        xy = np.asarray(ps["xy"], dtype=np.float64)
        coh_ps = np.asarray(pm["coh_ps"], dtype=np.float64).ravel().copy()
        k_ps = np.asarray(pm["K_ps"], dtype=np.float64).ravel()

        d_a_max, d_a = da_bin_limits(d_a_in, n_ps)
        n_bins = len(d_a_max) - 1
        if select_method != "PERCENT":
            patch_area = float(np.prod(xy[:, 1:3].max(axis=0) - xy[:, 1:3].min(axis=0))) / 1e6
            max_percent_rand = max_density_rand * patch_area / n_bins
            log.info(
                "patch area %.3f km^2, %.3f random-phase pixels allowed per D_A bin",
                patch_area,
                max_percent_rand,
            )
        coh_bins = np.asarray(pm["coh_bins"], dtype=np.float64).ravel()
        nr_dist = np.asarray(pm["Nr"], dtype=np.float64).ravel()

        def thresholds(coh: np.ndarray, d_a_eval: np.ndarray) -> tuple[Any, np.ndarray]:
            min_coh, d_a_mean = bin_thresholds(
                coh,
                d_a,
                d_a_max,
                nr_dist,
                coh_bins,
                max_percent_rand,
                select_method,
                low_coh_thresh,
            )
            log.debug(
                "bin thresholds %s at mean D_A %s", np.round(min_coh, 3), np.round(d_a_mean, 3)
            )
            return fit_threshold(min_coh, d_a_mean, d_a_eval)

        if reest_flag == 3:
            coh_thresh: Any = 0.0
            coh_thresh_coeffs = np.zeros(0)
        else:
            coh_thresh, coh_thresh_coeffs = thresholds(coh_ps, d_a)
        log.info(
            "Initial gamma threshold: %.3f at D_A=%.2f to %.3f at D_A=%.2f",
            np.min(coh_thresh),
            d_a.min(),
            np.max(coh_thresh),
            d_a.max(),
        )
        ix = np.nonzero(coh_ps > coh_thresh)[0]
        log.info("%d PS selected initially", ix.size)

        if gamma_stdev_reject > 0:
            ph_res_used = np.asarray(pm["ph_res"], dtype=np.float64)[ix][:, ifg_index]
            # StaMPS indexes the already reduced residual with ifg_index a second time; the
            # bootstrap here uses each selected interferogram once.
            coh_std = coherence_stdev(ph_res_used)
            ix = ix[coh_std < gamma_stdev_reject]
            log.info("%d PS left after pps rejection", ix.size)

        if reest_flag != 1:
            if reest_flag != 2:
                for k in drop:
                    label = ifg_label(ps, int(k), small_baseline)
                    log.info("%s is dropped from noise re-estimation", label)
                bp_path = product_path(patch_dir, "bp", 1)
                bperp_mat = np.asarray(load_product(bp_path, ["bperp_mat"])["bperp_mat"])
                if np.ndim(coh_thresh):
                    coh_thresh = coh_thresh[ix]
                ph_patch2, k_ps2, c_ps2, coh_ps2, ph_res2 = _reestimate(
                    ph[ix],
                    np.asarray(bperp_mat[ix], dtype=np.float64),
                    np.asarray(pm["grid_ij"])[ix],
                    pm,
                    n_win,
                    clap_alpha,
                    clap_beta,
                    ifg_index,
                    slc_osf,
                )
                log.info("%d coherences re-estimated", ix.size)
            else:
                sl = load_product(select_path)
                ix = np.asarray(sl["ix"], dtype=np.int64).ravel()
                coh_ps2 = np.asarray(sl["coh_ps2"], dtype=np.float64).ravel()
                k_ps2 = np.asarray(sl["K_ps2"], dtype=np.float64).ravel()
                c_ps2 = np.asarray(sl["C_ps2"], dtype=np.float64).ravel()
                ph_res2 = np.asarray(sl["ph_res2"])
                ph_patch2 = np.asarray(sl["ph_patch2"])
            coh_ps[ix] = coh_ps2
            coh_thresh, coh_thresh_coeffs = thresholds(coh_ps, d_a[ix])
            log.info(
                "Reestimation gamma threshold: %.3f at D_A=%.2f to %.3f at D_A=%.2f",
                np.min(coh_thresh),
                d_a.min(),
                np.max(coh_thresh),
                d_a.max(),
            )
            bperp_range = bperp.max() - bperp.min()
            with np.errstate(invalid="ignore"):
                k_change_ok = np.abs(k_ps[ix] - k_ps2) < 2 * np.pi / bperp_range
                keep_ix = (coh_ps2 > coh_thresh) & k_change_ok
            log.info("%d ps selected after re-estimation of coherence", int(keep_ix.sum()))
        else:
            ph_patch2 = np.asarray(pm["ph_patch"])[ix]
            ph_res2 = np.asarray(pm["ph_res"])[ix]
            k_ps2 = k_ps[ix]
            c_ps2 = np.asarray(pm["C_ps"], dtype=np.float64).ravel()[ix]
            coh_ps2 = coh_ps[ix]
            keep_ix = np.ones(ix.size, dtype=bool)

        if not np.any(keep_ix):
            log.warning("***No PS points left in %s after Step 3***", patch_dir)
        save_product(
            select_path,
            {
                "ix": ix.astype(np.int64),
                "keep_ix": keep_ix,
                "ph_patch2": ph_patch2,
                "ph_res2": ph_res2,
                "K_ps2": k_ps2,
                "C_ps2": c_ps2,
                "coh_ps2": coh_ps2,
                "coh_thresh": coh_thresh,
                "coh_thresh_coeffs": coh_thresh_coeffs,
                "clap_alpha": clap_alpha,
                "clap_beta": clap_beta,
                "n_win": n_win,
                "max_percent_rand": max_percent_rand,
                "gamma_stdev_reject": gamma_stdev_reject,
                "small_baseline_flag": "y" if small_baseline else "n",
                "ifg_index": ifg_index.astype(np.int64),
            },
        )
        log.info("wrote %s (%d selected, %d kept)", select_path.name, ix.size, int(keep_ix.sum()))
    return select_path

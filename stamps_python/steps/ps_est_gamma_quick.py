"""StaMPS Step 2 (``ps_est_gamma_quick``): temporal coherence of the PS candidates of one patch.

Iterates: (1) grid the weighted candidate phase (look-angle error removed) on a
``filter_grid_size`` m grid and CLAP-filter it to estimate the spatially correlated phase at each
candidate; (2) fit the look-angle-error term to the candidate phase minus that estimate, giving
``K_ps`` (rad/m), ``C_ps`` (rad) and the coherence ``coh_ps``; (3) re-weight the candidates by
their probability of not being random (``P-square``) or by their signal-to-noise ratio; until the
change of the rms coherence change drops below ``gamma_change_convergence`` or
``gamma_max_iterations`` is reached.

Reads ``ps1``, ``ph1``, ``bp1``, ``da1`` and ``inc1`` (else ``la1``) of the patch; writes
``pm1.h5``.
Index datasets of ``pm1`` are 0-based: ``grid_ij`` (cell row, column into ``ph_grid``) and
``Nr_max_nz_ix`` (bin into ``Nr``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import load_product, product_path, save_product
from stamps_python.numerics.clap import clap_filt, clap_low_pass, gausswin
from stamps_python.numerics.matlab import matlab_interp
from stamps_python.numerics.random_phase import hist_centres, random_phase_distribution
from stamps_python.numerics.topofit import ps_topofit
from stamps_python.parms import number, required
from stamps_python.utils import StampsError, get_logger, progress_bar, timed

PSVER = 1
RHO = 830000.0  # mean slant range, m (StaMPS: need only be approximately correct)
DEFAULT_INC = 21 * np.pi / 180  # incidence angle guess, rad, when neither inc1 nor la1 exists
LOOK_TO_INC = 0.052  # rad (~3 deg) added to the mean look angle to approximate the incidence angle
TOPOFIT_CHUNK = 20000  # candidates per ps_topofit block


def prand_weighting(
    coh_ps: np.ndarray, nr: np.ndarray, nr_max_nz_ix: int, coh_bins: np.ndarray, low_coh_thresh: int
) -> tuple[np.ndarray, np.ndarray]:
    """``P-square`` weights (1 - P_random(coh))^2 of the candidates and the rescaled ``Nr``.

    The random-phase histogram ``nr`` is scaled to the candidates' histogram over the lowest
    ``low_coh_thresh`` bins; P_random per bin is their ratio (1 below the threshold, 0 above the
    last non-empty random bin ``nr_max_nz_ix`` (0-based), at most 1), smoothed by a causal 7-tap
    Gaussian and interpolated to 0.001 coherence steps.
    """
    na = hist_centres(coh_ps, coh_bins)
    nr = nr * na[:low_coh_thresh].sum() / nr[:low_coh_thresh].sum()
    na[na == 0] = 1
    prand = nr / na
    prand[:low_coh_thresh] = 1
    prand[nr_max_nz_ix + 1 :] = 0
    prand[prand > 1] = 1
    g = gausswin(7)
    padded = np.r_[np.ones(7), prand]
    prand = np.convolve(padded, g)[: len(padded)][7:] / g.sum()
    prand = matlab_interp(np.r_[1.0, prand], 10)[:-9]
    ix = np.floor(np.nan_to_num(coh_ps) * 1000 + 0.5).astype(np.int64)
    prand_ps = prand[np.clip(ix, 0, len(prand) - 1)]
    return (1 - prand_ps) ** 2, nr


def snr_weighting(amp: np.ndarray, ph_res: np.ndarray) -> np.ndarray:
    """Signal-to-noise weights g / sigma_n from amplitudes and residual phases (rad), per PS."""
    amp = amp.astype(np.float64)
    g = np.mean(amp * np.cos(ph_res), axis=1)
    sigma_n = np.sqrt(0.5 * (np.mean(amp**2, axis=1) - g**2))
    weighting = np.zeros_like(g)
    nz = sigma_n != 0
    weighting[nz] = g[nz] / sigma_n[nz]
    return weighting


def grid_indices(xy: np.ndarray, grid_size: float) -> np.ndarray:
    """0-based (row, column) filter-grid cell (n_ps, 2) of each candidate from ``xy`` (m).

    Rows follow y (``xy[:, 2]``), columns x (``xy[:, 1]``); computed in single precision as
    StaMPS does. The last row/column of cells is merged into the one before, as in StaMPS.
    """
    xy32 = np.asarray(xy, dtype=np.float32)
    size = np.float32(grid_size)
    out = np.empty((len(xy32), 2), dtype=np.int64)
    for col, axis in ((0, 2), (1, 1)):
        v = xy32[:, axis]
        cell = np.ceil((v - v.min() + np.float32(1e-6)) / size).astype(np.int64)
        top = cell.max()
        # StaMPS would turn every index into 0 (invalid) when all candidates share one cell.
        if top > 1:
            cell[cell == top] = top - 1
        out[:, col] = cell - 1
    return out


def grid_phase(ph_weight: np.ndarray, grid_ij: np.ndarray, n_i: int, n_j: int) -> np.ndarray:
    """Sum of the candidates' weighted phase per grid cell: (n_i, n_j, n_ifg) complex128."""
    lin = grid_ij[:, 0] * n_j + grid_ij[:, 1]
    n_ifg = ph_weight.shape[1]
    grid = np.empty((n_i * n_j, n_ifg), dtype=np.complex128)
    for k in range(n_ifg):
        col = ph_weight[:, k]
        grid[:, k].real = np.bincount(lin, weights=col.real, minlength=n_i * n_j)
        grid[:, k].imag = np.bincount(lin, weights=col.imag, minlength=n_i * n_j)
    return grid.reshape(n_i, n_j, n_ifg)


def _mean_incidence(patch_dir: Path) -> float:
    """Mean incidence (rad) from inc1.h5, else mean look angle of la1.h5 + 0.052, else 21 deg."""
    log = get_logger()
    inc_path = product_path(patch_dir, "inc", PSVER)
    la_path = product_path(patch_dir, "la", PSVER)
    if inc_path.is_file():
        inc = np.asarray(load_product(inc_path, ["inc"])["inc"], dtype=np.float64)
        log.info("read %s (incidence angle)", inc_path)
        return float(np.mean(inc[inc != 0]))
    if la_path.is_file():
        la = np.asarray(load_product(la_path, ["la"])["la"], dtype=np.float64)
        log.info("read %s (look angle)", la_path)
        return float(np.mean(la)) + LOOK_TO_INC
    log.warning("neither %s nor %s found: assuming a 21 deg incidence angle", inc_path, la_path)
    return DEFAULT_INC


def _load_inputs(patch_dir: Path, small_baseline: bool) -> dict[str, Any]:
    """Candidate phase (normalised, master removed for PS), baselines, xy, D_A, as the step uses."""
    log = get_logger()
    ps_path = product_path(patch_dir, "ps", PSVER)
    names = ["xy", "bperp", "n_ps", "n_ifg", "master_ix"]
    if small_baseline:
        names = ["xy", "bperp", "n_ps", "n_ifg", "n_image", "ifgday_ix"]
    ps = load_product(ps_path, names)
    log.info("read %s", ps_path)
    ph_path = product_path(patch_dir, "ph", PSVER)
    ph = np.asarray(load_product(ph_path, ["ph"])["ph"])
    log.info("read %s", ph_path)
    bp_path = product_path(patch_dir, "bp", PSVER)
    bperp_mat = np.asarray(load_product(bp_path, ["bperp_mat"])["bperp_mat"], dtype=np.float64)
    log.info("read %s", bp_path)
    n_ps = int(ps["n_ps"])
    da_path = product_path(patch_dir, "da", PSVER)
    if da_path.is_file():
        d_a = np.asarray(load_product(da_path, ["D_A"])["D_A"], dtype=np.float64)
        log.info("read %s", da_path)
    else:
        d_a = np.ones(n_ps)
    bperp = np.asarray(ps["bperp"], dtype=np.float64)
    out: dict[str, Any] = {"xy": np.asarray(ps["xy"]), "n_ps": n_ps, "D_A": d_a}
    if small_baseline:
        out["ifgday_ix"] = np.asarray(ps["ifgday_ix"], dtype=np.int64)
        out["n_image"] = int(ps["n_image"])
    else:
        keep = np.arange(int(ps["n_ifg"])) != int(ps["master_ix"])
        ph = ph[:, keep]
        bperp = bperp[keep]
    if ph.shape[0] != n_ps or bperp_mat.shape != ph.shape or len(bperp) != ph.shape[1]:
        raise StampsError(
            f"{patch_dir}: inconsistent Step-1 products: ph {ph.shape}, "
            f"bperp_mat {bperp_mat.shape}, "
            f"bperp {bperp.shape}, n_ps {n_ps}"
        )
    amp = np.abs(ph).astype(np.float32)
    amp[amp == 0] = 1
    out["amp"] = amp
    out["ph"] = ph.astype(np.complex128) / amp
    out["bperp"] = bperp
    out["bperp_mat"] = bperp_mat
    return out


def _topofit_all(
    ph: np.ndarray,
    ph_patch: np.ndarray,
    bperp_mat: np.ndarray,
    n_trial_wraps: float,
    state: dict[str, np.ndarray],
    i_loop: int,
) -> None:
    """Fit the look-angle error of every candidate against its patch phase; update ``state``."""
    n_ps = ph.shape[0]
    blocks = range(0, n_ps, TOPOFIT_CHUNK)
    for s in progress_bar(blocks, desc=f"gamma iteration {i_loop}", unit="block", hide=None):
        e = min(s + TOPOFIT_CHUNK, n_ps)
        psdph = ph[s:e] * np.conj(ph_patch[s:e].astype(np.complex128))
        ok = np.all(psdph != 0, axis=1)
        idx = np.flatnonzero(ok) + s
        bad = np.flatnonzero(~ok) + s
        if len(idx):
            k, c, coh, res = ps_topofit(
                psdph[ok], bperp_mat[idx], n_trial_wraps, chunk_size=TOPOFIT_CHUNK
            )
            state["K_ps"][idx] = k
            state["C_ps"][idx] = c
            state["coh_ps"][idx] = coh
            state["N_opt"][idx] = 1
            state["ph_res"][idx] = np.angle(res).astype(np.float32)
        state["K_ps"][bad] = np.nan
        state["coh_ps"][bad] = 0.0


def run(patch_dir: Path, parms: Mapping[str, Any]) -> Path:
    """Step 2 for one patch: estimate K_ps, C_ps and coh_ps of every candidate; write ``pm1.h5``.

    ``parms`` holds StaMPS parameters by name (filter_grid_size, filter_weighting, clap_win,
    clap_low_pass_wavelength, clap_alpha, clap_beta, max_topo_err, lambda,
    gamma_change_convergence, gamma_max_iterations, small_baseline_flag). Returns the pm1 path.
    """
    patch_dir = Path(patch_dir)
    log = get_logger()
    start = time.perf_counter()
    log.info("Step 2 (ps_est_gamma_quick): estimating gamma for candidate pixels in %s", patch_dir)

    grid_size = number(parms, "filter_grid_size", finite=True)
    filter_weighting = str(required(parms, "filter_weighting"))
    n_win = number(parms, "clap_win", finite=True)
    low_pass_wavelength = number(parms, "clap_low_pass_wavelength", finite=True)
    clap_alpha = number(parms, "clap_alpha", finite=True)
    clap_beta = number(parms, "clap_beta", finite=True)
    max_topo_err = number(parms, "max_topo_err", finite=True)
    wavelength = number(parms, "lambda", finite=True)
    gamma_change_convergence = number(parms, "gamma_change_convergence", finite=True)
    gamma_max_iterations = number(parms, "gamma_max_iterations", finite=True)
    small_baseline = str(required(parms, "small_baseline_flag")).lower() == "y"
    if grid_size <= 0 or wavelength <= 0:
        raise StampsError("parameters 'filter_grid_size' and 'lambda' must be positive")
    low_coh_thresh = 15 if small_baseline else 31  # in coh_bins: coherence 0.15 / 0.31

    low_pass = clap_low_pass(n_win, grid_size, low_pass_wavelength)
    data = _load_inputs(patch_dir, small_baseline)
    ph, amp, bperp, bperp_mat = data["ph"], data["amp"], data["bperp"], data["bperp_mat"]
    n_ps, n_ifg = ph.shape
    n_null = int(np.any(ph == 0, axis=1).sum())
    if n_null:
        log.info("%d candidates have a null phase in at least one interferogram", n_null)

    inc_mean = _mean_incidence(patch_dir)
    max_k = max_topo_err / (wavelength * RHO * math.sin(inc_mean) / 4 / math.pi)
    bperp_range = float(np.max(bperp) - np.min(bperp))
    n_trial_wraps = bperp_range * max_k / (2 * math.pi)
    log.info("n_trial_wraps=%f", n_trial_wraps)

    with timed("Initialising random distribution"):
        nr, coh_bins, nr_max_nz_ix = random_phase_distribution(
            bperp, n_trial_wraps, ifgday_ix=data.get("ifgday_ix"), n_image=data.get("n_image")
        )

    grid_ij = grid_indices(data["xy"], grid_size)
    n_i = int(grid_ij[:, 0].max()) + 1
    n_j = int(grid_ij[:, 1].max()) + 1
    state = {
        "K_ps": np.zeros(n_ps),
        "C_ps": np.zeros(n_ps),
        "coh_ps": np.zeros(n_ps),
        "N_opt": np.zeros(n_ps, dtype=np.int32),
        "ph_res": np.zeros((n_ps, n_ifg), dtype=np.float32),
    }
    coh_ps_save = np.zeros(n_ps)
    weighting = 1.0 / data["D_A"]
    gamma_change_save = 0.0
    i_loop = 1
    log.info("%d PS candidates to process, %d interferograms, grid %d x %d", n_ps, n_ifg, n_i, n_j)

    while True:
        log.info("iteration #%d: calculating patch phases...", i_loop)
        # StaMPS lets a NaN K_ps (candidate with a null phase) turn its whole grid cell into NaN,
        # which the filter then zeroes for all later iterations; such a candidate is gridded
        # with K = 0 instead, so it cannot wipe out its neighbours.
        k_grid = np.nan_to_num(state["K_ps"], nan=0.0)
        k_phase = bperp_mat * k_grid[:, None]
        ph_weight = np.empty_like(ph)
        np.cos(k_phase, out=ph_weight.real)
        np.sin(-k_phase, out=ph_weight.imag)
        del k_phase
        ph_weight *= ph
        ph_weight *= weighting[:, None]
        ph_grid = grid_phase(ph_weight, grid_ij, n_i, n_j).astype(np.complex64)
        ph_filt = clap_filt(
            np.moveaxis(ph_grid, 2, 0), clap_alpha, clap_beta, n_win * 0.75, n_win * 0.25, low_pass
        )
        ph_patch = ph_filt[:, grid_ij[:, 0], grid_ij[:, 1]].T.astype(np.complex64)
        del ph_filt
        magnitude = np.abs(ph_patch)
        np.divide(ph_patch, magnitude, out=ph_patch, where=magnitude != 0)
        del magnitude

        log.info("iteration #%d: estimating topo error...", i_loop)
        _topofit_all(ph, ph_patch, bperp_mat, n_trial_wraps, state, i_loop)
        coh_ps = state["coh_ps"]

        gamma_change_rms = float(np.sqrt(np.sum((coh_ps - coh_ps_save) ** 2) / n_ps))
        gamma_change_change = gamma_change_rms - gamma_change_save
        log.info("gamma_change_change=%f", gamma_change_change)
        gamma_change_save = gamma_change_rms
        coh_ps_save = coh_ps.copy()
        if abs(gamma_change_change) < gamma_change_convergence or i_loop >= gamma_max_iterations:
            break
        i_loop += 1
        if filter_weighting.lower() == "p-square":
            weighting, nr = prand_weighting(coh_ps, nr, nr_max_nz_ix, coh_bins, low_coh_thresh)
        else:
            weighting = snr_weighting(amp, state["ph_res"])

    pm_path = product_path(patch_dir, "pm", PSVER)
    save_product(
        pm_path,
        {
            "ph_patch": ph_patch,
            "K_ps": state["K_ps"],
            "C_ps": state["C_ps"],
            "coh_ps": coh_ps,
            "N_opt": state["N_opt"],
            "ph_res": state["ph_res"],
            "step_number": 1,
            "ph_grid": ph_grid,
            "n_trial_wraps": n_trial_wraps,
            "grid_ij": grid_ij,
            "grid_size": grid_size,
            "low_pass": low_pass,
            "i_loop": i_loop,
            "ph_weight": ph_weight.astype(np.complex64),
            "Nr": nr,
            "Nr_max_nz_ix": nr_max_nz_ix,
            "coh_bins": coh_bins,
            "coh_ps_save": coh_ps_save,
            "gamma_change_save": gamma_change_save,
        },
    )
    log.info("wrote %s", pm_path)
    log.info("Step 2 done in %.1f s", time.perf_counter() - start)
    return pm_path

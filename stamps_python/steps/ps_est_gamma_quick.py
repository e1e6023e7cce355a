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

from stamps_python.io.est_gamma_inputs import load_inputs, mean_incidence
from stamps_python.io.products import product_path, save_product
from stamps_python.numerics.clap import clap_filt, clap_low_pass
from stamps_python.numerics.est_gamma import prand_weighting, snr_weighting
from stamps_python.numerics.random_phase import random_phase_distribution
from stamps_python.numerics.topofit import ps_topofit
from stamps_python.parms import number, required
from stamps_python.utils import StampsError, get_logger, progress_bar, timed

PSVER = 1
RHO = 830000.0  # mean slant range, m (StaMPS: need only be approximately correct)
TOPOFIT_CHUNK = 20000  # candidates per ps_topofit block


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
    data = load_inputs(patch_dir, small_baseline)
    ph, amp, bperp, bperp_mat = data["ph"], data["amp"], data["bperp"], data["bperp_mat"]
    n_ps, n_ifg = ph.shape
    n_null = int(np.any(ph == 0, axis=1).sum())
    if n_null:
        log.info("%d candidates have a null phase in at least one interferogram", n_null)

    inc_mean = mean_incidence(patch_dir)
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

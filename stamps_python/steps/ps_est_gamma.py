"""StaMPS Step 2 with ``quick_est_gamma_flag = 'n'`` (``ps_est_gamma``): per-pixel coherence.

StaMPS' ``stamps.m`` calls ``ps_est_gamma`` when the flag is 'n', but no StaMPS release ships
that file (MATLAB stops with "Undefined function"). This is the estimator it names, as Hooper et
al. (2004, GRL 31, L23611) describe it and as ps_est_gamma_quick keeps its frame: per candidate,
the spatially correlated phase is the weighted sum of the phase of the *other* candidates in a
circular patch of radius :func:`~stamps_python.numerics.est_gamma.patch_radius`
(``clap_low_pass_wavelength``: 282 m for the default 800 m), in place of the CLAP-filtered grid.
Everything else is ps_est_gamma_quick's: the look-angle fit (``K_ps`` rad/m, ``C_ps`` rad,
``coh_ps``), the weights (1 / D_A first, then ``P-square`` or SNR), the convergence rule on the
change of the rms coherence change, and the random-phase distribution ``Nr``.

Reads ``ps1``, ``ph1``, ``bp1``, ``da1`` and ``inc1`` (else ``la1``) of the patch; writes
``pm1.h5`` with the quick estimator's datasets where they mean the same, without its grid
(``ph_grid``, ``grid_ij``, ``grid_size``, ``low_pass``), plus ``N_patch`` (candidates in each
patch) and ``patch_radius`` (m). Step 3 then keeps these coherences (``ps_select(1)``, as
stamps.m runs it after ps_est_gamma).
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
from stamps_python.numerics.est_gamma import (
    fit_look_angle,
    patch_phase,
    patch_radius,
    prand_weighting,
    snr_weighting,
)
from stamps_python.numerics.random_phase import random_phase_distribution
from stamps_python.parms import number, required
from stamps_python.utils import StampsError, get_logger, timed

PSVER = 1
RHO = 830000.0  # mean slant range, m (StaMPS: need only be approximately correct)


def _weighted_phase(
    ph: np.ndarray, bperp_mat: np.ndarray, k_ps: np.ndarray, weighting: np.ndarray
) -> np.ndarray:
    """ph exp(-j K bperp) x weight, per candidate (a NaN K, from a null phase, counts as 0)."""
    k_phase = bperp_mat * np.nan_to_num(k_ps, nan=0.0)[:, None]
    ph_weight = np.empty_like(ph)
    np.cos(k_phase, out=ph_weight.real)
    np.sin(-k_phase, out=ph_weight.imag)
    ph_weight *= ph
    ph_weight *= weighting[:, None]
    return ph_weight


def run(patch_dir: Path, parms: Mapping[str, Any]) -> Path:
    """Step 2 (ps_est_gamma) for one patch: K_ps, C_ps and coh_ps of every candidate from its
    circular patch; writes and returns ``pm1.h5``.

    ``parms``: filter_weighting, clap_low_pass_wavelength (sets the patch radius), max_topo_err,
    lambda, gamma_change_convergence, gamma_max_iterations, small_baseline_flag.
    """
    patch_dir = Path(patch_dir)
    log = get_logger()
    start = time.perf_counter()
    log.info("Step 2 (ps_est_gamma): estimating gamma for candidate pixels in %s", patch_dir)

    filter_weighting = str(required(parms, "filter_weighting"))
    low_pass_wavelength = number(parms, "clap_low_pass_wavelength", finite=True)
    max_topo_err = number(parms, "max_topo_err", finite=True)
    wavelength = number(parms, "lambda", finite=True)
    gamma_change_convergence = number(parms, "gamma_change_convergence", finite=True)
    gamma_max_iterations = number(parms, "gamma_max_iterations", finite=True)
    small_baseline = str(required(parms, "small_baseline_flag")).lower() == "y"
    if low_pass_wavelength <= 0 or wavelength <= 0:
        raise StampsError("parameters 'clap_low_pass_wavelength' and 'lambda' must be positive")
    low_coh_thresh = 15 if small_baseline else 31  # in coh_bins: coherence 0.15 / 0.31
    radius = patch_radius(low_pass_wavelength)

    data = load_inputs(patch_dir, small_baseline)
    data["D_A"] = np.asarray(data["D_A"], dtype=np.float64).ravel()
    data["xy"] = np.asarray(data["xy"], dtype=np.float64)
    data["bperp"] = np.asarray(data["bperp"], dtype=np.float64).ravel()
    ph, amp, bperp, bperp_mat = data["ph"], data["amp"], data["bperp"], data["bperp_mat"]
    xy = data["xy"][:, 1:3]
    n_ps, n_ifg = ph.shape
    n_null = int(np.any(ph == 0, axis=1).sum())
    if n_null:
        log.info("%d candidates have a null phase in at least one interferogram", n_null)

    inc_mean = mean_incidence(patch_dir)
    max_k = max_topo_err / (wavelength * RHO * math.sin(inc_mean) / 4 / math.pi)
    n_trial_wraps = float(np.ptp(bperp)) * max_k / (2 * math.pi)
    log.info("n_trial_wraps=%f", n_trial_wraps)

    with timed("Initialising random distribution"):
        nr, coh_bins, nr_max_nz_ix = random_phase_distribution(
            bperp, n_trial_wraps, ifgday_ix=data.get("ifgday_ix"), n_image=data.get("n_image")
        )

    k_ps = np.zeros(n_ps)
    coh_ps_save = np.zeros(n_ps)
    weighting = 1.0 / data["D_A"]
    gamma_change_save = 0.0
    i_loop = 1
    log.info(
        "%d PS candidates to process, %d interferograms, circular patches of radius %.0f m",
        n_ps,
        n_ifg,
        radius,
    )
    while True:
        log.info("iteration #%d: calculating patch phases...", i_loop)
        ph_weight = _weighted_phase(ph, bperp_mat, k_ps, weighting)
        ph_patch, n_patch = patch_phase(xy, ph_weight, radius)
        if i_loop == 1:
            log.info(
                "candidates per patch: median %d, %d candidates with an empty patch",
                int(np.median(n_patch)) if n_ps else 0,
                int(np.sum(n_patch == 0)),
            )
        log.info("iteration #%d: estimating topo error...", i_loop)
        fit = fit_look_angle(ph, ph_patch, bperp_mat, n_trial_wraps)
        k_ps, coh_ps = fit["K_ps"], fit["coh_ps"]

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
            weighting = snr_weighting(amp, fit["ph_res"])

    pm_path = product_path(patch_dir, "pm", PSVER)
    save_product(
        pm_path,
        {
            "ph_patch": ph_patch,
            "K_ps": k_ps,
            "C_ps": fit["C_ps"],
            "coh_ps": coh_ps,
            "N_opt": fit["N_opt"],
            "ph_res": fit["ph_res"],
            "step_number": 1,
            "n_trial_wraps": n_trial_wraps,
            "i_loop": i_loop,
            "ph_weight": ph_weight.astype(np.complex64),
            "N_patch": n_patch,
            "patch_radius": radius,
            "Nr": nr,
            "Nr_max_nz_ix": nr_max_nz_ix,
            "coh_bins": coh_bins,
            "coh_ps_save": coh_ps_save,
            "gamma_change_save": gamma_change_save,
        },
    )
    log.info("wrote %s", pm_path)
    log.info("Step 2 (ps_est_gamma) done in %.1f s", time.perf_counter() - start)
    return pm_path

"""Step 5, merged (ps_calc_ifg_std): noise standard deviation of each interferogram, degrees.

The residual phase of every PS after removing its filtered patch phase, look-angle error and (PS)
master noise; ``ifg_std`` is its root mean square over all PS, per interferogram, in degrees.
Writes ``ifgstd2.h5``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import load_phase_inputs, product_path, save_product
from stamps_python.numerics.phase import correct_phase, with_master_column
from stamps_python.parms import flag
from stamps_python.utils import datestr, get_logger


def ifg_std(
    ph: np.ndarray,
    ph_patch: np.ndarray,
    K_ps: np.ndarray,
    C_ps: np.ndarray,
    bperp_mat: np.ndarray,
    master_ix: int | None,
) -> np.ndarray:
    """RMS over PS of the residual phase per interferogram, degrees (see module docstring)."""
    if master_ix is not None:
        ph_patch = with_master_column(np.asarray(ph_patch, dtype=np.complex64), master_ix, 1.0)
    resid = correct_phase(np.asarray(ph) * np.conj(ph_patch), K_ps, C_ps, bperp_mat, master_ix)
    ph_diff = np.angle(resid).astype(np.float64)
    return np.degrees(np.sqrt(np.sum(ph_diff**2, axis=0) / ph_diff.shape[0]))


def run(run_dir: str | Path, parms: Mapping[str, Any]) -> Path:
    """ps_calc_ifg_std on the merged workspaces of ``run_dir``: writes ``ifgstd2.h5``."""
    log = get_logger()
    start = time.perf_counter()
    run_dir = Path(run_dir)
    ps, ph, pm, bperp_mat = load_phase_inputs(run_dir, "Step 5")
    small_baseline = flag(parms, "small_baseline_flag")
    mi = None if small_baseline else int(ps["master_ix"])
    std = ifg_std(ph, pm["ph_patch"], pm["K_ps"], pm["C_ps"], bperp_mat, mi)
    path = save_product(product_path(run_dir, "ifgstd2"), {"ifg_std": std})
    if small_baseline and "ifgday" in ps:
        labels = [f"{datestr(a)}_{datestr(b)}" for a, b in np.asarray(ps["ifgday"])]
    else:
        labels = [datestr(d) for d in np.asarray(ps["day"])]
    log.info(
        "ifg noise std (deg): %s",
        ", ".join(f"{i + 1}:{lab}={s:.1f}" for i, (lab, s) in enumerate(zip(labels, std))),
    )
    log.info(
        "Step 5 merged: read ps2/ph2/pm2/bp2 (%d PS); wrote ifgstd2.h5 in %.1f s",
        len(ph),
        time.perf_counter() - start,
    )
    return path

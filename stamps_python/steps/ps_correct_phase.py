"""Step 5, per patch (ps_correct_phase): remove the look-angle error and master noise.

Reads the weeded patch workspaces ``ps2``, ``ph2``, ``pm2``, ``bp2`` and writes ``rc2.h5``:
``ph_rc`` = ph * exp(-j (K_ps * bperp + C_ps)) (PS; SB subtracts only K_ps * bperp) and, for PS,
``ph_reref`` = the filtered patch phase ph_patch with the master column (ones) put back.
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
from stamps_python.utils import get_logger


def run(patch_dir: str | Path, parms: Mapping[str, Any]) -> Path:
    """ps_correct_phase for one patch: writes ``rc2.h5`` from ps2/ph2/pm2/bp2."""
    log = get_logger()
    start = time.perf_counter()
    patch_dir = Path(patch_dir)
    ps, ph, pm, bperp_mat = load_phase_inputs(patch_dir, "Step 4", ["master_ix", "n_ps", "n_ifg"])
    small_baseline = flag(parms, "small_baseline_flag")
    if small_baseline:
        out = {"ph_rc": correct_phase(ph, pm["K_ps"], pm["C_ps"], bperp_mat, None)}
    else:
        mi = int(ps["master_ix"])
        out = {
            "ph_rc": correct_phase(ph, pm["K_ps"], pm["C_ps"], bperp_mat, mi),
            "ph_reref": with_master_column(np.asarray(pm["ph_patch"], dtype=np.complex64), mi, 1.0),
        }
    path = save_product(product_path(patch_dir, "rc2"), out)
    log.info(
        "Step 5 %s: read ps2/ph2/pm2/bp2 (%d PS); wrote rc2.h5 in %.1f s",
        patch_dir.name,
        int(ps["n_ps"]),
        time.perf_counter() - start,
    )
    return path

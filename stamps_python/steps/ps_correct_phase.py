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

from stamps_python.io.products import load_product, product_path, require, save_product
from stamps_python.parms import flag
from stamps_python.utils import get_logger


def with_master_column(values: np.ndarray, master_ix: int, fill: float | complex) -> np.ndarray:
    """Insert a column of ``fill`` at ``master_ix`` (0-based) into (n_ps, n_ifg-1) ``values``."""
    values = np.asarray(values)
    return np.insert(values, master_ix, np.full(values.shape[0], fill, dtype=values.dtype), axis=1)


def correct_phase(ph: np.ndarray, K_ps: np.ndarray, C_ps: np.ndarray, bperp_mat: np.ndarray,
                  master_ix: int | None) -> np.ndarray:
    """Phase corrected for look-angle error K_ps (rad/m) and, for PS, master noise C_ps (rad).

    ``bperp_mat`` is (n_ps, n_ifg-1) for PS (the master column, 0 m, is inserted at
    ``master_ix``) or (n_ps, n_ifg) for SB (``master_ix`` None: C_ps is not subtracted).
    """
    K = np.asarray(K_ps, dtype=np.float32).reshape(-1, 1)
    if master_ix is None:
        arg = K * np.asarray(bperp_mat, dtype=np.float32)
    else:
        bp = with_master_column(np.asarray(bperp_mat, dtype=np.float32), master_ix, 0.0)
        arg = K * bp + np.asarray(C_ps, dtype=np.float32).reshape(-1, 1)
    return (np.asarray(ph, dtype=np.complex64) * np.exp(-1j * arg)).astype(np.complex64)


def load_phase_inputs(directory: Path, step: str, ps_keys: list[str] | None = None
                      ) -> tuple[dict[str, Any], np.ndarray, dict[str, Any], np.ndarray]:
    """ps2 (``ps_keys`` or all), ph2 ``ph``, pm2 (``ph_patch``, ``K_ps``, ``C_ps``) and bp2
    ``bperp_mat`` of ``directory``; a missing one says to run ``step``."""
    for name in ("ps2", "ph2", "pm2", "bp2"):
        require(product_path(directory, name), step)
    ps = load_product(product_path(directory, "ps2"), ps_keys)
    ph = load_product(product_path(directory, "ph2"), ["ph"])["ph"]
    pm = load_product(product_path(directory, "pm2"), ["K_ps", "C_ps", "ph_patch"])
    bperp_mat = load_product(product_path(directory, "bp2"), ["bperp_mat"])["bperp_mat"]
    return ps, ph, pm, bperp_mat


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
    log.info("Step 5 %s: read ps2/ph2/pm2/bp2 (%d PS); wrote rc2.h5 in %.1f s", patch_dir.name,
             int(ps["n_ps"]), time.perf_counter() - start)
    return path

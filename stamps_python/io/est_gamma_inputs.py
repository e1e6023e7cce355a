"""Step 2's inputs from a patch's Step-1 workspaces, shared by both estimators (the quick
``ps_est_gamma_quick`` and the per-pixel ``ps_est_gamma``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import load_product, product_path
from stamps_python.utils import StampsError, get_logger

PSVER = 1
DEFAULT_INC = 21 * np.pi / 180  # incidence angle guess, rad, when neither inc1 nor la1 exists
LOOK_TO_INC = 0.052  # rad (~3 deg) added to the mean look angle to approximate the incidence angle


def mean_incidence(patch_dir: Path) -> float:
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


def load_inputs(patch_dir: Path, small_baseline: bool) -> dict[str, Any]:
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

"""Step 6 helper for small baselines with ``unwrap_hold_good_values = 'y'`` (StaMPS
``sb_make_closure_loops`` + ``sb_identify_good_pixels``).

Reads the merged ``ps2.h5`` and the previous Step 6 result ``phuw_sb2.h5``; writes
``phuw_loops2.h5`` (``intfg_loops`` (n_loops, n_ifg) int8: +1 / -1 / 0 per pair of each closure
loop) and ``phuw_good2.h5`` (``good_pixels`` (n_ps, n_ifg) bool: the pair closes a loop within
1 rad at that PS). ``ps_unwrap`` then keeps those unwrapped values fixed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import load_product, product_path, require, save_product
from stamps_python.numerics.sb_closure import closure_loops, identify_good_pixels
from stamps_python.numerics.sb_network import sb_design_matrix
from stamps_python.parms import drop_ifg_index0
from stamps_python.utils import StampsError, get_logger


def image_bperp(ps: Mapping[str, Any]) -> np.ndarray:
    """Perpendicular baseline of every image relative to the master (m), from the pairs' ``bperp``
    (exact when those are differences of image baselines); 0 for images in no pair."""
    ix = np.asarray(ps["ifgday_ix"], dtype=np.int64)
    n_image, master = int(ps["n_image"]), int(ps["master_ix"])
    G = sb_design_matrix(ix, n_image, master)
    cols = np.flatnonzero(np.abs(G).sum(axis=0) > 0)
    out = np.zeros(n_image)
    out[cols] = np.linalg.lstsq(
        G[:, cols], np.asarray(ps["bperp"], dtype=np.float64).ravel(), rcond=None
    )[0]
    return out


def identify(run_dir: Path, parms: Mapping[str, Any], ph_uw: np.ndarray) -> np.ndarray:
    """Closure loops of the kept pairs of ``run_dir`` and the good values of ``ph_uw`` (the
    previous phuw_sb2 ``ph_uw``); writes phuw_loops2.h5 and phuw_good2.h5, returns good_pixels."""
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
    loops = closure_loops(
        ps["ifgday_ix"], np.asarray(ps["day"], dtype=np.float64).ravel(), image_bperp(ps), drop
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


def run(run_dir: str | Path, parms: Mapping[str, Any]) -> Path:
    """:func:`identify` on the phuw_sb2.h5 of ``run_dir``; returns the phuw_good2.h5 path."""
    run_dir = Path(run_dir)
    uw_path = require(product_path(run_dir, "phuw_sb2"), "Step 6")
    identify(run_dir, parms, np.asarray(load_product(uw_path, ["ph_uw"])["ph_uw"]))
    return product_path(run_dir, "phuw_good2")

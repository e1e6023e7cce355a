"""Step 1 (PS): load the candidates of a patch into the StaMPS workspaces, as ps_load_initial_isce.

Input: ``PATCH_n/pscands.h5`` written by prep_isce (the equivalent of mt_prep's pscands.1.ij,
.ph, .ll, .hgt, .da files plus the stack-wide day/bperp/calamp lists). Output: ``ps1.h5``,
``ph1.h5``, ``bp1.h5``, ``la1.h5``, ``inc1.h5`` (when incidence angles were prepared), ``da1.h5``,
``hgt1.h5`` (see docs/products.md).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import (
    load_product,
    product_path,
    require,
    save_product,
    save_product_rows,
)
from stamps_python.io.pscands import PSCANDS, candidate_bperp, step1_layout, step1_vectors
from stamps_python.utils import get_logger


def _ph_rows(ph: np.ndarray, ps1: Mapping[str, Any], start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of ph1: sorted candidates, secondaries by date / calconst, master = 1."""
    rows = ps1["sort_ix"][start:stop]
    block = np.asarray(ph[rows], dtype=np.complex64)[:, ps1["day_ix"]]
    block /= ps1["calconst"].astype(np.float32)[None, :]
    return np.insert(block, ps1["master_ix"], np.complex64(1.0), axis=1)


def _bp_rows(cands: Mapping[str, Any], ps1: Mapping[str, Any], start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of bperp_mat (m): baseline grids at the PS, or the per-date values."""
    grid = candidate_bperp(cands, ps1["sort_ix"][start:stop])
    if grid is not None:
        return grid[:, ps1["day_ix"]]
    row = np.delete(ps1["bperp"], ps1["master_ix"]).astype(np.float32)
    return np.repeat(row[None, :], stop - start, axis=0)


def build_step1(cands: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Build the Step-1 workspaces of one patch in memory (see :func:`write_step1`).

    ``cands`` holds: ``ij`` (n, 2) azimuth line / range sample (0-based); ``ph`` (n, n_sec)
    complex reference x conj(secondary), secondaries in ``dates`` order without the reference;
    ``lonlat`` (n, 2) deg; ``hgt`` (n,) m; ``D_A`` (n,); ``la`` (n,) deg; optional ``inc`` (n,)
    deg; optional ``bperp_grids`` (n_sec, ny, nx) m with ``image_size`` (lines, samples), or
    ``bperp_mat`` (n, n_sec) m; ``dates`` (all images, YYYYMMDD); ``master_date``;
    ``bperp`` per image (m, 0 at the reference); ``calconst`` per image; ``heading`` (deg).
    Returns {product name: {dataset: value}} for ps1, ph1, bp1, la1, (inc1), da1, hgt1.
    """
    ps1 = step1_layout(cands)
    n = ps1["n_ps"]
    return {
        "ps1": ps1,
        "ph1": {"ph": _ph_rows(np.asarray(cands["ph"]), ps1, 0, n)},
        "bp1": {"bperp_mat": _bp_rows(cands, ps1, 0, n)},
        **step1_vectors(cands, ps1),
    }


def write_step1(patch_dir: str | Path, cands: Mapping[str, Any], chunk: int = 65536) -> dict:
    """Write the Step-1 workspaces of one patch, the big matrices in blocks of ``chunk`` rows.

    Same content as :func:`build_step1`; only ``cands['ph']`` (and the baseline grids) are held
    in memory whole. Returns ps1.
    """
    patch_dir = Path(patch_dir)
    ps1 = step1_layout(cands)
    n, n_ifg = ps1["n_ps"], ps1["n_ifg"]
    ph = np.asarray(cands["ph"])
    starts = range(0, n, chunk)
    save_product_rows(
        product_path(patch_dir, "ph1"),
        "ph",
        (n, n_ifg),
        np.complex64,
        ((i, _ph_rows(ph, ps1, i, min(i + chunk, n))) for i in starts),
    )
    save_product_rows(
        product_path(patch_dir, "bp1"),
        "bperp_mat",
        (n, n_ifg - 1),
        np.float32,
        ((i, _bp_rows(cands, ps1, i, min(i + chunk, n))) for i in starts),
    )
    for name, data in step1_vectors(cands, ps1).items():
        save_product(product_path(patch_dir, name), data)
    save_product(product_path(patch_dir, "ps1"), ps1)
    return ps1


def run(patch_dir: str | Path, parms: Mapping[str, Any] | None = None) -> Path:
    """Step 1 for one patch: read ``pscands.h5``, write ps1/ph1/bp1/la1/(inc1)/da1/hgt1.h5."""
    log = get_logger()
    patch_dir = Path(patch_dir)
    start = time.perf_counter()
    src = require(patch_dir / PSCANDS, "prep_isce on this run directory")
    cands = load_product(src)
    ps1 = write_step1(patch_dir, cands)
    names = ["ps1", "ph1", "bp1", "la1", "da1", "hgt1"] + (["inc1"] if "inc" in cands else [])
    log.info(
        "Step 1 %s: read %s (%d candidates, %d images, reference %s); wrote %s in %.1f s",
        patch_dir.name,
        src.name,
        ps1["n_ps"],
        ps1["n_ifg"],
        ps1["master_date"],
        ", ".join(f"{n}.h5" for n in names),
        time.perf_counter() - start,
    )
    return product_path(patch_dir, "ps1")

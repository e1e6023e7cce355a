"""``aps_import``: TRAIN corrections computed in MATLAB (``tca2.mat`` / ``tca_sb2.mat``) into a run.

TRAIN's weather-model and spectrometer methods (ERA5, GACOS, MERRA, WRF, MODIS, MERIS,
powerlaw, ...) need their own data and run in MATLAB on the StaMPS ``.mat`` workspaces; they
save ``tca2.mat`` (one column per interferogram of a PS run, or per image after
``sb_invert_aps``) or ``tca_sb2.mat`` (one column per small-baseline interferogram). This reads
such a file (``-v7`` through scipy.io, ``-v7.3`` through h5py), checks every TRAIN variable in it
has one row per PS of the run's ``ps2.h5`` and one column per interferogram, and writes the
variables into ``tca2.h5`` / ``tca_sb2.h5`` (keeping other methods already there), so every
``tropo_method`` value works in Steps 6-7 and in the export.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from stamps_python.io.products import load_product, product_path, require
from stamps_python.io.train import read_mat, update_tca
from stamps_python.numerics.tropo import tropo_fields
from stamps_python.parms import flag, load_parms
from stamps_python.utils import StampsError, get_logger, peak_memory_mb


def _is_train_variable(name: str) -> bool:
    return name in tropo_fields() or name.startswith(("ph_tropo_", "K_tropo"))


def aps_import(run_dir: str | Path, mat_path: str | Path, target: str | None = None) -> Path:
    """Import the TRAIN variables of ``mat_path`` into run ``run_dir``; returns the product.

    ``target`` 'tca2' or 'tca_sb2' (None: tca_sb2 for a file named tca_sb*, else by the column
    count in a small-baseline run, else tca2). Row and column counts must match the run's PS
    and interferograms (images for tca2 of a small-baseline run).
    """
    log = get_logger()
    start = time.perf_counter()
    run_dir, mat_path = Path(run_dir), Path(mat_path)
    parms = load_parms(run_dir)
    small_baseline = flag(parms, "small_baseline_flag")
    ps_path = require(product_path(run_dir, "ps2"), "Step 5 (stamps_main --start 5 --end 5)")
    ps = load_product(ps_path, ["n_ps", "n_ifg"] + (["n_image"] if small_baseline else []))
    n_ps, n_ifg = int(ps["n_ps"]), int(ps["n_ifg"])
    n_image = int(ps["n_image"]) if small_baseline else n_ifg
    mat = read_mat(mat_path)
    found = {k: v for k, v in mat.items() if _is_train_variable(k)}
    if not found:
        raise StampsError(
            f"{mat_path}: holds no TRAIN correction (ph_tropo_*, K_tropo_powerlaw, strat_corr); "
            f"variables: {', '.join(sorted(mat)) or 'none'}"
        )
    cols = {np.asarray(v).shape[1] if np.ndim(v) == 2 else -1 for v in found.values()}
    if target is None:
        if mat_path.name.lower().startswith("tca_sb"):
            target = "tca_sb2"
        elif small_baseline and cols == {n_ifg} and n_ifg != n_image:
            target = "tca_sb2"
        else:
            target = "tca2"
    if target not in ("tca2", "tca_sb2"):
        raise StampsError(f"--target {target}: must be tca2 or tca_sb2")
    if target == "tca_sb2" and not small_baseline:
        raise StampsError(
            f"{mat_path}: a small-baseline correction (tca_sb2) cannot go into the PS run "
            f"{run_dir} (small_baseline_flag 'n')"
        )
    n_cols = n_ifg if (target == "tca_sb2" or not small_baseline) else n_image
    what = "small-baseline interferograms" if target == "tca_sb2" else (
        "images" if small_baseline else "interferograms (the reference image included)"
    )  # fmt: skip
    out = {}
    known = tropo_fields()
    for name, value in sorted(found.items()):
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != (n_ps, n_cols) and name not in known:
            log.info("   %s of shape %s is not a per-PS correction: not imported", name, arr.shape)
            continue
        if arr.shape != (n_ps, n_cols):
            raise StampsError(
                f"{mat_path}: {name} has shape {arr.shape}, but {ps_path} has {n_ps} PS and "
                f"{n_cols} {what}; was TRAIN run on this run's Step 5-6 products?"
            )
        out[name] = arr
    if not out:
        raise StampsError(
            f"{mat_path}: no TRAIN correction of shape ({n_ps}, {n_cols}) for the run {run_dir}"
        )
    skipped = sorted(set(mat) - set(found))
    if skipped:
        log.info("   not TRAIN corrections, not imported: %s", ", ".join(skipped))
    path = update_tca(
        product_path(run_dir, target), out, {"imported_from": str(mat_path.resolve())}
    )
    log.info(
        "aps_import: read %s (%s), wrote %s in %.1f s (peak memory %.0f MiB)",
        mat_path,
        ", ".join(out),
        path,
        time.perf_counter() - start,
        peak_memory_mb(),
    )
    return path

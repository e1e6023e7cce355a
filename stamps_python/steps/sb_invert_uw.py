"""Step 6, second half for Small Baseline runs (StaMPS ``sb_invert_uw``): SB -> single master.

After ``ps_unwrap`` has unwrapped the small-baseline interferograms (``phuw_sb2.h5``), the phase
of every image relative to the master image is estimated for every PS by weighted least squares
on the network of kept interferograms (``drop_ifg_index`` left out):

1. ``sb_cov`` (rad^2, n_ifg x n_ifg): covariance between interferograms of the phase noise
   angle(ph_rc x conj(ph_patch)) over all PS (``rc2.h5`` / ``pm2.h5``), identity without them;
2. every interferogram is referenced to the mean (NaN ignored) of the reference PS
   (``ref_lon``/``ref_lat``/``ref_radius`` or ``ref_x``/``ref_y``, as ``ps_setref``);
3. design matrix G (n_ifg, n_image): -1 at the first image, +1 at the second, master column 0;
   images in no kept interferogram are left out (their phase stays 0); a network with subsets
   not connected to the master is an error naming their dates;
4. the covariance of the kept interferograms is regularised (0.01 I added until its reciprocal
   1-norm condition number is at least 0.001) and the phase solved for with ``lscov``.

Writes ``phuw2.h5``: ``ph_uw`` (n_ps, n_image) float32 rad, 0 at the master and at unsolved
images, ``unwrap_ifg_index_sm`` (0-based images solved for, master included); and
``phuw_sb_res2.h5``: ``ph_res`` (n_ps, n_ifg) float32 rad, the SB phase the solution models
(G x ph_uw, the StaMPS name), ``sb_cov`` (n_ifg, n_ifg) and ``sm_cov`` (n_image, n_image) rad^2,
the covariance of the single-master estimate (0 outside the solved images).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stamps_python.io.products import (
    check_rows,
    load_product,
    product_path,
    require,
    save_product,
)
from stamps_python.numerics.lscov import lscov_operator
from stamps_python.numerics.rows import nanmean_rows
from stamps_python.numerics.sb_network import network_components, sb_design_matrix
from stamps_python.numerics.timeseries import reference_ps_from_parms
from stamps_python.parms import drop_ifg_index0
from stamps_python.utils import StampsError, datestr, get_logger

_ROW_CHUNK = 65536
RCOND_MIN = 0.001  # sb_invert_uw: smallest reciprocal condition number accepted for C
RCOND_STEP = 0.01  # rad^2 added to the diagonal of C per regularisation round

_PS_KEYS = ("n_ps", "n_ifg", "n_image", "master_ix", "ifgday_ix")


def image_names(ps: Mapping[str, Any], n_image: int) -> list[str]:
    """YYYYMMDD of every image (``dates`` or ``day`` of ps2), else "image k" (1-based)."""
    dates = ps.get("dates")
    if dates is not None and len(dates) == n_image:
        return [str(d) for d in dates]
    day = ps.get("day")
    if day is not None and np.size(day) == n_image:
        return [datestr(d) for d in np.ravel(day)]
    return [f"image {k + 1}" for k in range(n_image)]


def noise_covariance(ph_rc: np.ndarray, ph_patch: np.ndarray) -> tuple[np.ndarray, int]:
    """Covariance (n_ifg, n_ifg), rad^2, of angle(ph_rc x conj(ph_patch)) over the PS.

    MATLAB ``cov`` (normalised by N - 1), over the PS whose noise phase is finite in every
    interferogram; computed in one pass over row chunks (sums of the phases and of their
    products, which stay well conditioned for phases within +-pi), so ``ph_rc`` / ``ph_patch``
    may be HDF5 datasets read chunk by chunk. Returns it and the number of PS used.
    """
    n_ps, n_ifg = ph_rc.shape
    total = np.zeros(n_ifg)
    products = np.zeros((n_ifg, n_ifg))
    count = 0
    for r0 in range(0, n_ps, _ROW_CHUNK):
        rows = slice(r0, r0 + _ROW_CHUNK)
        noise = np.angle(
            np.asarray(ph_rc[rows], dtype=np.complex64)
            * np.conj(np.asarray(ph_patch[rows], dtype=np.complex64))
        )
        noise = noise.astype(np.float64)
        # MATLAB's cov turns all of sb_cov NaN for one non-finite PS; such PS are skipped
        noise = noise[np.isfinite(noise).all(axis=1)]
        total += noise.sum(axis=0)
        products += noise.T @ noise
        count += noise.shape[0]
    if count < 2:
        return np.full((n_ifg, n_ifg), np.nan), count
    mean = total / count
    return (products - count * np.outer(mean, mean)) / (count - 1), count


def rcond1(C: np.ndarray) -> float:
    """Reciprocal 1-norm condition number of C (MATLAB ``rcond``); 0 when C is singular."""
    try:
        with np.errstate(all="ignore"):
            cond = float(np.linalg.cond(C, 1))
    except np.linalg.LinAlgError:
        return 0.0
    return 1.0 / cond if np.isfinite(cond) and cond > 0 else 0.0


def regularise(C: np.ndarray) -> tuple[np.ndarray, int]:
    """C with RCOND_STEP x I added until rcond(C) >= RCOND_MIN; also the number of rounds."""
    C = np.array(C, dtype=np.float64)
    eye = np.eye(C.shape[0])
    rounds = 0
    while rcond1(C) < RCOND_MIN:
        C += RCOND_STEP * eye
        rounds += 1
    return C, rounds


def _isolated_subsets(ifgday_ix: np.ndarray, n_image: int, master_ix: int) -> list[np.ndarray]:
    """Groups of 2+ images linked by ``ifgday_ix`` but not to the master (0-based)."""
    return [c for c in network_components(n_image, ifgday_ix) if master_ix not in c and c.size > 1]


def invert_sb(
    ph_uw_sb: np.ndarray,
    ifgday_ix: np.ndarray,
    n_image: int,
    master_ix: int,
    C: np.ndarray,
    names: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Single-master phase from referenced SB phase of the kept interferograms.

    ``ph_uw_sb`` (n_ps, k) rad, ``ifgday_ix`` (k, 2) 0-based, ``C`` (k, k) rad^2 (already
    regularised). Returns ``ph_uw`` (n_ps, n_image) float32 rad, ``solved`` (n_image,) bool of
    the images with an estimate (master excluded), the design matrix of the solved images and
    ``sm_cov`` (n_image, n_image) rad^2.
    """
    names = names or [f"image {k + 1}" for k in range(n_image)]
    ifgday_ix = np.asarray(ifgday_ix, dtype=np.int64).reshape(-1, 2)
    # StaMPS tests the master against all interferograms, dropped ones included, and then fails
    # with its isolated-subsets error; testing the kept ones gives the clearer message.
    if not np.any(ifgday_ix == master_ix):
        raise StampsError(
            f"none of the unwrapped interferograms include the reference image "
            f"{names[master_ix]}; drop fewer interferograms (drop_ifg_index)"
        )
    G = sb_design_matrix(ifgday_ix, n_image, master_ix)
    solved = np.any(G != 0, axis=0)
    G2 = G[:, solved]
    if np.linalg.matrix_rank(G2) < G2.shape[1]:
        groups = _isolated_subsets(ifgday_ix, n_image, master_ix)
        text = " | ".join(", ".join(names[i] for i in g) for g in groups) or "some"
        what = "a subset" if len(groups) <= 1 else f"{len(groups)} subsets"
        raise StampsError(
            f"SB network is rank deficient: dates {text} form {what} not connected "
            f"to the reference {names[master_ix]}; drop fewer interferograms "
            f"(drop_ifg_index) or add pairs"
        )
    M = lscov_operator(G2, C)
    ph_uw = np.zeros((ph_uw_sb.shape[0], n_image), dtype=np.float32)
    for r0 in range(0, ph_uw_sb.shape[0], _ROW_CHUNK):
        rows = slice(r0, r0 + _ROW_CHUNK)
        ph_uw[rows, solved] = np.asarray(ph_uw_sb[rows], dtype=np.float64) @ M.T
    sm_cov = np.zeros((n_image, n_image))
    sm_cov[np.ix_(solved, solved)] = np.linalg.inv(G2.T @ np.linalg.solve(C, G2))
    return ph_uw, solved, G2, sm_cov


def run(run_dir: str | Path, parms: Mapping[str, Any]) -> Path:
    """sb_invert_uw in ``run_dir``: writes ``phuw2.h5`` and ``phuw_sb_res2.h5``; returns phuw2."""
    log = get_logger()
    t_start = time.perf_counter()
    run_dir = Path(run_dir)
    log.info("Inverting the unwrapped small-baseline interferograms to single master ...")

    ps_path = require(product_path(run_dir, "ps2"), "Step 5")
    sb_path = require(product_path(run_dir, "phuw_sb", 2), "Step 6 (ps_unwrap)")
    ps = load_product(ps_path)
    missing = [k for k in _PS_KEYS if k not in ps]
    if missing:
        raise StampsError(
            f"{ps_path}: has no {', '.join(missing)}; is this a small-baseline run "
            f"(small_baseline_flag 'y' from Step 1 on)?"
        )
    n_ps, n_ifg, n_image = int(ps["n_ps"]), int(ps["n_ifg"]), int(ps["n_image"])
    master_ix = int(ps["master_ix"])
    ifgday_ix = np.asarray(ps["ifgday_ix"], dtype=np.int64).reshape(-1, 2)
    if ifgday_ix.shape[0] != n_ifg:
        raise StampsError(
            f"{ps_path}: ifgday_ix has {ifgday_ix.shape[0]} rows but n_ifg is {n_ifg}"
        )
    names = image_names(ps, n_image)
    drop0 = drop_ifg_index0(parms, n_ifg)
    uii = np.setdiff1d(np.arange(n_ifg), drop0)
    if uii.size == 0:
        raise StampsError("no interferogram left to invert (drop_ifg_index drops them all)")

    rc_path, pm_path = product_path(run_dir, "rc2"), product_path(run_dir, "pm2")
    sb_cov = np.eye(n_ifg)
    cov_source = "identity"
    if pm_path.is_file():
        try:
            with h5py.File(pm_path, "r") as f:
                has_patch = "ph_patch" in f and f["ph_patch"].size > 0
        except OSError as exc:
            raise StampsError(f"{pm_path}: not a readable HDF5 product ({exc})") from None
        if has_patch:
            require(rc_path, "Step 5")
            try:
                with h5py.File(rc_path, "r") as frc, h5py.File(pm_path, "r") as fpm:
                    if "ph_rc" not in frc:
                        raise StampsError(f"{rc_path}: dataset 'ph_rc' missing")
                    for path, ds in ((rc_path, frc["ph_rc"]), (pm_path, fpm["ph_patch"])):
                        if ds.shape != (n_ps, n_ifg):
                            raise StampsError(
                                f"{path}: shape {ds.shape} differs from (n_ps, "
                                f"n_ifg) = ({n_ps}, {n_ifg}) of ps2.h5; run Step 5 "
                                f"again"
                            )
                    cov, n_used = noise_covariance(frc["ph_rc"], fpm["ph_patch"])
            except OSError as exc:
                raise StampsError(f"{rc_path}: not a readable HDF5 product ({exc})") from None
            if n_used < 2:
                log.warning("fewer than 2 PS with a finite noise phase: identity covariance used")
            else:
                sb_cov = cov
                cov_source = f"{rc_path.name} x conj({pm_path.name}) over {n_used} PS"
                if n_used < n_ps:
                    log.warning(
                        "%d PS with a non-finite noise phase left out of sb_cov", n_ps - n_used
                    )
    log.info("interferogram covariance sb_cov from %s", cov_source)

    ph_uw_sb = np.asarray(
        check_rows(sb_path, load_product(sb_path, ["ph_uw"])["ph_uw"], n_ps, "Step 6 (ps_unwrap)")
    )
    if ph_uw_sb.ndim != 2 or ph_uw_sb.shape[1] != n_ifg:
        raise StampsError(
            f"{sb_path}: ph_uw has shape {ph_uw_sb.shape}, expected ({n_ps}, "
            f"{n_ifg}); run Step 6 again"
        )
    ph_uw_sb = np.array(ph_uw_sb[:, uii], dtype=np.float32)
    log.info(
        "read %s, %s: %d PS, %d images, %d of %d interferograms kept",
        ps_path.name,
        sb_path.name,
        n_ps,
        n_image,
        uii.size,
        n_ifg,
    )

    # StaMPS indexes with ps_setref's 0 when ref_radius is -inf and fails; here no reference
    # means the phase is not re-referenced.
    ref_ps = reference_ps_from_parms(ps["lonlat"], ps.get("ll0"), parms)
    if ref_ps is not None:
        ph_uw_sb -= nanmean_rows(ph_uw_sb, ref_ps).astype(np.float32)
        log.info("%d reference PS", ref_ps.size)
    else:
        log.info("no reference area (ref_radius = -inf): phase not re-referenced")

    C, rounds = regularise(sb_cov[np.ix_(uii, uii)])
    if rounds:
        log.info("covariance regularised: %.2f rad^2 added to its diagonal", rounds * RCOND_STEP)
    ph_uw, solved, _, sm_cov = invert_sb(ph_uw_sb, ifgday_ix[uii], n_image, master_ix, C, names)
    del ph_uw_sb
    unsolved = [names[i] for i in np.flatnonzero(~solved) if i != master_ix]
    if unsolved:
        log.warning("images in no kept interferogram (phase left 0): %s", ", ".join(unsolved))

    G = sb_design_matrix(ifgday_ix, n_image, master_ix)
    ph_res = np.empty((n_ps, n_ifg), dtype=np.float32)
    for r0 in range(0, n_ps, _ROW_CHUNK):
        rows = slice(r0, r0 + _ROW_CHUNK)
        ph_res[rows] = np.asarray(ph_uw[rows], dtype=np.float64) @ G.T
    solved[master_ix] = True
    unwrap_ifg_index_sm = np.flatnonzero(solved).astype(np.int64)

    phuw_path = save_product(
        product_path(run_dir, "phuw", 2),
        {"ph_uw": ph_uw, "unwrap_ifg_index_sm": unwrap_ifg_index_sm},
    )
    res_path = save_product(
        product_path(run_dir, "phuw_sb_res", 2),
        {"ph_res": ph_res, "sb_cov": sb_cov, "sm_cov": sm_cov},
    )
    log.info(
        "Step 6 sb_invert_uw: %d of %d images solved for; wrote %s, %s in %.1f s",
        unwrap_ifg_index_sm.size,
        n_image,
        phuw_path.name,
        res_path.name,
        time.perf_counter() - t_start,
    )
    return phuw_path

"""Step 1 (small baselines): the SB workspaces of a patch, as StaMPS ``sb_load_initial_isce``.

Input: ``PATCH_n/pscands.h5`` written by ``prep_isce --small-baseline`` (candidates, geometry,
D_a_sb, no phase), the run's ``small_baselines.list`` and the coregistered SLCs of the ISCE2
stack named in the run's ``metadata.json``. The SLCs are read once per date, only the lines that
hold the patch's candidates, and every pair of the list is formed at the candidates.

Output (see docs/build_sb_phase.md): ``ps1.h5`` (as PS, with n_ifg = number of pairs, bperp per
pair, ifgday, ifgday_ix, ifg_dates), ``ph1.h5`` (pair phase, unit amplitude), ``bp1.h5``,
``da1.h5``, ``hgt1.h5``, ``la1.h5`` and ``inc1.h5`` (when incidence angles were prepared).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io import isce
from stamps_python.io.products import (
    load_product,
    product_attrs,
    product_path,
    require,
    save_product,
    save_product_rows,
)
from stamps_python.io.pscands import PSCANDS, candidate_bperp, step1_layout, step1_vectors
from stamps_python.io.sb_list import read_sb_list
from stamps_python.rundir import read_metadata, sb_list_path
from stamps_python.utils import StampsError, get_logger, peak_memory_mb, progress_bar

# One block of lines of one SLC read at a time, MiB.
READ_BLOCK_MB = 64.0
# Rows of the (n_ps, n_ifg) matrices formed and written at a time.
WRITE_CHUNK = 65536
_MAX_NAMED = 8  # pairs named in one error message


def _pair_columns(dates: Sequence[str], pairs: Sequence[tuple[str, str]], what: str) -> np.ndarray:
    """(n_pairs, 2) 0-based positions of each pair's dates in ``dates``; a missing date errs."""
    pos = {str(d): i for i, d in enumerate(dates)}
    out = np.empty((len(pairs), 2), dtype=np.int64)
    for k, (a, b) in enumerate(pairs):
        for j, date in enumerate((a, b)):
            if date not in pos:
                raise StampsError(f"pair {a} {b}: date {date} is not among the dates of {what}")
            out[k, j] = pos[date]
    return out


def _sb_layout(
    cands: Mapping[str, Any], pairs: Sequence[tuple[str, str]]
) -> tuple[dict[str, Any], np.ndarray]:
    """ps1 of a SB patch, and the pairs' columns in ``cands['dates']`` order.

    ps1 is the PS layout (ascending days, sort order, xy, ...) with the SB meanings of n_ifg,
    bperp (per pair: bperp of the second image minus the first, m), ifgday (datenums),
    ifgday_ix (0-based into ``day``) and ifg_dates.
    """
    if len(pairs) < 1:
        raise StampsError("no small baseline pairs")
    ps1 = step1_layout(cands)
    ifgday_ix = _pair_columns(ps1["dates"], pairs, "the stack")
    bperp_image = np.asarray(ps1["bperp"], dtype=np.float64)
    ps1.update(
        {
            "bperp": bperp_image[ifgday_ix[:, 1]] - bperp_image[ifgday_ix[:, 0]],
            "ifgday": np.asarray(ps1["day"], dtype=np.float64)[ifgday_ix],
            "ifgday_ix": ifgday_ix,
            "ifg_dates": [f"{a}_{b}" for a, b in pairs],
            "n_ifg": len(pairs),
        }
    )
    return ps1, _pair_columns([str(d) for d in cands["dates"]], pairs, "the candidates")


def _ph_rows(
    slc: np.ndarray, ps1: Mapping[str, Any], cols: np.ndarray, start: int, stop: int
) -> np.ndarray:
    """Rows [start, stop) of ph1: SLC(first) x conj(SLC(second)) scaled to unit amplitude."""
    v = np.asarray(slc[ps1["sort_ix"][start:stop]])
    ph = v[:, cols[:, 0]].astype(np.complex128) * np.conj(v[:, cols[:, 1]].astype(np.complex128))
    mag = np.abs(ph)
    np.divide(ph, mag, out=ph, where=mag > 0)
    return ph.astype(np.complex64)


def _bp_rows(
    cands: Mapping[str, Any], ps1: Mapping[str, Any], cols: np.ndarray, start: int, stop: int
) -> np.ndarray:
    """Rows [start, stop) of bperp_mat (m): grid Bperp of the second minus the first image."""
    grid = candidate_bperp(cands, ps1["sort_ix"][start:stop])
    if grid is None:
        return np.repeat(np.asarray(ps1["bperp"], dtype=np.float32)[None, :], stop - start, axis=0)
    dates = [str(d) for d in cands["dates"]]
    full = np.insert(grid, dates.index(str(cands["master_date"])), np.float32(0.0), axis=1)
    return full[:, cols[:, 1]] - full[:, cols[:, 0]]


def _check_values(cands: Mapping[str, Any], values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    shape = (len(np.asarray(cands["ij"]).reshape(-1, 2)), len(cands["dates"]))
    if values.shape != shape:
        raise StampsError(
            f"SLC values have shape {values.shape}; expected {shape} (candidates x dates)"
        )
    return values


def build_sb_step1(
    cands: Mapping[str, Any], pairs: Sequence[tuple[str, str]], phase_by_date: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Build the SB Step-1 workspaces of one patch in memory (see :func:`write_sb_step1`).

    ``cands``: the patch's pscands.h5 content (``ij`` (n, 2) 0-based line/sample, ``lonlat``,
    ``hgt``, ``D_A``, ``la``, optional ``inc``, ``bperp_grids`` or ``bperp_mat``, ``dates``,
    ``master_date``, ``bperp`` per date (m), ``calconst``, ``heading``); ``pairs`` (first,
    second) YYYYMMDD; ``phase_by_date`` (n, n_dates) complex SLC values at the candidates, dates
    in ``cands['dates']`` order. Returns {product: {dataset: value}} for ps1, ph1, bp1, la1,
    (inc1), da1, hgt1.
    """
    values = _check_values(cands, phase_by_date)
    ps1, cols = _sb_layout(cands, pairs)
    n = ps1["n_ps"]
    return {
        "ps1": ps1,
        "ph1": {"ph": _ph_rows(values, ps1, cols, 0, n)},
        "bp1": {"bperp_mat": _bp_rows(cands, ps1, cols, 0, n)},
        **step1_vectors(cands, ps1),
    }


def write_sb_step1(
    patch_dir: str | Path,
    cands: Mapping[str, Any],
    pairs: Sequence[tuple[str, str]],
    slc_values: np.ndarray,
    chunk: int = WRITE_CHUNK,
) -> dict[str, Any]:
    """Write the SB Step-1 workspaces of one patch; the big matrices in blocks of ``chunk`` rows.

    Same content as :func:`build_sb_step1` (``slc_values`` is its ``phase_by_date``). Each
    product is written atomically, ps1.h5 last. Returns ps1.
    """
    patch_dir = Path(patch_dir)
    values = _check_values(cands, slc_values)
    ps1, cols = _sb_layout(cands, pairs)
    n, n_ifg = ps1["n_ps"], ps1["n_ifg"]
    starts = range(0, n, chunk)
    save_product_rows(
        product_path(patch_dir, "ph1"),
        "ph",
        (n, n_ifg),
        np.complex64,
        ((i, _ph_rows(values, ps1, cols, i, min(i + chunk, n))) for i in starts),
    )
    save_product_rows(
        product_path(patch_dir, "bp1"),
        "bperp_mat",
        (n, n_ifg),
        np.float32,
        ((i, _bp_rows(cands, ps1, cols, i, min(i + chunk, n))) for i in starts),
    )
    for name, data in step1_vectors(cands, ps1).items():
        save_product(product_path(patch_dir, name), data)
    save_product(product_path(patch_dir, "ps1"), ps1, attrs={"small_baseline": 1})
    return ps1


def read_candidate_slcs(
    paths: Sequence[Path], ij: np.ndarray, block_mb: float = READ_BLOCK_MB, label: str = "SLCs"
) -> np.ndarray:
    """Complex SLC values at the candidates: (n, len(paths)) complex64, one column per raster.

    ``ij`` (n, 2) 0-based azimuth line and range sample. Each raster is read once, date by date,
    only over the lines from the first to the last candidate line, in blocks of about
    ``block_mb`` MiB (:func:`isce.sample_raster` without the memory map); only the candidates'
    values are kept.
    """
    ij = np.asarray(ij, dtype=np.int64).reshape(-1, 2)
    out = np.zeros((len(ij), len(paths)), dtype=np.complex64)
    if len(ij) == 0:
        return out
    for k, path in enumerate(progress_bar(paths, desc=label, unit="date", leave=False, hide=None)):
        width = isce.raster_shape(path)[1]
        lines = max(1, int(block_mb * 2**20 // (width * 8)))
        out[:, k] = isce.sample_raster(path, ij[:, 0], ij[:, 1], block_rows=lines, mmap=False)
    return out


def _named(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMED])
    return shown + (f" and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else "")


def sb_run_inputs(
    run_dir: str | Path,
) -> tuple[dict[str, Any], list[tuple[str, str]], isce.IsceStack]:
    """Check a small-baseline run directory; return (metadata, pairs, ISCE2 stack).

    Errors (StampsError): not a run of ``prep_isce --small-baseline``; ``small_baselines.list``
    missing or no longer holding the pairs recorded at prep (the candidates were selected on
    those); the stack or one of the SLCs of the pairs missing or of another size.
    """
    run_dir = Path(run_dir)
    meta = read_metadata(run_dir, hint="run prep_isce --small-baseline first")
    sb = meta.get("small_baseline")
    if not isinstance(sb, dict) or "pairs" not in sb:
        raise StampsError(
            f"{run_dir}: not a small-baseline run (prep_isce ran without "
            f"--small-baseline); prepare one with prep_isce --small-baseline"
        )
    list_path = sb_list_path(run_dir, meta)
    if not list_path.is_file():
        raise StampsError(
            f"{list_path}: small baseline list missing (prep_isce used "
            f"{len(sb['pairs'])} pairs from it); restore it, or rerun "
            f"define_sb_pairs and prep_isce --small-baseline"
        )
    pairs = read_sb_list(list_path)
    now = [f"{a}_{b}" for a, b in pairs]
    recorded = [str(p) for p in sb["pairs"]]
    if now != recorded:
        added = [p for p in now if p not in set(recorded)]
        removed = [p for p in recorded if p not in set(now)]
        what = (
            "; ".join(
                part
                for part in (
                    f"added {_named(added)}" if added else "",
                    f"removed {_named(removed)}" if removed else "",
                )
                if part
            )
            or "same pairs in another order"
        )
        raise StampsError(
            f"{list_path}: changed since prep_isce ({what}); the candidates were "
            f"selected on the old pairs: rerun prep_isce --small-baseline"
        )
    merged = Path(meta.get("merged_dir", ""))
    stack = isce.open_stack(merged)
    for date in sorted({d for pair in pairs for d in pair}):
        if date not in stack.slc:
            raise StampsError(
                f"{merged / 'SLC' / date / (date + '.slc.full')}: SLC of {date} missing"
            )
    if (stack.length, stack.width) != (meta.get("length"), meta.get("width")):
        raise StampsError(
            f"{merged}: SLCs are {stack.length}x{stack.width}, the run was "
            f"prepared on {meta.get('length')}x{meta.get('width')}"
        )
    return meta, pairs, stack


def sb_pscands_path(patch_dir: str | Path) -> Path:
    """The patch's pscands.h5, checked to be one of ``prep_isce --small-baseline``."""
    src = require(Path(patch_dir) / PSCANDS, "prep_isce --small-baseline on this run directory")
    if not product_attrs(src).get("small_baseline"):
        raise StampsError(
            f"{src}: PS candidates (prep_isce ran without --small-baseline); "
            f"build_sb_phase needs a small-baseline run"
        )
    return src


def build_patch(
    patch_dir: str | Path,
    pairs: Sequence[tuple[str, str]],
    stack: isce.IsceStack,
    block_mb: float = READ_BLOCK_MB,
) -> dict[str, Any]:
    """Read the SLCs at one patch's candidates and write its SB Step-1 workspaces; returns ps1.

    Only the dates of some pair are read (each once, lines of the candidates only).
    """
    log = get_logger()
    patch_dir = Path(patch_dir)
    start = time.perf_counter()
    src = sb_pscands_path(patch_dir)
    cands = load_product(src)
    dates = [str(d) for d in cands["dates"]]
    cols = _pair_columns(dates, pairs, src.name)
    used = np.unique(cols)
    ij = np.asarray(cands["ij"], dtype=np.int64).reshape(-1, 2)
    values = np.zeros((len(ij), len(dates)), dtype=np.complex64)
    values[:, used] = read_candidate_slcs(
        [stack.slc[dates[i]] for i in used], ij, block_mb, label=f"{patch_dir.name} SLCs"
    )
    t_read = time.perf_counter() - start
    log.info(
        "%s: read %d candidates from %d SLCs (lines %d-%d) in %.1f s",
        patch_dir.name,
        len(ij),
        len(used),
        int(ij[:, 0].min()) if len(ij) else 0,
        int(ij[:, 0].max()) if len(ij) else 0,
        t_read,
    )
    ps1 = write_sb_step1(patch_dir, cands, pairs, values)
    names = ["ps1", "ph1", "bp1", "la1", "da1", "hgt1"] + (["inc1"] if "inc" in cands else [])
    log.info(
        "Step 1 (SB) %s: %d candidates, %d interferograms, %d images (reference %s); wrote "
        "%s in %.1f s (peak memory %.0f MiB)",
        patch_dir.name,
        ps1["n_ps"],
        ps1["n_ifg"],
        ps1["n_image"],
        ps1["master_date"],
        ", ".join(f"{n}.h5" for n in names),
        time.perf_counter() - start - t_read,
        peak_memory_mb(),
    )
    return ps1


def run(patch_dir: str | Path, parms: Mapping[str, Any] | None = None) -> Path:
    """Step 1 for one small-baseline patch: pscands.h5 + the run's pair list + SLCs -> ps1.h5 ...

    The same per-patch builder as ``build_sb_phase``; workspaces that ``build_sb_phase`` already
    wrote from the present pscands.h5 and pairs are kept rather than read from the SLCs again.
    ``parms`` is accepted for the common step interface (Step 1 uses no parameter). Returns the
    ps1.h5 path.
    """
    patch_dir = Path(patch_dir)
    _, pairs, stack = sb_run_inputs(patch_dir.parent)
    if _current(patch_dir, pairs):
        get_logger().info(
            "Step 1 (SB) %s: the workspaces build_sb_phase wrote from the present "
            "pscands.h5 and pairs are kept (run build_sb_phase to rebuild them)",
            patch_dir.name,
        )
    else:
        build_patch(patch_dir, pairs, stack)
    return product_path(patch_dir, "ps1")


def _current(patch_dir: Path, pairs: Sequence[tuple[str, str]]) -> bool:
    """Whether the patch's SB Step-1 workspaces were built after its pscands.h5, on ``pairs``
    (then Step 1 need not read the SLCs again)."""
    ps1_path = product_path(patch_dir, "ps1")
    src = patch_dir / PSCANDS
    names = ("ph1", "bp1", "la1", "da1", "hgt1")
    if (
        not ps1_path.is_file()
        or not src.is_file()
        or not all(product_path(patch_dir, n).is_file() for n in names)
    ):
        return False
    if ps1_path.stat().st_mtime < max(
        src.stat().st_mtime, *(product_path(patch_dir, n).stat().st_mtime for n in names)
    ):
        return False
    built = load_product(ps1_path, ["ifg_dates"])["ifg_dates"]
    return [str(d) for d in built] == [f"{a}_{b}" for a, b in pairs]

"""A whole prep_isce run: the amplitude pass feeding the patch writers, the stack datasets of
``pscands.h5``, the Step-1 workspaces, ``metadata.json``, ``patch.list``, ``calamp.txt`` and
``parms.json``, all built in a staging folder beside the run directory and moved in at the end.

Logging is the caller's: these functions log through :func:`stamps_python.utils.get_logger`
and leave its handlers alone (prep_isce's CLI points them at the run's ``stamps.log``).
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python import __version__, parms, rundir
from stamps_python.io import isce
from stamps_python.io.products import load_product
from stamps_python.io.pscands import PSCANDS
from stamps_python.numerics.amplitude import interferograms, load_kernels
from stamps_python.prep.calamp import calamp_sample, write_calamp
from stamps_python.prep.candidates import candidate_blocks
from stamps_python.prep.geometry import baseline_grid_paths, geometry_readers, load_bperp_grids
from stamps_python.prep.inputs import PrepInputs, PrepOptions, check_inputs, checked_metadata
from stamps_python.prep.patch_writer import PatchWriter, PatchWriters
from stamps_python.steps import ps_load_initial
from stamps_python.utils import StampsError, get_logger, peak_memory_mb


def prepare(merged: str | Path, output: str | Path, **options: Any) -> dict[str, Any]:
    """Prepare run directory ``output`` from ISCE2 ``merged``; returns a summary dict.

    ``options`` are the fields of :class:`PrepOptions` (prep_isce's options). The inputs are
    checked first (:func:`check_inputs`, nothing written on a bad one), then :func:`run_prep`.
    """
    return run_prep(check_inputs(merged, output, PrepOptions(**options)))


def run_prep(inputs: PrepInputs) -> dict[str, Any]:
    """Prepare the run directory of checked ``inputs``; returns a summary dict.

    Everything is built in a staging folder beside the run directory and moved in at the end,
    so a failure leaves it as it was. Rerunning on the same stack and reference date replaces
    the patches and keeps the user's parms.json. With small baselines the candidates are
    selected on the pairs, whose list is copied into the run; pscands.h5 then holds no phase
    (build_sb_phase adds it). The summary: ``output``, ``n_candidates``, ``patches``,
    ``calconst``, ``metadata`` (and ``small_baseline``).
    """
    log = get_logger()
    start = time.perf_counter()
    opts, stack, reference = inputs.options, inputs.stack, inputs.reference
    output, small_baseline, sb = inputs.output, opts.small_baseline, inputs.pairs
    staging = output.parent / f".{output.name}.prep-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # the calamp line sample, the baseline grids, the metadata's raster samples and numba's
    # kernels load in the background, side by side
    background = ThreadPoolExecutor(max_workers=4)
    try:
        window = inputs.window
        sample = background.submit(calamp_sample, stack, opts.direct_io, window)
        # coarse topsStack grids go into pscands.h5 whole (Step 1 interpolates them at the PS)
        # and are only needed after the pass; full-resolution ones are read with the geometry,
        # line block by line block, into bperp_mat per candidate
        grid_paths, full_grids = baseline_grid_paths(stack, reference)
        grids_future = (
            background.submit(load_bperp_grids, grid_paths, stack)
            if grid_paths and not full_grids
            else None
        )
        background.submit(load_kernels, small_baseline)
        meta_future = (
            background.submit(isce.bootstrap_metadata, stack, reference)
            if inputs.meta is None
            else None
        )
        log.info(
            "prep_isce %s: %s, %d dates %s..%s, %d lines x %d samples, reference %s",
            __version__,
            inputs.merged,
            len(stack.dates),
            stack.dates[0],
            stack.dates[-1],
            stack.length,
            stack.width,
            reference,
        )
        if not window.full:
            log.info("crop: %s", window.describe())
        if meta_future is not None:
            # a missing or unreadable XML fails now; the rest of the metadata is read during the
            # pass and checked after it
            isce.read_isce_xml(isce.reference_xml(stack))
        bperp = isce.read_bperp(stack, reference)
        if sb is not None:
            in_pairs = set(sb.index.ravel().tolist())
            unused = [d for i, d in enumerate(stack.dates) if i not in in_pairs]
            log.info(
                "small baselines: %d pairs from %s, D_a_sb threshold %g",
                len(sb.dates),
                sb.path,
                inputs.amp_dispersion,
            )
            if unused:
                log.warning(
                    "%d date(s) in no pair of %s: %s", len(unused), sb.path, ", ".join(unused)
                )

        ref_i = stack.dates.index(reference)
        n_sec = len(stack.dates) - 1
        geo_names, geo_readers = geometry_readers(
            stack, opts.inc_angle, grid_paths if full_grids else ()
        )
        writers = PatchWriters(
            [
                PatchWriter(
                    staging / p.name,
                    p,
                    n_sec,
                    geo_names,
                    n_sec if full_grids else 0,
                    with_phase=not small_baseline,
                )
                for p in inputs.patches
            ],
            ref_i,
        )
        try:
            try:
                calconst, cands = candidate_blocks(
                    stack,
                    inputs.amp_dispersion,
                    staging / "_spill",
                    opts.block_mb,
                    pairs=None if sb is None else sb.index,
                    geometry=geo_readers,
                    sample=sample,
                    on_sure=None if small_baseline else writers.on_sure,
                    on_discard=writers.discard,
                    direct_io=opts.direct_io,
                    window=window,
                )
                writers.wait()
            finally:
                for reader in geo_readers:
                    reader.close()
            after_pass = time.perf_counter()
            meta = (
                dict(inputs.meta)
                if meta_future is None
                else checked_metadata(meta_future.result(), opts)
            )
            grids = None if grids_future is None else grids_future.result()
            n_cand = cands.n_candidates
            for _, rows, cols, d_a, values, geo in cands:
                ifg = None if small_baseline else interferograms(values, ref_i)
                writers.append(rows, cols, d_a, ifg, geo)
            shutil.rmtree(staging / "_spill", ignore_errors=True)
            common = {
                "dates": list(stack.dates),
                "master_date": reference,
                "bperp": np.array([bperp[d] for d in stack.dates]),
                "calconst": calconst,
                "heading": float(meta["heading"]),
                "lambda": float(meta["wavelength"]),
                "image_size": np.array([stack.length, stack.width]),
            }
            if grids is not None:
                common["bperp_grids"] = grids
            patch_names = []
            for writer in writers.writers:
                if not writer.finish(common, cands.sure_d_a):
                    log.warning(
                        "%s has no candidates: left out of %s", writer.patch.name, rundir.PATCH_LIST
                    )
                    continue
                patch_names.append(writer.patch.name)
                log.info(
                    "%s: range %d-%d, azimuth %d-%d: %d candidates",
                    writer.patch.name,
                    *writer.patch.rg,
                    *writer.patch.az,
                    writer.n,
                )
            log.info("candidates finished %.1f s after the pass", time.perf_counter() - after_pass)
        finally:
            writers.close()
        if opts.write_step1:
            for name in patch_names:
                pdir = staging / name
                ps_load_initial.write_step1(pdir, load_product(pdir / PSCANDS))
        if not patch_names:
            where = "" if window.full else f" ({window.describe()})"
            raise StampsError(
                f"no pixel of {inputs.merged}{where} has {'D_a_sb' if small_baseline else 'D_A'}"
                f" < {inputs.amp_dispersion}: no candidates"
            )
        _add_prep_metadata(meta, inputs, n_cand, bperp, calconst, grid_paths is not None)
        if sb is not None:
            (staging / rundir.SB_LIST).write_bytes(sb.data)
        rundir.write_metadata(staging, meta)
        rundir.write_patch_list(staging, patch_names)
        write_calamp(staging, stack, calconst)
        values = {"lambda": float(meta["wavelength"]), "heading": float(meta["heading"])}
        if not (output / parms.PARMS_FILE).is_file():
            parms.write_parms(staging, small_baseline=small_baseline, overrides=values)
        log.info(
            "prep_isce wrote %d patches, %d candidates in %.1f s (peak memory %.0f MiB)",
            len(patch_names),
            n_cand,
            time.perf_counter() - start,
            peak_memory_mb(),
        )
    except BaseException:
        background.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    background.shutdown(wait=True)
    _commit(staging, output, patch_names)
    if (output / parms.PARMS_FILE).is_file():
        for name, value in values.items():
            parms.set_parm(output, name, value)
    log.info("run directory: %s", output)
    summary = {
        "output": output,
        "n_candidates": n_cand,
        "patches": patch_names,
        "calconst": calconst,
        "metadata": meta,
    }
    if small_baseline:
        summary["small_baseline"] = meta["small_baseline"]
    return summary


def _add_prep_metadata(
    meta: dict[str, Any],
    inputs: PrepInputs,
    n_cand: int,
    bperp: dict[str, float],
    calconst: np.ndarray,
    bperp_grids: bool,
) -> None:
    """What metadata.json records of the run: the options, the candidate count, Bperp (m) and
    the calamp constants per date, and the pairs of a small-baseline run."""
    opts, dates = inputs.options, inputs.stack.dates
    meta.update(
        {
            "prep": {
                "amp_dispersion": inputs.amp_dispersion,
                "range_patches": opts.range_patches,
                "azimuth_patches": opts.azimuth_patches,
                "range_overlap": opts.range_overlap,
                "azimuth_overlap": opts.azimuth_overlap,
                "n_candidates": n_cand,
                "inc_angle": opts.inc_angle,
                "bperp_grids": bperp_grids,
                "stamps_python_version": __version__,
            },
            "bperp": {d: bperp[d] for d in dates},
            "calconst": dict(zip(dates, map(float, calconst))),
        }
    )
    if inputs.window.full:
        meta.pop("crop", None)
    else:
        meta["crop"] = inputs.window.metadata()
    if inputs.pairs is not None:
        meta["small_baseline"] = {
            "list": rundir.SB_LIST,
            "n_pairs": len(inputs.pairs.dates),
            "amp_dispersion": inputs.amp_dispersion,
            "source": str(inputs.pairs.path.resolve()),
            "pairs": [f"{a}_{b}" for a, b in inputs.pairs.dates],
        }


def _commit(staging: Path, output: Path, patch_names: list[str]) -> None:
    """Move the staged run into ``output``, keeping a user's parms.json/localparms.json and
    the run's log."""
    if not output.exists():
        os.replace(staging, output)
        return
    for old in rundir.patch_folders(output):
        if old.name not in patch_names:
            shutil.rmtree(old)
    for stale in output.glob("*.h5"):
        stale.unlink()
    for item in staging.iterdir():
        target = output / item.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    shutil.rmtree(staging, ignore_errors=True)

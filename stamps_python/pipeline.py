"""The order of a StaMPS run, as MATLAB ``stamps(start, end)``: Steps 1-5 patch by patch, the
merge, Steps 6-8 on the merged workspaces.

Steps 1 to 5a (ps_correct_phase) of the patches are independent: with an executor
(:mod:`stamps_python.parallel`) each patch runs them in a worker, one task per (patch, step),
while the driver shows one progress bar and every patch's log lines prefixed with its name.
The merge (5b), ps_calc_ifg_std and Steps 6-8 run in the driver; Step 6 hands its snaphu
calls to the same executor.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import resource
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python import __version__
from stamps_python.io.products import load_product, product_path
from stamps_python.parallel import ParallelOptions, open_executor, prepare_worker
from stamps_python.parms import flag, load_parms
from stamps_python.rundir import select_patches
from stamps_python.steps import (
    ps_calc_ifg_std,
    ps_calc_scla,
    ps_correct_phase,
    ps_est_gamma,
    ps_est_gamma_quick,
    ps_load_initial,
    ps_merge_patches,
    ps_scn_filt,
    ps_scn_filt_krig,
    ps_select,
    ps_smooth_scla,
    ps_unwrap,
    ps_weed,
    sb_invert_uw,
    sb_load_initial,
)
from stamps_python.utils import LOGGER_NAME, StampsError, get_logger, peak_memory_mb, progress_bar

STEP_NAMES = {
    1: "load initial (ps_load_initial_isce; sb_load_initial_isce for small baselines)",
    2: "estimate gamma (ps_est_gamma_quick; ps_est_gamma if quick_est_gamma_flag is 'n')",
    3: "select PS (ps_select)",
    4: "weed PS (ps_weed)",
    5: "correct phase, merge patches, ifg std "
    "(ps_correct_phase, ps_merge_patches, ps_calc_ifg_std)",
    6: "unwrap (ps_unwrap; sb_invert_uw for small baselines)",
    7: "spatially correlated look angle error (ps_calc_scla, ps_smooth_scla)",
    8: "spatially correlated noise (ps_scn_filt; ps_scn_filt_krig if scn_kriging_flag is 'y')",
}
# The workspace each per-patch step needs, and the step that writes it.
PATCH_PREREQ = {
    1: ("pscands", "prep_isce"),
    2: ("ps1", "Step 1"),
    3: ("pm1", "Step 2"),
    4: ("select1", "Step 3"),
    5: ("ps2", "Step 4"),
}


NO_PS_MARKER = "no_ps_left"  # holds the step after which a patch had no PS (StaMPS no_ps_info)


class NoPSLeft(StampsError):
    """A patch has no PS left after a step; it is left out of the later steps and the merge."""


def _remove_stale_temporaries(dirs: Sequence[Path]) -> None:
    """Delete half-written products (``.NAME.tmp-PID``) left by an interrupted earlier run."""
    for d in dirs:
        for tmp in d.glob(".*.tmp-*"):
            if tmp.is_file():
                tmp.unlink()
                get_logger().info("removed %s left by an interrupted run", tmp)


def _check_prereq(step: int, patch_dir: Path) -> None:
    name, writer = PATCH_PREREQ[step]
    path = patch_dir / f"{name}.h5"
    if not path.is_file():
        raise StampsError(f"Step {step} needs {path}: run {writer} first")


def _run_patch_step(step: int, patch_dir: Path, parms: dict[str, Any]) -> None:
    small_baseline = flag(parms, "small_baseline_flag")
    runners: dict[int, Callable[[Path, dict[str, Any]], Any]] = {
        1: sb_load_initial.run if small_baseline else ps_load_initial.run,
        2: ps_est_gamma_quick.run if flag(parms, "quick_est_gamma_flag") else ps_est_gamma.run,
        3: ps_select.run,
        4: ps_weed.run,
        5: ps_correct_phase.run,
    }
    _check_prereq(step, patch_dir)
    runners[step](patch_dir, parms)
    n_ps = _n_ps_after(step, patch_dir)
    if n_ps == 0:
        raise NoPSLeft(f"{patch_dir.name}: no PS left after Step {step}")


def _n_ps_after(step: int, patch_dir: Path) -> int | None:
    """Number of PS a patch holds after ``step`` (None when the step does not change it)."""
    if step == 3:
        keep = load_product(product_path(patch_dir, "select1"), ["keep_ix"])["keep_ix"]
        return int(np.count_nonzero(keep))
    if step == 4:
        return int(load_product(product_path(patch_dir, "ps2"), ["n_ps"])["n_ps"])
    return None


def _run_merged_step(
    step: int,
    run_dir: Path,
    parms: dict[str, Any],
    executor: cf.Executor | None = None,
    n_workers: int = 1,
    n_threads: int = 1,
) -> None:
    """Steps 6-8 on the merged workspaces, in the order stamps.m calls them; Step 6's snaphu
    calls go to ``executor`` when there is one, its loops over PS run on ``n_threads``."""
    small_baseline = flag(parms, "small_baseline_flag")
    if step == 6:
        ps_unwrap.run(run_dir, parms, executor=executor, n_workers=n_workers, n_threads=n_threads)
        if small_baseline:
            sb_invert_uw.run(run_dir, parms)
    elif step == 7:
        if small_baseline:
            ps_calc_scla.run(run_dir, parms, use_small_baselines=True, coest_mean_vel=True)
            ps_smooth_scla.run(run_dir, parms, use_small_baselines=True)
            ps_calc_scla.run(
                run_dir, load_parms(run_dir), use_small_baselines=False, coest_mean_vel=True
            )
        else:
            ps_calc_scla.run(run_dir, parms, use_small_baselines=False, coest_mean_vel=True)
            ps_smooth_scla.run(run_dir, parms)
    elif step == 8:
        (ps_scn_filt_krig if flag(parms, "scn_kriging_flag") else ps_scn_filt).run(run_dir, parms)


@dataclass
class PatchStepReport:
    """What one (patch, step) task did, returned by a worker to the driver."""

    patch: str
    step: int
    status: str  # 'done', 'emptied' (no PS left: the patch leaves the run) or 'skipped'
    seconds: float = 0.0
    worker: str = ""
    peak_mb: float = 0.0
    records: list[tuple[int, str]] = field(default_factory=list)


class _Capture(logging.Handler):
    """Keeps the (level, message) of every record, for the driver to show."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.getMessage()))


def _patch_step(step: int, patch_dir: Path) -> str:
    """Run ``step`` (1-5a) in one patch, honouring and writing its no-PS-left marker."""
    log = get_logger()
    marker = patch_dir / NO_PS_MARKER
    if marker.is_file():
        emptied = int(marker.read_text().split()[0])
        if emptied < step:
            log.info("%s: no PS left after Step %d; skipped", patch_dir.name, emptied)
            return "skipped"
        marker.unlink()
    parms = load_parms(patch_dir)
    log.info("Directory is %s", patch_dir.name)
    try:
        _run_patch_step(step, patch_dir, parms)
    except NoPSLeft as exc:
        log.warning("%s; %s is left out of the later steps", exc, patch_dir.name)
        marker.write_text(f"{step}\n")
        return "emptied"
    return "done"


def patch_step_task(patch_dir: str, step: int, verbose: bool = False) -> PatchStepReport:
    """Worker task: ``step`` of one patch, its log records captured for the driver."""
    prepare_worker()
    log = logging.getLogger(LOGGER_NAME)
    capture = _Capture()
    old = (log.level, log.propagate, list(log.handlers))
    for handler in old[2]:
        log.removeHandler(handler)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    log.addHandler(capture)
    t0 = time.perf_counter()
    try:
        status = _patch_step(step, Path(patch_dir))
    finally:
        log.removeHandler(capture)
        log.setLevel(old[0])
        log.propagate = old[1]
        for handler in old[2]:
            log.addHandler(handler)
    return PatchStepReport(
        patch=Path(patch_dir).name,
        step=step,
        status=status,
        seconds=time.perf_counter() - t0,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        records=capture.records,
    )


def _patch_steps_parallel(
    executor: cf.Executor,
    patch_dirs: Sequence[Path],
    steps: Sequence[int],
    verbose: bool,
    timings: dict[str, Any],
) -> list[Path]:
    """Steps ``steps`` of every patch through ``executor``, one task per (patch, step); returns
    the patches that still hold PS. A failing task stops the run with its patch's name."""

    log = get_logger()
    active = {p.name: p for p in patch_dirs}
    worker_peak: dict[str, float] = timings.setdefault("worker_peak_mb", {})
    pending: dict[cf.Future, tuple[Path, int]] = {}

    def submit(patch_dir: Path, k: int) -> None:
        pending[executor.submit(patch_step_task, str(patch_dir), steps[k], verbose)] = (
            patch_dir,
            k,
        )

    for patch_dir in patch_dirs:
        submit(patch_dir, 0)
    bar = progress_bar(
        total=len(patch_dirs) * len(steps), desc="patch steps", unit="step", hide=None
    )
    try:
        while pending:
            done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for future in done:
                patch_dir, k = pending.pop(future)
                try:
                    report = future.result()
                except Exception as exc:  # noqa: BLE001 - any failure stops the run, named
                    message = str(exc) if isinstance(exc, StampsError) else repr(exc)
                    raise StampsError(
                        f"{patch_dir.name}: Step {steps[k]} failed: {message}"
                    ) from None
                for level, text in report.records:
                    log.log(level, "[%s] %s", report.patch, text)
                key = f"step{report.step}"
                timings[key] = timings.get(key, 0.0) + report.seconds
                worker_peak[report.worker] = max(
                    worker_peak.get(report.worker, 0.0), report.peak_mb
                )
                if report.status == "done" and k + 1 < len(steps):
                    submit(patch_dir, k + 1)
                    bar.update(1)
                else:
                    if report.status != "done":
                        active.pop(patch_dir.name, None)
                    bar.update(len(steps) - k)
    finally:
        for future in pending:
            future.cancel()
        bar.close()
    return [p for p in patch_dirs if p.name in active]


def _patch_steps_serial(
    patch_dirs: Sequence[Path], steps: Sequence[int], timings: dict[str, Any]
) -> list[Path]:
    """Steps ``steps`` of every patch in this process, step by step as stamps.m; returns the
    patches that still hold PS."""
    log = get_logger()
    active = list(patch_dirs)
    for step in steps:
        log.info("########## Step %d: %s ##########", step, STEP_NAMES[step])
        t0 = time.perf_counter()
        for patch_dir in list(active):
            if _patch_step(step, patch_dir) != "done":
                active.remove(patch_dir)
        timings[f"step{step}"] = time.perf_counter() - t0
        if step < 5:
            _log_step_done(step, timings)
    return active


def _log_step_done(step: int, timings: dict[str, Any]) -> None:
    get_logger().info(
        "Step %d done in %.1f s (peak memory %.0f MiB)",
        step,
        timings[f"step{step}"],
        peak_memory_mb(),
    )


def run_steps(
    run_dir: str | Path,
    start: int = 1,
    end: int = 8,
    patches: Sequence[str] | None = None,
    parallel: ParallelOptions | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run StaMPS steps ``start``..``end`` in ``run_dir``; returns per-step timings (s).

    ``parallel`` says where the patches of Steps 1-5a and Step 6's snaphu calls run (default:
    the run's ``n_cores`` local processes; 1 is serial). With it, the per-step times are the
    sums over the patches' tasks and ``patch_wall`` is the wall time of Steps 1-5a.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: run directory not found (create it with prep_isce)")
    if not 1 <= start <= 8 or not 1 <= end <= 8:
        raise StampsError(f"--start/--end: {start}/{end} outside 1..8")
    if start > end:
        raise StampsError(f"--start {start} is after --end {end}")
    parallel = (parallel or ParallelOptions()).for_run(run_dir)
    parallel.check()
    log = get_logger()
    log.info("#" * 40)
    log.info("stamps_python %s: steps %d to %d in %s", __version__, start, end, run_dir)
    timings: dict[str, Any] = {}
    patch_dirs = select_patches(run_dir, patches)
    _remove_stale_temporaries([run_dir, *patch_dirs])
    patch_steps = list(range(start, min(end, 5) + 1))
    needs_executor = bool(patch_steps) or start <= 6 <= end
    with (
        open_executor(parallel if needs_executor else ParallelOptions(), run_dir) as executor,
        contextlib.ExitStack() as threads,
    ):
        if patch_steps:
            t0 = time.perf_counter()
            if executor is None:
                active = _patch_steps_serial(patch_dirs, patch_steps, timings)
            else:
                log.info(
                    "########## Steps %d-%d of %d patches in parallel ##########",
                    patch_steps[0],
                    patch_steps[-1],
                    len(patch_dirs),
                )
                active = _patch_steps_parallel(executor, patch_dirs, patch_steps, verbose, timings)
            timings["patch_wall"] = time.perf_counter() - t0
            if 5 in patch_steps:
                t5 = time.perf_counter()
                if not active:
                    raise StampsError("no patch has PS left after Step 4: nothing to merge")
                parms = load_parms(run_dir)
                ps_merge_patches.run(run_dir, parms, active)
                ps_calc_ifg_std.run(run_dir, parms)
                timings["step5"] = timings.get("step5", 0.0) + time.perf_counter() - t5
                _log_step_done(5, timings)
            elif executor is not None:
                log.info(
                    "Steps %d-%d done in %.1f s",
                    patch_steps[0],
                    patch_steps[-1],
                    timings["patch_wall"],
                )
        # Step 6's snaphu calls: on Dask as they are; for local processes (n_cores) a pool of
        # as many threads, each waiting on its own snaphu process (no arrays copied to workers)
        snaphu_pool, n_snaphu = executor, parallel.n_workers
        if isinstance(executor, cf.ProcessPoolExecutor):
            snaphu_pool = threads.enter_context(cf.ThreadPoolExecutor(parallel.n_cores))
            n_snaphu = parallel.n_cores
        for step in range(max(start, 6), end + 1):
            log.info("########## Step %d: %s ##########", step, STEP_NAMES[step])
            t0 = time.perf_counter()
            _run_merged_step(
                step, run_dir, load_parms(run_dir), snaphu_pool, n_snaphu, parallel.driver_threads
            )
            timings[f"step{step}"] = time.perf_counter() - t0
            _log_step_done(step, timings)
    return timings

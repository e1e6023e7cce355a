"""stamps_main: run StaMPS steps START..END on a run directory, as MATLAB ``stamps(start, end)``.

Steps 1-5 run per patch (``patch.list``, or ``--patches``); Step 5 then merges the patches and
estimates the interferogram noise; Steps 6-8 run on the merged workspaces. Parameters are read
from ``parms.json`` / ``localparms.json`` before every step, so edits between runs take effect.
A step whose inputs are missing says which step to run first.

    stamps_main --start 1 --end 5 runs/myarea

(``--config RUN``, the older spelling, still works.)
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python import __version__
from stamps_python.io.products import load_product, product_path
from stamps_python.parms import flag, load_parms
from stamps_python.rundir import select_patches
from stamps_python.steps import (
    ps_calc_ifg_std,
    ps_calc_scla,
    ps_correct_phase,
    ps_est_gamma_quick,
    ps_load_initial,
    ps_merge_patches,
    ps_scn_filt,
    ps_select,
    ps_smooth_scla,
    ps_unwrap,
    ps_weed,
    sb_invert_uw,
    sb_load_initial,
)
from stamps_python.utils import (
    HelpFormatter,
    StampsError,
    add_run_argument,
    get_logger,
    peak_memory_mb,
    run_argument,
    run_cli,
    setup_logging,
)

STEP_NAMES = {
    1: "load initial (ps_load_initial_isce; sb_load_initial_isce for small baselines)",
    2: "estimate gamma (ps_est_gamma_quick)",
    3: "select PS (ps_select)",
    4: "weed PS (ps_weed)",
    5: "correct phase, merge patches, ifg std "
    "(ps_correct_phase, ps_merge_patches, ps_calc_ifg_std)",
    6: "unwrap (ps_unwrap; sb_invert_uw for small baselines)",
    7: "spatially correlated look angle error (ps_calc_scla, ps_smooth_scla)",
    8: "spatially correlated noise (ps_scn_filt)",
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
        2: ps_est_gamma_quick.run,
        3: ps_select.run,
        4: ps_weed.run,
        5: ps_correct_phase.run,
    }
    _check_prereq(step, patch_dir)
    if step == 2 and str(parms.get("quick_est_gamma_flag", "y")).lower() != "y":
        raise StampsError(
            "quick_est_gamma_flag = 'n' (the slow ps_est_gamma) is not supported; "
            "set it to 'y' (the StaMPS default)"
        )
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


def _run_merged_step(step: int, run_dir: Path, parms: dict[str, Any]) -> None:
    """Steps 6-8 on the merged workspaces, in the order stamps.m calls them."""
    small_baseline = flag(parms, "small_baseline_flag")
    if step == 6:
        ps_unwrap.run(run_dir, parms)
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
        if str(parms.get("scn_kriging_flag", "n")).lower() == "y":
            raise StampsError(
                "scn_kriging_flag = 'y' (ps_scn_filt_krig) is not supported; set it "
                "to 'n' (the StaMPS default)"
            )
        ps_scn_filt.run(run_dir, parms)


def run_steps(
    run_dir: str | Path, start: int = 1, end: int = 8, patches: Sequence[str] | None = None
) -> dict[str, Any]:
    """Run StaMPS steps ``start``..``end`` in ``run_dir``; returns per-step timings (s)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: run directory not found (create it with prep_isce)")
    if not 1 <= start <= 8 or not 1 <= end <= 8:
        raise StampsError(f"--start/--end: {start}/{end} outside 1..8")
    if start > end:
        raise StampsError(f"--start {start} is after --end {end}")
    log = get_logger()
    log.info("#" * 40)
    log.info("stamps_python %s: steps %d to %d in %s", __version__, start, end, run_dir)
    timings: dict[str, float] = {}
    patch_dirs = select_patches(run_dir, patches)
    _remove_stale_temporaries([run_dir, *patch_dirs])
    active = list(patch_dirs)
    for step in range(start, min(end, 5) + 1):
        log.info("########## Step %d: %s ##########", step, STEP_NAMES[step])
        t0 = time.perf_counter()
        for patch_dir in list(active):
            marker = patch_dir / NO_PS_MARKER
            if marker.is_file():
                emptied = int(marker.read_text().split()[0])
                if emptied < step:
                    log.info("%s: no PS left after Step %d; skipped", patch_dir.name, emptied)
                    active.remove(patch_dir)
                    continue
                marker.unlink()
            parms = load_parms(patch_dir)
            log.info("Directory is %s", patch_dir.name)
            try:
                _run_patch_step(step, patch_dir, parms)
            except NoPSLeft as exc:
                log.warning("%s; %s is left out of the later steps", exc, patch_dir.name)
                marker.write_text(f"{step}\n")
                active.remove(patch_dir)
        if step == 5:
            if not active:
                raise StampsError("no patch has PS left after Step 4: nothing to merge")
            parms = load_parms(run_dir)
            ps_merge_patches.run(run_dir, parms, active)
            ps_calc_ifg_std.run(run_dir, parms)
        timings[f"step{step}"] = time.perf_counter() - t0
        log.info(
            "Step %d done in %.1f s (peak memory %.0f MiB)",
            step,
            timings[f"step{step}"],
            peak_memory_mb(),
        )
    for step in range(max(start, 6), end + 1):
        log.info("########## Step %d: %s ##########", step, STEP_NAMES[step])
        t0 = time.perf_counter()
        _run_merged_step(step, run_dir, load_parms(run_dir))
        timings[f"step{step}"] = time.perf_counter() - t0
        log.info(
            "Step %d done in %.1f s (peak memory %.0f MiB)",
            step,
            timings[f"step{step}"],
            peak_memory_mb(),
        )
    return timings


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of stamps_main."""
    p = argparse.ArgumentParser(
        prog="stamps_main", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("--start", type=int, default=1, help="first step (1..8)")
    p.add_argument("--end", type=int, default=8, help="last step (1..8)")
    add_run_argument(p, "run directory made by prep_isce", aliases=["--config"], default=".")
    p.add_argument("--patches", nargs="+", help="patch folders to process (default: patch.list)")
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run stamps_main with command-line arguments ``argv``."""
    args = build_parser().parse_intermixed_args(argv)
    run_dir = run_argument(args)
    setup_logging(run_dir if run_dir.is_dir() else None, verbose=args.verbose)
    try:
        run_steps(run_dir, args.start, args.end, args.patches)
        get_logger().info("stamps_main finished")
    finally:
        setup_logging(None, verbose=args.verbose)
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

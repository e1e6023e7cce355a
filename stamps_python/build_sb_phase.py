"""build_sb_phase: the small-baseline interferograms and Step-1 workspaces of a prepared run.

After ``prep_isce --small-baseline`` (which selects the candidates on the pairs of
``small_baselines.list`` but extracts no phase), this reads, for each patch, every SLC of the
pairs once (only the lines holding the patch's candidates), forms SLC(first) x conj(SLC(second))
at the candidates for every pair, and writes the SB Step-1 workspaces (ps1.h5, ph1.h5, bp1.h5,
da1.h5, hgt1.h5, la1.h5, inc1.h5) as StaMPS ``sb_load_initial_isce``. A rerun replaces them.

Usage::

    build_sb_phase RUN [--patches PATCH_1 PATCH_2]
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from stamps_python import __version__
from stamps_python.rundir import select_patches
from stamps_python.steps import sb_load_initial
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


def build_sb_phase(
    run_dir: str | Path,
    patches: Sequence[str] | None = None,
    block_mb: float = sb_load_initial.READ_BLOCK_MB,
) -> dict[str, dict]:
    """Write the SB Step-1 workspaces of the run's patches (all of patch.list, or ``patches``).

    Returns {patch name: ps1}. Errors (StampsError, nothing written): not a run of
    ``prep_isce --small-baseline``, ``small_baselines.list`` missing or changed since prep, an
    SLC of the pairs missing, an unknown patch.
    """
    run_dir = Path(run_dir)
    if block_mb <= 0:
        raise StampsError(f"--block-mb: {block_mb} must be positive")
    log = get_logger()
    start = time.perf_counter()
    _, pairs, stack = sb_load_initial.sb_run_inputs(run_dir)
    patch_dirs = select_patches(run_dir, patches)
    for patch_dir in patch_dirs:
        sb_load_initial.sb_pscands_path(patch_dir)
    log.info(
        "build_sb_phase %s: %s, %d pairs, %d patch(es), SLCs from %s",
        __version__,
        run_dir,
        len(pairs),
        len(patch_dirs),
        stack.merged,
    )
    out = {}
    for patch_dir in patch_dirs:
        out[patch_dir.name] = sb_load_initial.build_patch(patch_dir, pairs, stack, block_mb)
    log.info(
        "build_sb_phase wrote %d patch(es) in %.1f s (peak memory %.0f MiB)",
        len(patch_dirs),
        time.perf_counter() - start,
        peak_memory_mb(),
    )
    return out


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of build_sb_phase."""
    p = argparse.ArgumentParser(
        prog="build_sb_phase", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    add_run_argument(p, "run directory prepared by prep_isce --small-baseline")
    p.add_argument(
        "--patches",
        nargs="+",
        metavar="PATCH",
        help="only these patches (names as in patch.list); default: all",
    )
    p.add_argument(
        "--block-mb",
        type=float,
        default=sb_load_initial.READ_BLOCK_MB,
        help="lines of one SLC read at a time, MiB",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run build_sb_phase with command-line arguments ``argv``."""
    args = build_parser().parse_intermixed_args(argv)
    run_dir = run_argument(args)
    if not run_dir.is_dir():
        setup_logging(None, verbose=args.verbose)
        raise StampsError(f"{run_dir}: no such run directory")
    setup_logging(run_dir, verbose=args.verbose)
    try:
        build_sb_phase(run_dir, args.patches, args.block_mb)
    finally:
        setup_logging(None, verbose=args.verbose)
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

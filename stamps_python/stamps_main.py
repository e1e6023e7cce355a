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
from collections.abc import Sequence
from pathlib import Path

from stamps_python.parallel import CLUSTER_KINDS, ParallelOptions
from stamps_python.pipeline import run_steps
from stamps_python.utils import (
    HelpFormatter,
    add_run_argument,
    get_logger,
    run_argument,
    run_cli,
    setup_logging,
)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of stamps_main."""
    p = argparse.ArgumentParser(
        prog="stamps_main", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("--start", type=int, default=1, help="first step (1..8)")
    p.add_argument("--end", type=int, default=8, help="last step (1..8)")
    add_run_argument(p, "run directory made by prep_isce", aliases=["--config"], default=".")
    p.add_argument("--patches", nargs="+", help="patch folders to process (default: patch.list)")
    g = p.add_argument_group(
        "parallel processing",
        "Steps 1-5a run patch by patch in workers and Step 6's snaphu calls side by side; the "
        "merge and Steps 7-8 run here. Products are identical to a serial run (docs/parallel.md).",
    )
    g.add_argument(
        "--n-cores",
        type=int,
        help="local worker processes (default: the run's n_cores parameter, 1 = serial)",
    )
    g.add_argument(
        "--cluster",
        choices=CLUSTER_KINDS,
        help="start a Dask cluster: local processes, or SLURM / PBS jobs (dask-jobqueue) "
        "(default: none)",
    )
    g.add_argument(
        "--num-workers",
        type=int,
        help="Dask workers to start with --cluster (default: --n-cores, at least 2)",
    )
    g.add_argument(
        "--cluster-config",
        type=Path,
        metavar="YAML",
        help="dask-jobqueue options for --cluster slurm/pbs: queue, walltime, memory, cores, "
        "... (default: Dask's ~/.config/dask/jobqueue.yaml)",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="use the Dask scheduler at ADDRESS, e.g. tcp://head:8786 (default: none)",
    )
    g.add_argument(
        "--scheduler-file",
        type=Path,
        metavar="FILE",
        help="use the Dask scheduler described in FILE (dask scheduler --scheduler-file) "
        "(default: none)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def parallel_options(args: argparse.Namespace) -> ParallelOptions:
    """Where to run, from the command line (``n_cores`` None: the run's parameter)."""
    options = ParallelOptions(
        n_cores=args.n_cores,
        cluster=args.cluster,
        num_workers=args.num_workers,
        cluster_config=args.cluster_config,
        scheduler=args.scheduler,
        scheduler_file=args.scheduler_file,
    )
    options.check()
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Run stamps_main with command-line arguments ``argv``."""
    args = build_parser().parse_intermixed_args(argv)
    run_dir = run_argument(args)
    setup_logging(run_dir if run_dir.is_dir() else None, verbose=args.verbose)
    try:
        options = parallel_options(args)
        run_steps(run_dir, args.start, args.end, args.patches, options, args.verbose)
        get_logger().info("stamps_main finished")
    finally:
        setup_logging(None, verbose=args.verbose)
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

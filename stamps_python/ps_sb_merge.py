"""ps_sb_merge: combine a PS run and a Small Baseline run of one stack into a MERGED run.

Both runs must have run Steps 1-5 on the same stack with the same reference date. The PS
pixels are turned into the SB run's pairs; pixels in both runs are combined with SNR weights,
PS pixels on no SB point are kept when their would-be SB coherence exceeds the smallest SB
coherence (StaMPS ``ps_sb_merge``). MERGED then runs Steps 6-8 and the export as an SB run.

Usage::

    ps_sb_merge PS_RUN SB_RUN --output MERGED_RUN
    stamps_main --start 6 --end 8 MERGED_RUN
    export_results MERGED_RUN --output-dir MERGED_RUN/export --correction v-do
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
from collections.abc import Sequence
from pathlib import Path

from stamps_python.steps.ps_sb_merge import check_output, ps_sb_merge
from stamps_python.utils import (
    HelpFormatter,
    get_logger,
    peak_memory_mb,
    run_cli,
    setup_logging,
)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ps_sb_merge."""
    p = argparse.ArgumentParser(
        prog="ps_sb_merge", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("ps_run", metavar="PS_RUN", help="PS run directory after Step 5")
    p.add_argument("sb_run", metavar="SB_RUN", help="small-baseline run directory after Step 5")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="MERGED_RUN",
        help="the MERGED run directory to write (new, empty or an earlier ps_sb_merge output)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ps_sb_merge with command-line arguments ``argv``."""
    args = build_parser().parse_intermixed_args(argv)
    merged = Path(args.output)
    setup_logging(None, verbose=args.verbose)
    check_output(merged, Path(args.ps_run), Path(args.sb_run))  # before the log goes there
    setup_logging(merged, verbose=args.verbose)
    try:
        ps_sb_merge(args.ps_run, args.sb_run, merged)
        get_logger().info("peak memory %.0f MiB", peak_memory_mb())
    finally:
        setup_logging(None, verbose=args.verbose)
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

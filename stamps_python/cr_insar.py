"""cr_insar: corner-reflector InSAR without unwrapping (Fan, Wang, Zhang, Zheng 2015).

For each corner reflector (CR) of a CSV list, the sub-pixel position and signal-to-clutter ratio
are measured on the oversampled SLC amplitude; the LOS velocity and DEM error relative to the
reference CR are found by maximising the temporal coherence of the pair phases over a
(v, dh) grid refined locally (no unwrapping); the residual phase gives the nonlinear motion per
date by least squares on the pair network. Two baselines are reported beside it: least squares
on phase unwrapped in time, and the 2-D periodogram with a temporal low-pass filter. See
docs/cr_insar.md.

Usage::

    cr_insar STACK/merged --cr-list corner_reflectors.csv --output OUTDIR \\
        [--network single|all|sb] [--sb-list small_baselines.list] [--v-range -100 100] ...
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
from collections.abc import Sequence
from pathlib import Path

from stamps_python import __version__
from stamps_python.cr.run import CrOptions, run_cr_insar
from stamps_python.utils import (
    HelpFormatter,
    StampsError,
    check_output_dir,
    get_logger,
    run_cli,
    setup_logging,
)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one-line StampsErrors (exit 1)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise StampsError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of cr_insar."""
    d = CrOptions()
    p = _Parser(
        prog="cr_insar", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument(
        "stack",
        metavar="STACK",
        help="ISCE2 topsStack merged/ folder (or its parent, or a prep_isce run)",
    )
    p.add_argument(
        "--cr-list",
        required=True,
        metavar="CSV",
        help="CRs: name, lon, lat (or line, sample), reference (1 on the stable CR), "
        "optional height",
    )
    p.add_argument("--output", required=True, metavar="OUTDIR", help="folder for the outputs")
    p.add_argument(
        "--network",
        choices=("single", "all", "sb"),
        default=d.network,
        help="interferogram network: single reference, all pairs, or small_baselines.list",
    )
    p.add_argument(
        "--sb-list",
        type=Path,
        metavar="FILE",
        help="small_baselines.list for --network sb (default: the run's)",
    )
    p.add_argument(
        "--reference-date",
        metavar="YYYYMMDD",
        help="time-series reference date (default: the stack's)",
    )
    p.add_argument(
        "--reference-cr",
        metavar="NAME",
        help="the stable reference CR (default: the row with reference = 1)",
    )
    p.add_argument(
        "--v-range",
        type=float,
        nargs=2,
        default=d.v_range,
        metavar=("MIN", "MAX"),
        help="LOS velocity search range, mm/yr",
    )
    p.add_argument(
        "--dh-range",
        type=float,
        nargs=2,
        default=d.dh_range,
        metavar=("MIN", "MAX"),
        help="DEM error search range, m",
    )
    p.add_argument(
        "--v-step",
        type=float,
        metavar="MM_YR",
        help="grid step of v (default: 1/8 of the fringe of the longest pair)",
    )
    p.add_argument(
        "--dh-step",
        type=float,
        metavar="M",
        help="grid step of dh (default: 1/8 of the fringe of the widest baseline)",
    )
    p.add_argument(
        "--window",
        type=int,
        default=d.window,
        metavar="PIXELS",
        help="side of the SLC chip oversampled around each CR",
    )
    p.add_argument(
        "--oversample",
        type=int,
        default=d.oversample,
        metavar="F",
        help="amplitude oversampling factor",
    )
    p.add_argument(
        "--search-radius",
        type=float,
        default=d.search_radius,
        metavar="PIXELS",
        help="peak search radius around the listed position",
    )
    p.add_argument(
        "--min-scr",
        type=float,
        default=d.min_scr_db,
        metavar="DB",
        help="warn for CRs whose median signal-to-clutter ratio is lower",
    )
    p.add_argument(
        "--lowpass-days",
        type=float,
        default=d.lowpass_days,
        metavar="DAYS",
        help="sigma of the Gaussian temporal low-pass of the periodogram baseline",
    )
    p.add_argument(
        "--gnss",
        type=Path,
        metavar="CSV",
        help="GNSS per CR: name, start, end (YYYYMMDD), east, north, up (mm), projected on "
        "the line of sight and printed beside the InSAR result (default: none)",
    )
    p.add_argument("--no-plots", action="store_true", help="write no PNGs")
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run cr_insar with command-line arguments ``argv``."""
    args = build_parser().parse_args(argv)
    output = check_output_dir(args.output, "--output")
    options = CrOptions(
        network=args.network,
        sb_list=args.sb_list,
        reference_date=args.reference_date,
        reference_cr=args.reference_cr,
        v_range=tuple(args.v_range),
        dh_range=tuple(args.dh_range),
        v_step=args.v_step,
        dh_step=args.dh_step,
        window=args.window,
        oversample=args.oversample,
        search_radius=args.search_radius,
        min_scr_db=args.min_scr,
        lowpass_days=args.lowpass_days,
        gnss=args.gnss,
        plots=not args.no_plots,
    )
    setup_logging(output, verbose=args.verbose)
    get_logger().info("cr_insar %s: %s, CRs %s", __version__, args.stack, args.cr_list)
    try:
        run_cr_insar(args.stack, args.cr_list, output, options)
    finally:
        setup_logging(None, verbose=args.verbose)
    print(output / "cr_insar.csv")
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

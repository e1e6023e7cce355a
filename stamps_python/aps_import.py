"""aps_import: a TRAIN correction made in MATLAB (tca2.mat / tca_sb2.mat) into a run's tca2.h5.

For the TRAIN methods that need weather or spectrometer data (ERA5, GACOS, MERRA, WRF, MODIS,
MERIS, powerlaw, ...): run TRAIN in MATLAB on the run's workspaces, then import its file; the
PS and interferogram counts must match the run. Then ``tropo_method`` (e.g. ``a_era5``) selects
it in Steps 6-7 and the export (or ``export_results --aps a_era5``). See docs/troposphere.md.

Usage::

    aps_import RUN FILE.mat [--target tca2|tca_sb2]
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
from collections.abc import Sequence

from stamps_python.steps.aps_import import aps_import
from stamps_python.utils import (
    HelpFormatter,
    StampsError,
    add_run_argument,
    run_argument,
    run_cli,
    setup_logging,
)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of aps_import."""
    p = argparse.ArgumentParser(
        prog="aps_import", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    add_run_argument(p, "run directory after Step 5")
    p.add_argument("mat_file", metavar="FILE.mat", help="TRAIN's tca2.mat or tca_sb2.mat")
    p.add_argument(
        "--target",
        choices=("tca2", "tca_sb2"),
        help="product to write (default: tca_sb2 for a file named tca_sb*, or in a "
        "small-baseline run when the columns are its pairs; else tca2)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run aps_import with command-line arguments ``argv``."""
    args = build_parser().parse_args(argv)
    run_dir = run_argument(args)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: no such run directory")
    setup_logging(run_dir, verbose=args.verbose)
    try:
        print(aps_import(run_dir, args.mat_file, args.target))
    finally:
        setup_logging(None, verbose=args.verbose)
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

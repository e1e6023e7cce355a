"""aps_linear: TRAIN's linear phase-topography tropospheric correction of a run after Step 6.

Fits, per interferogram, the unwrapped phase as K * height + c over the PS (or over those inside
a non-deforming polygon) and writes ``ph_tropo_linear``, ``K_tropo``, ``c_tropo`` to
``tca2.h5`` (``tca_sb2.h5`` and the inverted ``tca2.h5`` in a small-baseline run). Then
``export_results RUN --correction v-dao`` subtracts it, and ``stamps_parms RUN set subtr_tropo
y`` makes Steps 6 and 7 subtract it. See docs/troposphere.md.

Usage::

    aps_linear RUN [--non-defo FILE | --non-defo-poly LON LAT LON LAT LON LAT ...] [--dem-corr]
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stamps_python.io.train import read_polygon
from stamps_python.numerics.tropo_linear import polygon_from_vertices
from stamps_python.steps.aps_linear import aps_linear
from stamps_python.utils import (
    HelpFormatter,
    StampsError,
    add_run_argument,
    run_argument,
    run_cli,
    setup_logging,
)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of aps_linear."""
    p = argparse.ArgumentParser(
        prog="aps_linear", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    add_run_argument(p, "run directory after Step 6")
    area = p.add_mutually_exclusive_group()
    area.add_argument(
        "--non-defo",
        metavar="FILE",
        help="non-deforming area: TRAIN's non_defo.mat (variable poly), a vector file "
        "(GeoPackage, GeoJSON, Shapefile, KML) or a text file of 'lon lat' vertices "
        "(default: fit on all PS)",
    )
    area.add_argument(
        "--non-defo-poly",
        nargs="+",
        type=float,
        metavar="DEG",
        help="non-deforming area as vertices lon1 lat1 lon2 lat2 lon3 lat3 ... (degrees; "
        "default: fit on all PS)",
    )
    p.add_argument(
        "--dem-corr",
        action="store_true",
        help="first remove each PS's fit to the perpendicular baseline (TRAIN powerlaw_DEM_corr "
        "'y'; needs more than 5 interferograms)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run aps_linear with command-line arguments ``argv``."""
    args = build_parser().parse_args(argv)
    run_dir = run_argument(args)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: no such run directory")
    poly, name = None, ""
    if args.non_defo:
        poly, name = read_polygon(args.non_defo), str(Path(args.non_defo))
    elif args.non_defo_poly:
        v = args.non_defo_poly
        if len(v) % 2:
            raise StampsError(f"--non-defo-poly: {len(v)} numbers are not lon/lat pairs")
        name = "--non-defo-poly"
        poly = polygon_from_vertices(np.reshape(v, (-1, 2)), name)
    setup_logging(run_dir, verbose=args.verbose)
    try:
        for path in aps_linear(run_dir, poly, name, args.dem_corr):
            print(path)
    finally:
        setup_logging(None, verbose=args.verbose)
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

"""stamps_synthetic: write a synthetic Sentinel-1 stack in the ISCE2 topsStack layout, with its
ground truth in OUTDIR/truth.h5 (the generator is :mod:`stamps_python.synthetic`,
``docs/synthetic.md`` the model).

    stamps_synthetic OUTDIR --profile easy --rows 200 --cols 400 --seed 0
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
from collections.abc import Sequence

from stamps_python.synthetic import PROFILES, generate_stack
from stamps_python.utils import HelpFormatter, StampsError, run_cli, setup_logging


def build_parser() -> argparse.ArgumentParser:
    """Options of stamps_synthetic."""
    p = argparse.ArgumentParser(
        prog="stamps_synthetic",
        formatter_class=HelpFormatter,
        description="Write a synthetic Sentinel-1 stack in the ISCE2 topsStack layout, "
        "with its ground truth in OUTDIR/truth.h5.",
    )
    p.add_argument("outdir", help="stack directory to create (merged/, baselines/, reference/)")
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="easy",
        help="scene and noise profile (docs/synthetic.md)",
    )
    p.add_argument("--rows", type=int, default=200, help="azimuth lines (default 200)")
    p.add_argument("--cols", type=int, default=400, help="range samples (default 400)")
    p.add_argument("--dates", type=int, default=None, help="number of dates (default: profile's)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed; the same arguments give byte-identical files",
    )
    p.add_argument("--reference-date", default=None, help="YYYYMMDD (default: middle date)")
    p.add_argument(
        "--start-date", default=None, help="YYYYMMDD of the first date (default 20210105)"
    )
    p.add_argument(
        "--truth-cube",
        choices=("auto", "yes", "no"),
        default="auto",
        help="write the per-date truth cubes to truth.h5 (auto: when dates x rows x cols <= 2e7)",
    )
    p.add_argument(
        "--pass-direction",
        choices=("DESCENDING", "ASCENDING"),
        default="DESCENDING",
        help="orbit direction of the simulated stack",
    )
    p.add_argument(
        "--no-multilooked", action="store_true", help="skip the 3x9-look geometry .rdr files"
    )
    p.add_argument(
        "--bowl-centre", type=float, nargs=2, default=None, metavar=("ROW_FRAC", "COL_FRAC"),
        help="put the subsidence bowl centre at these fractions (each in [0, 1]) of the lines "
        "and samples (default: drawn within the profile's central bowl_centre_spread)",
    )  # fmt: skip
    p.add_argument(
        "--bowl-anywhere", action="store_true",
        help="draw the bowl centre uniformly among the valid pixels of the whole scene "
        "(default: off)",
    )  # fmt: skip
    p.add_argument(
        "--ds-short-fraction", type=float, default=0.0, metavar="F",
        help="fraction (0..1) of the distributed scatterers, in spatial patches, that are "
        "coherent for 12-24 days only and decorrelate over months: class 5, no long-term "
        "coherence (default 0: none)",
    )  # fmt: skip
    p.add_argument(
        "--ds-short-coherence", type=float, nargs=2, default=(0.5, 0.9), metavar=("LO", "HI"),
        help="12-day coherence of those scatterers, uniform in [LO, HI] (default 0.5 0.9)",
    )  # fmt: skip
    p.add_argument(
        "--strat-std", type=float, default=None, metavar="RAD_PER_KM",
        help="std of the per-date stratified tropospheric delay coefficient K, rad/km "
        "(default: the profile's, 0.1 easy, 1.0 realistic)",
    )  # fmt: skip
    p.add_argument(
        "--terrain-relief", type=float, default=None, metavar="M",
        help="height scale of the hills, m (default: the profile's, 150 easy, 300 realistic; "
        "1000 for a mountainous scene)",
    )  # fmt: skip
    p.add_argument(
        "--corner-reflectors", type=int, default=0, metavar="N",
        help="add N corner reflectors (bright point targets, the first the stable reference; "
        "truth in truth.h5 group cr, list in OUTDIR/corner_reflectors.csv for cr_insar; "
        "default 0: none)",
    )  # fmt: skip
    p.add_argument(
        "--azimuth-misreg", nargs="+", default=[], metavar="DATE:PX",
        help="misregister these dates in azimuth by PX pixels (TOPS burst phase ramps, jumps "
        "at the seams), e.g. 20210406:0.003 (default: none)",
    )  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing stack in OUTDIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _misreg_arg(items: Sequence[str]) -> dict[str, float] | None:
    """{YYYYMMDD: pixels} of ``--azimuth-misreg DATE:PX ...``; a malformed item is an error."""
    out: dict[str, float] = {}
    for item in items:
        date, sep, px = item.partition(":")
        try:
            if not sep:
                raise ValueError
            out[date] = float(px)
        except ValueError:
            raise StampsError(f"--azimuth-misreg: '{item}' is not DATE:PIXELS") from None
    return out or None


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: parse arguments, generate the stack, print a one-line summary."""
    args = build_parser().parse_args(argv)
    setup_logging()
    summary = generate_stack(
        args.outdir,
        profile=args.profile,
        rows=args.rows,
        cols=args.cols,
        n_dates=args.dates,
        seed=args.seed,
        reference_date=args.reference_date,
        start_date=args.start_date,
        truth_cube=args.truth_cube,
        pass_direction=args.pass_direction,
        multilooked=not args.no_multilooked,
        overwrite=args.overwrite,
        progress=not args.quiet,
        bowl_centre=args.bowl_centre,
        bowl_anywhere=args.bowl_anywhere,
        ds_short_fraction=args.ds_short_fraction,
        ds_short_alpha12=tuple(args.ds_short_coherence),
        strat_std=args.strat_std,
        terrain_relief=args.terrain_relief,
        corner_reflectors=args.corner_reflectors,
        azimuth_misreg=_misreg_arg(args.azimuth_misreg),
    )
    print(
        f"{summary['outdir']}: {summary['shape'][0]}x{summary['shape'][1]}, "
        f"{len(summary['dates'])} dates, reference {summary['reference_date']}, "
        f"{summary['n_ps']} PS, {summary['elapsed_s']:.1f} s, "
        f"peak RSS {summary['peak_rss_mb']:.0f} MiB"
    )
    return 0


def cli() -> int:
    """Console-script entry point ``stamps_synthetic``."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

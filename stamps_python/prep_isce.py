"""prep_isce: prepare a StaMPS PS run directory from an ISCE2 topsStack ``merged/`` stack.

What StaMPS' ``mt_prep`` (calamp, selpsc_patch, mt_extract_cands) does for ISCE2, in one tool:

1. amplitude calibration constant per SLC (calamp: mean amplitude over pixels above 0.001);
2. amplitude dispersion D_A of every pixel over all SLCs (calibrated), in one streaming pass;
3. PS candidates: D_A below ``--amp-dispersion`` (0.4) and no empty image;
4. patches with StaMPS overlap (``patch.list``, ``PATCH_n/patch.in``, ``patch_noover.in``);
5. per patch ``pscands.h5``: candidate position, phase (reference x conj(secondary)), lon/lat,
   DEM height, look and incidence angles, D_A, Bperp; with ``--write-step1`` the Step-1
   workspaces (ps1.h5, ph1.h5, ...) exactly as ps_load_initial_isce builds them.

With ``--small-baseline`` (what mt_prep does in a SMALL_BASELINES folder, with selsbc_patch) the
candidates are chosen on the amplitude-difference dispersion over the pairs of
``small_baselines.list`` (threshold 0.6 by default) and ``pscands.h5`` holds no phase:
``build_sb_phase RUN`` forms the pair interferograms and the SB Step-1 workspaces afterwards.

Usage::

    prep_isce STACK/merged RUN --reference-date 20210529 --bootstrap-metadata \
        --range-patches 2 --azimuth-patches 2 --write-step1
    prep_isce STACK/merged RUN --bootstrap-metadata --small-baseline
    prep_isce STACK/merged RUN --crop-box 37.1 37.3 -120.6 -120.3 --mask water.gpkg

``--crop-box S N W E`` (deg) or ``--crop-window LINE0 LINE1 SAMPLE0 SAMPLE1`` (0-based, ends
exclusive) restrict the run to part of the merged grid (as ``crop_rdr.py`` before mt_prep), and
``--mask FILE`` excludes pixels (a raster on the merged grid, non-zero = excluded, as mt_prep's
maskfile; or a Shapefile / GeoPackage polygon layer in lon/lat, inside = excluded).
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
from collections.abc import Sequence

from stamps_python.prep.inputs import PrepOptions, check_inputs
from stamps_python.prep.prepare import prepare, run_prep
from stamps_python.utils import (
    HelpFormatter,
    add_run_argument,
    run_argument,
    run_cli,
    setup_logging,
)

# prepare(): prep_isce from Python, without the CLI's logging (tests and benches call it)
__all__ = ["build_parser", "cli", "main", "prepare"]


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of prep_isce."""
    p = argparse.ArgumentParser(
        prog="prep_isce", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("merged", help="ISCE2 topsStack merged/ folder (with SLC/ and geom_reference/)")
    add_run_argument(p, "run directory to create (or refresh)", aliases=[("--output", "-o")])
    p.add_argument(
        "--reference-date",
        help="reference (master) date YYYYMMDD; default: the one named by the baselines/ folders",
    )
    p.add_argument(
        "--bootstrap-metadata",
        action="store_true",
        help="read wavelength, heading, spacing, slant range, angles from the ISCE2 "
        "XML and geometry into metadata.json",
    )
    p.add_argument(
        "--wavelength", type=float, help="radar wavelength in m (default: from the reference XML)"
    )
    p.add_argument(
        "--heading", type=float, help="satellite heading in deg (default: from the lat/lon grids)"
    )
    p.add_argument(
        "--range-patches", type=int, default=1, help="number of patches across range (mt_prep prg)"
    )
    p.add_argument(
        "--azimuth-patches",
        type=int,
        default=1,
        help="number of patches along azimuth (mt_prep paz)",
    )
    p.add_argument(
        "--range-overlap",
        type=int,
        default=50,
        help="overlap of neighbouring patches in range, pixels",
    )
    p.add_argument(
        "--azimuth-overlap",
        type=int,
        default=50,
        help="overlap of neighbouring patches in azimuth, lines",
    )
    p.add_argument(
        "--amp-dispersion",
        type=float,
        default=None,
        help="amplitude dispersion threshold for candidates: D_A for PS (default "
        "0.4), the amplitude-difference dispersion D_a_sb with --small-baseline "
        "(default 0.6)",
    )
    p.add_argument(
        "--small-baseline",
        action="store_true",
        help="small-baseline run: select candidates on the pairs of the list (no "
        "phase extracted; run build_sb_phase afterwards)",
    )
    p.add_argument(
        "--sb-list",
        help="small_baselines.list to use (copied into the run); "
        "default: RUN/small_baselines.list written by define_sb_pairs",
    )
    p.add_argument(
        "--write-step1",
        action="store_true",
        help="also write the Step-1 workspaces (ps1.h5, ph1.h5, ...) per patch (PS only)",
    )
    p.add_argument(
        "--no-inc-angle",
        action="store_true",
        help="give StaMPS only the look angle (la1), no incidence angle (inc1)",
    )
    p.add_argument(
        "--block-mb",
        type=float,
        default=128.0,
        help="memory for one block of lines of all SLCs, MiB (two blocks are used)",
    )
    p.add_argument(
        "--buffered-io",
        action="store_true",
        help="read the SLCs through the page cache instead of with O_DIRECT (which "
        "is used where the file system allows it); may be faster on network file "
        "systems",
    )
    p.add_argument(
        "--crop-box",
        nargs=4,
        type=float,
        metavar=("S", "N", "W", "E"),
        help="only the pixels of the smallest line/sample window covering this lat/lon box "
        "(deg, through the lat/lon geometry rasters), as crop_rdr.py -b (default: the whole "
        "merged grid)",
    )
    p.add_argument(
        "--crop-window",
        nargs=4,
        type=int,
        metavar=("LINE0", "LINE1", "SAMPLE0", "SAMPLE1"),
        help="only lines LINE0..LINE1-1 and samples SAMPLE0..SAMPLE1-1 of the merged grid "
        "(0-based, ends exclusive; default: the whole merged grid)",
    )
    p.add_argument(
        "--mask",
        metavar="FILE",
        help="pixels left out of calamp and the candidates: a raster on the merged grid "
        "(non-zero = excluded, as mt_prep's maskfile) or a .shp/.gpkg/.geojson polygon "
        "layer in lon/lat (inside = excluded); default: no mask",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run prep_isce with command-line arguments ``argv``.

    Logs go to the console and, once the inputs are checked, to the run's ``stamps.log`` (the
    run directory is made for it).
    """
    args = build_parser().parse_intermixed_args(argv)
    setup_logging(None, verbose=args.verbose)
    output = run_argument(args)
    options = PrepOptions(
        reference_date=args.reference_date,
        bootstrap_metadata=args.bootstrap_metadata,
        wavelength=args.wavelength,
        heading=args.heading,
        range_patches=args.range_patches,
        azimuth_patches=args.azimuth_patches,
        range_overlap=args.range_overlap,
        azimuth_overlap=args.azimuth_overlap,
        amp_dispersion=args.amp_dispersion,
        write_step1=args.write_step1,
        inc_angle=not args.no_inc_angle,
        block_mb=args.block_mb,
        small_baseline=args.small_baseline,
        sb_list=args.sb_list,
        direct_io=not args.buffered_io,
        crop_box=None if args.crop_box is None else tuple(args.crop_box),
        crop_window=None if args.crop_window is None else tuple(args.crop_window),
        mask=args.mask,
    )
    inputs = check_inputs(args.merged, output, options)
    setup_logging(inputs.output, verbose=args.verbose)
    try:
        run_prep(inputs)
    finally:
        setup_logging(None, verbose=args.verbose)
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

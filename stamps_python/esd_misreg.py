"""esd_misreg: Sentinel-1 TOPS azimuth misregistration from topsStack's ESD overlaps, and the
burst-seam check of a PS run.

``esd_misreg WORKDIR`` reads ``WORKDIR/ESD/<ref>_<sec>/IW*/overlap_NN.*`` (topsStack with
``-C NESD``) and estimates, per pair and sub-swath, the ESD phase of every overlap from its
coherent points, a weighted polynomial in azimuth time with Baarda's w-test (data snooping),
then one shift per date from the pair network with the same test. It writes
``misreg/azimuth/pairs/*/*.txt`` and ``misreg/azimuth/dates/*.txt`` as topsStack's
estimateAzimuthMisreg.py / invertMisreg.py do (so the geo2rdr and resample steps can be run
again with them), and a report with plots in ``DIR/esd_misreg/``.

``esd_misreg --seam-check RUN`` estimates per date of a stamps_python run (Step 5 or later) the
shift implied by the phase jumps of the PS across the burst seams, and lists the dates beyond
0.001 pixel (``DIR/esd_seam_check/``).

Usage::

    esd_misreg WORKDIR [--output DIR] [--degree 0|1|2] [--alpha A] [--coherence-threshold C]
    esd_misreg --seam-check RUN [--stack STACK] [--output DIR] [--threshold PX]
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
from stamps_python.esd.estimate import EsdOptions, EsdResult, estimate
from stamps_python.esd.folders import scan_esd
from stamps_python.esd.geometry import read_reference_swaths
from stamps_python.esd.outputs import write_misreg_files, write_plots, write_report
from stamps_python.esd.seam_check import SeamOptions, SeamResult, seam_check, write_seam_outputs
from stamps_python.utils import (
    HelpFormatter,
    StampsError,
    check_output_dir,
    get_logger,
    run_cli,
    setup_logging,
)


def esd_misreg(
    workdir: str | Path,
    output: str | Path | None = None,
    options: EsdOptions | None = None,
    looks: tuple[int, int] | None = None,
    plots: bool = True,
) -> EsdResult:
    """Estimate the per-date azimuth shifts of a topsStack work folder and write the misreg
    files, the report and the plots to ``output`` (default ``workdir``)."""
    workdir = Path(workdir)
    out = Path(output) if output is not None else workdir
    options = options or EsdOptions()
    if options.degree not in (0, 1, 2):
        raise StampsError(f"--degree {options.degree}: not 0, 1 or 2")
    if not 0 < options.alpha < 1:
        raise StampsError(f"--alpha {options.alpha}: not in (0, 1)")
    if not 0 <= options.coherence_threshold < 1:
        raise StampsError(f"--coherence-threshold {options.coherence_threshold}: not in [0, 1)")
    if options.sigma_floor < 0:
        raise StampsError(f"--sigma-floor {options.sigma_floor}: negative")
    log = get_logger()
    start = time.perf_counter()
    folders = scan_esd(workdir, looks)
    swaths = read_reference_swaths(workdir)
    if not swaths:
        log.warning(
            "warning: %s: no IW*.xml; overlap times taken as NN x 2.758 s", workdir / "reference"
        )
    log.info(
        "esd_misreg %s: %s, %d pairs, looks %dx%d, degree %d, alpha %g, coherence > %g",
        __version__, workdir, len(folders.pairs), *folders.looks, options.degree, options.alpha,
        options.coherence_threshold,
    )  # fmt: skip
    result = estimate(folders, swaths, options)
    write_misreg_files(result, out)
    write_report(result, out)
    if plots:
        write_plots(result, out)
    for d, s in result.date_shift().items():
        log.info("%s: %+.5f px", d, s)
    log.info(
        "esd_misreg wrote %s/misreg/azimuth and %s/esd_misreg in %.1f s",
        out, out, time.perf_counter() - start,
    )  # fmt: skip
    return result


def run_seam_check(
    run_dir: str | Path,
    stack: str | Path | None = None,
    output: str | Path | None = None,
    options: SeamOptions | None = None,
    plots: bool = True,
) -> SeamResult:
    """The burst-seam check of ``run_dir``, written to ``output`` (default ``run_dir``)."""
    res = seam_check(run_dir, stack, options)
    write_seam_outputs(res, Path(output) if output is not None else Path(run_dir), plots)
    return res


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of esd_misreg."""
    p = argparse.ArgumentParser(
        prog="esd_misreg", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument(
        "directory",
        metavar="WORKDIR",
        help="topsStack work folder (holding ESD/ and reference/); with --seam-check the "
        "stamps_python run directory",
    )
    p.add_argument("--output", metavar="DIR", help="where to write (default: WORKDIR or RUN)")
    p.add_argument(
        "--seam-check", action="store_true", help="burst-seam check of a stamps_python run"
    )
    g = p.add_argument_group("ESD")
    g.add_argument(
        "--coherence-threshold",
        type=float,
        default=0.85,
        metavar="C",
        help="coherent pixels: .cor above",
    )
    g.add_argument(
        "--degree",
        type=int,
        default=0,
        metavar="N",
        help="polynomial in azimuth time per sub-swath (0-2)",
    )
    g.add_argument(
        "--alpha", type=float, default=0.001, metavar="A", help="significance of the w-test"
    )
    g.add_argument(
        "--sigma-floor",
        type=float,
        default=0.0005,
        metavar="PX",
        help="pixels added in quadrature to each overlap's sigma (unmodelled overlap scatter)",
    )
    g.add_argument("--datum", metavar="YYYYMMDD", help="date of zero shift (default: reference)")
    g.add_argument(
        "--looks", type=int, nargs=2, metavar=("ALKS", "RLKS"), help="ESD looks (default: found)"
    )
    g.add_argument("--no-plots", action="store_true", help="write no PNG")
    s = p.add_argument_group("seam check")
    s.add_argument(
        "--stack", metavar="STACK", help="topsStack folder (default: from the run's metadata)"
    )
    s.add_argument(
        "--threshold",
        type=float,
        default=0.001,
        metavar="PX",
        help="report dates beyond this shift, pixels",
    )
    s.add_argument(
        "--window", type=int, default=300, metavar="LINES", help="lines used on each side of a seam"
    )
    s.add_argument("--phase", choices=("ph", "rc"), default="ph", help="ph2.h5 ph or rc2.h5 ph_rc")
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run esd_misreg with command-line arguments ``argv``."""
    args = build_parser().parse_args(argv)
    directory = Path(args.directory)
    if not directory.is_dir():
        setup_logging(None, verbose=args.verbose)
        raise StampsError(f"{directory}: no such folder")
    out = Path(args.output) if args.output else directory
    check_output_dir(out, "--output")
    setup_logging(out, verbose=args.verbose)
    try:
        if args.seam_check:
            if args.window < 10:
                raise StampsError(f"--window {args.window}: at least 10 lines")
            run_seam_check(
                directory,
                args.stack,
                out,
                SeamOptions(
                    threshold=args.threshold, window=args.window, alpha=args.alpha,
                    phase=args.phase,
                ),
                plots=not args.no_plots,
            )  # fmt: skip
        else:
            esd_misreg(
                directory,
                out,
                EsdOptions(
                    coherence_threshold=args.coherence_threshold, degree=args.degree,
                    alpha=args.alpha, sigma_floor=args.sigma_floor, datum=args.datum,
                ),
                tuple(args.looks) if args.looks else None,
                plots=not args.no_plots,
            )  # fmt: skip
    finally:
        setup_logging(None, verbose=args.verbose)
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

"""define_sb_pairs: choose the Small Baseline interferogram network (StaMPS ``sb_find``).

Reads the dates and perpendicular baselines of an ISCE2 topsStack ``merged/`` folder or of a run
directory made by prep_isce (its ``metadata.json``), keeps the pairs within hard limits on the
temporal (days) and perpendicular (m) baseline that ``sb_find``'s coherence model favours, checks
that every date is connected, and writes ``small_baselines.list`` (and a baseline plot).

Usage::

    define_sb_pairs RUN --max-temporal 120 --max-perpendicular 150 --min-connections 2
    define_sb_pairs STACK/merged --output RUN --max-temporal 120 --max-perpendicular 150
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import datetime as _dt
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.sb_list import write_sb_list
from stamps_python.numerics.sb_network import (
    BDIFF_MAX,
    DDIFF_MAX,
    RHO_MIN,
    check_connected,
    sb_find_pairs,
)
from stamps_python.rundir import METADATA, SB_LIST, SB_PLOT, metadata_path, read_metadata
from stamps_python.utils import (
    HelpFormatter,
    StampsError,
    add_run_argument,
    atomic_output,
    check_output_dir,
    datenum,
    get_logger,
    parse_yyyymmdd,
    run_argument,
    run_cli,
    setup_logging,
)

MIN_DATES = 3


def _from_merged(merged: Path, reference_date: str | None) -> tuple[list[str], str, dict]:
    """Dates, reference date and Bperp (m, date -> value) of an ISCE2 topsStack ``merged/``."""
    from stamps_python.io import isce

    stack = isce.open_stack(merged)
    reference = reference_date or isce.infer_reference(stack)
    if reference not in stack.dates:
        raise StampsError(
            f"--reference-date {reference}: not in the stack {merged / 'SLC'} "
            f"({stack.dates[0]}..{stack.dates[-1]}, {len(stack.dates)} dates)"
        )
    return list(stack.dates), reference, isce.read_bperp(stack, reference)


def _from_run(run_dir: Path) -> tuple[list[str], str, dict]:
    """Dates, reference date and Bperp (m) from a prep_isce run directory's ``metadata.json``."""
    meta = read_metadata(run_dir, require=("dates", "reference_date", "bperp"))
    meta_path = metadata_path(run_dir)
    dates = [str(d) for d in meta["dates"]]
    bperp = meta["bperp"]
    if not isinstance(bperp, dict):
        raise StampsError(f"{meta_path}: 'bperp' must map each date to its baseline in m")
    absent = [d for d in dates if d not in bperp]
    if absent:
        raise StampsError(f"{meta_path}: no perpendicular baseline for {', '.join(absent[:5])}")
    try:
        values = {d: float(bperp[d]) for d in dates}
    except (TypeError, ValueError):
        raise StampsError(f"{meta_path}: 'bperp' values must be numbers (m)") from None
    return dates, str(meta["reference_date"]), values


def plot_network(
    path: Path,
    dates: Sequence[str],
    bperp: np.ndarray,
    pairs: np.ndarray,
    reference: str | None = None,
) -> Path:
    """Baseline plot (PNG, written atomically): dates on x, Bperp (m) on y, pairs as lines.

    The ``reference`` date, when given, is drawn as a filled marker.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    when = [_dt.datetime.strptime(d, "%Y%m%d") for d in dates]
    fig = Figure(figsize=(10, 5.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for i, j in pairs:
        ax.plot([when[i], when[j]], [bperp[i], bperp[j]], color="tab:green", lw=1.2, alpha=0.8)
    ax.plot(when, bperp, "o", ms=7, mfc="none", mec="tab:red", mew=1.8, label="image")
    if reference in dates:
        k = list(dates).index(reference)
        ax.plot(
            [when[k]],
            [bperp[k]],
            "o",
            ms=7,
            mfc="tab:red",
            mec="tab:red",
            label=f"reference {reference}",
        )
        ax.legend(loc="best", fontsize="small")
    ax.set_xlabel("date")
    ax.set_ylabel("B_perp (m)")
    ax.set_title(f"small baseline network: {len(pairs)} interferograms, {len(dates)} images")
    ax.grid(True, alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def define_pairs(
    path: str | Path,
    max_temporal: float,
    max_perpendicular: float,
    min_connections: int = 1,
    rho_min: float = RHO_MIN,
    output: str | Path | None = None,
    reference_date: str | None = None,
    plot: bool = True,
) -> dict[str, Any]:
    """Choose the SB pairs of a ``merged/`` stack or a run directory and write the pair list.

    ``max_temporal`` in days, ``max_perpendicular`` in m. Returns ``pairs`` (list of (earlier,
    later) YYYYMMDD), ``pair_index`` (n, 2) 0-based into ``dates``, ``dates``, ``bperp`` (m),
    ``reference_date``, ``output``, ``list_path`` and ``plot_path`` (None without plot). Nothing
    is written when the network is disconnected (StampsError naming the isolated dates).
    """
    log = get_logger()
    start = time.perf_counter()
    for value, name in (
        (max_temporal, "--max-temporal"),
        (max_perpendicular, "--max-perpendicular"),
    ):
        if not float(value) > 0:
            raise StampsError(f"{name}: {value} must be greater than 0")
    if reference_date is not None:
        parse_yyyymmdd(reference_date, "--reference-date")
    path = Path(path)
    if not path.exists():
        raise StampsError(
            f"{path}: not found (expected an ISCE2 merged/ folder or a run "
            f"directory made by prep_isce)"
        )
    if not path.is_dir():
        raise StampsError(
            f"{path}: not a directory (expected an ISCE2 merged/ folder or a run "
            f"directory made by prep_isce)"
        )
    if (path / "SLC").is_dir():
        if output is None:
            raise StampsError(
                f"{path} is an ISCE2 merged/ folder: --output (the directory for "
                f"{SB_LIST}) is required"
            )
        dates, reference, bperp_map = _from_merged(path, reference_date)
        out_dir = Path(output)
        source = "ISCE2 stack"
    elif metadata_path(path).is_file():
        dates, reference, bperp_map = _from_run(path)
        if reference_date is not None:
            reference = reference_date
        out_dir = Path(output) if output is not None else path
        source = METADATA
    else:
        raise StampsError(
            f"{path}: neither an ISCE2 merged/ folder (no SLC/) nor a run directory "
            f"(no {METADATA}); run prep_isce first or pass the merged/ folder"
        )
    check_output_dir(out_dir, "--output")
    for d in dates:
        parse_yyyymmdd(d, f"{path}: date")
    if len(set(dates)) != len(dates):
        raise StampsError(f"{path}: a date appears twice")
    order = sorted(range(len(dates)), key=lambda k: dates[k])
    dates = [dates[k] for k in order]
    if len(dates) < MIN_DATES:
        raise StampsError(
            f"{path}: {len(dates)} dates; a small-baseline network needs at least {MIN_DATES}"
        )
    if reference not in dates:
        raise StampsError(
            f"reference date {reference}: not one of the {len(dates)} dates "
            f"({dates[0]}..{dates[-1]})"
        )
    bperp = np.array([bperp_map[d] for d in dates], dtype=np.float64)
    days = np.array([datenum(d) for d in dates], dtype=np.float64)
    log.info(
        "define_sb_pairs: %d dates %s..%s from the %s of %s, reference %s; limits %g days, "
        "%g m; rho_min %g, min_connections %d",
        len(dates),
        dates[0],
        dates[-1],
        source,
        path,
        reference,
        max_temporal,
        max_perpendicular,
        rho_min,
        min_connections,
    )

    pairs = sb_find_pairs(
        days,
        bperp,
        max_temporal,
        max_perpendicular,
        rho_min=rho_min,
        ddiff_max=DDIFF_MAX,
        bdiff_max=BDIFF_MAX,
        min_connections=min_connections,
        dates=dates,
    )
    check_connected(dates, pairs, dates.index(reference))

    pair_dates = [(dates[i], dates[j]) for i, j in pairs]
    span = days[pairs[:, 1]] - days[pairs[:, 0]]
    dbp = np.abs(bperp[pairs[:, 1]] - bperp[pairs[:, 0]])
    for k, ((a, b), t, b_m) in enumerate(zip(pair_dates, span, dbp), start=1):
        log.debug("  %4d  %s %s  %5.0f days  %7.1f m", k, a, b, t, b_m)
    degree = np.bincount(pairs.ravel(), minlength=len(dates))
    list_path = write_sb_list(out_dir / SB_LIST, pair_dates)
    plot_path = plot_network(out_dir / SB_PLOT, dates, bperp, pairs, reference) if plot else None
    log.info(
        "%d pairs; connections per date %d..%d; longest temporal baseline %.0f days, "
        "longest perpendicular baseline %.1f m",
        len(pairs),
        degree.min(),
        degree.max(),
        span.max(),
        dbp.max(),
    )
    log.info(
        "wrote %s%s in %.1f s",
        list_path,
        f" and {plot_path.name}" if plot_path else "",
        time.perf_counter() - start,
    )
    return {
        "pairs": pair_dates,
        "pair_index": pairs,
        "dates": dates,
        "bperp": bperp,
        "reference_date": reference,
        "output": out_dir,
        "list_path": list_path,
        "plot_path": plot_path,
    }


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of define_sb_pairs."""
    p = argparse.ArgumentParser(
        prog="define_sb_pairs", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument(
        "path",
        help="ISCE2 topsStack merged/ folder, or a run directory made by "
        "prep_isce (with metadata.json)",
    )
    p.add_argument(
        "--max-temporal",
        type=float,
        required=True,
        help="longest temporal baseline of a pair, days",
    )
    p.add_argument(
        "--max-perpendicular",
        type=float,
        required=True,
        help="longest perpendicular baseline of a pair, m",
    )
    p.add_argument(
        "--min-connections",
        type=int,
        default=1,
        help="pairs every date should have (its next-best partners are added)",
    )
    p.add_argument(
        "--rho-min",
        type=float,
        default=RHO_MIN,
        help="minimum modelled coherence of a pair (sb_find rho_min)",
    )
    add_run_argument(
        p,
        "run directory for small_baselines.list (required for a merged/ folder; "
        "default: PATH when it is a run directory)",
        aliases=[("--output", "-o")],
        required=False,
    )
    p.add_argument(
        "--reference-date",
        help="reference date YYYYMMDD (default: the run's, or the "
        "one named by the stack's baselines/ folders)",
    )
    p.add_argument("--no-plot", action="store_true", help="do not write small_baselines.png")
    p.add_argument("-v", "--verbose", action="store_true", help="also list every pair")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run define_sb_pairs with command-line arguments ``argv``."""
    args = build_parser().parse_intermixed_args(argv)
    setup_logging(None, verbose=args.verbose)
    define_pairs(
        args.path,
        args.max_temporal,
        args.max_perpendicular,
        min_connections=args.min_connections,
        rho_min=args.rho_min,
        output=run_argument(args),
        reference_date=args.reference_date,
        plot=not args.no_plot,
    )
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

"""What ``esd_misreg`` writes: the misreg files topsStack's next steps read
(``misreg/azimuth/pairs/<r>_<s>/<r>_<s>.txt``, ``misreg/azimuth/dates/YYYYMMDD.txt``), the
report (``esd_misreg/report.json``, ``overlaps.csv``, ``pairs.csv``, ``dates.csv``) and PNGs.
Every file is written to a temporary name and renamed."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.esd.estimate import EsdResult
from stamps_python.numerics.esd import network_design
from stamps_python.utils import atomic_output

MARKER = "# written by stamps_python esd_misreg"
BACKUP_SUFFIX = ".topsstack"  # not *.txt: invertMisreg.py's glob('*/*.txt') skips it
REPORT_DIR = "esd_misreg"


def _write_text(path: Path, text: str) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _keep_foreign(path: Path) -> None:
    """Rename a file not written by esd_misreg (topsStack's own) to ``<name>.topsstack``."""
    if path.is_file() and MARKER not in path.read_text(encoding="utf-8", errors="replace"):
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        if not backup.exists():
            path.replace(backup)


def write_misreg_files(result: EsdResult, outdir: Path) -> dict[str, list[Path]]:
    """Pair files (first line ``median : <shift>``, the only line invertMisreg.py reads) and
    date files (the shift alone on the first line, as invertMisreg.py writes it and
    geo2rdr.py / resamp_withCarrier.py read it with ``float(f.readline())``), pixels."""
    base = Path(outdir) / "misreg" / "azimuth"
    thr = result.options.coherence_threshold
    written: dict[str, list[Path]] = {"pairs": [], "dates": []}
    for p in result.pairs:
        if not math.isfinite(p.shift):
            continue
        path = base / "pairs" / p.name / f"{p.name}.txt"
        _keep_foreign(path)
        note = f"rejected by the network test: {p.reason}" if p.flagged else "used"
        text = (
            f"median : {p.shift!s}\n"
            f"mean : {p.shift!s}\n"
            f"std : {p.sigma!s}\n"
            f"coherence threshold : {thr!s}\n"
            f"number of coherent points : {p.n_coherent}\n"
            f"{MARKER}: weighted fit over the overlaps with data snooping; median above is "
            "that estimate\n"
            f"# topsStack median of all coherent pixels : {p.median_topsstack!s}\n"
            f"# network : {note}\n"
        )
        written["pairs"].append(_write_text(path, text))
    for d, s in result.date_shift().items():
        path = base / "dates" / f"{d}.txt"
        _keep_foreign(path)
        written["dates"].append(
            _write_text(path, f"{float(s)!s}\n{MARKER}: datum {result.datum}\n")
        )
    return written


def _csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow(["" if isinstance(v, float) and not math.isfinite(v) else v for v in row])
    return _write_text(path, buf.getvalue())


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def plain_date_shifts(result: EsdResult) -> np.ndarray:
    """Per-date shifts from topsStack's pair medians, unweighted (as invertMisreg.py), with the
    same datum (pixels; NaN where the medians do not reach a date)."""
    pairs = [p for p in result.pairs if math.isfinite(p.median_topsstack)]
    A = network_design(result.dates, [(p.reference, p.secondary) for p in pairs], result.datum)
    x = np.linalg.pinv(A) @ np.array([p.median_topsstack for p in pairs])
    return np.insert(x, result.dates.index(result.datum), 0.0)


def phase_summary(result: EsdResult) -> dict[str, float]:
    """Mean and RMS overlap ESD phase (deg) before and after the per-date correction."""
    ov = [r for p in result.pairs for r in p.overlaps if r.n_coherent and not r.flagged]
    before = np.degrees([r.phase for r in ov])
    after = np.degrees([r.phase_after for r in ov])
    if not ov:
        return {}
    return {
        "n_overlaps": len(ov),
        "mean_abs_before_deg": float(np.mean(np.abs(before))),
        "mean_abs_after_deg": float(np.mean(np.abs(after))),
        "rms_before_deg": float(np.sqrt(np.mean(before**2))),
        "rms_after_deg": float(np.sqrt(np.mean(after**2))),
    }


def write_report(result: EsdResult, outdir: Path) -> dict[str, Path]:
    """report.json, overlaps.csv, pairs.csv and dates.csv in ``outdir/esd_misreg``."""
    rdir = Path(outdir) / REPORT_DIR
    plain = plain_date_shifts(result)
    net = result.network
    out = {}
    out["overlaps"] = _csv(
        rdir / "overlaps.csv",
        ["pair", "swath", "overlap", "time_s", "n_coherent", "phase_rad", "sigma_phase_rad",
         "freq_rad_per_px", "shift_px", "sigma_px", "fitted_px", "residual_px", "w", "flagged",
         "phase_after_rad", "reason"],
        (
            [r.pair, f"IW{r.swath}", r.number, r.time, r.n_coherent, r.phase, r.sigma_phase,
             r.freq, r.shift, r.sigma_shift, r.fitted, r.residual, r.w, int(r.flagged),
             r.phase_after, r.reason]
            for p in result.pairs for r in p.overlaps
        ),
    )  # fmt: skip
    out["pairs"] = _csv(
        rdir / "pairs.csv",
        ["pair", "shift_px", "sigma_px", "median_topsstack_px", "n_coherent", "overlaps_used",
         "overlaps_flagged", "w", "flagged", "reason"],
        (
            [p.name, p.shift, p.sigma, p.median_topsstack, p.n_coherent,
             sum(r.n_coherent > 0 and not r.flagged for r in p.overlaps),
             sum(r.flagged for r in p.overlaps), p.w, int(p.flagged), p.reason]
            for p in result.pairs
        ),
    )  # fmt: skip
    out["dates"] = _csv(
        rdir / "dates.csv",
        ["date", "shift_px", "sigma_px", "shift_topsstack_px"],
        ([d, net.shift[k], net.sigma[k], plain[k]] for k, d in enumerate(result.dates)),
    )
    o = result.options
    report = {
        "method": "ESD per overlap (coherence-weighted), weighted polynomial in azimuth time per "
        "sub-swath, iterated w-test, weighted network inversion with the same test",
        "units": "shifts in azimuth pixels (topsStack convention angle(ifg) / freq), phases rad",
        "options": {
            "coherence_threshold": o.coherence_threshold, "degree": o.degree, "alpha": o.alpha,
            "sigma_floor_px": o.sigma_floor, "looks": list(result.looks),
        },
        "datum": result.datum,
        "dates": {
            d: {"shift_px": float(net.shift[k]), "sigma_px": float(net.sigma[k]),
                "shift_topsstack_px": _num(float(plain[k]))}
            for k, d in enumerate(result.dates)
        },
        "network": {
            "dof": net.snoop.dof, "variance_factor": _num(net.snoop.variance_factor),
            "critical_w": net.snoop.critical,
            "rejected_pairs": [p.name for p in result.pairs if p.flagged],
        },
        "pairs": {
            p.name: {
                "shift_px": _num(p.shift), "sigma_px": _num(p.sigma),
                "median_topsstack_px": _num(p.median_topsstack), "n_coherent": p.n_coherent,
                "flagged": p.flagged, "reason": p.reason,
                "swaths": {
                    f"IW{sw}": {
                        "degree": f.degree, "t0_s": f.t0, "scale_s": f.scale,
                        "coefficients_px": f.snoop.x.tolist(), "mean_px": f.mean,
                        "sigma_mean_px": f.sigma_mean, "dof": f.snoop.dof,
                        "variance_factor": _num(f.snoop.variance_factor),
                        "flagged_overlaps": {
                            f"{r.number:02d}": r.reason
                            for r in p.overlaps if r.swath == sw and r.flagged
                        },
                    }
                    for sw, f in p.fits.items()
                },
            }
            for p in result.pairs
        },
        "overlap_phase": phase_summary(result),
        "warnings": result.warnings,
    }  # fmt: skip
    out["report"] = _write_text(rdir / "report.json", json.dumps(report, indent=1) + "\n")
    return out


def _save(fig, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def write_plots(result: EsdResult, outdir: Path) -> list[Path]:
    """``overlaps_<pair>.png`` (ESD shift per overlap with the fit and the flagged overlaps),
    ``overlap_phase_histogram.png`` (before / after the correction) and ``date_shifts.png``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rdir = Path(outdir) / REPORT_DIR
    paths = []
    for p in result.pairs:
        fig = Figure(figsize=(8, 4.5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        for sw in sorted({r.swath for r in p.overlaps}):
            rows = [r for r in p.overlaps if r.swath == sw and r.n_coherent]
            if not rows:
                continue
            t = np.array([r.time for r in rows])
            v = np.array([r.shift for r in rows])
            e = np.array([r.sigma_shift for r in rows])
            bad = np.array([r.flagged for r in rows])
            line = ax.errorbar(t[~bad], v[~bad], e[~bad], fmt="o", ms=4, label=f"IW{sw}")
            if bad.any():
                ax.plot(t[bad], v[bad], "x", ms=9, mew=2, color="tab:red",
                        label=f"IW{sw} flagged")  # fmt: skip
            fit = p.fits.get(sw)
            if fit is not None:
                tt = np.linspace(t.min(), t.max(), 50)
                ax.plot(tt, fit.evaluate(tt), "-", color=line[0].get_color(), lw=1)
        if math.isfinite(p.median_topsstack):
            ax.axhline(p.median_topsstack, color="grey", ls="--", lw=1, label="topsStack median")
        ax.set_xlabel("azimuth time (s)")
        ax.set_ylabel("ESD shift (pixels)")
        ax.set_title(f"{p.name}: {p.shift:+.5f} +- {p.sigma:.5f} px")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small", loc="best")
        fig.tight_layout()
        paths.append(_save(fig, rdir / f"overlaps_{p.name}.png"))
    ov = [r for p in result.pairs for r in p.overlaps if r.n_coherent]
    if ov:
        fig = Figure(figsize=(7, 4.5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        before = np.degrees([r.phase for r in ov])
        after = np.degrees([r.phase_after for r in ov])
        lim = max(float(np.percentile(np.abs(np.r_[before, after]), 99)), 1e-3)
        bins = np.linspace(-lim, lim, 41)
        ax.hist(before, bins, alpha=0.6, label=f"before: mean {np.mean(before):+.3f} deg")
        ax.hist(after, bins, alpha=0.6, label=f"after: mean {np.mean(after):+.3f} deg")
        ax.set_xlabel("overlap ESD phase (deg)")
        ax.set_ylabel("overlaps")
        ax.legend(fontsize="small")
        fig.tight_layout()
        paths.append(_save(fig, rdir / "overlap_phase_histogram.png"))
    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    k = np.arange(len(result.dates))
    ax.errorbar(k, result.network.shift, result.network.sigma, fmt="o", label="esd_misreg")
    ax.plot(k, plain_date_shifts(result), "s", mfc="none", label="topsStack medians")
    ax.set_xticks(k, result.dates, rotation=60, fontsize="small")
    ax.set_ylabel("azimuth shift (pixels)")
    ax.set_title(f"per-date shifts (datum {result.datum})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    paths.append(_save(fig, rdir / "date_shifts.png"))
    return paths

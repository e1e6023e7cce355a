"""Burst-seam check of a stamps_python run (Step 5 or later).

PS on either side of a burst seam of the merged stack were seen by bursts whose Doppler
centroids differ by about ``Kt * burst cycle`` (several kHz), so a residual azimuth shift ``V``
(pixels) of a date leaves in its interferograms a phase ramp in every burst and a jump at every
seam. Per interferogram and seam, the shift is fitted to the wrapped PS phases with a smooth
nuisance polynomial (:func:`stamps_python.numerics.esd.seam_jump`); the seams of an
interferogram are combined with data snooping, and the interferograms inverted to one shift per
date (the reference date 0) with the same test. Burst geometry from ``STACK/reference/IW*.xml``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stamps_python.esd.geometry import MergedBursts, merged_layout, read_reference_swaths
from stamps_python.io.products import load_product, product_path
from stamps_python.numerics.esd import (
    burst_azimuth_time,
    burst_of_line,
    data_snooping,
    invert_network,
    misreg_phase_per_pixel,
    network_components,
    seam_jump,
)
from stamps_python.rundir import read_metadata
from stamps_python.utils import StampsError, atomic_output, get_logger

SEAM_DIR = "esd_seam_check"
THRESHOLD_PX = 0.001
PHASE_FLOOR_RAD = 0.05  # smallest per-PS phase sigma a weight is made from


@dataclass
class SeamOptions:
    """Options of the seam check."""

    threshold: float = THRESHOLD_PX  # pixels: dates beyond are reported
    window: int = 300  # lines on each side of a seam
    alpha: float = 0.001
    nuisance_degree: int = 2
    phase: str = "ph"  # 'ph' (ph2.h5, as formed) or 'rc' (rc2.h5 ph_rc)


@dataclass
class Seam:
    """PS of one seam: burst k above (lines < lo) and k + 1 below (lines >= hi)."""

    swath: int
    burst: int  # 0-based index of the upper burst
    lo: int
    hi: int
    index: np.ndarray  # PS rows
    below: np.ndarray
    y: np.ndarray
    x: np.ndarray
    u: np.ndarray  # rad per pixel of shift

    @property
    def label(self) -> str:
        return f"IW{self.swath} bursts {self.burst + 1}/{self.burst + 2} (line {self.lo})"


@dataclass
class SeamResult:
    """Per interferogram and seam, per interferogram, per date."""

    dates: list[str]
    reference: str
    ifgs: list[tuple[str, str]]
    seams: list[Seam]
    jumps: list[list[dict]]  # [ifg][seam]
    ifg_shift: np.ndarray
    ifg_sigma: np.ndarray
    shift: np.ndarray  # per date, pixels
    sigma: np.ndarray
    exceeding: list[str]
    options: SeamOptions
    warnings: list[str] = field(default_factory=list)


def stack_of_run(run_dir: Path, stack: str | Path | None) -> Path:
    """The topsStack folder of a run: ``stack``, else the parent of metadata's ``merged_dir``."""
    if stack is not None:
        return Path(stack)
    meta = read_metadata(run_dir, ["merged_dir"])
    return Path(meta["merged_dir"]).parent


def _seams(layout: dict[int, MergedBursts], lines, cols, window: int) -> list[Seam]:
    owner_sw = np.full(lines.shape, -1)
    for n, mb in sorted(layout.items()):
        lo, hi = mb.columns()
        owner_sw[(cols >= lo) & (cols < hi)] = n
    seams = []
    for n, mb in sorted(layout.items()):
        on = np.flatnonzero(owner_sw == n)
        burst = burst_of_line(lines[on], mb.yoff, mb.first_valid, mb.n_valid)
        eta = burst_azimuth_time(lines[on], burst, mb.yoff, mb.n_lines, mb.dt)
        kt = mb.kt_of_columns(cols[on], burst)
        u = misreg_phase_per_pixel(kt, eta, mb.dt)
        c_lo, c_hi = mb.columns()
        for k in range(len(mb.swath.bursts) - 1):
            lo = int(mb.yoff[k + 1])
            hi = int(mb.yoff[k] + mb.first_valid[k] + mb.n_valid[k])
            hi = max(hi, lo)
            ln = lines[on]
            above = (burst == k) & (ln < lo) & (ln >= lo - window)
            below = (burst == k + 1) & (ln >= hi) & (ln < hi + window)
            sel = above | below
            if not sel.any():
                continue
            mid = 0.5 * (lo + hi)
            seams.append(
                Seam(
                    swath=n, burst=k, lo=lo, hi=hi, index=on[sel], below=below[sel],
                    y=(ln[sel] - mid) / window,
                    x=(cols[on][sel] - 0.5 * (c_lo + c_hi)) / max(0.5 * (c_hi - c_lo), 1.0),
                    u=u[sel],
                )
            )  # fmt: skip
    return seams


def _fit_seams(ph, ifgs_ix, seams: list[Seam], degree: int, weights: np.ndarray | None):
    """[ifg][seam] (SeamJump or None, mask of the seam's PS with a phase)."""
    out = []
    for i, (a, b) in enumerate(ifgs_ix):
        per = []
        for s in seams:
            z = ph[s.index, i]
            ok = np.abs(z) > 0
            w = None if weights is None else weights[s.index[ok]]
            j = (
                None
                if a == b
                else seam_jump(z[ok], s.y[ok], s.x[ok], s.u[ok], s.below[ok], degree, w)
            )
            per.append((j, ok))
        out.append(per)
    return out


def _load_run(run_dir: Path, phase: str):
    ps_path = product_path(run_dir, "ps2")
    ph_path = product_path(run_dir, "rc2" if phase == "rc" else "ph2")
    for p in (ps_path, ph_path):
        if not p.is_file():
            raise StampsError(
                f"{p}: not found; the seam check needs a run after Step 5 (stamps_main --end 5)"
            )
    ps = load_product(ps_path, None)
    ph = load_product(ph_path, ["ph_rc" if phase == "rc" else "ph"])
    return ps, np.asarray(ph["ph_rc" if phase == "rc" else "ph"])


def seam_check(
    run_dir: str | Path, stack: str | Path | None = None, options: SeamOptions | None = None
) -> SeamResult:
    """Estimate per date the azimuth shift implied by the phase jumps at the burst seams."""
    o = options or SeamOptions()
    log = get_logger()
    run_dir = Path(run_dir)
    if o.phase not in ("ph", "rc"):
        raise StampsError(f"--phase {o.phase}: not ph or rc")
    stack_dir = stack_of_run(run_dir, stack)
    swaths = read_reference_swaths(stack_dir)
    if not swaths:
        raise StampsError(f"{stack_dir / 'reference'}: no IW*.xml (the stack's burst geometry)")
    ps, ph = _load_run(run_dir, o.phase)
    dates = [str(d) for d in np.atleast_1d(ps["dates"])]
    ij = np.asarray(ps["ij"])
    lines, cols = ij[:, 1].astype(np.int64), ij[:, 2].astype(np.int64)
    if "ifgday_ix" in ps:
        ifgs_ix = [tuple(int(v) for v in r) for r in np.asarray(ps["ifgday_ix"])]
    else:
        m = int(ps["master_ix"])
        ifgs_ix = [(m, k) for k in range(len(dates))]
    reference = dates[int(ps["master_ix"])] if "master_ix" in ps else dates[0]
    seams = _seams(merged_layout(swaths), lines, cols, o.window)
    if not seams:
        raise StampsError(f"{run_dir}: no PS near a burst seam (bursts from {stack_dir}/reference)")
    log.info(
        "seam check of %s: %d PS, %d interferograms, %d seams (%s)",
        run_dir, len(lines), len(ifgs_ix), len(seams), ", ".join(s.label for s in seams),
    )  # fmt: skip
    warnings = []
    # pass 1, equal weights: each PS's residual scatter over the interferograms gives its weight
    fits = _fit_seams(ph, ifgs_ix, seams, o.nuisance_degree, None)
    ss = np.zeros(len(lines))
    nn = np.zeros(len(lines))
    for per_ifg in fits:
        for s, (j, ok) in zip(seams, per_ifg, strict=True):
            if j is not None:
                np.add.at(ss, s.index[ok], j.residual**2)
                np.add.at(nn, s.index[ok], 1.0)
    var = np.where(nn > 0, ss / np.maximum(nn, 1.0), np.pi**2 / 3.0)
    weights = 1.0 / np.maximum(var, PHASE_FLOOR_RAD**2)
    fits = _fit_seams(ph, ifgs_ix, seams, o.nuisance_degree, weights)
    jumps: list[list[dict]] = []
    vals, sigs, used = [], [], []
    for (a, b), per_ifg in zip(ifgs_ix, fits, strict=True):
        if a == b:
            jumps.append([])
            continue
        rows, est = [], []
        for s, (j, ok) in zip(seams, per_ifg, strict=True):
            row = {"seam": s.label, "n_ps": int(ok.sum())}
            if j is None:
                row["note"] = "too few PS"
            else:
                row.update(shift_px=j.shift, sigma_px=j.sigma, jump_rad=j.jump, n_used=j.n_ps)
                est.append((len(rows), j.shift, j.sigma))
            rows.append(row)
        if est:
            e = np.array(est)
            sn = data_snooping(np.ones((len(e), 1)), e[:, 1], e[:, 2], o.alpha,
                               max_removed=max(0, (len(e) - 1) // 2))  # fmt: skip
            for q, (r_ix, _, _) in enumerate(est):
                rows[int(r_ix)]["w"] = float(sn.w[q]) if math.isfinite(sn.w[q]) else None
                if not sn.active[q]:
                    rows[int(r_ix)]["flagged"] = f"w = {sn.w[q]:+.1f} beyond +-{sn.critical:.2f}"
            vals.append(float(sn.x[0]))
            sigs.append(float(np.sqrt(sn.cov[0, 0])))
            used.append((dates[a], dates[b]))
        else:
            msg = f"interferogram {dates[a]}_{dates[b]}: no seam with enough PS"
            warnings.append(msg)
            log.warning("warning: %s", msg)
        jumps.append(rows)
    if not used:
        raise StampsError(f"{run_dir}: no interferogram has a burst seam with enough PS")
    linked = next(g for g in network_components(dates, used) if reference in g)
    if len(linked) < len(dates):
        msg = "no seam estimate links " + " ".join(d for d in dates if d not in linked)
        msg += f" to the reference {reference}; their shifts are left empty"
        warnings.append(msg)
        log.warning("warning: %s", msg)
    keep = [i for i, (a, b) in enumerate(used) if a in linked and b in linked]
    net = invert_network(
        linked, [used[i] for i in keep], np.array(vals)[keep], np.array(sigs)[keep],
        reference, o.alpha,
    )  # fmt: skip
    where = {d: k for k, d in enumerate(linked)}
    shift = np.array([net.shift[where[d]] if d in where else np.nan for d in dates])
    sigma = np.array([net.sigma[where[d]] if d in where else np.nan for d in dates])
    exceeding = [d for d, v in zip(dates, shift, strict=True) if abs(v) > o.threshold]
    for d, v, s in zip(dates, shift, sigma, strict=True):
        mark = "  > threshold" if d in exceeding else ""
        log.info("%s: seam shift %+.5f +- %.5f px%s", d, v, s, mark)
    log.info("dates beyond %g px: %s", o.threshold, ", ".join(exceeding) if exceeding else "none")
    full_v = np.full(len(ifgs_ix), np.nan)
    full_s = np.full(len(ifgs_ix), np.nan)
    k = 0
    for i, rows in enumerate(jumps):
        if any("shift_px" in r for r in rows):
            full_v[i], full_s[i] = vals[k], sigs[k]
            k += 1
    return SeamResult(
        dates, reference, [(dates[a], dates[b]) for a, b in ifgs_ix], seams, jumps,
        full_v, full_s, shift, sigma, exceeding, o, warnings,
    )  # fmt: skip


def write_seam_outputs(res: SeamResult, outdir: str | Path, plots: bool = True) -> list[Path]:
    """``seam_check.json``, ``seam_dates.csv``, ``seam_jumps.csv`` and ``seam_shifts.png`` in
    ``outdir/esd_seam_check``."""
    sdir = Path(outdir) / SEAM_DIR
    paths = []

    def text(path: Path, body: str) -> None:
        with atomic_output(path) as tmp:
            tmp.write_text(body, encoding="utf-8")
        paths.append(path)

    report = {
        "units": "azimuth shift of each date in pixels (SLC sampled that many lines late); "
        "interferogram phase = -2 pi dt Kt eta x shift in each burst",
        "reference_date": res.reference,
        "threshold_px": res.options.threshold,
        "window_lines": res.options.window,
        "alpha": res.options.alpha,
        "phase": res.options.phase,
        "seams": [s.label for s in res.seams],
        "dates": {
            d: {
                "shift_px": float(v) if math.isfinite(v) else None,
                "sigma_px": float(s) if math.isfinite(s) else None,
                "exceeds": d in res.exceeding,
            }
            for d, v, s in zip(res.dates, res.shift, res.sigma, strict=True)
        },
        "exceeding": res.exceeding,
        "interferograms": {
            f"{a}_{b}": {"shift_px": None if not math.isfinite(v) else float(v), "seams": rows}
            for (a, b), v, rows in zip(res.ifgs, res.ifg_shift, res.jumps, strict=True)
            if a != b
        },
        "warnings": res.warnings,
    }
    text(sdir / "seam_check.json", json.dumps(report, indent=1) + "\n")
    body = "date,shift_px,sigma_px,exceeds\n" + "".join(
        f"{d},{float(v)!r},{float(s)!r},{int(d in res.exceeding)}\n"
        for d, v, s in zip(res.dates, res.shift, res.sigma, strict=True)
    )
    text(sdir / "seam_dates.csv", body)
    lines = ["interferogram,seam,n_ps,shift_px,sigma_px,jump_rad,w,flagged"]
    for (a, b), rows in zip(res.ifgs, res.jumps, strict=True):
        for r in rows:
            vals = [r.get(k, "") for k in ("shift_px", "sigma_px", "jump_rad", "w")]
            vals = ["" if v is None else v for v in vals]
            lines.append(
                f"{a}_{b},{r['seam']},{r['n_ps']},{vals[0]},{vals[1]},{vals[2]},{vals[3]},"
                f'"{r.get("flagged", "")}"'
            )
    text(sdir / "seam_jumps.csv", "\n".join(lines) + "\n")
    if plots:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8, 4.5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        k = np.arange(len(res.dates))
        ax.errorbar(k, res.shift, res.sigma, fmt="o")
        for sgn in (-1, 1):
            ax.axhline(sgn * res.options.threshold, color="tab:red", ls="--", lw=1)
        ax.set_xticks(k, res.dates, rotation=60, fontsize="small")
        ax.set_ylabel("azimuth shift from the seams (pixels)")
        ax.set_title(f"burst-seam check (reference {res.reference})")
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        png = sdir / "seam_shifts.png"
        with atomic_output(png) as tmp:
            fig.savefig(tmp, format="png")
        paths.append(png)
    return paths

"""The ESD estimate of a topsStack work folder: per pair and sub-swath the ESD phase of every
overlap, the weighted polynomial in azimuth time with data snooping, the pair shift; then the
pair network inverted to one shift per date (pixels, topsStack's convention ``angle / freq``)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np

from stamps_python.esd.folders import EsdFolders, PairFolder
from stamps_python.esd.geometry import NOMINAL_BURST_CYCLE_S, Swath
from stamps_python.numerics.esd import (
    AzimuthFit,
    NetworkSolution,
    combine,
    fit_azimuth_polynomial,
    invert_network,
    network_components,
    overlap_phase,
    pixel_offsets,
)
from stamps_python.utils import StampsError, get_logger

DISTURBANCE_PX = 0.01  # a residual above this marks azimuth ground motion or the ionosphere


@dataclass
class EsdOptions:
    """Options of the ESD estimate."""

    coherence_threshold: float = 0.85  # stackSentinel's default -e
    degree: int = 0  # polynomial in azimuth time per sub-swath: 0, 1 or 2
    alpha: float = 0.001  # significance of the w-test
    sigma_floor: float = 0.0005  # pixels, added in quadrature to each overlap's sigma
    datum: str | None = None  # date of zero shift (default: the stack reference date)


@dataclass
class OverlapResult:
    """One overlap of one pair and sub-swath."""

    pair: str
    swath: int
    number: int
    time: float  # s after the earliest burst of the reference swaths
    n_coherent: int = 0
    phase: float = np.nan  # rad
    sigma_phase: float = np.nan  # rad
    freq: float = np.nan  # rad per pixel
    shift: float = np.nan  # pixels
    sigma_shift: float = np.nan  # pixels (pixel noise only)
    fitted: float = np.nan  # pixels, the polynomial at this overlap
    residual: float = np.nan  # pixels, shift - fitted
    w: float = np.nan
    flagged: bool = False
    reason: str = ""
    phase_after: float = np.nan  # rad, phase - freq * (date shift difference)


@dataclass
class PairResult:
    """One pair: its shift (pixels) from the sub-swath fits, and topsStack's plain median."""

    reference: str
    secondary: str
    shift: float = np.nan
    sigma: float = np.nan
    n_coherent: int = 0
    median_topsstack: float = np.nan
    mean_pixels: float = np.nan
    std_pixels: float = np.nan
    fits: dict[int, AzimuthFit] = field(default_factory=dict)
    overlaps: list[OverlapResult] = field(default_factory=list)
    w: float = np.nan
    flagged: bool = False
    reason: str = ""

    @property
    def name(self) -> str:
        return f"{self.reference}_{self.secondary}"


@dataclass
class EsdResult:
    """Everything the report, the misreg files and the plots need."""

    pairs: list[PairResult]
    dates: list[str]
    datum: str
    network: NetworkSolution
    options: EsdOptions
    looks: tuple[int, int]
    warnings: list[str]

    def date_shift(self) -> dict[str, float]:
        return dict(zip(self.dates, self.network.shift.tolist(), strict=True))


def _reason(w: float, k: float, alpha: float, residual: float) -> str:
    text = f"w = {w:+.1f} beyond +-{k:.2f} (alpha {alpha:g}), residual {residual:+.4f} px"
    if abs(residual) > DISTURBANCE_PX:
        text += f" > {DISTURBANCE_PX} px: azimuth ground motion or ionosphere"
    return text


def _times(pf: PairFolder, sw: int, swaths: dict[int, Swath], t_ref) -> dict[int, float]:
    geom = swaths.get(sw)
    times = geom.overlap_times(t_ref) if geom is not None else {}
    return {nn: times.get(nn, nn * NOMINAL_BURST_CYCLE_S) for nn in pf.swaths[sw]}


def estimate_pair(
    pf: PairFolder, swaths: dict[int, Swath], options: EsdOptions, t_ref, warnings: list[str]
) -> PairResult:
    """ESD of one pair: every overlap's phase, the fit per sub-swath, the pair shift."""
    log = get_logger()
    res = PairResult(pf.reference, pf.secondary)
    pixels = []
    swath_means = []
    for sw in sorted(pf.swaths):
        times = _times(pf, sw, swaths, t_ref)
        rows = []
        for nn in sorted(pf.swaths[sw]):
            files = pf.swaths[sw][nn]
            ifg, cor, freq = files.read()
            pixels.append(pixel_offsets(ifg, cor, freq, options.coherence_threshold))
            est = overlap_phase(ifg, cor, freq, options.coherence_threshold)
            row = OverlapResult(pf.name, sw, nn, times[nn])
            if est is None:
                row.reason = f"no coherent point (coherence > {options.coherence_threshold:g})"
                msg = f"{files.label}: {row.reason}; left out"
                warnings.append(msg)
                log.warning("warning: %s", msg)
            else:
                row.n_coherent = est.n_coherent
                row.phase, row.sigma_phase = est.phase, est.sigma_phase
                row.freq, row.shift, row.sigma_shift = est.freq, est.shift, est.sigma_shift
            rows.append(row)
        res.overlaps += rows
        good = [r for r in rows if r.n_coherent > 0]
        if not good:
            continue
        fit = fit_azimuth_polynomial(
            np.array([r.time for r in good]),
            np.array([r.shift for r in good]),
            np.array([r.sigma_shift for r in good]),
            options.degree,
            options.alpha,
            options.sigma_floor,
        )
        res.fits[sw] = fit
        fitted = fit.evaluate(np.array([r.time for r in good]))
        for i, r in enumerate(good):
            r.fitted = float(fitted[i])
            r.residual = r.shift - r.fitted
            r.w = float(fit.snoop.w[i])
            if not fit.snoop.active[i]:
                r.flagged = True
                r.reason = _reason(r.w, fit.snoop.critical, options.alpha, r.residual)
        swath_means.append((fit.mean, fit.sigma_mean))
        res.n_coherent += int(sum(r.n_coherent for r in good))
    vals = np.concatenate(pixels) if pixels else np.zeros(0)
    if vals.size:
        res.median_topsstack = float(np.median(vals))
        res.mean_pixels = float(np.mean(vals))
        res.std_pixels = float(np.std(vals))
    if swath_means:
        m = np.array(swath_means)
        res.shift, res.sigma = combine(m[:, 0], m[:, 1])
    return res


def datum_date(dates: list[str], swaths: dict[int, Swath], wanted: str | None) -> str:
    """The date whose shift is 0: ``wanted``, else the stack reference (date of the reference
    swath's first burst) when in the network, else the first date."""
    if wanted is not None:
        if wanted not in dates:
            raise StampsError(
                f"--datum {wanted}: not a date of the pairs ({dates[0]}..{dates[-1]})"
            )
        return wanted
    if swaths:
        first = min(b.sensing_start for s in swaths.values() for b in s.bursts)
        ref = first.strftime("%Y%m%d")
        if ref in dates:
            return ref
    return dates[0]


def estimate(folders: EsdFolders, swaths: dict[int, Swath], options: EsdOptions) -> EsdResult:
    """The whole ESD estimate (see the module docstring); a disconnected pair network is a
    one-line StampsError naming the groups of dates."""
    log = get_logger()
    warnings: list[str] = []
    bursts = [b for s in swaths.values() for b in s.bursts]
    t_ref = min(b.sensing_start for b in bursts) if bursts else _dt.datetime(2000, 1, 1)
    pairs = []
    for pf in folders.pairs:
        pr = estimate_pair(pf, swaths, options, t_ref, warnings)
        if not np.isfinite(pr.shift):
            msg = f"{pf.path}: no overlap with coherent points; pair left out"
            warnings.append(msg)
            log.warning("warning: %s", msg)
        n_flag = sum(r.flagged for r in pr.overlaps)
        log.info(
            "%s: shift %+.5f +- %.5f px from %d overlaps (%d flagged); topsStack median %+.5f px",
            pr.name, pr.shift, pr.sigma, sum(r.n_coherent > 0 for r in pr.overlaps), n_flag,
            pr.median_topsstack,
        )  # fmt: skip
        pairs.append(pr)
    usable = [p for p in pairs if np.isfinite(p.shift)]
    dates = sorted({d for p in pairs for d in (p.reference, p.secondary)})
    groups = network_components(dates, [(p.reference, p.secondary) for p in usable])
    if len(groups) > 1:
        text = " | ".join(" ".join(g) for g in groups)
        raise StampsError(
            f"the pair network is disconnected ({len(groups)} groups: {text}); add pairs "
            "linking them (stackSentinel.py --num_overlap_connections)"
        )
    datum = datum_date(dates, swaths, options.datum)
    net = invert_network(
        dates,
        [(p.reference, p.secondary) for p in usable],
        np.array([p.shift for p in usable]),
        np.array([p.sigma for p in usable]),
        datum,
        options.alpha,
    )
    for i, p in enumerate(usable):
        p.w = float(net.snoop.w[i])
        if not net.snoop.active[i]:
            p.flagged = True
            p.reason = _reason(p.w, net.snoop.critical, options.alpha, float(net.snoop.residual[i]))
            log.info("%s: disagrees with the network, %s", p.name, p.reason)
    shift = dict(zip(dates, net.shift, strict=True))
    for p in pairs:
        d = shift[p.secondary] - shift[p.reference]
        for r in p.overlaps:
            if r.n_coherent:
                r.phase_after = float(np.angle(np.exp(1j * (r.phase - r.freq * d))))
    return EsdResult(pairs, dates, datum, net, options, folders.looks, warnings)

"""``cr_insar``'s work: read the CR list and the stack, locate each CR, search (v, dh) by
temporal coherence, solve the nonlinear motion on the pair network, run both baselines and
write the outputs (see docs/cr_insar.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stamps_python.cr import inputs as cin
from stamps_python.cr import outputs as cout
from stamps_python.cr.locate import Located, locate
from stamps_python.numerics import cr_search as cs
from stamps_python.utils import StampsError, datenum, datestr, get_logger

AMBIGUOUS_RATIO = 0.9  # second peak / maximum above which a CR is flagged ambiguous


@dataclass(frozen=True)
class CrOptions:
    """cr_insar's options (the command line's, same names): network kind and SB list, the
    reference date and CR, search bounds (mm/yr, m) and steps (None: automatic), chip side
    ``window`` (pixels), ``oversample`` factor, peak ``search_radius`` (pixels), the SCR below
    which a CR is flagged (dB), the baseline's low-pass sigma (days), GNSS file, PNGs."""

    network: str = "all"
    sb_list: Path | None = None
    reference_date: str | None = None
    reference_cr: str | None = None
    v_range: tuple[float, float] = (-100.0, 100.0)
    dh_range: tuple[float, float] = (-30.0, 30.0)
    v_step: float | None = None
    dh_step: float | None = None
    window: int = 32
    oversample: int = 16
    search_radius: float = 4.0
    min_scr_db: float = 10.0
    lowpass_days: float = 70.0
    gnss: Path | None = None
    plots: bool = True


@dataclass
class CrResult:
    """Per CR (list order): names, located positions, fits (None for the reference CR),
    displacement series (mm) of the method and of the baselines, and the files written."""

    names: list[str]
    ref_ix: int
    dates: list[str]
    located: list[Located]
    fits: list[cs.CoherenceFit | None]
    series: dict[str, np.ndarray]
    table: dict[str, list]
    files: list[Path] = field(default_factory=list)


def check_options(options: CrOptions) -> None:
    """One-line errors for option values that cannot work."""
    for name, (lo, hi) in (("--v-range", options.v_range), ("--dh-range", options.dh_range)):
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise StampsError(f"{name} {lo} {hi}: need MIN < MAX, both finite")
    for name, step in (("--v-step", options.v_step), ("--dh-step", options.dh_step)):
        if step is not None and not (np.isfinite(step) and step > 0):
            raise StampsError(f"{name} {step}: must be > 0")
    if options.window < 8:
        raise StampsError(f"--window {options.window}: at least 8 pixels")
    if not 1 <= options.oversample <= 128:
        raise StampsError(f"--oversample {options.oversample}: must be 1..128")
    if not 0 < options.search_radius < options.window / 2 - 2:
        raise StampsError(
            f"--search-radius {options.search_radius}: must be > 0 and below --window / 2 - 2"
        )
    if not options.lowpass_days > 0:
        raise StampsError(f"--lowpass-days {options.lowpass_days}: must be > 0")


def _los_unit(inc_deg: float, az_deg: float) -> np.ndarray:
    """East, north, up of the unit vector from the target to the sensor (ISCE los.rdr.full:
    band 1 incidence, band 2 azimuth anticlockwise from north)."""
    inc, az = np.radians(inc_deg), np.radians(az_deg)
    return np.array([-np.sin(az) * np.sin(inc), np.cos(az) * np.sin(inc), np.cos(inc)])


def run_cr_insar(
    stack: str | Path, cr_list: str | Path, output: str | Path, options: CrOptions = CrOptions()
) -> CrResult:
    """Run the CR method on ``stack`` for the CRs of ``cr_list`` and write into ``output``."""
    log = get_logger()
    start = time.perf_counter()
    check_options(options)
    output = Path(output)
    crl = cin.read_cr_list(cr_list, options.reference_cr)
    inputs = cin.open_inputs(stack, options.reference_date)
    pairs = cin.network(options.network, inputs, options.sb_list)
    names, ref = crl.names, crl.ref_ix
    if crl.lon is not None:
        line0, sample0 = cin.lonlat_to_radar(inputs.stack, names, crl.lon, crl.lat)
    else:
        line0, sample0 = crl.line, crl.sample
    r0, c0 = cin.check_inside(inputs.stack, names, line0, sample0, options.window)
    gnss = cin.read_gnss(options.gnss, names) if options.gnss is not None else None
    n_dates = len(inputs.dates)
    log.info(
        "cr_insar: %d CRs (reference %s), %d dates (reference %s), %s network of %d pairs",
        len(names), names[ref], n_dates, inputs.reference, options.network, len(pairs),
    )  # fmt: skip
    period = cs.velocity_ambiguity(inputs.meta["wavelength"], inputs.days)
    if options.v_range[1] - options.v_range[0] >= period:
        log.warning(
            "--v-range %g %g is wider than the velocity ambiguity lambda / (2 T0) = %.1f mm/yr: "
            "aliases will give equal peaks", *options.v_range, period,
        )  # fmt: skip
    chips = cin.read_chips(inputs, names, r0, c0, options.window)
    located = []
    for i in range(len(names)):
        origin = (int(r0[i]), int(c0[i]))
        located.append(locate(chips[i], origin, float(line0[i]), float(sample0[i]),
                              options.oversample, options.search_radius))  # fmt: skip
    del chips
    line = np.array([p.line for p in located])
    sample = np.array([p.sample for p in located])
    scr_med = np.array([float(np.median(p.scr_db)) for p in located])
    for i, p in enumerate(located):
        if p.on_edge:
            log.warning(
                "CR %s: the brightest point lies on the edge of the %.1f-pixel search radius "
                "around the listed position (line %.1f, sample %.1f): check the position",
                names[i], options.search_radius, line0[i], sample0[i],
            )  # fmt: skip
        if scr_med[i] < options.min_scr_db:
            log.warning(
                "CR %s: median SCR %.1f dB is below --min-scr %.1f dB: its phase is too noisy "
                "to use (phase noise about %.2f rad)", names[i], scr_med[i], options.min_scr_db,
                1 / np.sqrt(2 * 10 ** (scr_med[i] / 10)),
            )  # fmt: skip
    geo = cin.cr_geometry(inputs, line, sample)
    wavelength = inputs.meta["wavelength"]
    a, b = cs.date_coefficients(wavelength, inputs.days, geo.bperp_m, geo.slant_range_m,
                                np.radians(geo.inc_deg), inputs.ref_ix)  # fmt: skip
    values = np.stack([p.values for p in located])
    rel = values * np.conj(values[ref])[None, :]
    psi = np.angle(rel * np.conj(rel[:, [inputs.ref_ix]]))
    pa = cs.pair_values(a, pairs)
    pb = cs.pair_values(b, pairs)
    phase = cs.wrap(cs.pair_values(psi, pairs))
    inc_matrix = cs.pair_incidence(pairs, n_dates)
    series = {
        m: np.zeros((len(names), n_dates)) for m in ("coherence", "periodogram", "unwrapping")
    }
    fits: list[cs.CoherenceFit | None] = []
    base_v = {m: np.zeros(len(names)) for m in ("periodogram", "unwrapping")}
    base_dh = {m: np.zeros(len(names)) for m in ("periodogram", "unwrapping")}
    for i in range(len(names)):
        if i == ref:
            fits.append(None)
            continue
        fit = cs.coherence_search(phase[i], pa, pb[i], options.v_range, options.dh_range,
                                  options.v_step, options.dh_step, inc_matrix)  # fmt: skip
        fits.append(fit)
        if fit.border:
            log.warning(
                "CR %s: the coherence maximum lies on the search border (%s): widen --v-range "
                "/ --dh-range", names[i], fit.border,
            )  # fmt: skip
        if fit.second_ratio > AMBIGUOUS_RATIO:
            log.warning(
                "CR %s: ambiguous, a second peak at v %.1f mm/yr, dh %.1f m reaches %.2f of the "
                "maximum", names[i], fit.second_v, fit.second_dh, fit.second_ratio,
            )  # fmt: skip
        nl = cs.network_solve(cs.pair_residuals(phase[i], pa, pb[i], fit), pairs, inputs.dates,
                              inputs.ref_ix)  # fmt: skip
        series["coherence"][i] = cs.displacement_series(
            fit.v, nl, inputs.days, inputs.ref_ix, wavelength
        )
        per = cs.periodogram_lowpass(fit, phase[i], pa, pb[i], pairs, inputs.dates, inputs.days,
                                     inputs.ref_ix, options.lowpass_days)  # fmt: skip
        unw = cs.unwrap_in_time(psi[i], inputs.days, a, b[i], inputs.ref_ix)
        for name, bf in (("periodogram", per), ("unwrapping", unw)):
            base_v[name][i], base_dh[name][i] = bf.v, bf.dh
            series[name][i] = cs.displacement_series(
                bf.v, bf.nonlinear_rad, inputs.days, inputs.ref_ix, wavelength
            )
        log.info(
            "CR %s: v %.2f +- %.2f mm/yr, dh %.2f +- %.2f m, gamma %.3f, second peak %.2f, "
            "SCR %.1f dB, line %.3f sample %.3f", names[i], fit.v, fit.sigma_v, fit.dh,
            fit.sigma_dh, fit.gamma, fit.second_ratio, scr_med[i], line[i], sample[i],
        )  # fmt: skip

    def per_fit(attr: str) -> list[float]:
        return [0.0 if f is None else float(getattr(f, attr)) for f in fits]

    ts = series["coherence"]
    table: dict[str, list] = {
        "name": names,
        "reference": [int(i == ref) for i in range(len(names))],
        "lon": geo.lon.tolist(),
        "lat": geo.lat.tolist(),
        "line": line.tolist(),
        "sample": sample.tolist(),
        "line_listed": np.asarray(line0, float).tolist(),
        "sample_listed": np.asarray(sample0, float).tolist(),
        "offset_px": np.hypot(line - line0, sample - sample0).tolist(),
        "scr_db": scr_med.tolist(),
        "scr_min_db": [float(np.min(p.scr_db)) for p in located],
        "hgt_dem_m": geo.hgt.tolist(),
        "v_mm_yr": per_fit("v"),
        "sigma_v_mm_yr": per_fit("sigma_v"),
        "dh_m": per_fit("dh"),
        "sigma_dh_m": per_fit("sigma_dh"),
        "gamma": [1.0 if f is None else f.gamma for f in fits],
        "second_peak_ratio": per_fit("second_ratio"),
        "border": ["" if f is None else f.border for f in fits],
        "v_periodogram_mm_yr": base_v["periodogram"].tolist(),
        "dh_periodogram_m": base_dh["periodogram"].tolist(),
        "v_unwrap_mm_yr": base_v["unwrapping"].tolist(),
        "dh_unwrap_m": base_dh["unwrapping"].tolist(),
        "cum_disp_mm": (ts[:, -1] - ts[:, 0]).tolist(),
    }
    if crl.height is not None:
        table["height_m"] = crl.height.tolist()
    for j, d in enumerate(inputs.dates):
        table[f"D{d}"] = ts[:, j].astype(np.float32).tolist()
    result = CrResult(names, ref, inputs.dates, located, fits, series, table)
    _write(result, output, inputs, options, geo, line0, sample0, gnss, pairs)
    log.info("cr_insar wrote %d files to %s in %.1f s", len(result.files), output,
             time.perf_counter() - start)  # fmt: skip
    return result


def _gnss_table(
    result: CrResult, inputs: cin.StackInputs, geo: cin.CrGeometry, gnss: cin.Gnss
) -> dict:
    """GNSS ENU over each period projected on the LOS beside the InSAR displacement over the
    same period (interpolated in time), both relative to the reference CR."""
    names, ref = result.names, result.ref_ix
    ts = result.series["coherence"]

    def los(i: int) -> float:
        start, end, e, n, u = gnss.rows[names[i]]
        return float(_los_unit(geo.inc_deg[i], geo.los_az_deg[i]) @ np.array([e, n, u]))

    ref_los = los(ref) if names[ref] in gnss.rows else 0.0
    rows: dict[str, list] = {k: [] for k in ("name", "start", "end", "gnss_los_mm",
                                              "insar_mm", "difference_mm")}  # fmt: skip
    for i, name in enumerate(names):
        if name not in gnss.rows or i == ref:
            continue
        start, end = gnss.rows[name][:2]
        d0, d1 = (float(datenum(x)) for x in (start, end))
        if d0 < inputs.days.min() or d1 > inputs.days.max():
            raise StampsError(
                f"--gnss {gnss.path}: period {start}..{end} of {name} is outside the stack "
                f"({datestr(inputs.days.min())}..{datestr(inputs.days.max())})"
            )
        insar = float(np.interp(d1, inputs.days, ts[i]) - np.interp(d0, inputs.days, ts[i]))
        g = los(i) - ref_los
        for key, value in zip(rows, (name, start, end, g, insar, insar - g)):
            rows[key].append(value)
    return rows


def _write(
    result: CrResult, output: Path, inputs: cin.StackInputs, options: CrOptions,
    geo: cin.CrGeometry, line0: np.ndarray, sample0: np.ndarray, gnss: cin.Gnss | None,
    pairs: np.ndarray,
) -> None:  # fmt: skip
    """Write the tables, the GeoPackage, the GNSS comparison and the PNGs into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    files = result.files
    files.append(cout.write_csv(output / "cr_insar.csv", result.table))
    meta = {
        "method": "Fan et al. 2015: temporal coherence search of (v, dh), nonlinear motion by "
        "least squares on the pair network",
        "stack": str(inputs.stack.merged.resolve()),
        "reference_date": inputs.reference,
        "reference_cr": result.names[result.ref_ix],
        "network": options.network,
        "n_pairs": int(len(pairs)),
        "units": "v mm/yr, dh m, D fields mm (LOS, toward the satellite +, 0 on the reference "
        "date, relative to the reference CR), positions 0-based pixels",
    }
    files.append(cout.write_gpkg(output / "cr_insar.gpkg", result.table, meta))
    scr = {"name": result.names}
    for j, d in enumerate(result.dates):
        scr[f"D{d}"] = [float(p.scr_db[j]) for p in result.located]
    files.append(cout.write_csv(output / "cr_insar_scr.csv", scr))
    ser: dict[str, list] = {"name": [], "method": []}
    for j, d in enumerate(result.dates):
        ser[f"D{d}"] = []
    for method, values in result.series.items():
        for i, name in enumerate(result.names):
            ser["name"].append(name)
            ser["method"].append(method)
            for j, d in enumerate(result.dates):
                ser[f"D{d}"].append(float(values[i, j]))
    files.append(cout.write_csv(output / "cr_insar_series.csv", ser))
    if gnss is not None:
        rows = _gnss_table(result, inputs, geo, gnss)
        files.append(cout.write_csv(output / "cr_insar_gnss.csv", rows))
        print(f"{'CR':<10} {'period':<18} {'GNSS LOS mm':>12} {'InSAR mm':>10} {'diff mm':>9}")
        for k in range(len(rows["name"])):
            print(
                f"{rows['name'][k]:<10} {rows['start'][k]}-{rows['end'][k]} "
                f"{rows['gnss_los_mm'][k]:>12.2f} {rows['insar_mm'][k]:>10.2f} "
                f"{rows['difference_mm'][k]:>9.2f}"
            )
    if options.plots:
        for i, name in enumerate(result.names):
            p = result.located[i]
            files.append(cout.plot_chip(output / f"cr_{name}_chip.png", name, p,
                                        (float(line0[i]), float(sample0[i]))))  # fmt: skip
            fit = result.fits[i]
            if fit is None:
                continue
            files.append(cout.plot_coherence(output / f"cr_{name}_coherence.png", name, fit))
            files.append(cout.plot_series(
                output / f"cr_{name}_timeseries.png", name, result.dates,
                {m: s[i] for m, s in result.series.items()},
            ))  # fmt: skip

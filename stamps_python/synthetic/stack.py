"""``generate_stack``: the stages of a synthetic stack in order (geometry, scene, deformation,
baselines, reference metadata, dates), the file attributes and the PS group of ``truth.h5``."""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import h5py
import numpy as np

from stamps_python.synthetic.atmosphere import _date_scalars
from stamps_python.synthetic.baselines import _Baselines, _write_baselines
from stamps_python.synthetic.constants import (
    AZIMUTH_TIME_INTERVAL_S,
    EARTH_RADIUS_M,
    RANGE_PIXEL_M,
    SATELLITE_ALTITUDE_M,
    WAVELENGTH_M,
)
from stamps_python.synthetic.corner_reflectors import (
    CR_CSV,
    _build_corner_reflectors,
    _write_cr_truth,
)
from stamps_python.synthetic.dates import decimal_year, make_dates
from stamps_python.synthetic.deformation import _build_deformation, _Deformation
from stamps_python.synthetic.fields import _coarse_grid, _rng
from stamps_python.synthetic.geometry import _build_geometry, _Geometry
from stamps_python.synthetic.isce_xml import _make_bursts, _reference_product_xml, _write_text
from stamps_python.synthetic.misreg import check_azimuth_misreg, misreg_hook
from stamps_python.synthetic.profiles import PROFILES
from stamps_python.synthetic.scatterers import CLASS_NAMES, _build_scene, _Scene
from stamps_python.synthetic.slc import PHASE_CUBES, _phase_terms, _PhaseTerms, _write_dates
from stamps_python.synthetic.truth import _CONVENTIONS, TRUTH_CUBE_AUTO_MAX, _h5_cube, _h5_write
from stamps_python.utils import (
    StampsError,
    check_output_dir,
    get_logger,
    parse_yyyymmdd,
    peak_memory_mb,
)


def _prepare_outdir(outdir: Path, overwrite: bool) -> None:
    check_output_dir(outdir, "OUTDIR")
    existing = [
        n for n in ("merged", "baselines", "reference", "truth.h5", CR_CSV) if (outdir / n).exists()
    ]
    if existing and not overwrite:
        raise StampsError(
            f"{outdir}: already holds {', '.join(existing)}; pass overwrite=True (--overwrite) "
            "to replace the stack"
        )
    for name in existing:
        target = outdir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    outdir.mkdir(parents=True, exist_ok=True)


def _write_ps_truth(
    h5: h5py.File, scene: _Scene, defo: _Deformation, base: _Baselines, terms: _PhaseTerms,
    geom: _Geometry, t_years: np.ndarray, nuisance: np.ndarray, ps_dem_err: np.ndarray, ref_ix: int,
) -> None:  # fmt: skip
    """Group ``ps``: PS then sidelobe pixels, with their PS's displacement and phase terms."""
    n_ps, n_sl = scene.ps_r.size, scene.sl_r.size
    n_dates = t_years.size
    pr, pc = scene.ps_r, scene.ps_c
    prim = np.concatenate([np.arange(n_ps), scene.sl_p]).astype(np.int64)
    da_all = np.concatenate([scene.ps_da, scene.sl_da]).astype(np.float32)
    g = h5.create_group("ps")
    _h5_write(
        g, "rows", np.concatenate([pr, scene.sl_r]).astype(np.int32), "line", "0-based azimuth line"
    )
    _h5_write(
        g,
        "cols",
        np.concatenate([pc, scene.sl_c]).astype(np.int32),
        "sample",
        "0-based range sample",
    )
    _h5_write(g, "is_sidelobe", np.repeat(np.array([0, 1], np.uint8), [n_ps, n_sl]), "1",
              "1 = sidelobe pixel of the PS at primary_index")  # fmt: skip
    _h5_write(
        g,
        "primary_index",
        prim.astype(np.int32),
        "index",
        "0-based entry of the primary PS in this group",
    )
    _h5_write(g, "amp_dispersion_nominal", da_all, "1", "expected amplitude dispersion")
    _h5_write(g, "scr", (1.0 / (2.0 * da_all.astype(np.float64) ** 2)).astype(np.float32), "1",
              "signal-to-clutter ratio, 1/(2 D_A^2)")  # fmt: skip
    _h5_write(g, "dem_error_m", ps_dem_err[prim], "m", "true scatterer height minus DEM height")
    vel = defo.vel[pr, pc]
    _h5_write(g, "velocity_mm_yr", vel[prim], "mm/yr")
    disp = np.empty((n_ps, n_dates), dtype=np.float32)
    seas = defo.seas_amp[pr, pc]
    for k in range(n_dates):
        disp[:, k] = vel * np.float32(t_years[k]) + seas * np.float32(defo.seas_t[k])
    _h5_write(g, "displacement_mm", disp[prim], "mm", "true LOS displacement per date")
    del disp
    row_t = geom.t_rows[pr]
    dem = np.empty((n_ps, n_dates), dtype=np.float32)
    for k in range(n_dates):
        bc, bu = base.components(k, row_t)
        dem[:, k] = bc * terms.ps_q1 + bu * terms.ps_q2
    dem = dem[:, [ref_ix]] - dem
    _h5_write(
        g,
        "dem_ifg_rad",
        dem[prim],
        "rad",
        "+4pi/lambda*bperp*dem_error/(R sin inc), ifg convention",
    )
    del dem
    _h5_write(g, "nuisance_ifg_rad", (nuisance[:, [ref_ix]] - nuisance)[prim], "rad",
              "nuisance(ref) - nuisance(date): atmosphere + stratified + orbital ramp")  # fmt: skip
    bperp = np.empty((n_ps, n_dates), dtype=np.float32)
    for k in range(n_dates):
        bc, bu = base.components(k, row_t)
        bperp[:, k] = -(bc * terms.ps_cos + bu * terms.ps_sin)
    _h5_write(g, "bperp_m", bperp[prim], "m", "perpendicular baseline at the pixel (ISCE sign)")


def generate_stack(
    outdir: str | Path,
    profile: str = "easy",
    rows: int = 200,
    cols: int = 400,
    n_dates: int | None = None,
    seed: int = 0,
    reference_date: str | None = None,
    start_date: str | None = None,
    truth_cube: str = "auto",
    pass_direction: str = "DESCENDING",
    multilooked: bool = True,
    baseline_text_copies: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    center_lat: float = 37.0,
    center_lon: float = -120.5,
    bowl_centre: tuple[float, float] | None = None,
    bowl_anywhere: bool = False,
    ds_short_fraction: float = 0.0,
    ds_short_alpha12: tuple[float, float] = (0.5, 0.9),
    strat_std: float | None = None,
    terrain_relief: float | None = None,
    corner_reflectors: int = 0,
    azimuth_misreg: dict[str, float] | None = None,
) -> dict:
    """Write a synthetic ISCE2 topsStack stack to ``outdir`` and its truth to ``outdir/truth.h5``.

    ``rows`` x ``cols`` are azimuth lines x range samples of the merged rasters; ``n_dates``
    defaults to the profile's; ``reference_date`` (YYYYMMDD) defaults to the middle date;
    ``start_date`` (YYYYMMDD) to 20210105; ``truth_cube`` ('auto'|'yes'|'no') stores the full
    (dates, rows, cols) displacement cube (auto: when it has at most 20 million values), and
    with it the cubes of the phase terms of every date (PHASE_CUBES: atmosphere, orbital ramp,
    DEM error).
    ``pass_direction`` is 'DESCENDING' (heading -168 deg) or 'ASCENDING' (heading -12 deg).
    ``baseline_text_copies`` also puts the text baselines in ``merged/baselines/REF_SEC/``.
    ``bowl_centre`` = (line fraction, sample fraction), each in [0, 1], puts the subsidence
    bowl centre there; ``bowl_anywhere`` draws it uniformly among the valid pixels of the whole
    scene (default: within the profile's central ``bowl_centre_spread``).
    ``ds_short_fraction`` (0..1) of the distributed scatterers, in spatial patches, become
    class 5 'distributed_short': no long-term coherence, 12-day correlation uniform in
    ``ds_short_alpha12``. ``strat_std`` (rad/km) replaces the profile's per-date stratified
    delay coefficient std (``strat_std_rad_per_km``; the same draws, scaled), ``terrain_relief``
    (m) its hill height scale (``terrain_relief_m``: a mountainous scene). With these six at
    their defaults the stack is the same as without them, byte for byte.
    ``corner_reflectors`` > 0 adds that many corner reflectors (bright point targets, the first
    a stable reference; group ``cr`` of truth.h5 and ``corner_reflectors.csv``); 0 changes
    nothing.
    ``azimuth_misreg`` {YYYYMMDD: pixels} misregisters those dates in azimuth (TOPS burst
    phase ramps, jumps at the seams; ``truth/azimuth_misreg_px``); None or {} changes nothing.
    Everything random derives from ``seed``: the same arguments give byte-identical files.
    Returns the paths written and a summary (counts, dates, timings).
    """
    wall0 = time.perf_counter()
    log = get_logger()
    if profile not in PROFILES:
        raise StampsError(f"profile: '{profile}' is not one of {', '.join(PROFILES)}")
    prof = PROFILES[profile]
    if strat_std is not None:
        if not (np.isfinite(strat_std) and strat_std >= 0):
            raise StampsError(f"strat std: {strat_std} rad/km must be finite and >= 0")
        prof = replace(prof, strat_std_rad_per_km=float(strat_std))
    if terrain_relief is not None:
        if not (np.isfinite(terrain_relief) and 0 <= terrain_relief <= 3000):
            raise StampsError(f"terrain relief: {terrain_relief} m must be in [0, 3000]")
        prof = replace(prof, terrain_relief_m=float(terrain_relief))
    n_dates = prof.n_dates if n_dates is None else int(n_dates)
    rows, cols, seed = int(rows), int(cols), int(seed)
    if rows < 24 or cols < 48:
        raise StampsError(f"rows x cols: {rows} x {cols} is too small (at least 24 x 48)")
    if n_dates < 2:
        raise StampsError(f"dates: {n_dates} is too few (at least 2)")
    if seed < 0:
        raise StampsError(f"seed: {seed} must be a non-negative integer")
    if truth_cube not in ("auto", "yes", "no"):
        raise StampsError(f"truth_cube: '{truth_cube}' is not auto, yes or no")
    if bowl_centre is not None:
        if bowl_anywhere:
            raise StampsError("bowl centre: give either bowl_centre or bowl_anywhere, not both")
        bowl_centre = tuple(float(x) for x in bowl_centre)
        if len(bowl_centre) != 2 or not all(0.0 <= x <= 1.0 for x in bowl_centre):
            raise StampsError(
                f"bowl centre: {bowl_centre} must be 2 fractions (line, sample) in [0, 1]"
            )
    bowl_anywhere = bool(bowl_anywhere)
    ds_short_fraction = float(ds_short_fraction)
    if not 0.0 <= ds_short_fraction <= 1.0:
        raise StampsError(f"ds short fraction: {ds_short_fraction} is not in [0, 1]")
    ds_short_alpha12 = tuple(float(x) for x in ds_short_alpha12)
    if len(ds_short_alpha12) != 2 or not 0.0 < ds_short_alpha12[0] <= ds_short_alpha12[1] < 1.0:
        raise StampsError(
            f"ds short coherence: {ds_short_alpha12} must be LO HI with 0 < LO <= HI < 1"
        )
    corner_reflectors = int(corner_reflectors)
    if corner_reflectors < 0 or corner_reflectors == 1:
        raise StampsError(
            f"corner reflectors: {corner_reflectors} must be 0 or at least 2 (one is the "
            "stable reference)"
        )
    pass_direction = pass_direction.upper()
    if pass_direction not in ("DESCENDING", "ASCENDING"):
        raise StampsError(f"pass_direction: '{pass_direction}' is not DESCENDING or ASCENDING")
    heading_nominal = -168.0 if pass_direction == "DESCENDING" else -12.0
    start = parse_yyyymmdd(start_date or "20210105", "start date")
    dates = make_dates(n_dates, start, prof, _rng(seed, "dates"))
    date_str = [d.strftime("%Y%m%d") for d in dates]
    if reference_date is None:
        ref_ix = n_dates // 2
    else:
        parse_yyyymmdd(reference_date, "reference date")
        if reference_date not in date_str:
            raise StampsError(
                f"reference date: {reference_date} is not an acquisition date "
                f"({n_dates} dates {date_str[0]}..{date_str[-1]}, e.g. {', '.join(date_str[:3])})"
            )
        ref_ix = date_str.index(reference_date)
    ref_str = date_str[ref_ix]
    misreg_px = check_azimuth_misreg(azimuth_misreg, date_str, ref_str)
    t_years = np.array([(d - dates[ref_ix]).days / 365.25 for d in dates])
    dec_year = np.array([decimal_year(d) for d in dates])
    outdir = Path(outdir)
    _prepare_outdir(outdir, overwrite)
    log.info(
        "synthetic %s stack: %d x %d, %d dates %s..%s, reference %s, seed %d",
        profile, rows, cols, n_dates, date_str[0], date_str[-1], ref_str, seed,
    )  # fmt: skip

    def stage(name: str) -> None:
        log.debug(
            "%s: %.1f s, peak RSS %.0f MiB", name, time.perf_counter() - wall0, peak_memory_mb()
        )

    truth_path = outdir / "truth.h5"
    tmp_truth = outdir / f".truth.h5.tmp-{os.getpid()}"
    h5 = h5py.File(tmp_truth, "w")
    try:
        geom, pix = _build_geometry(
            outdir, rows, cols, seed, prof, heading_nominal, center_lat, center_lon, multilooked, h5
        )
        stage("geometry")
        bursts, valid = _make_bursts(rows, cols, _rng(seed, "bursts"))
        grid = _coarse_grid(rows, cols, geom.az_spacing, geom.rg_ground)
        scene, mod_f = _build_scene(
            seed, prof, geom, pix["hgt"], valid, grid, h5, ds_short_fraction, ds_short_alpha12
        )
        del valid
        stage("scene")
        defo, dem_err = _build_deformation(
            seed,
            prof,
            geom,
            pix.pop("east"),
            pix.pop("north"),
            scene,
            mod_f,
            dec_year,
            t_years,
            ref_ix,
            h5,
            bowl_centre,
            bowl_anywhere,
        )
        del mod_f
        crs = None
        if corner_reflectors:
            crs = _build_corner_reflectors(
                seed, corner_reflectors, geom, scene, pix, t_years, ref_ix
            )
        terrain_height = float(pix["hgt"][scene.pixel_class > 0].mean())
        terms = _phase_terms(
            geom, pix.pop("hgt"), pix.pop("inc_deg"), pix.pop("look_deg"), dem_err, scene
        )
        ps_dem_err = dem_err[scene.ps_r, scene.ps_c]
        del dem_err
        stage("deformation")
        base = _write_baselines(
            outdir, seed, prof, geom, bursts, date_str, ref_ix, baseline_text_copies
        )
        sc = _date_scalars(seed, prof, n_dates, ref_ix)
        first_line_utc = _dt.datetime.combine(
            dates[ref_ix],
            _dt.time(14, 1, 12, 345678)
            if pass_direction == "DESCENDING"
            else _dt.time(1, 53, 40, 123456),
        )
        _write_text(
            outdir / "reference" / "IW1.xml",
            _reference_product_xml(
                bursts=bursts, cols=cols, first_line_utc=first_line_utc, orbit=geom.orbit,
                t_first_line=float(geom.t_rows[0]), starting_range=float(geom.ranges[0]),
                pass_direction=pass_direction, terrain_height=terrain_height,
            ),
        )  # fmt: skip
        misreg = misreg_hook(misreg_px, outdir / "reference" / "IW1.xml", rows, cols)
        params = {
            "args": {
                "profile": profile, "rows": rows, "cols": cols, "n_dates": n_dates, "seed": seed,
                "reference_date": ref_str, "start_date": start.strftime("%Y%m%d"),
                "truth_cube": truth_cube, "pass_direction": pass_direction,
                "multilooked": multilooked, "center_lat": center_lat, "center_lon": center_lon,
                "bowl_centre": None if bowl_centre is None else list(bowl_centre),
                "bowl_anywhere": bowl_anywhere, "ds_short_fraction": ds_short_fraction,
                "ds_short_alpha12": list(ds_short_alpha12),
            },
            "profile": asdict(prof),
            "wavelength_m": WAVELENGTH_M,
            "range_pixel_size_m": RANGE_PIXEL_M,
            "azimuth_time_interval_s": AZIMUTH_TIME_INTERVAL_S,
            "starting_range_m": float(geom.ranges[0]),
            "satellite_altitude_m": SATELLITE_ALTITUDE_M,
            "earth_radius_m": EARTH_RADIUS_M,
            "azimuth_ground_spacing_m": geom.az_spacing,
            "range_ground_spacing_center_m": geom.rg_ground,
            "heading_nominal_deg": heading_nominal,
            "seasonal_phase_rad": defo.seas_phase,
            "noisy_date": None if sc.noisy_date is None else date_str[sc.noisy_date],
            "thermal_sigma": scene.sigma_th,
            "bowl": defo.bowl,
            "bursts": [asdict(b) for b in bursts],
        }  # fmt: skip
        if corner_reflectors:  # only then: a stack without reflectors keeps its bytes
            params["args"]["corner_reflectors"] = corner_reflectors
        if misreg_px:  # likewise
            params["args"]["azimuth_misreg"] = {date_str[k]: v for k, v in misreg_px.items()}
        attrs = {
            "generator": "stamps_python.synthetic (ISCE2 topsStack layout)",
            "profile": profile,
            "seed": seed,
            "reference_date": ref_str,
            "wavelength_m": WAVELENGTH_M,
            "heading_deg": geom.heading_deg,
            "heading_nominal_deg": heading_nominal,
            "pass_direction": pass_direction,
            "seasonal_phase_rad": defo.seas_phase,
            "class_names": json.dumps({str(k): v for k, v in CLASS_NAMES.items()}),
            "params_json": json.dumps(params, sort_keys=True),
            "conventions": _CONVENTIONS,
        }
        for key, value in attrs.items():
            h5.attrs[key] = value
        _h5_write(h5, "dates", np.array(date_str, dtype="S8"), "YYYYMMDD")
        _h5_write(h5, "reference_date", np.bytes_(ref_str), "YYYYMMDD")
        _h5_write(h5, "decimal_year", dec_year, "year")
        _h5_write(h5, "t_years", t_years, "year", "time since the reference date, days/365.25")
        _h5_write(
            h5,
            "bperp_m",
            base.bperp_txt,
            "m",
            "perpendicular baseline as in baselines/*.txt (ISCE sign)",
        )
        _h5_write(h5, "bpar_m", base.bpar_txt, "m", "parallel baseline as in baselines/*.txt")
        _h5_write(
            h5, "amp_calibration", sc.cal, "1", "amplitude gain of each date (SLC = gain * scene)"
        )
        _h5_write(
            h5, "atm_std_rad", sc.atm_std, "rad", "std of the turbulent atmosphere of each date"
        )
        _h5_write(h5, "strat_rad_per_km", sc.strat, "rad/km", "stratified phase per km of height")
        _h5_write(
            h5, "ramp_coeffs_rad", sc.ramps, "rad", "orbital ramp across the scene (azimuth, range)"
        )
        _h5_write(
            h5, "noise_factor", sc.noise_factor, "1", "thermal noise amplitude factor of each date"
        )
        _h5_write(
            h5, "seasonal_term", defo.seas_t, "1", "sin(2 pi tau + phi) - sin(2 pi tau_ref + phi)"
        )
        _h5_write(h5, "wavelength_m", WAVELENGTH_M, "m", "radar wavelength")
        _h5_write(h5, "heading_deg", geom.heading_deg, "deg",
                  "azimuth direction of the lat/lon grids, clockwise from north")  # fmt: skip
        cube = truth_cube == "yes" or (
            truth_cube == "auto" and rows * cols * n_dates <= TRUTH_CUBE_AUTO_MAX
        )
        disp_ds = None
        phase_ds = None
        if cube:
            disp_ds = _h5_cube(
                h5, "displacement_mm", (n_dates, rows, cols), "mm",
                "true LOS displacement (toward satellite +) relative to the reference date",
            )  # fmt: skip
            phase_ds = {
                name: _h5_cube(
                    h5,
                    name,
                    (n_dates, rows, cols),
                    "rad",
                    f"{what} of each date, as added to its SLC phase; "
                    "interferogram (reference x conj(date)) phase = X[ref] - X[date]",
                )  # fmt: skip
                for name, (_, what) in PHASE_CUBES.items()
            }
        stage("baselines and metadata")

        nuisance = _write_dates(
            outdir,
            seed,
            dates,
            t_years,
            geom,
            scene,
            defo,
            base,
            sc,
            grid,
            terms,
            disp_ds,
            progress,
            phase_ds,
            corner_reflectors=crs,
            misreg=misreg,
        )
        stage("dates")
        _write_ps_truth(h5, scene, defo, base, terms, geom, t_years, nuisance, ps_dem_err, ref_ix)
        if crs is not None:
            _write_cr_truth(h5, outdir, crs, base, geom, seed, ref_ix)
        if misreg is not None:
            misreg.write_truth(h5, n_dates)
        n_ps, n_sl = scene.ps_r.size, scene.sl_r.size
        n_short = int(np.count_nonzero(scene.pixel_class == 5))

        h5.attrs["complete"] = True
    except BaseException:
        h5.close()
        tmp_truth.unlink(missing_ok=True)
        raise
    h5.close()
    tmp_truth.replace(truth_path)

    elapsed = time.perf_counter() - wall0
    summary = {
        "outdir": str(outdir),
        "truth": str(truth_path),
        "profile": profile,
        "seed": seed,
        "shape": (rows, cols),
        "dates": date_str,
        "reference_date": ref_str,
        "n_ps": int(n_ps),
        "n_sidelobes": int(n_sl),
        "n_ds_short": int(n_short),
        "n_corner_reflectors": corner_reflectors,
        "truth_cube": bool(cube),
        "bperp_m": [float(b) for b in base.bperp_txt],
        "heading_deg": geom.heading_deg,
        "slc_dir": str(outdir / "merged" / "SLC"),
        "geom_dir": str(outdir / "merged" / "geom_reference"),
        "baselines_dir": str(outdir / "baselines"),
        "reference_xml": str(outdir / "reference" / "IW1.xml"),
        "elapsed_s": elapsed,
        "peak_rss_mb": peak_memory_mb(),
    }
    log.info(
        "wrote %s: %d PS (+%d sidelobes), %d dates, %.1f s, peak RSS %.0f MiB",
        outdir, n_ps, n_sl, n_dates, elapsed, summary["peak_rss_mb"],
    )  # fmt: skip
    return summary

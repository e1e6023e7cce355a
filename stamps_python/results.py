"""The results model behind ``export_results`` and ``ps_plot``: the run's products (RunData,
:func:`load_run`), the reference area (:class:`Reference`) and the per-PS velocities and time
series of one correction (:func:`compute_results`, :class:`ExportResult`). See docs/export.md.
"""

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python import __version__
from stamps_python.io.products import load_product, product_path
from stamps_python.numerics.defo_model import (
    fit_rows,
    model_design,
    model_projector,
    temporal_coherence,
)
from stamps_python.numerics.scn_filter import spatial_lowpass
from stamps_python.numerics.timeseries import (
    Correction,
    TimeSeries,
    corrected_phase,
    los_time_series,
    reference_ps,
    sb_velocity,
    used_ifg_index,
)
from stamps_python.numerics.tropo import check_tropo_method
from stamps_python.parms import drop_ifg_index0, flag, load_parms, number
from stamps_python.utils import StampsError, datestr, get_logger

DEFAULT_N_BOOT = 100
DEFAULT_SEED = 2008

# Workspace -> (step that writes it, what it holds), for one-line "missing product" errors.
WORKSPACES = {
    "ps2": ("Step 5 (stamps_main --start 5 --end 5)", "merged PS"),
    "pm2": ("Step 5 (stamps_main --start 5 --end 5)", "PS coherence"),
    "rc2": ("Step 5 (stamps_main --start 5 --end 5)", "wrapped phase"),
    "phuw2": ("Step 6 (stamps_main --start 6 --end 6)", "unwrapped phase"),
    "scla2": ("Step 7 (stamps_main --start 7 --end 7)", "SCLA / reference AOE"),
    "scn2": ("Step 8 (stamps_main --start 8 --end 8)", "spatially correlated noise"),
    "tca2": (
        "aps_linear RUN (or TRAIN in MATLAB and aps_import RUN tca2.mat)",
        "tropospheric phase",
    ),
    "tca_sb2": (
        "aps_linear RUN (or TRAIN in MATLAB and aps_import RUN tca_sb2.mat)",
        "small-baseline tropospheric phase",
    ),
    "scla_smooth2": ("Step 7 (stamps_main --start 7 --end 7)", "smoothed SCLA / reference AOE"),
    "scla_sb2": ("Step 7 (stamps_main --start 7 --end 7)", "small-baseline SCLA"),
    "scla_smooth_sb2": ("Step 7 (stamps_main --start 7 --end 7)", "smoothed small-baseline SCLA"),
    "phuw_sb2": ("Step 6 (stamps_main --start 6 --end 6)", "unwrapped small-baseline phase"),
    "phuw_sb_res2": ("Step 6 (stamps_main --start 6 --end 6)", "small-baseline inversion"),
    "hgt2": ("Step 5 (stamps_main --start 5 --end 5)", "DEM height"),
}


# --------------------------------------------------------------------------------------------
# reference


@dataclass(frozen=True)
class Reference:
    """Reference area as StaMPS' ref_lon / ref_lat (deg) box and ref_centre_lonlat / ref_radius
    (deg, m) circle; ``source`` says where it came from (parms or command line)."""

    ref_lon: tuple[float, float] = (-math.inf, math.inf)
    ref_lat: tuple[float, float] = (-math.inf, math.inf)
    ref_centre_lonlat: tuple[float, float] = (0.0, 0.0)
    ref_radius: float = math.inf
    source: str = "parms"

    def select(self, lonlat: np.ndarray, ll0: Sequence[float]) -> np.ndarray | None:
        """0-based reference PS (None: no reference); an empty area is a StampsError."""
        ix = reference_ps(
            lonlat, ll0, self.ref_lon, self.ref_lat, self.ref_centre_lonlat, self.ref_radius
        )
        if ix is not None and ix.size == 0:
            raise StampsError(
                f"no PS in the reference area ({self.describe()}); choose another "
                f"ref_lon/ref_lat/ref_centre_lonlat/ref_radius or --ref-* option"
            )
        return ix

    def describe(self) -> str:
        """The reference area in words."""
        if self.ref_radius == -math.inf:
            return "none (ref_radius = -inf): no reference subtracted"
        parts = []
        if any(math.isfinite(v) for v in (*self.ref_lon, *self.ref_lat)):
            parts.append(
                f"lon {self.ref_lon[0]:g} to {self.ref_lon[1]:g}, lat {self.ref_lat[0]:g} "
                f"to {self.ref_lat[1]:g} deg"
            )
        if math.isfinite(self.ref_radius):
            parts.append(
                f"within {self.ref_radius:g} m of lon {self.ref_centre_lonlat[0]:g}, "
                f"lat {self.ref_centre_lonlat[1]:g}"
            )
        return " and ".join(parts) if parts else "all PS"


def _pair(value: Any, name: str) -> tuple[float, float]:
    vals = [float(v) for v in np.asarray(value, dtype=np.float64).ravel()]
    if len(vals) != 2:
        raise StampsError(f"parameter {name}: two values expected, got {value!r}")
    return vals[0], vals[1]


def reference_from_parms(parms: Mapping[str, Any]) -> Reference:
    """The reference area StaMPS' ``ps_setref`` uses: parameters ref_lon, ref_lat,
    ref_centre_lonlat and ref_radius."""
    return Reference(
        _pair(parms["ref_lon"], "ref_lon"),
        _pair(parms["ref_lat"], "ref_lat"),
        _pair(parms["ref_centre_lonlat"], "ref_centre_lonlat"),
        float(parms["ref_radius"]),
        "parms",
    )


def add_bootstrap_arguments(p: argparse.ArgumentParser) -> None:
    """The --n-boot / --seed options of the velocity standard deviation (V_STDEV, ps_mean_v)."""
    p.add_argument(
        "--n-boot",
        type=int,
        default=DEFAULT_N_BOOT,
        help="bootstrap draws for the velocity std V_STDEV (as ps_mean_v)",
    )
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed of the V_STDEV bootstrap"
    )


def add_aps_argument(p: argparse.ArgumentParser) -> None:
    """The --aps option: the TRAIN correction the 'a' letter subtracts (ps_plot's second
    argument, e.g. ps_plot('v-dao', 'a_linear'))."""

    def method(text: str) -> str:
        try:
            return check_tropo_method(text, "--aps")
        except StampsError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix("--aps: ")) from None

    p.add_argument(
        "--aps",
        type=method,
        metavar="NAME",
        help="TRAIN correction of the 'a' letter: a_l / a_linear, a_era5, a_gacos, a_p, ... "
        "(default: the parameter tropo_method)",
    )


def add_reference_arguments(p: argparse.ArgumentParser) -> None:
    """The --ref-lonlat / --ref-radius / --ref-lon-box / --ref-lat-box options of the export and
    ps_plot (read back by :func:`reference_from_args`)."""
    p.add_argument(
        "--ref-lonlat",
        nargs=2,
        type=float,
        metavar=("LON", "LAT"),
        help="centre of a circular reference area (deg); with --ref-radius (default: "
        "the reference area of the parameters ref_centre_lonlat, ref_radius, "
        "ref_lon, ref_lat)",
    )
    p.add_argument(
        "--ref-radius",
        type=float,
        metavar="M",
        help="radius of the reference circle, m (default: the parameter ref_radius)",
    )
    p.add_argument(
        "--ref-lon-box",
        nargs=2,
        type=float,
        metavar=("MIN", "MAX"),
        help="longitude limits of a reference box (deg; default: the parameter ref_lon)",
    )
    p.add_argument(
        "--ref-lat-box",
        nargs=2,
        type=float,
        metavar=("MIN", "MAX"),
        help="latitude limits of a reference box (deg; default: the parameter ref_lat)",
    )


def reference_from_args(
    ref_lonlat: Sequence[float] | None,
    ref_radius: float | None,
    lon_box: Sequence[float] | None,
    lat_box: Sequence[float] | None,
) -> Reference | None:
    """A reference area from the command line (circle, or box), None when none is given."""
    circle = ref_lonlat is not None or ref_radius is not None
    box = lon_box is not None or lat_box is not None
    if circle and box:
        raise StampsError(
            "give either --ref-lonlat/--ref-radius or --ref-lon-box/--ref-lat-box, not both"
        )
    if circle:
        if ref_lonlat is None or ref_radius is None:
            raise StampsError("--ref-lonlat and --ref-radius go together")
        lon, lat = (float(v) for v in ref_lonlat)
        _check_lonlat(lon, lat, "--ref-lonlat")
        if not (math.isfinite(ref_radius) and ref_radius > 0):
            raise StampsError(f"--ref-radius {ref_radius:g}: a radius in m > 0 is needed")
        return Reference(
            ref_centre_lonlat=(lon, lat), ref_radius=float(ref_radius), source="command line"
        )
    if box:
        lons = tuple(float(v) for v in lon_box) if lon_box is not None else (-math.inf, math.inf)
        lats = tuple(float(v) for v in lat_box) if lat_box is not None else (-math.inf, math.inf)
        for name, (lo, hi) in (("--ref-lon-box", lons), ("--ref-lat-box", lats)):
            if not lo < hi:
                raise StampsError(f"{name} {lo:g} {hi:g}: MIN must be below MAX")
        return Reference(ref_lon=lons, ref_lat=lats, source="command line")  # type: ignore[arg-type]
    return None


def _check_lonlat(lon: float, lat: float, what: str) -> None:
    if not (-180.0 <= lon <= 360.0 and -90.0 <= lat <= 90.0):
        raise StampsError(f"{what} {lon:g} {lat:g}: not a longitude, latitude in degrees")


# --------------------------------------------------------------------------------------------
# inputs


def require_product(run_dir: Path, name: str, why: str) -> Path:
    """Path of workspace ``name`` (e.g. ``scn2``); a one-line StampsError if it is missing."""
    path = product_path(run_dir, name)
    if not path.is_file():
        step, what = WORKSPACES.get(name, ("the step that writes it", "needed"))
        raise StampsError(
            f"{path} not found: {why} needs the {what} workspace {name}; run {step} first"
        )
    return path


@dataclass
class RunData:
    """The merged products every export needs (ps2, parms) and, lazily, the others."""

    run_dir: Path
    parms: dict[str, Any]
    ps: dict[str, Any]
    cache: dict[str, dict[str, Any]] = field(default_factory=dict)
    aps: str | None = None
    """TRAIN correction of the 'a' letter when the command line names one (--aps)."""

    @property
    def tropo_method(self) -> str:
        """The TRAIN correction the 'a' letter subtracts: --aps, else parameter tropo_method."""
        if self.aps is not None:
            return check_tropo_method(self.aps, "--aps")
        return check_tropo_method(str(self.parms["tropo_method"]))

    @property
    def n_ps(self) -> int:
        return int(self.ps["n_ps"])

    @property
    def n_ifg(self) -> int:
        return int(self.ps["n_ifg"])

    @property
    def master_ix(self) -> int:
        return int(self.ps["master_ix"])

    @property
    def small_baseline(self) -> bool:
        return flag(self.parms, "small_baseline_flag")

    @property
    def n_sm(self) -> int:
        """Columns of the single-master products (phuw2, scla2, scn2): one per image (a PS run's
        n_ifg, which counts the master-master interferogram)."""
        return int(self.ps.get("n_image", self.n_ifg))

    @property
    def dates(self) -> list[str]:
        if "dates" in self.ps:
            return [str(d) for d in self.ps["dates"]]
        return [datestr(d) for d in np.asarray(self.ps["day"]).ravel()]

    def product(self, name: str, why: str, names: Sequence[str] | None = None) -> dict[str, Any]:
        """Datasets of workspace ``name``, loaded once; a missing file names the step to run."""
        if name not in self.cache:
            self.cache[name] = load_product(require_product(self.run_dir, name, why))
        data = self.cache[name]
        for key in names or ():
            if key not in data:
                raise StampsError(
                    f"{product_path(self.run_dir, name)}: dataset '{key}' missing "
                    f"(needed by {why}); rerun the step that writes {name}"
                )
        return data

    def per_ps(self, name: str, key: str, why: str, columns: int | None = None) -> np.ndarray:
        """Dataset ``key`` of ``name`` checked to have n_ps rows (and ``columns`` columns)."""
        arr = np.asarray(self.product(name, why, [key])[key])
        shape = (self.n_ps,) if columns is None else (self.n_ps, columns)
        if arr.shape != shape and not (columns is None and arr.shape == (self.n_ps, 1)):
            raise StampsError(
                f"{product_path(self.run_dir, name)}: {key} has shape {arr.shape}, "
                f"expected {shape} (ps2 has {self.n_ps} PS, {self.n_ifg} images); "
                f"rerun the steps after Step 5"
            )
        return arr.reshape(shape)

    def has(self, name: str) -> bool:
        return product_path(self.run_dir, name).is_file()


def load_run(run_dir: str | Path) -> RunData:
    """Parameters and ``ps2`` of a run directory (after Step 5), checked for export."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: no such run directory")
    parms = load_parms(run_dir)
    wavelength = float(parms["lambda"])
    if not (math.isfinite(wavelength) and wavelength > 0):
        raise StampsError(
            f"{run_dir}: parameter lambda (radar wavelength, m) is not set; set it "
            f"with stamps_parms {run_dir} set lambda VALUE"
        )
    ps = load_product(require_product(run_dir, "ps2", "the export"))
    keys = ["ij", "lonlat", "xy", "day", "master_ix", "n_ps", "n_ifg", "ll0"]
    if flag(parms, "small_baseline_flag"):
        keys += ["n_image", "ifgday_ix"]
    for key in keys:
        if key not in ps:
            raise StampsError(
                f"{product_path(run_dir, 'ps2')}: dataset '{key}' missing; rerun Step 5"
            )
    return RunData(run_dir, parms, ps)


def aps_phase(run: RunData, why: str, sb_ifgs: bool = False) -> np.ndarray:
    """TRAIN tropospheric phase (rad) chosen by --aps or tropo_method, as ps_plot_tca.

    A PS run reads tca2 ((n_ps, n_ifg)). A small-baseline run reads tca_sb2: as it is, (n_ps,
    n_sb_ifg), for the velocities fitted to the small-baseline interferograms (``sb_ifgs``,
    ps_plot 'vsb'), else inverted to the dates, (n_ps, n_image), as ps_plot does with
    ``sb_invert_aps`` before a 'V' type (interferograms in ``drop_ifg_index`` or without an
    estimate left out, the master 0).
    """
    from stamps_python.numerics.tropo import sb_invert_tropo, tropo_correction

    method = run.tropo_method
    name = "tca_sb2" if run.small_baseline else "tca2"
    corr = tropo_correction(run.product(name, f"{why} (tropo_method {method})"), method)
    expected = (run.n_ps, run.n_ifg if run.small_baseline else run.n_sm)
    if corr.shape != expected:
        raise StampsError(
            f"{product_path(run.run_dir, name)}: the {method} correction has "
            f"shape {corr.shape}, expected {expected}"
        )
    if run.small_baseline and not sb_ifgs:
        corr = sb_invert_tropo(run.ps, corr, drop_ifg_index0(run.parms, run.n_ifg))
    return np.asarray(corr, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# computation


@dataclass
class ExportResult:
    """One correction's layer: per-PS values and the layer metadata."""

    correction: Correction
    ts: TimeSeries
    dates: list[str]
    codes: np.ndarray
    lonlat: np.ndarray
    hgt: np.ndarray
    coh: np.ndarray
    metadata: dict[str, Any]
    tcoh: np.ndarray | None = None
    rows: np.ndarray | None = None  # 0-based ps2 rows of the points (None: every PS)

    def full_ref_ix(self) -> np.ndarray | None:
        """The reference PS as 0-based ps2 rows (``ts.ref_ix`` counts the exported points)."""
        ref = self.ts.ref_ix
        return ref if ref is None or self.rows is None else self.rows[ref]


def model_design_of(run: RunData, cols: np.ndarray) -> np.ndarray:
    """defo_model design of the single-master columns ``cols`` of the run (t since the
    reference date)."""
    day = np.asarray(run.ps["day"], dtype=np.float64).ravel()
    return model_design(day[cols], float(day[run.master_ix]), str(run.parms["defo_model"]))


def model_deramp_of(run: RunData) -> tuple[np.ndarray, np.ndarray] | None:
    """``corrected_phase``'s ``model_deramp`` for the run's single-master series (None with
    deramp_method 'plane')."""
    if str(run.parms["deramp_method"]) != "model":
        return None
    use_ix = _sm_dates(run)[0]
    return use_ix, model_design_of(run, use_ix)


def sm_dates(run: RunData) -> tuple[np.ndarray, np.ndarray | None]:
    """Dates of the single-master velocity fit (0-based, reference date excluded) and, in a
    small-baseline run, their covariance ``sm_cov`` (rad^2; None: weights from ifgstd2)."""
    return _sm_dates(run)


def _sm_dates(run: RunData) -> tuple[np.ndarray, np.ndarray | None]:
    """Dates in the velocity fit (0-based, reference date excluded) and, for an SB run, their
    covariance ``sm_cov`` (rad^2) from sb_invert_uw (None: weights from ifgstd2)."""
    if not run.small_baseline:
        drop = drop_ifg_index0(run.parms, run.n_ifg) + 1
        return used_ifg_index(run.n_ifg, run.master_ix, drop.tolist()), None
    phuw = run.product("phuw2", "the single-master dates")
    solved = np.asarray(phuw.get("unwrap_ifg_index_sm", np.arange(run.n_sm)), dtype=np.int64)
    use_ix = np.setdiff1d(solved.ravel(), [run.master_ix])
    cov = None
    if run.has("phuw_sb_res2"):
        res = run.product("phuw_sb_res2", "the single-master covariance")
        if "sm_cov" in res:
            cov = np.asarray(res["sm_cov"], dtype=np.float64)[np.ix_(use_ix, use_ix)]
    return use_ix, cov


def pair_model_design(run: RunData, use_sb: np.ndarray) -> np.ndarray:
    """defo_model design of the small-baseline pairs ``use_sb``: the model of the second
    image minus that of the first (the offset cancels and is left out)."""
    day = np.asarray(run.ps["day"], dtype=np.float64).ravel()
    G_img = model_design(day, float(day[run.master_ix]), str(run.parms["defo_model"]))
    pairs = np.asarray(run.ps["ifgday_ix"], dtype=np.int64)[use_sb]
    return (G_img[pairs[:, 1]] - G_img[pairs[:, 0]])[:, 1:]


def _sb_velocity(
    run: RunData,
    correction: Correction,
    ref_ix: np.ndarray | None,
    n_boot: int,
    seed: int,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Velocity and std (mm/yr) of an SB run from its small-baseline interferograms, as
    ps_plot's lower-case 'v' types ('vsb'): phuw_sb2 minus scla_sb2 (d), deramped (o)."""
    why = f"correction '{correction.text}' (small-baseline velocity)"
    n_sb = run.n_ifg
    ph_sb = run.per_ps("phuw_sb2", "ph_uw", why, n_sb)
    ph_scla = run.per_ps("scla_sb2", "ph_scla", why, n_sb) if correction.has("d") else None
    ph_aps = aps_phase(run, why, sb_ifgs=True) if correction.has("a") else None
    use_sb = np.setdiff1d(np.arange(n_sb), drop_ifg_index0(run.parms, n_sb))
    model_deramp = None
    if str(run.parms["deramp_method"]) == "model":
        G = pair_model_design(run, use_sb)
        model_deramp = (use_sb, G)
    ph = corrected_phase(
        ph_sb,
        correction,
        master_ix=run.master_ix,
        ps_xy=np.asarray(run.ps["xy"], dtype=np.float64),
        ph_scla=ph_scla,
        ph_aps=ph_aps,
        model_deramp=model_deramp,
    )
    if rows is not None:
        ph = ph[rows]
    sb_cov = None
    if run.has("phuw_sb_res2"):
        res = run.product("phuw_sb_res2", "the small-baseline covariance")
        if "sb_cov" in res:
            sb_cov = np.asarray(res["sb_cov"], dtype=np.float64)[np.ix_(use_sb, use_sb)]
    return sb_velocity(
        ph,
        ifgday_ix=np.asarray(run.ps["ifgday_ix"]),
        day=np.asarray(run.ps["day"], dtype=np.float64).ravel(),
        use_ix=use_sb,
        wavelength=float(run.parms["lambda"]),
        sb_cov=sb_cov,
        ref_ix=ref_ix,
        ref_velocity=number(run.parms, "ref_velocity"),
        n_boot=n_boot,
        seed=seed,
    )


def usable_correction(run: RunData, correction: Correction) -> Correction:
    """``correction`` as the export of ``run`` uses it ('V' is 'v' in a PS run); a type the
    export cannot make is a one-line StampsError."""
    if correction.kind != "v":
        raise StampsError(
            f"correction '{correction.text}': export needs a velocity type "
            f"('v', 'v-d', 'v-do', 'v-dso', ...)"
        )
    if not run.small_baseline and correction.single_master:
        correction = replace(correction, single_master=False)
    sb_vel = run.small_baseline and not correction.single_master
    if sb_vel and correction.has("s"):
        raise StampsError(
            f"correction '{correction.text}': in a small-baseline run lower-case "
            f"'v' types fit the small-baseline interferograms, for which StaMPS "
            f"has no 's' term; use 'V-{correction.text[2:]}' (velocity "
            f"from the single-master series)"
        )
    return correction


def _scla_name(run: RunData) -> str:
    """The Step-7 workspace of the SCLA term and reference AOE: scla2, else scla_smooth2."""
    return "scla_smooth2" if not run.has("scla2") and run.has("scla_smooth2") else "scla2"


def check_inputs(run: RunData, corrections: Sequence[Correction]) -> list[Correction]:
    """Check everything the export of ``corrections`` reads before anything is computed.

    ``drop_ifg_index`` must number interferograms of the run; every correction needs phuw2 and
    pm2, 'd' scla2 (or scla_smooth2), 's' scn2, 'a' tca2 (tca_sb2 in a small-baseline run),
    and in a small-baseline run a lower-case 'v' also phuw_sb2 (and scla_sb2 for 'd'); hgt2
    and ifgstd2 are read when present.
    A missing workspace or dataset, or one of the wrong shape, is a one-line StampsError, so no
    layer is written. Returns the corrections as :func:`compute_results` uses them.
    """
    drop_ifg_index0(run.parms, run.n_ifg)
    out = []
    for correction in corrections:
        correction = usable_correction(run, correction)
        why = f"correction '{correction.name}'"
        run.per_ps("phuw2", "ph_uw", why, run.n_sm)
        run.per_ps("pm2", "coh_ps", "COHERENCE")
        if correction.has("d"):
            run.per_ps(_scla_name(run), "ph_scla", why, run.n_sm)
        if correction.has("s"):
            run.per_ps("scn2", "ph_scn_slave", why, run.n_sm)
        if correction.has("a"):
            aps_phase(run, why)
        if run.small_baseline and not correction.single_master:
            sb_why = f"correction '{correction.text}' (small-baseline velocity)"
            run.per_ps("phuw_sb2", "ph_uw", sb_why, run.n_ifg)
            if correction.has("d"):
                run.per_ps("scla_sb2", "ph_scla", sb_why, run.n_ifg)
            if correction.has("a"):
                aps_phase(run, sb_why, sb_ifgs=True)
        out.append(correction)
    if run.has("hgt2"):
        run.per_ps("hgt2", "hgt", "HEIGHT")
    if run.has("ifgstd2") and not run.small_baseline:
        run.product("ifgstd2", "weights", ["ifg_std"])
    return out


def compute_results(
    run: RunData,
    correction: Correction,
    reference: Reference | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = DEFAULT_SEED,
) -> ExportResult:
    """Time series, velocity and attributes of every PS for a 'v' ``correction``.

    As ps_plot(value_type) with its 'ts' time-series path: Step 6 ``ph_uw`` minus the named
    terms, deramped for 'o', minus the reference AOE ``C_ps_uw`` when Step 7 ran, referenced to
    the reference area (``reference``, default the parameters) and scaled to mm. In a
    small-baseline run the time series come from the single-master series ``phuw2`` inverted
    by sb_invert_uw; the velocity of a lower-case 'v' type is fitted to the small-baseline
    interferograms (ps_plot 'vsb'), that of an upper-case 'V' type to the time series.
    """
    log = get_logger()
    correction = usable_correction(run, correction)
    sb_vel = run.small_baseline and not correction.single_master
    why = f"correction '{correction.name}'"
    n_sm = run.n_sm
    ph_uw = run.per_ps("phuw2", "ph_uw", why, n_sm)
    scla_name = _scla_name(run)
    if scla_name == "scla_smooth2":
        log.info("scla2 not found; using scla_smooth2 for the SCLA term and reference AOE")
    ph_scla = run.per_ps(scla_name, "ph_scla", why, n_sm) if correction.has("d") else None
    ph_scn = run.per_ps("scn2", "ph_scn_slave", why, n_sm) if correction.has("s") else None
    ph_aps = aps_phase(run, why) if correction.has("a") else None
    c_ps_uw = None
    if run.has(scla_name):
        c_ps_uw = run.per_ps(scla_name, "C_ps_uw", "the reference-date AOE").astype(np.float64)
    else:
        log.info(
            "%s not found: the reference-date (master) AOE is not subtracted",
            product_path(run.run_dir, scla_name),
        )
    use_ix, sm_cov = _sm_dates(run)
    model = str(run.parms["defo_model"])
    G_use = model_design_of(run, use_ix)
    model_deramp = (use_ix, G_use) if str(run.parms["deramp_method"]) == "model" else None
    ps_xy = np.asarray(run.ps["xy"], dtype=np.float64)
    ph = corrected_phase(
        ph_uw,
        correction,
        master_ix=run.master_ix,
        ps_xy=ps_xy,
        ph_scla=ph_scla,
        ph_scn=ph_scn,
        ph_aps=ph_aps,
        model_deramp=model_deramp,
    )
    del ph_uw, ph_scla, ph_scn, ph_aps  # n_ps x n_ifg each: only ph is needed from here on
    reference = reference or reference_from_parms(run.parms)
    lonlat = np.asarray(run.ps["lonlat"], dtype=np.float64)
    coh = run.per_ps("pm2", "coh_ps", "COHERENCE").astype(np.float64)
    series = ph[:, use_ix]
    if c_ps_uw is not None:
        series -= c_ps_uw.reshape(-1, 1)
    tcoh = point_temporal_coherence(
        series, ps_xy[:, 1:3], G_use, float(run.parms["scn_wavelength"])
    )
    del series
    keep, rule_counts = quality_mask(coh, tcoh, run.parms)
    for rule, count in rule_counts.items():
        log.info("%s: %d of %d points left out of the export", rule, count, run.n_ps)
    all_ref = reference.select(lonlat, np.asarray(run.ps["ll0"], dtype=np.float64))
    ref_ix = all_ref
    if not keep.all():
        ph, lonlat, coh, tcoh = ph[keep], lonlat[keep], coh[keep], tcoh[keep]
        c_ps_uw = None if c_ps_uw is None else c_ps_uw[keep]
        if all_ref is not None:
            ref_ix = np.flatnonzero(np.isin(np.flatnonzero(keep), all_ref))
            if ref_ix.size == 0:
                raise StampsError(
                    f"no point of the reference area ({reference.describe()}) "
                    f"passes export_coh_ps_min / export_tcoh_min; lower them or "
                    f"choose another reference area"
                )
    ifg_std = None
    if run.small_baseline:
        if sm_cov is None:
            log.info("phuw_sb_res2.h5 has no sm_cov: dates weighted equally")
    elif run.has("ifgstd2"):
        ifg_std = np.asarray(run.product("ifgstd2", "weights", ["ifg_std"])["ifg_std"]).ravel()
    else:
        log.info("ifgstd2.h5 not found: interferograms weighted equally")
    wavelength = float(run.parms["lambda"])
    ref_velocity = number(run.parms, "ref_velocity")
    ts = los_time_series(
        ph,
        day=np.asarray(run.ps["day"], dtype=np.float64).ravel(),
        master_ix=run.master_ix,
        wavelength=wavelength,
        use_ix=use_ix,
        c_ps_uw=c_ps_uw,
        ref_ix=ref_ix,
        ref_velocity=ref_velocity,
        ifg_std=ifg_std,
        cov=sm_cov,
        n_boot=n_boot,
        seed=seed,
    )
    if sb_vel:
        vel, vel_std = _sb_velocity(
            run, correction, ref_ix, n_boot, seed, None if keep.all() else np.flatnonzero(keep)
        )
        ts = replace(ts, vel=vel, vel_std=vel_std)
    dates = run.dates
    hgt = (
        run.per_ps("hgt2", "hgt", "HEIGHT").astype(np.float64)
        if run.has("hgt2")
        else np.zeros(run.n_ps)
    )[keep]
    if not run.has("hgt2"):
        log.info("hgt2.h5 not found: HEIGHT set to 0")
    dropped = sorted(set(range(n_sm)) - set(ts.date_ix.tolist()))
    metadata = {
        "correction": correction.name,
        "correction_meaning": correction.describe(),
        "reference_aoe_subtracted": "yes" if c_ps_uw is not None else "no",
        "wavelength_m": wavelength,
        "reference_date": dates[run.master_ix],
        "reference_area": reference.describe(),
        "reference_area_source": reference.source,
        "n_reference_ps": 0 if ref_ix is None else int(ref_ix.size),
        "ref_velocity_mm_per_yr": ref_velocity * 1000.0,
        "dates": [dates[k] for k in ts.date_ix],
        "dropped_dates": [dates[k] for k in dropped],
        "n_ps": int(np.count_nonzero(keep)),
        "n_ps_run": run.n_ps,
        "points_left_out": {k: int(v) for k, v in rule_counts.items()},
        "deramp_method": str(run.parms["deramp_method"]),
        "defo_model": model,
        "tcoh": (
            "temporal coherence |mean exp(j r)| of the series' residual r to the "
            f"{model} model, minus its Gaussian low-pass in space (scn_wavelength "
            f"{float(run.parms['scn_wavelength']):g} m)"
        ),
        "units": "HEIGHT m; VEL, V_STDEV mm/yr (365.25-day years); D fields mm",
        "sign": "LOS displacement and velocity positive toward the satellite",
        "velocity_fit": _velocity_fit_text(run, sb_vel),
        "v_stdev": f"bootstrap over the interferograms, {n_boot} draws, seed {seed}",
        "h_stdev": "not estimated by StaMPS: 0",
        "software": f"stamps_python {__version__}",
        "stamps_python_version": __version__,
    }
    if correction.has("a"):
        metadata["tropo_method"] = run.tropo_method
    codes = np.asarray(run.ps["ij"])[:, 0].astype(np.int32)[keep]
    rows = None if keep.all() else np.flatnonzero(keep)
    return ExportResult(correction, ts, dates, codes, lonlat, hgt, coh, metadata, tcoh, rows)


def point_temporal_coherence(
    series: np.ndarray, xy_m: np.ndarray, G: np.ndarray, wavelength: float
) -> np.ndarray:
    """TCOH of every point: temporal coherence of its phase ``series`` (n, m, rad) against the
    per-point model ``G`` (m, p), after the residual's Gaussian low-pass in space (std
    ``wavelength`` m: the atmosphere left in) is removed too."""
    series = np.asarray(series, dtype=np.float64)
    resid = fit_rows(series, model_projector(G))
    np.subtract(series, resid, out=resid)
    resid -= spatial_lowpass(xy_m, resid.astype(np.float32), wavelength, show_progress=False)
    return temporal_coherence(resid)


def quality_mask(
    coh_ps: np.ndarray, tcoh: np.ndarray, parms: Mapping[str, Any]
) -> tuple[np.ndarray, dict[str, int]]:
    """Points kept by export_coh_ps_min and export_tcoh_min, and how many each rule removed
    (a point below both counts for the first)."""
    keep = np.ones(coh_ps.size, dtype=bool)
    counts: dict[str, int] = {}
    for name, values in (("export_coh_ps_min", coh_ps), ("export_tcoh_min", tcoh)):
        limit = float(parms[name])
        if limit > 0:
            low = ~(values >= limit) & keep
            counts[f"{name} {limit:g}"] = int(np.count_nonzero(low))
            keep &= ~low
    if not keep.any():
        raise StampsError("no point passes export_coh_ps_min / export_tcoh_min; lower them")
    return keep, counts


def _velocity_fit_text(run: RunData, sb_vel: bool) -> str:
    """How VEL was fitted, for the layer metadata."""
    if sb_vel:
        return (
            "small-baseline interferograms (ps_plot 'v' on an SB run): weighted least "
            "squares of phase against the pairs' time spans, covariance sb_cov"
        )
    if run.small_baseline:
        return (
            "single-master series inverted from the small baselines (ps_plot 'V'): "
            "weighted least squares over the dates, reference date excluded, covariance "
            "sm_cov"
        )
    return (
        "weighted least squares over the dates, reference date excluded; weights "
        "1/ifg_std^2 (ifgstd2) when present"
    )

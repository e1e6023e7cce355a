"""The StaMPS parameter table: names, kinds, PS and SB defaults, allowed values, units, steps.

:data:`PARAMETERS` maps every name to its :class:`ParmSpec`; the defaults are those StaMPS
creates (``ps_parms_initial`` / ``sb_parms_initial``, completed by ``ps_parms_default``). To add a
parameter, add a ``_p(...)`` row to ``_SPECS`` (and, if StaMPS does not have it, its name to
:data:`BEYOND_STAMPS`) and put the new table of :func:`parameters_markdown` in
docs/parameters.md.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

INF = float("inf")
NAN = float("nan")


class _Absent:
    """Marker for a parameter StaMPS does not create for this processing mode."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()

_TROPO_METHODS = (
    "a_l",
    "a_linear",
    "a_p",
    "a_powerlaw",
    "a_pk",
    "a_powerlaw-k",
    "a_lman",
    "a_linear-man",
    "a_m",
    "a_meris",
    "a_mi",
    "a_meris-ni",
    "a_M",
    "a_modis",
    "a_MI",
    "a_modis-ni",
    "a_RM",
    "a_recalmodis",
    "a_RMI",
    "a_recalmodis-ni",
    "a_e",
    "a_erai",
    "a_eh",
    "a_erai-h",
    "a_ew",
    "a_erai-w",
    "a_era5",
    "a_era5-h",
    "a_era5-w",
    "a_w",
    "a_wrf",
    "a_wh",
    "a_wrf-h",
    "a_ww",
    "a_wrf-w",
    "a_merra",
    "a_merra-h",
    "a_merra-w",
    "a_merra2",
    "a_merra2-h",
    "a_merra2-w",
    "a_narr",
    "a_narr-h",
    "a_narr-w",
    "a_gacos",
    "a_m+a_eh",
    "a_meris+a_erai-h",
    "a_mi+a_eh",
    "a_meris-ni+a_erai-h",
    "a_M+a_eh",
    "a_modis+a_erai-h",
    "a_MI+a_eh",
    "a_modis-ni+a_erai-h",
    "a_RM+a_eh",
    "a_recalmodis+a_erai-h",
    "a_RMI+a_eh",
    "a_recalmodis-ni+a_erai-h",
    "a_m+a_wh",
    "a_meris+a_wrf-h",
    "a_mi+a_wh",
    "a_meris-ni+a_wrf-h",
    "a_M+a_wh",
    "a_modis+a_wrf-h",
    "a_MI+a_wh",
    "a_modis-ni+a_wrf-h",
    "a_RM+a_wh",
    "a_recalmodis+a_wrf-h",
    "a_RMI+a_wh",
    "a_recalmodis-ni+a_wrf-h",
)


@dataclass(frozen=True)
class ParmSpec:
    """One StaMPS parameter: kind, PS and SB defaults, allowed values, unit, steps and meaning.

    ``kind`` is one of ``float``, ``int``, ``flag`` ('y'/'n'), ``choice`` (one of ``choices``),
    ``index_list`` (1-based interferogram numbers, as StaMPS' ``ps_info`` lists them; for
    ``scn_deramp_ifg`` also the string 'all') or ``pair`` (two numbers).
    """

    name: str
    kind: str
    ps_default: Any
    sb_default: Any
    unit: str
    steps: str
    meaning: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    allow_inf: bool = False
    allow_neg_inf: bool = False
    allow_nan: bool = False
    even: bool = False
    multiple: int = 0  # the value must be a multiple of this (0: any)
    ordered: bool = False
    allow_all: bool = False
    choices: tuple[str, ...] = ()

    def allowed(self) -> str:
        """Human-readable description of the allowed values."""
        if self.kind == "flag":
            return "'y' or 'n'"
        if self.kind == "choice":
            shown = self.choices if len(self.choices) <= 12 else self.choices[:10] + ("...",)
            return "one of " + ", ".join(c if c == "..." else f"'{c}'" for c in shown)
        if self.kind == "index_list":
            text = "list of interferogram numbers >= 1 (1-based, as ps_info), [] for none"
            return text + (", or 'all'" if self.allow_all else "")
        parts: list[str] = []
        if self.kind == "int":
            parts.append("whole number")
        if self.minimum is not None and self.maximum is not None:
            low = f"{'>' if self.exclusive_min else '>='} {format_value(self.minimum)}"
            parts.append(f"{low} and <= {format_value(self.maximum)}")
        elif self.minimum is not None:
            parts.append(f"{'>' if self.exclusive_min else '>='} {format_value(self.minimum)}")
        if self.even:
            parts.append("even")
        if self.multiple:
            parts.append(f"a multiple of {self.multiple}")
        specials = [
            s
            for s, ok in (
                ("inf", self.allow_inf),
                ("-inf", self.allow_neg_inf),
                ("nan (unset)", self.allow_nan),
            )
            if ok
        ]
        text = ", ".join(parts) if parts else ("a number" if specials else "any number")
        if specials:
            text += " or " + " or ".join(specials)
        if self.kind == "pair":
            head = "[low, high] with low <= high, each " if self.ordered else "two numbers, each "
            text = head + text
        return text


def _p(
    name: str,
    kind: str,
    default: Any,
    unit: str,
    steps: str,
    meaning: str,
    sb_default: Any = None,
    **kw: Any,
) -> ParmSpec:
    """A spec whose SB default equals the PS default unless ``sb_default`` is given."""
    return ParmSpec(
        name,
        kind,
        default,
        default if sb_default is None else sb_default,
        unit,
        steps,
        meaning,
        **kw,
    )


_FLAG = "flag"
_SPECS: tuple[ParmSpec, ...] = (
    _p(
        "small_baseline_flag",
        _FLAG,
        "n",
        "",
        "all",
        "'n': single-reference PS processing; 'y': small-baseline network. Fixes which defaults "
        "parms.json is created with",
        sb_default="y",
    ),
    _p(
        "insar_processor",
        "choice",
        "isce",
        "",
        "none",
        "Processor that made the input stack, kept for StaMPS compatibility; no step reads it "
        "(stamps_python reads ISCE2 topsStack stacks through prep_isce)",
        choices=("isce", "doris", "gamma", "snap", "gsar"),
    ),
    _p(
        "max_topo_err",
        "float",
        20.0,
        "m",
        "2, 6",
        "Largest spatially uncorrelated DEM error searched for; larger values also raise the "
        "coherence of random-phase pixels",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p(
        "quick_est_gamma_flag",
        _FLAG,
        "y",
        "",
        "2",
        "'y': fast gamma estimation on a CLAP-filtered grid (ps_est_gamma_quick); 'n': the "
        "per-pixel estimator ps_est_gamma (circular patch of the other candidates, slower; Step 3 "
        "then keeps its gamma)",
    ),
    _p(
        "select_reest_gamma_flag",
        _FLAG,
        "y",
        "",
        "3",
        "'y': re-estimate gamma of each selected pixel with the pixel left out of its patch phase",
    ),
    _p(
        "filter_grid_size",
        "float",
        50.0,
        "m",
        "2",
        "Cell size of the grid the candidates are averaged onto before the CLAP filter",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p(
        "filter_weighting",
        "choice",
        "P-square",
        "",
        "2",
        "Weight of each candidate when gridding: PS probability squared or signal-to-noise ratio",
        choices=("P-square", "SNR"),
    ),
    _p(
        "gamma_change_convergence",
        "float",
        0.005,
        "",
        "2",
        "Gamma iterations stop once the change of the mean-gamma change drops below this",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p("gamma_max_iterations", "int", 3, "", "2", "Upper limit on the gamma iterations", minimum=1),
    _p(
        "slc_osf",
        "int",
        1,
        "samples",
        "3",
        "SLC oversampling factor: pixels within slc_osf-1 samples of the pixel are also left "
        "out when its patch phase is re-estimated",
        minimum=1,
    ),
    _p(
        "clap_win",
        "int",
        32,
        "grid cells",
        "2, 3",
        "Width of the CLAP filter window; with filter_grid_size sets the area of the "
        "spatially correlated phase estimate",
        minimum=8,
        multiple=8,
    ),
    _p(
        "clap_low_pass_wavelength",
        "float",
        800.0,
        "m",
        "2",
        "Cut-off of the low-pass part of CLAP: longer spatial wavelengths pass",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p(
        "clap_alpha",
        "float",
        1.0,
        "",
        "2, 3",
        "CLAP exponent on the normalised phase spectrum (adaptive part)",
        minimum=0.0,
    ),
    _p(
        "clap_beta",
        "float",
        0.3,
        "",
        "2, 3",
        "CLAP weight of the adaptive part relative to the low-pass part",
        minimum=0.0,
    ),
    _p(
        "select_method",
        "choice",
        "DENSITY",
        "",
        "3",
        "How the tolerated random-phase fraction is set: density_rand or percent_rand",
        choices=("DENSITY", "PERCENT"),
    ),
    _p(
        "density_rand",
        "float",
        20.0,
        "per km^2",
        "3",
        "Tolerated density of random-phase pixels among those selected (select_method DENSITY)",
        sb_default=2.0,
        minimum=0.0,
        exclusive_min=True,
    ),
    _p(
        "percent_rand",
        "float",
        20.0,
        "%",
        "3",
        "Tolerated percentage of random-phase pixels among those selected (select_method PERCENT)",
        sb_default=1.0,
        minimum=0.0,
        maximum=100.0,
        exclusive_min=True,
    ),
    _p(
        "gamma_stdev_reject",
        "float",
        0.0,
        "",
        "3",
        "If > 0, drop selected pixels whose bootstrap standard deviation of gamma exceeds it "
        "(part-time scatterers); 0 switches this off",
        minimum=0.0,
    ),
    _p(
        "weed_time_win",
        "float",
        730.0,
        "days",
        "4",
        "Standard deviation of the Gaussian time window smoothing the phase of each pixel pair; "
        "what the smoothing removes counts as noise",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p(
        "weed_max_noise",
        "float",
        INF,
        "rad",
        "4",
        "Drop a pixel whose smallest pair noise exceeds this in any interferogram; inf: off",
        minimum=0.0,
        exclusive_min=True,
        allow_inf=True,
    ),
    _p(
        "weed_standard_dev",
        "float",
        1.0,
        "rad",
        "4",
        "Drop a pixel whose lowest pair-noise standard deviation exceeds this; inf: off",
        sb_default=INF,
        minimum=0.0,
        exclusive_min=True,
        allow_inf=True,
    ),
    _p(
        "weed_zero_elevation",
        _FLAG,
        "n",
        "",
        "4",
        "'y': drop pixels with DEM height below 1e-6 m (sea)",
    ),
    _p(
        "weed_neighbours",
        _FLAG,
        "n",
        "",
        "4",
        "'y': of adjacent selected pixels keep only the one with the highest coherence",
    ),
    _p(
        "unwrap_method",
        "choice",
        "3D",
        "",
        "6",
        "Unwrapping algorithm: 3D space-time variants (single-reference '3D' runs as 3D_FULL) or "
        "'2D' (space only)",
        sb_default="3D_QUICK",
        choices=("3D", "3D_QUICK", "3D_FULL", "3D_SMALL_DEF", "3D_NO_DEF", "3D_NEW", "2D"),
    ),
    _p(
        "unwrap_patch_phase",
        _FLAG,
        "n",
        "",
        "6",
        "'y': use the Step 3 patch phase as the filtered phase instead of a Goldstein filter",
    ),
    _p(
        "drop_ifg_index",
        "index_list",
        [],
        "",
        "3-8",
        "Interferograms left out of selection, weeding, unwrapping and all later estimates",
    ),
    _p(
        "unwrap_la_error_flag",
        _FLAG,
        "y",
        "",
        "6",
        "'y': estimate look-angle-error phase of each arc and remove it while unwrapping",
    ),
    _p(
        "unwrap_spatial_cost_func_flag",
        _FLAG,
        "n",
        "",
        "6",
        "'y': derive spatial unwrapping costs from local phase gradients",
    ),
    _p(
        "unwrap_prefilter_flag",
        _FLAG,
        "y",
        "",
        "6",
        "'y': Goldstein-filter the phase on the unwrapping grid before unwrapping; 'n': unwrap "
        "the unfiltered grid phase (it is resampled to the grid either way)",
    ),
    _p(
        "unwrap_grid_size",
        "float",
        200.0,
        "m",
        "6, 8",
        "Cell size of the unwrapping grid; the grid's smaller side must hold unwrap_gold_n_win "
        "cells",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p(
        "unwrap_gold_n_win",
        "int",
        32,
        "grid cells",
        "6",
        "Goldstein filter window width on the unwrapping grid",
        minimum=4,
        even=True,
    ),
    _p(
        "unwrap_alpha",
        "float",
        8.0,
        "",
        "none",
        "Left over from older StaMPS versions; ps_parms_default still creates it but no step "
        "reads it",
        minimum=0.0,
    ),
    _p(
        "unwrap_time_win",
        "float",
        730.0,
        "days",
        "6",
        "Standard deviation of the Gaussian time window smoothing arc phase when estimating "
        "phase-jump probabilities",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p("unwrap_gold_alpha", "float", 0.8, "", "6", "Goldstein filter exponent", minimum=0.0),
    _p(
        "unwrap_hold_good_values",
        _FLAG,
        "n",
        "",
        "6",
        "Small baselines: 'y' keeps values judged correctly unwrapped in the previous run",
    ),
    _p(
        "scla_drop_index",
        "index_list",
        [],
        "",
        "7",
        "Interferograms left out of the SCLA / reference AOE estimate only",
    ),
    _p(
        "scn_wavelength",
        "float",
        100.0,
        "m",
        "8",
        "Spatial scale of the spatially-correlated noise (SCN) filter",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p(
        "scn_time_win",
        "float",
        365.0,
        "days",
        "8",
        "Gaussian time window separating SCN (high-pass in time) from deformation",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p(
        "scn_deramp_ifg",
        "index_list",
        [],
        "",
        "8",
        "Interferograms whose planar ramp is estimated and added to the SCN",
        allow_all=True,
    ),
    _p(
        "scn_kriging_flag",
        _FLAG,
        "n",
        "",
        "8",
        "'y': estimate SCN by kriging (ps_scn_filt_krig: per-arc deformation model and temporal "
        "variograms, spatial kriging per interferogram; slower than the Gaussian filters)",
    ),
    _p(
        "ref_lon",
        "pair",
        [-INF, INF],
        "deg",
        "6-7, output",
        "Longitude limits of the reference area; [-inf, inf]: all PS",
        allow_inf=True,
        allow_neg_inf=True,
        ordered=True,
    ),
    _p(
        "ref_lat",
        "pair",
        [-INF, INF],
        "deg",
        "6-7, output",
        "Latitude limits of the reference area; [-inf, inf]: all PS",
        allow_inf=True,
        allow_neg_inf=True,
        ordered=True,
    ),
    _p(
        "ref_centre_lonlat",
        "pair",
        [0.0, 0.0],
        "deg",
        "6-7, output",
        "Centre (lon, lat) of the circular reference area used with ref_radius",
    ),
    _p(
        "ref_radius",
        "float",
        INF,
        "m",
        "6-7, output",
        "Radius of the reference area around ref_centre_lonlat; inf: no radius limit, "
        "-inf: no reference",
        minimum=0.0,
        allow_inf=True,
        allow_neg_inf=True,
    ),
    _p(
        "ref_velocity",
        "float",
        0.0,
        "m/yr",
        "output",
        "Known LOS velocity of the reference area, added to the mean velocities",
    ),
    _p(
        "n_cores",
        "int",
        1,
        "",
        "none",
        "Local worker processes (StaMPS 4.1): Steps 1-5a run patch by patch in n_cores "
        "processes, Step 6 runs n_cores snaphu at a time; 1 is serial; products are identical "
        "(stamps_main --n-cores overrides it; docs/parallel.md)",
        minimum=1,
    ),
    _p(
        "plot_dem_posting",
        "float",
        90.0,
        "m",
        "plots",
        "Finest DEM posting used for plot backgrounds",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p(
        "plot_scatterer_size",
        "float",
        120.0,
        "m",
        "plots",
        "Ground size a scatterer is drawn with",
        minimum=0.0,
        exclusive_min=True,
    ),
    _p(
        "plot_pixels_scatterer",
        "int",
        3,
        "pixels",
        "plots",
        "Screen pixels per scatterer",
        minimum=1,
    ),
    _p(
        "plot_color_scheme",
        "choice",
        "inflation",
        "",
        "plots",
        "Colour map of phase / velocity plots",
        choices=("inflation", "deflation", "gray", "GMT_relief", "GMT_globe"),
    ),
    _p(
        "shade_rel_angle",
        "pair",
        [90.0, 45.0],
        "deg",
        "plots",
        "Light azimuth and elevation for the shaded-relief DEM background",
    ),
    _p(
        "lonlat_offset",
        "pair",
        [0.0, 0.0],
        "deg",
        "plots",
        "Shift (lon, lat) added to the PS positions when drawn over the DEM",
    ),
    _p(
        "merge_resample_size",
        "float",
        0.0,
        "m",
        "5",
        "Grid the PS are resampled to when patches are merged; 0: keep every PS",
        sb_default=100.0,
        minimum=0.0,
    ),
    _p(
        "merge_standard_dev",
        "float",
        INF,
        "rad",
        "5",
        "When resampling, drop cells whose phase-noise standard deviation exceeds this",
        minimum=0.0,
        exclusive_min=True,
        allow_inf=True,
    ),
    _p("scla_method", "choice", "L2", "", "7", "Norm of the SCLA fit", choices=("L2", "L1")),
    _p(
        "scla_deramp",
        _FLAG,
        "n",
        "",
        "6, 7",
        "'y': estimate a planar ramp per interferogram together with the SCLA",
    ),
    _p(
        "lambda",
        "float",
        NAN,
        "m",
        "2, 6, 7, output",
        "Radar wavelength; taken from the stack metadata.json while unset (nan)",
        minimum=0.0,
        exclusive_min=True,
        allow_nan=True,
    ),
    _p(
        "heading",
        "float",
        NAN,
        "deg",
        "1, 5, plots",
        "Satellite heading, clockwise from north; taken from the stack metadata.json while "
        "unset (nan)",
        minimum=-360.0,
        maximum=360.0,
        allow_nan=True,
    ),
    _p(
        "sb_scla_drop_index",
        "index_list",
        ABSENT,
        "",
        "7",
        "Small baselines only: SB interferograms left out of the SCLA estimate",
        sb_default=[],
    ),
    _p(
        "subtr_tropo",
        _FLAG,
        "n",
        "",
        "6, 7",
        "'y': subtract the tropo_method tropospheric estimate (tca2.h5 / tca_sb2.h5, from "
        "aps_linear or aps_import) before unwrapping and SCLA (added back after unwrapping)",
    ),
    _p(
        "tropo_method",
        "choice",
        "a_l",
        "",
        "6, 7",
        "Which TRAIN tropospheric correction subtr_tropo and the export's 'a' letter use "
        "(docs/troposphere.md)",
        choices=_TROPO_METHODS,
    ),
    # ---- beyond StaMPS (opt-in; the defaults are StaMPS' behaviour; docs/differences.md)
    _p(
        "defo_model",
        "choice",
        "linear",
        "",
        "7, 8, output",
        "Per-point deformation model in time used by deramp_method 'model', detrend_scn, "
        "export TCOH and Step 7's fit: 'linear' (offset + rate; Step 7 as StaMPS) or "
        "'seasonal' (+ annual sine and cosine)",
        choices=("linear", "seasonal"),
    ),
    _p(
        "deramp_method",
        "choice",
        "plane",
        "",
        "7, 8, output",
        "How the ramps of 'o', scla_deramp and scn_deramp_ifg are estimated: 'plane' fits the "
        "phase itself (StaMPS ps_deramp, removes planar deformation too); 'model' fits the part "
        "of the phase defo_model does not explain, so a planar deformation rate stays",
        choices=("plane", "model"),
    ),
    _p(
        "detrend_scn",
        _FLAG,
        "n",
        "",
        "8",
        "'y': remove each point's defo_model fit before the high-pass in time and keep it out "
        "of the SCN, so Step 8 does not remove deformation; 'n': StaMPS",
    ),
    _p(
        "auto_scn_time_win",
        _FLAG,
        "n",
        "",
        "8",
        "'y': use min(scn_time_win, max(span / 8, 2 x median date spacing)) days as the time "
        "window, so it follows the stack length; 'n': scn_time_win as given (StaMPS)",
    ),
    _p(
        "export_coh_ps_min",
        "float",
        0.0,
        "",
        "output",
        "Points with coh_ps (Step 3 gamma, COHERENCE) below this are left out of the export; "
        "0: keep all (StaMPS)",
        minimum=0.0,
        maximum=1.0,
    ),
    _p(
        "export_tcoh_min",
        "float",
        0.0,
        "",
        "output",
        "Points with temporal coherence TCOH (of the exported series against defo_model, "
        "atmosphere removed) below this are left out of the export; 0: keep all",
        minimum=0.0,
        maximum=1.0,
    ),
)

# Parameters StaMPS does not have (each defaults to StaMPS' behaviour).
BEYOND_STAMPS = frozenset(
    (
        "defo_model",
        "deramp_method",
        "detrend_scn",
        "auto_scn_time_win",
        "export_coh_ps_min",
        "export_tcoh_min",
    )
)

PARAMETERS: dict[str, ParmSpec] = {spec.name: spec for spec in _SPECS}


def format_value(value: Any) -> str:
    """Compact text of a parameter value (inf, nan, whole numbers without '.0', lists)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x.is_integer() and abs(x) < 1e15:
            return str(int(x))
        return repr(x)
    return repr(value)


def default_parms(small_baseline: bool = False) -> dict[str, Any]:
    """Every StaMPS parameter at its ``ps_parms_default`` value (SB values if ``small_baseline``).

    ``lambda`` and ``heading`` are nan (unset); ``sb_scla_drop_index`` exists only for SB.
    """
    out: dict[str, Any] = {}
    for spec in _SPECS:
        value = spec.sb_default if small_baseline else spec.ps_default
        if value is not ABSENT:
            out[spec.name] = copy.deepcopy(value)
    return out


def parameters_markdown() -> str:
    """Markdown reference table of every parameter (the table in docs/parameters.md)."""
    rows = [
        "| name | default PS | default SB | unit | allowed | step(s) | meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in _SPECS:

        def show(v: Any) -> str:
            if v is ABSENT:
                return "(absent)"
            return f"'{v}'" if isinstance(v, str) else format_value(v)

        allowed = spec.allowed().replace("|", "/")
        rows.append(
            f"| `{spec.name}` | {show(spec.ps_default)} | {show(spec.sb_default)} | "
            f"{spec.unit or '-'} | {allowed} | {spec.steps} | {spec.meaning} |"
        )
    return "\n".join(rows) + "\n"

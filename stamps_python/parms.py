"""StaMPS processing parameters: ``parms.json`` / ``localparms.json``, validation and CLI.

StaMPS keeps its parameters in ``parms.mat`` (shared by all patches, created by
``ps_parms_initial`` / ``sb_parms_initial`` and completed by ``ps_parms_default``) and an optional
``localparms.mat`` (per directory, overriding ``parms.mat``). Here they are JSON files with the
same parameter names, defaults and units. JSON has no infinity, so ``inf`` / ``-inf`` / ``NaN``
are written as the strings ``"inf"``, ``"-inf"`` and ``"nan"``; vectors are JSON lists and
``'y'``/``'n'`` flags are strings, as in StaMPS.

Usage (also ``python stamps_python/parms.py``)::

    stamps_parms RUN_DIR list
    stamps_parms RUN_DIR get NAME
    stamps_parms RUN_DIR set NAME VALUE [--local]
    stamps_parms RUN_DIR reset NAME [--local]
    stamps_parms RUN_DIR preset accurate|faithful

``NAME`` may be any unique prefix of a parameter name, as with StaMPS ``setparm``/``getparm``.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import copy
import difflib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.rundir import nearest_metadata
from stamps_python.utils import (
    HelpFormatter,
    StampsError,
    atomic_output,
    get_logger,
    run_cli,
    setup_logging,
)

PARMS_FILE = "parms.json"
LOCALPARMS_FILE = "localparms.json"

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
        "'y': fast gamma estimation (ps_est_gamma_quick); 'n': the older full estimator",
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
    _p("scn_kriging_flag", _FLAG, "n", "", "8", "'y': estimate SCN by kriging (ps_scn_filt_krig)"),
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
        "Patches to process in parallel (StaMPS 4.1); not used yet: stamps_python runs the "
        "patches one after another",
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
        "'y': subtract the tropo_method tropospheric estimate before unwrapping and SCLA "
        "(added back after unwrapping)",
    ),
    _p(
        "tropo_method",
        "choice",
        "a_l",
        "",
        "6, 7",
        "Which TRAIN tropospheric correction subtr_tropo uses",
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

# `stamps_parms RUN preset NAME`: parameter values switched on together (docs/accuracy.md).
PRESETS: dict[str, dict[str, Any]] = {
    "accurate": {
        "deramp_method": "model",
        "defo_model": "linear",
        "detrend_scn": "y",
        "auto_scn_time_win": "y",
        "export_coh_ps_min": 0.8,
        "export_tcoh_min": 0.7,
    },
}
PRESETS["faithful"] = {name: None for name in PRESETS["accurate"]}
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

OBSOLETE: dict[str, str] = {
    "unwrap_ifg_index": "replaced by drop_ifg_index (list the interferograms to leave OUT)",
    "recalc_index": "replaced by scla_drop_index (list the interferograms to leave OUT of SCLA)",
    "sb_recalc_index": "replaced by sb_scla_drop_index (list the SB interferograms to leave OUT)",
    "weed_alpha": "replaced by weed_time_win (Gaussian time window in days)",
    "plot_pixel_size": "replaced by plot_scatterer_size (in m; old value x 25)",
    "pixel_aspect_ratio": "removed from StaMPS; it has no replacement",
}


# --------------------------------------------------------------------------------------------
# names


def _nearest(name: str) -> str:
    best = difflib.get_close_matches(name, list(PARAMETERS), n=1, cutoff=0.0)
    return best[0]


def _obsolete_error(name: str) -> StampsError:
    return StampsError(f"parameter '{name}' is obsolete: {OBSOLETE[name]}")


def check_name(name: str) -> str:
    """Return ``name`` if it is an exact parameter name; otherwise a one-line StampsError."""
    if name in PARAMETERS:
        return name
    if name in OBSOLETE:
        raise _obsolete_error(name)
    raise StampsError(f"unknown parameter '{name}'; did you mean '{_nearest(name)}'?")


def resolve_name(name: str) -> str:
    """Full parameter name from a name or a unique prefix of one (as StaMPS ``setparm``)."""
    name = str(name).strip()
    if name in PARAMETERS:
        return name
    if name in OBSOLETE:
        raise _obsolete_error(name)
    matches = [n for n in PARAMETERS if n.startswith(name)] if name else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise StampsError(f"parameter '{name}' is ambiguous: it could be {', '.join(matches)}")
    old = [n for n in OBSOLETE if name and n.startswith(name)]
    if len(old) == 1:
        raise _obsolete_error(old[0])
    raise StampsError(f"unknown parameter '{name}'; did you mean '{_nearest(name)}'?")


# --------------------------------------------------------------------------------------------
# values


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


def _bad(name: str, value: Any, why: str) -> StampsError:
    shown = value if isinstance(value, str) else format_value(value)
    return StampsError(f"parameter {name}: {shown!r} {why}")


def _number(spec: ParmSpec, value: Any, whole: Any = None) -> float:
    """A float from a number or numeric text, checked against the spec's range."""
    orig = value if whole is None else whole
    if isinstance(value, (list, tuple, np.ndarray)) and spec.kind != "pair" and np.size(value) == 1:
        value = np.ravel(value)[0]
    if isinstance(value, (bool, np.bool_)):
        raise _bad(spec.name, orig, f"is not a number (allowed: {spec.allowed()})")
    if isinstance(value, (int, float, np.integer, np.floating)):
        x = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]") and spec.kind != "pair":
            text = text[1:-1].strip()
        try:
            x = float(text)
        except ValueError:
            raise _bad(spec.name, orig, f"is not a number (allowed: {spec.allowed()})") from None
    else:
        raise _bad(spec.name, orig, f"is not a number (allowed: {spec.allowed()})")
    if math.isnan(x):
        if spec.allow_nan:
            return NAN
        raise _bad(spec.name, orig, f"is not allowed (allowed: {spec.allowed()})")
    if math.isinf(x):
        if (x > 0 and spec.allow_inf) or (x < 0 and spec.allow_neg_inf):
            return x
        raise _bad(spec.name, orig, f"is out of range (allowed: {spec.allowed()})")
    low_ok = spec.minimum is None or (x > spec.minimum if spec.exclusive_min else x >= spec.minimum)
    high_ok = spec.maximum is None or x <= spec.maximum
    if not (low_ok and high_ok):
        raise _bad(spec.name, orig, f"is out of range (allowed: {spec.allowed()})")
    if spec.kind == "int":
        if not x.is_integer():
            raise _bad(spec.name, orig, f"is not a whole number (allowed: {spec.allowed()})")
        if spec.even and int(x) % 2:
            raise _bad(spec.name, orig, f"is not even (allowed: {spec.allowed()})")
        if spec.multiple and int(x) % spec.multiple:
            raise _bad(
                spec.name, orig, f"is not a multiple of {spec.multiple} (allowed: {spec.allowed()})"
            )
    return x


_RANGE = re.compile(r"^([+-]?\d+)(?::([+-]?\d+))?:([+-]?\d+)$")


def _tokens(spec: ParmSpec, value: Any) -> list[Any]:
    """Elements of a list value given as a sequence, a scalar or text like '[1, 2]' / '3:5'."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        out: list[Any] = []
        for tok in re.split(r"[\s,;]+", text.strip()):
            if not tok:
                continue
            tok = tok.strip("'\"")
            m = _RANGE.match(tok) if spec.kind == "index_list" else None
            if m:
                start, step, stop = int(m.group(1)), int(m.group(2) or 1), int(m.group(3))
                if step == 0:
                    raise _bad(spec.name, value, "has a zero step in a range")
                out.extend(range(start, stop + (1 if step > 0 else -1), step))
            else:
                out.append(tok)
        return out
    return [value]


def _index_list(spec: ParmSpec, value: Any) -> list[int] | str:
    if spec.allow_all and isinstance(value, str) and value.strip().strip("'\"").lower() == "all":
        return "all"
    out: list[int] = []
    for tok in _tokens(spec, value):
        if isinstance(tok, (bool, np.bool_)):
            raise _bad(
                spec.name, value, f"is not a list of interferogram numbers ({spec.allowed()})"
            )
        try:
            x = float(tok)
        except (TypeError, ValueError):
            raise _bad(
                spec.name, value, f"is not a list of interferogram numbers ({spec.allowed()})"
            ) from None
        if not (math.isfinite(x) and x.is_integer() and x >= 1):
            raise _bad(
                spec.name,
                value,
                f"holds {format_value(tok)}, not an interferogram number ({spec.allowed()})",
            )
        out.append(int(x))
    return sorted(set(out))


def _pair(spec: ParmSpec, value: Any) -> list[float]:
    toks = _tokens(spec, value)
    if len(toks) != 2:
        raise _bad(spec.name, value, f"is not two numbers (allowed: {spec.allowed()})")
    pair = [_number(spec, t, whole=value) for t in toks]
    if spec.ordered and pair[0] > pair[1]:
        raise _bad(spec.name, value, f"has low > high (allowed: {spec.allowed()})")
    return pair


def validate_parm(name: str, value: Any) -> Any:
    """Check and convert ``value`` for parameter ``name`` (full name); returns the Python value.

    Text is converted as on the command line: "0.5" -> 0.5, "inf" -> inf, "[1,2]" or "1:2" ->
    [1, 2], "Y" -> 'y'. Floats come back as float, whole-number parameters as int, flags as
    'y'/'n', choices in StaMPS' spelling, vectors as lists. An unknown name, a wrong type or an
    out-of-range value is a one-line :class:`StampsError`.
    """
    spec = PARAMETERS[check_name(name)]
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if spec.kind == "float":
        return _number(spec, value)
    if spec.kind == "int":
        return int(_number(spec, value))
    if spec.kind == "flag":
        if isinstance(value, (bool, np.bool_)):
            return "y" if value else "n"
        if isinstance(value, str) and value.strip().strip("'\"").lower() in ("y", "n"):
            return value.strip().strip("'\"").lower()
        raise _bad(spec.name, value, f"is not allowed (allowed: {spec.allowed()})")
    if spec.kind == "choice":
        if isinstance(value, str):
            text = value.strip().strip("'\"")
            if text in spec.choices:
                return text
            folded = [c for c in spec.choices if c.lower() == text.lower()]
            if len(folded) == 1:
                return folded[0]
        raise _bad(spec.name, value, f"is not allowed (allowed: {spec.allowed()})")
    if spec.kind == "index_list":
        return _index_list(spec, value)
    return _pair(spec, value)


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


def _to_json(value: Any) -> Any:
    """JSON form of a parameter value: inf/-inf/nan as strings, whole floats as integers."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_to_json(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x.is_integer() and abs(x) < 1e15:
            return int(x)
        return x
    return value


def dumps(parms: Mapping[str, Any]) -> str:
    """Text of a parms JSON file: one parameter per line, lists kept on their line."""
    lines = [
        f"  {json.dumps(k)}: {json.dumps(_to_json(v), separators=(', ', ': '))}"
        for k, v in parms.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n" if lines else "{}\n"


def _write_json(path: Path, parms: Mapping[str, Any]) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(dumps(parms), encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    """Raw, validated contents of a parms/localparms file (values converted to Python types)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StampsError(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise StampsError(f"{path}: is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StampsError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise StampsError(f"{path}: must hold one JSON object of parameter names and values")
    out: dict[str, Any] = {}
    for key, value in data.items():
        try:
            out[check_name(key)] = validate_parm(key, value)
        except StampsError as exc:
            raise StampsError(f"{path}: {exc}") from None
    return out


# --------------------------------------------------------------------------------------------
# files


def find_parms_file(run_dir: str | Path) -> Path | None:
    """``parms.json`` of a directory, or of its parent (a patch directory), as StaMPS looks."""
    run_dir = Path(run_dir)
    for directory in (run_dir, run_dir.parent):
        path = directory / PARMS_FILE
        if path.is_file():
            return path
    return None


def _metadata_values(run_dir: Path) -> dict[str, float]:
    """``lambda`` / ``heading`` from the nearest metadata.json (here, parent or grandparent)."""
    path = nearest_metadata(run_dir)
    if path is None:
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StampsError(f"{path}: cannot be read for lambda/heading ({exc})") from None
    out: dict[str, float] = {}
    if isinstance(meta, dict):
        for parm, key in (("lambda", "wavelength"), ("heading", "heading")):
            if meta.get(key) is not None:
                try:
                    out[parm] = validate_parm(parm, meta[key])
                except StampsError as exc:
                    raise StampsError(f"{path}: {exc}") from None
    return out


def _local_parms(run_dir: Path) -> dict[str, Any]:
    """``localparms.json`` of ``run_dir`` only, as StaMPS' getparm reads the current directory's
    localparms.mat: in a patch, the run directory's local overrides do not apply."""
    local_path = run_dir / LOCALPARMS_FILE
    return _read_json(local_path) if local_path.is_file() else {}


def _resolve(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Effective parameters and their sources (default / parms / localparms / metadata)."""
    run_dir = Path(run_dir)
    parms_path = find_parms_file(run_dir)
    file_parms = _read_json(parms_path) if parms_path else {}
    local_parms = _local_parms(run_dir)
    flag = local_parms.get("small_baseline_flag", file_parms.get("small_baseline_flag", "n"))
    values = default_parms(flag == "y")
    sources = dict.fromkeys(values, "default")
    for layer, label in ((file_parms, "parms"), (local_parms, "localparms")):
        for key, value in layer.items():
            values[key] = value
            sources[key] = label
    unset = [k for k in ("lambda", "heading") if math.isnan(values[k])]
    if unset:
        meta = _metadata_values(run_dir)
        for key in unset:
            if key in meta and not math.isnan(meta[key]):
                values[key] = meta[key]
                sources[key] = "metadata"
    order = {name: i for i, name in enumerate(PARAMETERS)}
    keys = sorted(values, key=order.__getitem__)
    return {k: values[k] for k in keys}, {k: sources[k] for k in keys}


def load_parms(run_dir: str | Path) -> dict[str, Any]:
    """Effective parameters of a run or patch directory: localparms > parms > defaults.

    ``parms.json`` is read from ``run_dir`` or, for a patch directory, its parent; for a patch,
    the run's ``localparms.json`` applies and the patch's own on top of it. Unset (nan)
    ``lambda`` / ``heading`` are filled from the stack ``metadata.json`` (wavelength in m, heading
    in deg). Every value is validated.
    """
    return _resolve(run_dir)[0]


def parm_sources(run_dir: str | Path) -> dict[str, tuple[Any, str]]:
    """Every effective parameter with where it came from: default, parms, localparms, metadata."""
    values, sources = _resolve(run_dir)
    return {k: (values[k], sources[k]) for k in values}


def get_parm(run_dir_or_dict: str | Path | Mapping[str, Any], name: str) -> Any:
    """One parameter (a unique prefix of its name is enough) from a run directory or a dict."""
    full = resolve_name(name)
    parms = run_dir_or_dict if isinstance(run_dir_or_dict, Mapping) else load_parms(run_dir_or_dict)
    if full not in parms:
        raise StampsError(
            f"parameter {full} is not set here (StaMPS creates it only for small-baseline runs)"
            if PARAMETERS[full].ps_default is ABSENT
            else f"parameter {full} is missing from the parameter set"
        )
    return parms[full]


def write_parms(
    run_dir: str | Path, small_baseline: bool = False, overrides: Mapping[str, Any] | None = None
) -> Path:
    """Create (or replace) ``run_dir/parms.json`` holding every parameter, atomically.

    Starts from the PS or SB defaults, fills ``lambda`` / ``heading`` from ``run_dir``'s
    ``metadata.json`` when present, then applies ``overrides`` (full names, validated).
    """
    run_dir = Path(run_dir)
    parms = default_parms(small_baseline)
    meta = _metadata_values(run_dir)
    parms.update(meta)
    for key, value in (overrides or {}).items():
        checked = validate_parm(key, value)
        if key == "small_baseline_flag" and checked != parms[key]:
            raise StampsError(
                f"parameter small_baseline_flag: override '{checked}' contradicts "
                f"small_baseline={small_baseline}"
            )
        parms[key] = checked
    path = run_dir / PARMS_FILE
    _write_json(path, parms)
    get_logger().debug("wrote %s (%d parameters)", path, len(parms))
    return path


def set_parm(run_dir: str | Path, name: str, value: Any, local: bool = False) -> tuple[str, Any]:
    """Set one parameter (unique prefix allowed) in parms.json, or localparms.json if ``local``.

    As StaMPS ``setparm``: if the parameter is already in ``localparms.json`` the local file is
    the one updated. Without any parms.json one is first created with the defaults. Returns the
    full name and the stored value.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: no such run directory")
    full = resolve_name(name)
    checked = validate_parm(full, value)
    log = get_logger()
    parms_path = find_parms_file(run_dir)
    if parms_path is None:
        parms_path = write_parms(
            run_dir, small_baseline=(full == "small_baseline_flag" and checked == "y")
        )
        log.info("created %s with the default parameters", parms_path)
    file_parms = _read_json(parms_path)
    local_parms = _local_parms(run_dir)
    local_path = run_dir / LOCALPARMS_FILE
    if local or full in local_parms:
        if not local:
            log.warning("%s is in %s: only the LOCAL parameter file was updated", full, local_path)
        local_parms[full] = checked
        _write_json(local_path, local_parms)
        target = local_path
    else:
        file_parms[full] = checked
        _write_json(parms_path, file_parms)
        target = parms_path
    if full == "small_baseline_flag":
        log.warning(
            "small_baseline_flag changed: parameters whose default differs for small "
            "baselines keep their present values"
        )
    log.debug("%s = %s (%s)", full, format_value(checked), target)
    return full, checked


def reset_parm(run_dir: str | Path, name: str, local_only: bool = False) -> tuple[str, Any]:
    """Put a parameter back to its default (StaMPS ``setparm(name, nan)``); returns name, value.

    Removes it from ``localparms.json``; unless ``local_only`` also writes the default (PS or SB,
    per ``small_baseline_flag``) into parms.json. Returns the value now in effect.
    """
    run_dir = Path(run_dir)
    full = resolve_name(name)
    if full == "small_baseline_flag" and not local_only:
        raise StampsError("small_baseline_flag has no default to reset to; set it to 'y' or 'n'")
    local_path = run_dir / LOCALPARMS_FILE
    if local_path.is_file():
        local_parms = _read_json(local_path)
        if full in local_parms:
            del local_parms[full]
            if local_parms:
                _write_json(local_path, local_parms)
            else:
                local_path.unlink()
    parms_path = find_parms_file(run_dir)
    if not local_only and parms_path is not None:
        file_parms = _read_json(parms_path)
        flag = file_parms.get("small_baseline_flag", "n")
        spec = PARAMETERS[full]
        default = spec.sb_default if flag == "y" else spec.ps_default
        if default is ABSENT:
            file_parms.pop(full, None)
        else:
            file_parms[full] = copy.deepcopy(default)
        _write_json(parms_path, file_parms)
    values = load_parms(run_dir)
    get_logger().debug("%s reset to default", full)
    return full, values.get(full, ABSENT)


def apply_preset(run_dir: str | Path, name: str) -> list[tuple[str, Any]]:
    """Set every parameter of preset ``name`` (:data:`PRESETS`) in the run's parms.json.

    'faithful' puts them back to their StaMPS defaults. Returns (name, value) as stored.
    """
    if name not in PRESETS:
        raise StampsError(f"preset '{name}': choose one of {', '.join(sorted(PRESETS))}")
    done = []
    for parm, value in PRESETS[name].items():
        if value is None:
            done.append(reset_parm(run_dir, parm))
        else:
            done.append(set_parm(run_dir, parm, value))
    return done


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


# --------------------------------------------------------------------------------------------
# command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stamps_parms",
        formatter_class=HelpFormatter,
        description="List, read and change StaMPS parameters (parms.json / localparms.json). "
        "NAME may be any unique prefix of a parameter name.",
    )
    parser.add_argument("run_dir", help="run (or patch) directory")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every parameter with its value and source")
    p_get = sub.add_parser("get", help="print one parameter")
    p_get.add_argument("name", help="parameter name or unique prefix")
    p_set = sub.add_parser("set", help="set one parameter (VALUE like 0.5, inf, y, '[1,2]', 3:5)")
    p_set.add_argument("--local", action="store_true", help="write localparms.json")
    p_set.add_argument("name", help="parameter name or unique prefix")
    p_set.add_argument("value", nargs=argparse.REMAINDER, help="new value")
    p_preset = sub.add_parser(
        "preset",
        help="set a group of parameters at once: 'accurate' "
        "(the opt-in corrections beyond StaMPS, docs/accuracy.md) or "
        "'faithful' (their StaMPS defaults)",
    )
    p_preset.add_argument("preset", choices=sorted(PRESETS), help="preset name")
    p_reset = sub.add_parser("reset", help="put one parameter back to its default")
    p_reset.add_argument("--local", action="store_true", help="only remove it from localparms.json")
    p_reset.add_argument("name", help="parameter name or unique prefix")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``stamps_parms`` command line; errors are StampsError (one line)."""
    args = _parser().parse_args(argv)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: no such run directory")
    if args.command == "list":
        rows = parm_sources(run_dir)
        width = max(len(k) for k in rows)
        texts = {k: format_value(v) for k, (v, _) in rows.items()}
        vwidth = max(len(t) for t in texts.values())
        for key, (_, source) in rows.items():
            print(f"{key:<{width}}  {texts[key]:<{vwidth}}  {source}")
        return 0
    if args.command == "get":
        full = resolve_name(args.name)
        print(f"{full} = {format_value(get_parm(run_dir, full))}")
        return 0
    setup_logging(run_dir)
    if args.command == "set":
        words = list(args.value)
        local = args.local or "--local" in words
        words = [w for w in words if w != "--local"]
        if words[:1] == ["--"]:
            words = words[1:]
        if not words:
            raise StampsError(f"set {args.name}: a VALUE is needed")
        value: Any = words[0] if len(words) == 1 else " ".join(words)
        full, stored = set_parm(run_dir, args.name, value, local=local)
        where = LOCALPARMS_FILE if (local or full in _local_keys(run_dir)) else PARMS_FILE
        print(f"{full} = {format_value(stored)} ({where})")
        return 0
    if args.command == "preset":
        for full, stored in apply_preset(run_dir, args.preset):
            print(f"{full} = {format_value(stored)}")
        return 0
    full, value = reset_parm(run_dir, args.name, local_only=args.local)
    source = parm_sources(run_dir).get(full, (None, "absent"))[1]
    print(f"{full} = {format_value(value)} ({source})")
    return 0


def _local_keys(run_dir: Path) -> set[str]:
    path = run_dir / LOCALPARMS_FILE
    return set(_read_json(path)) if path.is_file() else set()


def cli(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: exit 0, or 1 with a one-line error."""
    return run_cli(main, argv)


if __name__ == "__main__":
    raise SystemExit(cli())


# --------------------------------------------------------------------------------------------
# reading parameters inside the steps (one place for flags, numbers and interferogram lists)


def with_defaults(parms: Mapping[str, Any]) -> dict[str, Any]:
    """``parms`` completed with the StaMPS defaults (PS or SB, after ``small_baseline_flag``)."""
    sb = flag(parms, "small_baseline_flag")
    out = default_parms(sb)
    out.update(parms)
    return out


def flag(parms: Mapping[str, Any], name: str, default: str = "n") -> bool:
    """True when the StaMPS yes/no parameter ``name`` is ``'y'`` (case-insensitive)."""
    return str(parms.get(name, default)).strip().lower().startswith("y")


_REQUIRED = object()


def required(parms: Mapping[str, Any], name: str) -> Any:
    """Parameter ``name``; a StampsError when it is missing."""
    if parms.get(name) is None:
        raise StampsError(f"parameter '{name}' is missing")
    return parms[name]


def number(
    parms: Mapping[str, Any], name: str, default: Any = _REQUIRED, finite: bool = False
) -> float:
    """Numeric parameter ``name`` as a float (``'inf'`` accepted unless ``finite``).

    Without a ``default`` the parameter must be present; a value that is not a number (or not
    finite when ``finite``) is a one-line StampsError naming it.
    """
    value = parms.get(name)
    if value is None:
        if default is _REQUIRED:
            raise StampsError(f"parameter '{name}' is missing")
        value = default
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise StampsError(f"parameter '{name}' = {value!r} is not a number") from None
    if finite and not math.isfinite(out):
        raise StampsError(f"parameter '{name}' = {value!r} must be finite")
    return out


def ifg_index0(
    value: Any, n: int, name: str, allow_all: bool = False, strict: bool = False
) -> np.ndarray:
    """0-based sorted unique indices below ``n`` from a StaMPS 1-based index-list parameter.

    ``'all'`` (when ``allow_all``) gives every index. Numbers outside 1..n are an error when
    ``strict``, else ignored with a warning (as MATLAB's ``setdiff``/``intersect`` do).
    """
    if value is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(value, str):
        text = value.strip().lower()
        if allow_all and text == "all":
            return np.arange(n, dtype=np.int64)
        if text in ("", "[]"):
            return np.zeros(0, dtype=np.int64)
        raise StampsError(f"parameter {name}: '{value}' is not a list of interferogram numbers")
    try:
        vals = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise StampsError(f"parameter {name}: {value!r} is not a list of numbers") from None
    if np.any(vals != np.round(vals)):
        raise StampsError(f"parameter {name}: {vals.tolist()} are not whole numbers")
    idx = vals.astype(np.int64) - 1
    outside = (idx < 0) | (idx >= n)
    if np.any(outside):
        if strict:
            raise StampsError(
                f"parameter {name}: {vals.tolist()} must be interferogram numbers 1..{n}"
            )
        get_logger().warning(
            "parameter %s: numbers outside 1..%d ignored: %s", name, n, (idx[outside] + 1).tolist()
        )
    return np.unique(idx[~outside])


def drop_ifg_index0(parms: Mapping[str, Any], n_ifg: int) -> np.ndarray:
    """0-based interferograms to drop, from the 1-based ``drop_ifg_index`` (numbers 1..n_ifg)."""
    return ifg_index0(parms.get("drop_ifg_index", []), n_ifg, "drop_ifg_index", strict=True)

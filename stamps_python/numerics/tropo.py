"""TRAIN tropospheric corrections: the ``tropo_method`` table and its SB-to-single-master inversion.

Pure functions shared by ``ps_calc_scla``, ``ps_unwrap``, ``sb_invert_uw`` and the export.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from stamps_python.numerics.baselines import sb_design
from stamps_python.utils import StampsError

# TRAIN correction names (ps_plot_tca): method -> (datasets summed, dataset whose all-zero
# columns mark interferograms without an estimate, whose summed correction is then set to 0).
_TCA_METHODS: dict[str, tuple[tuple[str, ...], str | None]] = {}


def _tca(names: tuple[str, ...], fields: tuple[str, ...], mask: str | None = None) -> None:
    for name in names:
        _TCA_METHODS[name] = (fields, mask)


_tca(("a_l", "a_linear"), ("ph_tropo_linear",))
_tca(("a_p", "a_powerlaw"), ("ph_tropo_powerlaw",))
_tca(("a_m", "a_meris"), ("ph_tropo_meris",))
_tca(("a_e", "a_erai"), ("ph_tropo_era",))
_tca(("a_eh", "a_erai-h"), ("ph_tropo_era_hydro",))
_tca(("a_ew", "a_erai-w"), ("ph_tropo_era_wet",))
_tca(("a_w", "a_wrf"), ("ph_tropo_wrf",))
_tca(("a_wh", "a_wrf-h"), ("ph_tropo_wrf_hydro",))
_tca(("a_ww", "a_wrf-w"), ("ph_tropo_wrf_wet",))
_tca(("a_mi", "a_meris-ni"), ("ph_tropo_meris_no_interp",))
_tca(("a_pk", "a_powerlaw-k"), ("K_tropo_powerlaw",))
_tca(("a_M", "a_modis"), ("ph_tropo_modis",))
_tca(("a_MI", "a_modis-ni"), ("ph_tropo_modis_no_interp",))
_tca(("a_lman", "a_linear-man"), ("strat_corr",))
_tca(("a_RM", "a_recalmodis"), ("ph_tropo_modis_recal",))
_tca(("a_RMI", "a_recalmodis-ni"), ("ph_tropo_modis_no_interp_recal",))
for _hyd_short, _hyd_long, _hyd in (
    ("a_eh", "a_erai-h", "ph_tropo_era_hydro"),
    ("a_wh", "a_wrf-h", "ph_tropo_wrf_hydro"),
):
    _tca((f"a_m+{_hyd_short}", f"a_meris+{_hyd_long}"), ("ph_tropo_meris", _hyd), "ph_tropo_meris")
    _tca((f"a_mi+{_hyd_short}", f"a_meris-ni+{_hyd_long}"), ("ph_tropo_meris_no_interp", _hyd))
    _tca((f"a_M+{_hyd_short}", f"a_modis+{_hyd_long}"), ("ph_tropo_modis", _hyd), "ph_tropo_modis")
    _tca((f"a_MI+{_hyd_short}", f"a_modis-ni+{_hyd_long}"), ("ph_tropo_modis_no_interp", _hyd))
    _tca(
        (f"a_RM+{_hyd_short}", f"a_recalmodis+{_hyd_long}"),
        ("ph_tropo_modis_recal", _hyd),
        "ph_tropo_modis",
    )
    _tca(
        (f"a_RMI+{_hyd_short}", f"a_recalmodis-ni+{_hyd_long}"),
        ("ph_tropo_modis_no_interp_recal", _hyd),
    )
for _model in ("merra", "merra2", "narr"):
    _tca((f"a_{_model}",), (f"ph_tropo_{_model}",))
    _tca((f"a_{_model}-h",), (f"ph_tropo_{_model}_hydro",))
    _tca((f"a_{_model}-w",), (f"ph_tropo_{_model}_wet",))
_tca(("a_gacos",), ("ph_tropo_gacos",))
_tca(("a_era5",), ("ph_tropo_era5",))
_tca(("a_era5-h",), ("ph_tropo_era5_hydro",))
_tca(("a_era5-w",), ("ph_tropo_era5_wet",))


def tropo_methods() -> list[str]:
    """Every ``tropo_method`` name ps_plot_tca accepts (short and long spellings)."""
    return list(_TCA_METHODS)


def tropo_fields() -> set[str]:
    """The TRAIN datasets (``ph_tropo_*``, ``K_tropo_powerlaw``, ``strat_corr``) methods read."""
    return {f for fields, mask in _TCA_METHODS.values() for f in fields + ((mask,) if mask else ())}


def check_tropo_method(method: str, what: str = "parameter tropo_method") -> str:
    """``method`` if it names a TRAIN correction, else a one-line StampsError naming ``what``."""
    if method not in _TCA_METHODS:
        raise StampsError(
            f"{what}: '{method}' is not a TRAIN correction (a_l, a_linear, a_e, a_era5, "
            f"a_gacos, ... see docs/troposphere.md)"
        )
    return method


def tropo_correction(tca: Mapping[str, np.ndarray], method: str) -> np.ndarray:
    """The TRAIN correction (rad, n_ps x n_ifg) that ``tropo_method`` names (as ps_plot_tca)."""
    check_tropo_method(method)
    fields, mask = _TCA_METHODS[method]
    missing = [f for f in fields + ((mask,) if mask else ()) if f not in tca]
    if missing:
        raise StampsError(
            f"tropo_method '{method}' needs {', '.join(missing)} in the TRAIN "
            f"correction product, which lacks it; run aps_linear (a_l) or TRAIN and "
            f"aps_import for it first"
        )
    corr = np.sum([np.asarray(tca[f], dtype=np.float64) for f in fields], axis=0)
    if mask is not None:
        corr[:, np.asarray(tca[mask]).sum(axis=0) == 0] = 0.0
    return corr


def sb_invert_tropo(ps: Mapping[str, Any], corr_sb: np.ndarray, drop0: np.ndarray) -> np.ndarray:
    """Single-master (n_ps, n_image) tropospheric correction from the SB one (sb_invert_aps).

    Interferograms without an estimate (column mean 0) and dropped ones are left out; the master
    image is the reference (0).
    """
    n_ifg = int(ps["n_ifg"])
    mi = int(ps["master_ix"])
    G = sb_design(ps)
    if not np.any(G[:, mi]):
        raise StampsError("none of the SB interferograms includes the master image")
    G[:, mi] = 0.0
    uii = np.setdiff1d(np.arange(n_ifg), drop0)
    G2 = G[uii]
    nzc = np.any(G2 != 0, axis=0)
    if np.linalg.matrix_rank(G2[:, nzc]) < nzc.sum():
        raise StampsError("SB network has isolated subsets (cannot be inverted w.r.t. master)")
    with np.errstate(invalid="ignore"):
        no_est = np.flatnonzero(np.nanmean(corr_sb, axis=0) == 0)
    uii = np.setdiff1d(uii, no_est)
    G3 = G[uii]
    nzc = np.any(G3 != 0, axis=0)
    if np.linalg.matrix_rank(G3[:, nzc]) < nzc.sum():
        raise StampsError(
            "the SB interferograms with a tropospheric estimate form isolated "
            "subsets (cannot be inverted w.r.t. master)"
        )
    ifgday = np.asarray(ps["ifgday"], dtype=np.float64)[uii]
    has = np.asarray(corr_sb)[:, uii].sum(axis=0) != 0
    days = np.unique(ifgday[has].ravel())
    if np.count_nonzero(days == float(ps["master_day"])) != 1:
        raise StampsError(
            "the master image has no tropospheric estimate; cannot invert to single master"
        )
    out = np.zeros((corr_sb.shape[0], int(ps["n_image"])), dtype=np.float32)
    out[:, nzc] = np.asarray(corr_sb, dtype=np.float64)[:, uii] @ np.linalg.pinv(G3[:, nzc]).T
    return out

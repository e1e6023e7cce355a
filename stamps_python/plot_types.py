"""The numbers behind ps_plot's value types (``w-dmo``, ``u-do``, ``usb-do``, ``rsb``, ``d``, ``D``,
``m``, ``o``, ``s``, ``a``, ``hgt``, ``vdrop-do``, ...): which workspace terms each combines, how
the shown interferograms are chosen (IFG_LIST), re-referenced (REF_IFG) and referenced to the
reference area, as StaMPS' ``ps_plot``. See docs/export.md, "Other value types".
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stamps_python.numerics.defo_model import residual_deramp
from stamps_python.numerics.deramp import ps_deramp_inplace
from stamps_python.numerics.timeseries import (
    Correction,
    corrected_phase,
    ifg_weights,
    reference_mean,
)
from stamps_python.numerics.value_types import (
    SMALL_BASELINE_ONLY,
    ValueType,
    drop_one_velocities,
    matlab_limits,
    rereference,
    rereference_wrapped,
    vdrop_rms,
)
from stamps_python.parms import drop_ifg_index0
from stamps_python.results import (
    Reference,
    RunData,
    aps_phase,
    model_deramp_of,
    pair_model_design,
    reference_from_parms,
    sm_dates,
)
from stamps_python.utils import StampsError, get_logger

SINGLE_FIELDS = {"d": "K_PS_UW", "dsb": "K_PS_UW", "m": "C_PS_UW", "hgt": "HGT"}


@dataclass
class PlotValues:
    """The values of one value type as ps_plot shows them.

    ``values`` (n_ps, n_shown): real values in ``units``, or for a wrapped type the phase angle
    (rad, [-pi, pi]); ``columns`` the 0-based columns of the type's matrix shown (``numbers``
    their 1-based interferogram numbers), with a panel title and an export field name each;
    ``lims`` the colour limits; ``ref_ix`` the reference PS used (None: not referenced);
    ``table`` for 'vdrop' the RMS change per left-out interferogram.
    """

    value_type: ValueType
    values: np.ndarray
    columns: np.ndarray
    titles: list[str]
    fields: list[str]
    units: str
    lims: tuple[float, float]
    ref_ix: np.ndarray | None
    description: str
    table: dict[str, np.ndarray] | None = None
    labels: list[str] = field(default_factory=list)

    @property
    def numbers(self) -> list[int]:
        """1-based numbers of the shown columns (as ps_plot's IFG_LIST)."""
        return [int(c) + 1 for c in self.columns]


@dataclass
class _Matrix:
    """A value type's full matrix before selection: ``values`` (n_ps, n) real or complex,
    column labels (dates or pairs) for titles and fields, the default shown columns, and
    whether the reference area is subtracted."""

    values: np.ndarray
    labels: list[str]
    default: np.ndarray
    referenced: bool = True
    prefix: str = "PH"
    drop: bool = False
    note: str = ""
    v_all: np.ndarray | None = None


def _check_kind(run: RunData, vt: ValueType) -> None:
    """Small-baseline types in a PS run, and 's' with lower-case 'vdrop' in an SB run, are
    one-line errors."""
    if vt.base in SMALL_BASELINE_ONLY and not run.small_baseline:
        raise StampsError(
            f"value type '{vt.text}': only in a small-baseline run (small_baseline_flag 'y'); "
            f"{run.run_dir} is a PS run"
        )
    if vt.base == "vdrop" and run.small_baseline and not vt.single_master and vt.has("s"):
        raise StampsError(
            f"value type '{vt.text}': lower-case 'vdrop' fits the small-baseline "
            f"interferograms, for which StaMPS has no 's' term; use 'V{vt.text[1:]}'"
        )


def _sm_labels(run: RunData) -> list[str]:
    return run.dates


def _sb_labels(run: RunData) -> list[str]:
    dates = run.dates
    pairs = np.asarray(run.ps["ifgday_ix"], dtype=np.int64)
    return [f"{dates[a]}_{dates[b]}" for a, b in pairs]


def _used_sm(run: RunData) -> np.ndarray:
    """ps_plot's default IFG_LIST of single-master types (0-based): in a PS run every
    interferogram not in drop_ifg_index, in an SB run the dates sb_invert_uw solved."""
    if not run.small_baseline:
        return np.setdiff1d(np.arange(run.n_ifg), drop_ifg_index0(run.parms, run.n_ifg))
    phuw = run.product("phuw2", "the single-master dates")
    solved = phuw.get("unwrap_ifg_index_sm", np.arange(run.n_sm))
    return np.asarray(solved, dtype=np.int64).ravel()


def _used_sb(run: RunData) -> np.ndarray:
    """The small-baseline interferograms not in drop_ifg_index (0-based)."""
    return np.setdiff1d(np.arange(run.n_ifg), drop_ifg_index0(run.parms, run.n_ifg))


def _scla(run: RunData, smooth: bool, sb: bool) -> str:
    """Step 7's workspace: scla2 / scla_sb2, or their smoothed versions (ps_plot's 'w' types)."""
    name = ("scla_smooth" if smooth else "scla") + ("_sb2" if sb else "2")
    if smooth and not run.has(name) and run.has(name.replace("scla_smooth", "scla")):
        get_logger().info("%s not found; using %s", name, name.replace("scla_smooth", "scla"))
        name = name.replace("scla_smooth", "scla")
    return name


def _ramps(run: RunData, name: str, why: str, columns: int) -> np.ndarray:
    """``ph_ramp`` of Step 7 (rad); a one-line error when Step 7 did not deramp."""
    ramp = np.asarray(run.product(name, why, ["ph_ramp"])["ph_ramp"])
    if ramp.size == 0:
        raise StampsError(
            f"{run.run_dir / (name + '.h5')}: ph_ramp is empty ({why} needs the ramps of "
            f"Step 7): set scla_deramp y (stamps_parms RUN set scla_deramp y) and rerun Step 7"
        )
    return run.per_ps(name, "ph_ramp", why, columns)


def _deramp(run: RunData, ph: np.ndarray, model: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Remove the plane of every column of ``ph`` (float64, in place) as ps_deramp, or with
    deramp_method 'model' on the columns of ``model`` the planes of the model residual."""
    xy = np.asarray(run.ps["xy"], dtype=np.float64)
    if model is None:
        ps_deramp_inplace(xy, ph)
    else:
        cols, G = model
        ph[:, cols] = residual_deramp(ph[:, cols], xy[:, 1:3], G)[0]


def _wrapped(run: RunData, vt: ValueType, ref_ifg: int, why: str) -> _Matrix:
    """'w', 'w-d', 'w-o', 'w-do', 'w-dm', 'w-dmo', 'w-a', 'w-da': rc2 ph_rc times exp(-j x the
    terms); REF_IFG k > 0 multiplies by the conjugate of rc2 ph_reref of interferogram k."""
    sb = run.small_baseline
    n = run.n_ifg
    ph = run.per_ps("rc2", "ph_rc", why, n).astype(np.complex128)
    if ref_ifg > 0:
        reref = run.per_ps("rc2", "ph_reref", f"{why} with --ref-ifg", n)
        ph *= np.conj(reref[:, [ref_ifg - 1]]).astype(np.complex128)
    term = np.zeros(ph.shape)
    if vt.has("d") or vt.has("m"):
        smooth = _scla(run, smooth=True, sb=sb)
        if vt.has("d"):
            term += run.per_ps(smooth, "ph_scla", why, n)
        if vt.has("m"):
            term += run.per_ps(smooth, "C_ps_uw", why).reshape(-1, 1)
    if vt.has("o"):
        term += _ramps(run, _scla(run, smooth=False, sb=sb), why, n)
    if vt.has("a"):
        term += aps_phase(run, why, sb_ifgs=True) if sb else aps_phase(run, why)
    ph *= np.exp(-1j * term)
    if vt.has("m") and not sb:
        ph[:, run.master_ix] = 1.0
    labels = _sb_labels(run) if sb else _sm_labels(run)
    return _Matrix(ph, labels, _used_sb(run) if sb else _used_sm(run))


def _unwrapped(run: RunData, vt: ValueType, why: str) -> _Matrix:
    """'u', 'u-d', 'u-o', 'u-do', 'u-dm', 'u-dmo', 'u-dms', 'u-dmos', 'u-a', 'u-da', ...: the
    single-master unwrapped phase phuw2 minus the terms (scla2 ph_scla, C_ps_uw, scn2, TRAIN),
    deramped for 'o'; the reference date 0 when m, s or a is removed (as ps_plot)."""
    n = run.n_sm
    corr = Correction(vt.text, "u", vt.letters)
    scla = _scla(run, smooth=False, sb=False)
    ph = corrected_phase(
        run.per_ps("phuw2", "ph_uw", why, n),
        corr,
        master_ix=run.master_ix,
        ps_xy=np.asarray(run.ps["xy"], dtype=np.float64),
        ph_scla=run.per_ps(scla, "ph_scla", why, n) if vt.has("d") else None,
        c_ps_uw=run.per_ps(scla, "C_ps_uw", why) if vt.has("m") else None,
        ph_scn=run.per_ps("scn2", "ph_scn_slave", why, n) if vt.has("s") else None,
        ph_aps=aps_phase(run, why) if vt.has("a") else None,
        model_deramp=model_deramp_of(run),
    )
    if vt.letters & {"m", "s", "a"}:
        ph[:, run.master_ix] = 0.0
    return _Matrix(ph, _sm_labels(run), _used_sm(run))


def _sb_model(run: RunData) -> tuple[np.ndarray, np.ndarray] | None:
    """deramp_method 'model' for the small-baseline interferograms (None: 'plane')."""
    if str(run.parms["deramp_method"]) != "model":
        return None
    use_sb = _used_sb(run)
    return use_sb, pair_model_design(run, use_sb)


def _small_baseline(run: RunData, vt: ValueType, why: str) -> _Matrix:
    """'usb' (phuw_sb2 minus scla_sb2 (d) and tca_sb2 (a), deramped (o)), 'rsb' (phuw_sb2 minus
    the inversion's model phuw_sb_res2 ph_res on the used interferograms, 0 elsewhere) and 'asb'
    (tca_sb2), per small-baseline interferogram."""
    n = run.n_ifg
    used = _used_sb(run)
    if vt.base == "usb":
        ph = np.array(run.per_ps("phuw_sb2", "ph_uw", why, n), dtype=np.float64)
        if vt.has("d"):
            ph -= run.per_ps("scla_sb2", "ph_scla", why, n)
        if vt.has("a"):
            ph -= aps_phase(run, why, sb_ifgs=True)
    elif vt.base == "rsb":
        ph = np.zeros((run.n_ps, n))
        ph[:, used] = np.asarray(run.per_ps("phuw_sb2", "ph_uw", why, n), np.float64)[:, used]
        ph[:, used] -= run.per_ps("phuw_sb_res2", "ph_res", why, n)[:, used]
    else:
        ph = aps_phase(run, why, sb_ifgs=True).copy()
    if vt.has("o"):
        _deramp(run, ph, _sb_model(run))
    return _Matrix(ph, _sb_labels(run), used)


def _term(run: RunData, vt: ValueType, why: str) -> _Matrix:
    """The single terms: 'a' (TRAIN, deramped for 'a-o'), 's' (scn2), 'o' (scla2 ph_ramp), and
    the per-point 'm' (C_ps_uw, rad), 'd' / 'D' / 'dsb' (K_ps_uw, rad/m) and 'hgt' (m)."""
    n = run.n_sm
    one = np.zeros(1, dtype=np.int64)
    if vt.base == "a":
        ph = aps_phase(run, why).copy()
        if vt.has("o"):
            _deramp(run, ph, model_deramp_of(run))
        return _Matrix(ph, _sm_labels(run), _used_sm(run))
    if vt.base == "s":
        return _Matrix(
            run.per_ps("scn2", "ph_scn_slave", why, n).astype(np.float64),
            _sm_labels(run),
            _used_sm(run),
        )
    if vt.base == "o":
        ph = _ramps(run, "scla2", why, n).astype(np.float64)
        return _Matrix(ph, _sm_labels(run), np.arange(n))
    if vt.base == "m":
        c = run.per_ps("scla2", "C_ps_uw", why).astype(np.float64)
        return _Matrix(c.reshape(-1, 1), [""], one, prefix=SINGLE_FIELDS["m"])
    if vt.base in ("d", "dsb"):
        sb = vt.base == "dsb" or (run.small_baseline and not vt.single_master)
        k = run.per_ps("scla_sb2" if sb else "scla2", "K_ps_uw", why).astype(np.float64)
        return _Matrix(k.reshape(-1, 1), [""], one, prefix=SINGLE_FIELDS["d"])
    hgt = run.per_ps("hgt2", "hgt", why).astype(np.float64)
    return _Matrix(hgt.reshape(-1, 1), [""], one, referenced=False, prefix=SINGLE_FIELDS["hgt"])


def _vdrop(
    run: RunData, vt: ValueType, ifg_list: np.ndarray | None, ref_ix: np.ndarray | None, why: str
) -> _Matrix:
    """'vdrop', 'vdrop-d', 'vdrop-o', 'vdrop-do', 'vdrop-dos', 'vdrop-dao' (and 'Vdrop...'):
    ps_plot's 'v' path with each used interferogram left out of the velocity fit in turn.

    PS run, or upper-case in an SB run: phuw2 minus the terms, deramped, the dates of the fit
    (setdiff(unwrap_ifg_index, master) and IFG_LIST), referenced, ``lscov`` against days since
    the reference date with ifgstd2's variances (sm_cov in an SB run). Lower-case in an SB run
    ('vsb'): phuw_sb2 minus scla_sb2 / tca_sb2, deramped, against the pairs' time spans with
    sb_cov. One column per left-out interferogram: its velocity field, mm/yr.
    """
    day = np.asarray(run.ps["day"], dtype=np.float64).ravel()
    wavelength = float(run.parms["lambda"])
    corr = Correction(vt.text, "v", vt.letters)
    xy = np.asarray(run.ps["xy"], dtype=np.float64)
    if run.small_baseline and not vt.single_master:
        n = run.n_ifg
        use = _used_sb(run)
        ph = corrected_phase(
            run.per_ps("phuw_sb2", "ph_uw", why, n),
            corr,
            master_ix=run.master_ix,
            ps_xy=xy,
            ph_scla=run.per_ps("scla_sb2", "ph_scla", why, n) if vt.has("d") else None,
            ph_aps=aps_phase(run, why, sb_ifgs=True) if vt.has("a") else None,
            model_deramp=_sb_model(run),
        )
        cov = None
        if run.has("phuw_sb_res2"):
            res = run.product("phuw_sb_res2", "the small-baseline covariance")
            if "sb_cov" in res:
                cov = np.asarray(res["sb_cov"], dtype=np.float64)[np.ix_(use, use)]
        pairs = np.asarray(run.ps["ifgday_ix"], dtype=np.int64)
        t = day[pairs[:, 1]] - day[pairs[:, 0]]
        labels = _sb_labels(run)
    else:
        n = run.n_sm
        scla = _scla(run, smooth=False, sb=False)
        ph = corrected_phase(
            run.per_ps("phuw2", "ph_uw", why, n),
            corr,
            master_ix=run.master_ix,
            ps_xy=xy,
            ph_scla=run.per_ps(scla, "ph_scla", why, n) if vt.has("d") else None,
            ph_scn=run.per_ps("scn2", "ph_scn_slave", why, n) if vt.has("s") else None,
            ph_aps=aps_phase(run, why) if vt.has("a") else None,
            model_deramp=model_deramp_of(run),
        )
        use, cov = sm_dates(run)
        if cov is None and run.has("ifgstd2"):
            ifg_std = run.product("ifgstd2", "weights", ["ifg_std"])["ifg_std"]
            cov = np.diag(1.0 / ifg_weights(np.asarray(ifg_std), n)[use])
        t = day - day[run.master_ix]
        labels = _sm_labels(run)
    if ifg_list is not None:
        keep = np.isin(use, ifg_list)
        use = use[keep]
        cov = None if cov is None else cov[np.ix_(keep, keep)]
    ph = ph[:, use]
    ph -= reference_mean(ph, ref_ix)
    v_drop, v_all = drop_one_velocities(ph, t[use], wavelength, cov)
    values = np.zeros((run.n_ps, n))
    values[:, use] = v_drop
    rms = float(np.sqrt(np.nanmean(v_all**2)))
    return _Matrix(
        values,
        labels,
        use,
        prefix="VDROP",
        drop=True,
        note=f"RMS velocity with all {use.size}: {rms:.3f} mm/yr",
        v_all=v_all,
    )


def _columns(numbers: Sequence[int] | None, n: int) -> np.ndarray | None:
    """0-based columns of the 1-based ``numbers`` (None stays None), each within 1..n."""
    if numbers is None:
        return None
    bad = [k for k in numbers if not 1 <= int(k) <= n]
    if bad:
        raise StampsError(
            f"--ifg-list {' '.join(map(str, bad))}: the interferograms of this value type are "
            f"numbered 1..{n}"
        )
    return np.unique(np.asarray(numbers, dtype=np.int64) - 1)


def plot_values(
    run: RunData,
    vt: ValueType,
    *,
    ref_ifg: int = 0,
    ifg_list: Sequence[int] | None = None,
    reference: Reference | None = None,
    lims: tuple[float, float] | None = None,
) -> PlotValues:
    """The values of value type ``vt`` as ps_plot shows them.

    ``ifg_list`` (1-based, as IFG_LIST; default as ps_plot: the interferograms in use) picks the
    columns shown; for 'vdrop' it picks the interferograms of the velocity fit, each of which is
    left out in turn. ``ref_ifg`` (REF_IFG): 0 none, k > 0 interferogram k subtracted from every
    shown one (wrapped types: multiplied by the conjugate of rc2 ph_reref of k), -1 each minus
    the one shown before it. Then, but for 'hgt', the mean over the reference area is
    subtracted per column (wrapped: times the conjugate of the sum of the unit phasors).
    ``lims`` are the colour limits (default: ps_plot's 0.1 / 99.9 % of the shown values;
    wrapped types always [-pi, pi]).
    """
    _check_kind(run, vt)
    why = f"value type '{vt.text}'"
    n_cols = {
        "w": run.n_ifg,
        "usb": run.n_ifg,
        "rsb": run.n_ifg,
        "asb": run.n_ifg,
        "vdrop": run.n_ifg if run.small_baseline and not vt.single_master else run.n_sm,
    }.get(vt.base, run.n_sm)
    if vt.base in ("m", "d", "dsb", "hgt"):
        n_cols = 1
        if ifg_list is not None or ref_ifg != 0:
            get_logger().info("%s: one value per PS; --ifg-list and --ref-ifg ignored", why)
        ifg_list, ref_ifg = None, 0
    if not (ref_ifg in (0, -1) or 1 <= ref_ifg <= n_cols):
        raise StampsError(
            f"--ref-ifg {ref_ifg}: 0 (none), -1 (incremental) or an interferogram 1..{n_cols}"
        )
    wanted = _columns(ifg_list, n_cols)
    reference = reference or reference_from_parms(run.parms)
    lonlat = np.asarray(run.ps["lonlat"], dtype=np.float64)
    ref_ix = reference.select(lonlat, np.asarray(run.ps["ll0"], dtype=np.float64))
    if vt.base == "w":
        matrix = _wrapped(run, vt, ref_ifg, why)
    elif vt.base == "u":
        matrix = _unwrapped(run, vt, why)
    elif vt.base in ("usb", "rsb", "asb"):
        matrix = _small_baseline(run, vt, why)
    elif vt.base == "vdrop":
        matrix = _vdrop(run, vt, wanted, ref_ix, why)
        wanted = None
    else:
        matrix = _term(run, vt, why)
    shown = matrix.default if wanted is None else wanted
    if shown.size == 0:
        raise StampsError(f"{why}: no interferogram to show (check --ifg-list, drop_ifg_index)")
    if not matrix.referenced:
        ref_ix = None
    if vt.wrapped:
        ph = rereference_wrapped(matrix.values, shown, ref_ifg)
        if ref_ix is not None:
            mag = np.abs(ph)
            ph = np.divide(ph, mag, out=np.zeros_like(ph), where=mag > 0)
            ph *= np.conj(ph[ref_ix].sum(axis=0))
        values = np.angle(ph)
        if lims is not None:
            get_logger().info("%s: wrapped phase is always drawn on [-pi, pi]", why)
        lims = (-math.pi, math.pi)
    else:
        values = rereference(matrix.values, shown, ref_ifg)
        if ref_ix is not None:
            values -= reference_mean(values, ref_ix)
        lims = lims or matlab_limits(values)
    labels = [matrix.labels[k] for k in shown]
    if matrix.labels == [""]:
        titles, fields = [vt.text], [matrix.prefix]
    else:
        fields = [f"{matrix.prefix}_{label}" for label in labels]
        titles = [f"{k + 1}: {label.replace('_', '-')}" for k, label in zip(shown, labels)]
        if matrix.drop:
            titles = [f"without {t}" for t in titles]
    table = None
    if matrix.v_all is not None:
        table = vdrop_rms(matrix.values[:, shown], matrix.v_all)
    description = f"{vt.name}: {vt.describe()}"
    if vt.letters:
        description += f", minus {', '.join(sorted(vt.letters))}"
    if matrix.note:
        description += f"; {matrix.note}"
    return PlotValues(
        vt, values, shown, titles, fields, vt.units, lims, ref_ix, description, table, labels
    )


# --------------------------------------------------------------------------------------------
# writing

EXPORT_FORMATS = ("csv", "gpkg")


def output_stem(vt: ValueType) -> str:
    """File name without extension: ``ps_plot_`` + the value type (``ps_plot_u-dmo``)."""
    return f"ps_plot_{vt.name}"


def _replace_atomically(tmp: Path, path: Path) -> Path:
    os.replace(tmp, path)
    return path


def write_values(run: RunData, pv: PlotValues, output_dir: str | Path, fmt: str = "csv") -> Path:
    """The shown values as an EPSG:4326 point layer ``ps_plot_<type>.<fmt>``: CODE (ps2 number),
    then one field per shown column (``PH_YYYYMMDD``, ``PH_YYYYMMDD_YYYYMMDD`` for a pair,
    ``K_PS_UW``, ``C_PS_UW``, ``HGT``, ``VDROP_...``) in ``pv.units``; CSV files have LON, LAT
    first. Written under a temporary name and renamed into place."""
    import pandas as pd

    if fmt not in EXPORT_FORMATS:
        raise StampsError(f"--export {fmt}: choose one of {', '.join(EXPORT_FORMATS)}")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{output_stem(pv.value_type)}.{fmt}"
    lonlat = np.asarray(run.ps["lonlat"], dtype=np.float64)
    table = {"CODE": np.asarray(run.ps["ij"])[:, 0].astype(np.int32)}
    table.update({name: pv.values[:, j] for j, name in enumerate(pv.fields)})
    tmp = out / f".{path.stem}.tmp-{os.getpid()}.{fmt}"
    try:
        if fmt == "csv":
            frame = pd.DataFrame({"LON": lonlat[:, 0], "LAT": lonlat[:, 1], **table})
            frame.to_csv(tmp, index=False)
        else:
            import geopandas as gpd
            import pyogrio

            frame = gpd.GeoDataFrame(
                pd.DataFrame(table),
                geometry=gpd.points_from_xy(lonlat[:, 0], lonlat[:, 1]),
                crs="EPSG:4326",
            )
            meta = {
                "value_type": pv.value_type.name,
                "meaning": pv.description,
                "units": pv.units,
                "interferograms": json.dumps(pv.numbers),
                "reference_ps": "none" if pv.ref_ix is None else str(int(pv.ref_ix.size)),
            }
            pyogrio.write_dataframe(
                frame,
                tmp,
                driver="GPKG",
                layer=output_stem(pv.value_type).replace("-", "_"),
                layer_metadata=meta,
                dataset_options={"VERSION": "1.2"},
            )
        return _replace_atomically(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_vdrop_table(pv: PlotValues, output_dir: str | Path) -> Path:
    """``ps_plot_<vdrop type>_rms.csv``: per left-out interferogram (number, date or pair) the
    RMS velocity without it, its change from the RMS with all, and the RMS of the change of
    velocity (mm/yr)."""
    if pv.table is None:
        raise StampsError(f"value type '{pv.value_type.text}' has no drop table")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{output_stem(pv.value_type)}_rms.csv"
    names = list(pv.table)
    lines = ["ifg,date," + ",".join(names)]
    for j, (k, label) in enumerate(zip(pv.numbers, pv.labels)):
        row = ",".join(f"{pv.table[name][j]:.6f}" for name in names)
        lines.append(f"{k},{label},{row}")
    tmp = out / f".{path.stem}.tmp-{os.getpid()}.csv"
    try:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return _replace_atomically(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

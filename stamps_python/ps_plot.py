"""ps_plot: PNG plots of a run, as StaMPS ``ps_plot`` draws them.

For one velocity correction (``v-do``, ``v-dso``, ...) it writes into the output folder:

* ``ps_plot_<corr>_velocity.png``: mean LOS velocity (mm/yr, positive toward the satellite) of
  every PS on lon/lat axes, a diverging colour map centred on 0;
* ``ps_plot_<corr>_ts.png``: the time series (mm) of the PS nearest to chosen lon/lat points
  (default: the PS with the largest and the smallest velocity) with the fitted line;
* ``ps_plot_w.png``: wrapped phase of every interferogram (Step 5 ``rc2`` ``ph_rc``);
* ``ps_plot_<u-corr>.png``: unwrapped phase (Step 6 ``phuw2``) with the same corrections, rad.

    python stamps_python/ps_plot.py RUN --correction v-dso [--ts-points LON,LAT ...]
        [--output-dir DIR]

Any other ps_plot value type (``w-dmo``, ``u-do``, ``usb-do``, ``rsb``, ``d``, ``D``, ``m``, ``o``,
``s``, ``a``, ``hgt``, ``vdrop-do``, ...) is drawn as ``ps_plot_<type>.png``, one lon/lat panel
per interferogram (``--value-type``, with ps_plot's REF_IFG, IFG_LIST and colour limits as
``--ref-ifg``, ``--ifg-list``, ``--lims``), and written as a point layer with ``--export``:

    python stamps_python/ps_plot.py RUN --value-type u-dmo --value-type vdrop-do \
        [--ref-ifg N] [--ifg-list 2 5-9] [--lims MIN MAX] [--export csv]
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import datetime as _dt
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.ticker import MaxNLocator

from stamps_python.numerics.geodesy import llh2local
from stamps_python.numerics.timeseries import (
    DAYS_PER_YEAR,
    corrected_phase,
    parse_correction,
    subtract_reference,
)
from stamps_python.numerics.value_types import ValueType, parse_value_type
from stamps_python.parms import number
from stamps_python.plot_types import (
    EXPORT_FORMATS,
    PlotValues,
    output_stem,
    plot_values,
    write_values,
    write_vdrop_table,
)
from stamps_python.results import (
    ExportResult,
    Reference,
    RunData,
    add_aps_argument,
    add_bootstrap_arguments,
    add_reference_arguments,
    aps_phase,
    check_inputs,
    compute_results,
    load_run,
    model_deramp_of,
    reference_from_args,
)
from stamps_python.utils import (
    HelpFormatter,
    StampsError,
    add_run_argument,
    check_output_dir,
    get_logger,
    run_argument,
    run_cli,
    setup_logging,
)

DPI = 100
MAP_SIZE_IN = (9.0, 7.5)
TS_PANEL_IN = (10.0, 3.2)
VELOCITY_CMAP = "RdYlBu"  # red: away from the satellite, blue: toward it (as EGMS)
PHASE_CMAP = "twilight"
UNWRAPPED_CMAP = "RdBu_r"
# plot_color_scheme -> colour map of the value-type panels (ps_plot_ifg: inflation is flipud(jet))
SCHEME_CMAPS = {
    "inflation": "jet_r",
    "deflation": "jet",
    "gray": "gray_r",
    "GMT_relief": "terrain",
    "GMT_globe": "terrain",
}
WRAPPED_CMAP = "hsv"  # ps_plot_ifg draws complex phase with hsv(64)


def _save(fig: plt.Figure, path: Path) -> Path:
    """Save ``fig`` as PNG atomically (temporary name, then rename) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(tmp, dpi=DPI, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return path


def _lonlat_axes(ax: plt.Axes, lonlat: np.ndarray) -> None:
    """Equal ground scale on lon/lat axes (1 deg lon = cos(lat) deg lat)."""
    lat0 = float(np.nanmean(lonlat[:, 1])) if lonlat.size else 0.0
    ax.set_aspect(1.0 / max(math.cos(math.radians(lat0)), 1e-3))


def _marker_size(n_points: int, area_in2: float) -> float:
    """Scatter marker area (pt^2) so that points roughly tile the axes without hiding others."""
    return float(np.clip(area_in2 * 72.0**2 / max(n_points, 1) * 0.6, 0.05, 30.0))


def _symmetric_limit(values: np.ndarray) -> float:
    """Colour limit: the 99.9th percentile of |values| (ps_plot uses 0.1 / 99.9 percentiles)."""
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return 1.0
    lim = float(np.percentile(finite, 99.9))
    return lim if lim > 0 else 1.0


def plot_velocity_map(
    lonlat: np.ndarray,
    vel: np.ndarray,
    title: str,
    path: str | Path,
    ref_ix: np.ndarray | None = None,
) -> Path:
    """Scatter of mean LOS velocity (mm/yr) on lon/lat, colour centred on 0; reference PS
    (when not all PS) outlined in black."""
    lonlat = np.asarray(lonlat, dtype=np.float64)
    vel = np.asarray(vel, dtype=np.float64)
    fig, ax = plt.subplots(figsize=MAP_SIZE_IN)
    lim = _symmetric_limit(vel)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim)
    order = np.argsort(np.abs(np.nan_to_num(vel)))
    sc = ax.scatter(
        lonlat[order, 0],
        lonlat[order, 1],
        c=vel[order],
        cmap=VELOCITY_CMAP,
        norm=norm,
        s=_marker_size(len(vel), 30.0),
        linewidths=0,
        rasterized=True,
    )
    if ref_ix is not None and 0 < ref_ix.size < len(vel):
        ax.scatter(
            lonlat[ref_ix, 0],
            lonlat[ref_ix, 1],
            s=12,
            facecolors="none",
            edgecolors="k",
            linewidths=0.6,
            label=f"reference ({ref_ix.size} PS)",
        )
        ax.legend(loc="upper right", fontsize=8)
    _lonlat_axes(ax, lonlat)
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_title(title)
    ax.ticklabel_format(useOffset=False)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(6))
    cbar = fig.colorbar(sc, ax=ax, shrink=0.85, extend="both")
    cbar.set_label("mean LOS velocity (mm/yr, + toward satellite)")
    fig.tight_layout()
    return _save(fig, Path(path))


def nearest_ps(
    lonlat: np.ndarray, ll0: Sequence[float], points: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """0-based index of the PS nearest each lon/lat point, and its distance (m)."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    xy = llh2local(lonlat, ll0)
    pxy = llh2local(pts, ll0)
    d2 = ((xy[None, :, :] - pxy[:, None, :]) ** 2).sum(axis=2)
    ix = np.argmin(d2, axis=1)
    return ix, np.sqrt(d2[np.arange(len(pts)), ix])


def _as_dates(day: np.ndarray) -> list[_dt.date]:
    return [_dt.date.fromordinal(round(float(d)) - 366) for d in np.asarray(day).ravel()]


def plot_time_series(
    day: np.ndarray,
    master_day: float,
    result: ExportResult,
    ps_ix: np.ndarray,
    labels: Sequence[str],
    path: str | Path,
) -> Path:
    """One panel per PS: displacement (mm) against date, with the fitted velocity line."""
    ts = result.ts
    days = np.asarray(day, dtype=np.float64)[ts.date_ix]
    dates = _as_dates(days)
    t_years = (days - master_day) / DAYS_PER_YEAR
    n = len(ps_ix)
    fig, axes = plt.subplots(
        n, 1, figsize=(TS_PANEL_IN[0], TS_PANEL_IN[1] * n + 0.6), squeeze=False, sharex=True
    )
    for ax, i, label in zip(axes[:, 0], ps_ix, labels):
        ax.plot(dates, ts.disp_mm[i], "o", color="tab:blue", ms=4, label="displacement")
        fit = ts.intercept[i] + ts.vel[i] * t_years
        ax.plot(
            dates,
            fit,
            "-",
            color="tab:red",
            lw=1.2,
            label=f"{ts.vel[i]:.2f} ± {ts.vel_std[i]:.2f} mm/yr",
        )
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.set_ylabel("LOS (mm)")
        ax.set_title(label, fontsize=9)
        ax.grid(True, lw=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[-1, 0].set_xlabel("date")
    fig.suptitle(
        f"LOS time series ({result.correction.name}), + toward satellite, "
        f"0 on {result.metadata['reference_date']}",
        fontsize=10,
    )
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, Path(path))


def rasterize_points(
    lonlat: np.ndarray,
    values: np.ndarray,
    shape: tuple[int, int],
    extent: tuple[float, float, float, float],
    px: int = 3,
) -> np.ndarray:
    """Image (ny, nx) of ``values`` with each point a ``px`` x ``px`` pixel square, NaN between.

    ``extent`` is (lon min, lon max, lat min, lat max); row 0 is the southern edge. Where squares
    overlap, later points are drawn on top. This is how StaMPS draws PS
    (``plot_pixels_scatterer`` pixels each), and much faster than a scatter of many points.
    """
    ny, nx = shape
    x0, x1, y0, y1 = extent
    col = np.floor((lonlat[:, 0] - x0) / (x1 - x0) * nx).astype(np.int64)
    row = np.floor((lonlat[:, 1] - y0) / (y1 - y0) * ny).astype(np.int64)
    img = np.full(shape, np.nan)
    half = px // 2
    for dy in range(-half, px - half):
        r = np.clip(row + dy, 0, ny - 1)
        for dx in range(-half, px - half):
            img[r, np.clip(col + dx, 0, nx - 1)] = values
    return img


def _panel_layout(
    lonlat: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, float, float, int, int]:
    """Lon/lat extent of the points (lower corner, span, deg), cos(latitude), the panels' height
    / width ratio and the (ncols, nrows) grid of ``n`` panels."""
    lo, hi = lonlat.min(axis=0), lonlat.max(axis=0)
    span = np.maximum(hi - lo, 1e-6)
    coslat = max(math.cos(math.radians(float(np.mean(lonlat[:, 1])))), 1e-3)
    aspect = float(np.clip(span[1] / (span[0] * coslat), 0.2, 5.0))
    ncols = max(1, math.ceil(math.sqrt(n / aspect)))
    return lo, span, coslat, aspect, ncols, math.ceil(n / ncols)


def _panel_raster(
    lo: np.ndarray, span: np.ndarray, coslat: float, panel_w: float, n_points: int, px: int
) -> tuple[tuple[int, int], tuple[float, float, float, float], int]:
    """Raster (ny, nx) of a panel ``panel_w`` inches wide, its lon/lat extent and the point size
    in raster pixels: sparse PS are drawn larger than ``px`` so that they stay visible."""
    nx = max(16, round(panel_w * DPI * 0.9))
    ny = max(16, round(nx * span[1] / (span[0] * coslat)))
    px = max(px, min(8, int(0.5 * math.sqrt(nx * ny / max(n_points, 1)))))
    pad = np.array([span[0] * px / nx, span[1] * px / ny])
    hi = lo + span
    extent = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    return (ny, nx), extent, px


def plot_ifg_panels(
    lonlat: np.ndarray,
    values: np.ndarray,
    titles: Sequence[str],
    path: str | Path,
    *,
    wrapped: bool,
    suptitle: str,
    px: int = 3,
) -> Path:
    """A grid of lon/lat panels, one per column of ``values`` (rad), PS drawn as ``px``-pixel
    squares.

    Wrapped phase uses a cyclic colour map on [-pi, pi]; unwrapped phase a diverging one with
    common limits (99.9th percentile of |phase|).
    """
    lonlat = np.asarray(lonlat, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    lo, span, coslat, aspect, ncols, nrows = _panel_layout(lonlat, n)
    panel_w = min(2.6, 30.0 / ncols)
    panel_h = min(panel_w * aspect, 30.0 / nrows)
    fig_w, fig_h = panel_w * ncols + 1.2, panel_h * nrows + 0.8
    fig, axes = plt.subplots(nrows, ncols, figsize=(fig_w, fig_h), squeeze=False)
    fig.subplots_adjust(
        left=0.2 / fig_w,
        right=1 - 1.0 / fig_w,
        bottom=0.1 / fig_h,
        top=1 - 0.75 / fig_h,
        wspace=0.06,
        hspace=0.06 + 0.15 / panel_h,
    )
    if wrapped:
        kw = {"cmap": PHASE_CMAP, "vmin": -math.pi, "vmax": math.pi}
    else:
        lim = _symmetric_limit(values)
        kw = {"cmap": UNWRAPPED_CMAP, "vmin": -lim, "vmax": lim}
    shape, extent, px = _panel_raster(lo, span, coslat, panel_w, len(lonlat), px)
    im = None
    for k, ax in enumerate(axes.ravel()):
        if k >= n:
            ax.set_axis_off()
            continue
        img = rasterize_points(lonlat, values[:, k], shape, extent, px)
        im = ax.imshow(img, origin="lower", extent=extent, interpolation="nearest", **kw)
        ax.set_aspect(1.0 / coslat)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(titles[k], fontsize=7, pad=2)
    fig.suptitle(suptitle, fontsize=10, y=1 - 0.25 / fig_h, va="center")
    if im is not None:
        cax = fig.add_axes((1 - 0.8 / fig_w, 0.15, 0.15 / fig_w, 0.7))
        cbar = fig.colorbar(im, cax=cax)
        cbar.set_label("phase (rad)")
    return _save(fig, Path(path))


def wrapped_phase(run: RunData, ref_ix: np.ndarray | None) -> np.ndarray:
    """Wrapped phase (rad) of every interferogram from rc2 ``ph_rc``, referenced to the
    reference PS as ps_output does (times the conjugate of their sum); in a PS run the
    reference date's column is 0."""
    ph_rc = run.per_ps("rc2", "ph_rc", "the wrapped-phase plot", run.n_ifg).astype(np.complex128)
    if ref_ix is not None:
        ph_rc = ph_rc * np.conj(ph_rc[ref_ix].sum(axis=0))
    out = np.angle(ph_rc)
    if not run.small_baseline:
        out[:, run.master_ix] = 0.0
    return out


def exported_rows(result: ExportResult, values: np.ndarray) -> np.ndarray:
    """The rows of per-PS ``values`` (n_ps, ...) that the export kept."""
    return values if result.rows is None else values[result.rows]


def unwrapped_phase(run: RunData, result: ExportResult) -> tuple[np.ndarray, str]:
    """Unwrapped phase (rad) with the export's corrections, as ps_plot('u-...'), referenced.

    The reference AOE (m) is removed too when Step 7 ran, as from the exported time series, so
    a 'v-dso' export is shown as ps_plot('u-dmos').
    """
    name = "scla2" if run.has("scla2") or not run.has("scla_smooth2") else "scla_smooth2"
    wanted = set(result.correction.letters) | ({"m"} if run.has(name) else set())
    letters = "".join(c for c in "dmaos" if c in wanted)
    corr = parse_correction("u" + (f"-{letters}" if letters else ""))
    why = f"the unwrapped-phase plot '{corr.text}'"
    ph_uw = run.per_ps("phuw2", "ph_uw", why, run.n_sm)
    c_ps_uw = run.per_ps(name, "C_ps_uw", why) if corr.has("m") else None
    ph = corrected_phase(
        ph_uw,
        corr,
        master_ix=run.master_ix,
        c_ps_uw=c_ps_uw,
        ps_xy=np.asarray(run.ps["xy"], dtype=np.float64),
        ph_scla=run.per_ps(name, "ph_scla", why, run.n_sm) if corr.has("d") else None,
        ph_scn=run.per_ps("scn2", "ph_scn_slave", why, run.n_sm) if corr.has("s") else None,
        ph_aps=aps_phase(run, why) if corr.has("a") else None,
        model_deramp=model_deramp_of(run),
    )
    ph = subtract_reference(ph, result.full_ref_ix())
    return (ph if result.rows is None else ph[result.rows]), corr.text


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def plot_value_panels(
    lonlat: np.ndarray,
    values: np.ndarray,
    titles: Sequence[str],
    path: str | Path,
    *,
    lims: tuple[float, float],
    cmap: str,
    units: str,
    suptitle: str,
    px: int = 3,
) -> Path:
    """A grid of lon/lat panels, one per column of ``values``, PS drawn as ``px``-pixel squares,
    with longitude / latitude ticks on the outer panels, a title per panel (interferogram number
    and date) and one colour bar (``lims``, in ``units``; arrows where values are clipped)."""
    lonlat = np.asarray(lonlat, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    lo, span, coslat, aspect, ncols, nrows = _panel_layout(lonlat, n)
    panel_w = 6.0 if n == 1 else min(2.6, 30.0 / ncols)
    panel_h = min(panel_w * aspect, 30.0 / nrows)
    left, right, bottom, top = 0.95, 1.2, 0.75, 0.8
    fig_w = panel_w * ncols + left + right
    fig_h = panel_h * nrows + bottom + top + 0.2 * (nrows - 1)
    fig, axes = plt.subplots(nrows, ncols, figsize=(fig_w, fig_h), squeeze=False)
    fig.subplots_adjust(
        left=left / fig_w,
        right=1 - right / fig_w,
        bottom=bottom / fig_h,
        top=1 - top / fig_h,
        wspace=0.05,
        hspace=0.2 / panel_h + 0.05,
    )
    shape, extent, px = _panel_raster(lo, span, coslat, panel_w, len(lonlat), px)
    im = None
    for k, ax in enumerate(axes.ravel()):
        if k >= n:
            ax.set_axis_off()
            continue
        img = rasterize_points(lonlat, values[:, k], shape, extent, px)
        im = ax.imshow(
            img,
            origin="lower",
            extent=extent,
            interpolation="nearest",
            cmap=cmap,
            vmin=lims[0],
            vmax=lims[1],
        )
        ax.set_aspect(1.0 / coslat)
        ax.set_title(titles[k], fontsize=7 if n > 1 else 10, pad=2)
        row, col = divmod(k, ncols)
        ax.xaxis.set_major_locator(MaxNLocator(3 if n > 1 else 5))
        ax.yaxis.set_major_locator(MaxNLocator(3 if n > 1 else 6))
        ax.ticklabel_format(useOffset=False)
        ax.tick_params(labelsize=6 if n > 1 else 9, length=2)
        if col != 0:
            ax.set_yticklabels([])
        if row != nrows - 1 and k + ncols < n:
            ax.set_xticklabels([])
    fig.supxlabel("longitude (deg)", fontsize=9, y=0.15 / fig_h, va="bottom")
    fig.supylabel("latitude (deg)", fontsize=9, x=0.1 / fig_w, ha="left")
    fig.suptitle(suptitle, fontsize=10, y=1 - 0.3 / fig_h, va="center")
    if im is not None:
        finite = values[np.isfinite(values)]
        below = finite.size > 0 and finite.min() < lims[0]
        above = finite.size > 0 and finite.max() > lims[1]
        extend = {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
            (bool(below), bool(above)), "both"
        )
        cax = fig.add_axes((1 - 0.85 / fig_w, 0.2, 0.15 / fig_w, 0.6))
        cbar = fig.colorbar(im, cax=cax, extend=extend)
        cbar.set_label(units)
    return _save(fig, Path(path))


def value_cmap(run: RunData, vt: ValueType) -> str:
    """Colour map of a value type: hsv for wrapped phase, terrain for 'hgt' (ps_plot uses
    GMT_globe), else plot_color_scheme's."""
    if vt.wrapped:
        return WRAPPED_CMAP
    if vt.base == "hgt":
        return "terrain"
    return SCHEME_CMAPS.get(str(run.parms.get("plot_color_scheme", "inflation")), "jet_r")


def plot_value_type(
    run: RunData, pv: PlotValues, output_dir: str | Path, export: str | None = None
) -> list[Path]:
    """``ps_plot_<type>.png`` of computed values ``pv`` (and for 'vdrop' the RMS table
    ``ps_plot_<type>_rms.csv``, with ``export`` the point layer ``ps_plot_<type>.<export>``)."""
    out = Path(output_dir)
    vt = pv.value_type
    ref = "no reference" if pv.ref_ix is None else f"reference: {pv.ref_ix.size} PS"
    paths = [
        plot_value_panels(
            np.asarray(run.ps["lonlat"], dtype=np.float64),
            pv.values,
            pv.titles,
            out / f"{output_stem(vt)}.png",
            lims=pv.lims,
            cmap=value_cmap(run, vt),
            units=pv.units,
            suptitle=f"{pv.description}\n{ref}; colour range {pv.lims[0]:.4g} to "
            f"{pv.lims[1]:.4g} {pv.units}",
            px=int(number(run.parms, "plot_pixels_scatterer")),
        )
    ]
    if pv.table is not None:
        paths.append(write_vdrop_table(pv, out))
    if export is not None:
        paths.append(write_values(run, pv, out, export))
    return paths


def make_plots(
    run: RunData,
    result: ExportResult,
    output_dir: str | Path,
    ts_points: Sequence[tuple[float, float]] | None = None,
) -> list[Path]:
    """Velocity map, time series, wrapped and unwrapped interferogram panels as PNG files."""
    log = get_logger()
    out = Path(output_dir)
    corr = result.correction.name
    lonlat = result.lonlat
    ll0 = np.asarray(run.ps["ll0"], dtype=np.float64)
    day = np.asarray(run.ps["day"], dtype=np.float64).ravel()
    paths = [
        plot_velocity_map(
            lonlat,
            result.ts.vel,
            f"Mean LOS velocity {corr}, {lonlat.shape[0]} PS\nreference: "
            f"{result.metadata['reference_area']}",
            out / f"ps_plot_{_slug(corr)}_velocity.png",
            result.ts.ref_ix,
        )
    ]
    if ts_points:
        ps_ix, dist = nearest_ps(lonlat, ll0, np.asarray(ts_points))
        labels = [
            f"PS {result.codes[i]} at {lonlat[i, 0]:.5f}, {lonlat[i, 1]:.5f} "
            f"({d:.0f} m from {p[0]:g}, {p[1]:g})"
            for i, d, p in zip(ps_ix, dist, ts_points)
        ]
    else:
        vel = np.where(np.isfinite(result.ts.vel), result.ts.vel, 0.0)
        ps_ix = np.array([int(np.argmax(vel)), int(np.argmin(vel))])
        labels = [
            f"PS {result.codes[i]} at {lonlat[i, 0]:.5f}, {lonlat[i, 1]:.5f} ({what})"
            for i, what in zip(ps_ix, ("largest velocity", "smallest velocity"))
        ]
    paths.append(
        plot_time_series(
            day,
            float(day[run.master_ix]),
            result,
            ps_ix,
            labels,
            out / f"ps_plot_{_slug(corr)}_ts.png",
        )
    )
    shown = result.ts.date_ix
    dates = run.dates
    titles = [f"{k + 1}: {dates[k]}" for k in shown]
    px = int(number(run.parms, "plot_pixels_scatterer"))
    if run.small_baseline:
        ifgday_ix = np.asarray(run.ps["ifgday_ix"], dtype=np.int64)
        paths.append(
            plot_ifg_panels(
                lonlat,
                exported_rows(result, wrapped_phase(run, result.full_ref_ix())),
                [f"{k + 1}: {dates[a]}-{dates[b]}" for k, (a, b) in enumerate(ifgday_ix)],
                out / "ps_plot_w.png",
                wrapped=True,
                px=px,
                suptitle="wrapped small-baseline phase (rc2), relative to the reference",
            )
        )
    else:
        paths.append(
            plot_ifg_panels(
                lonlat,
                exported_rows(result, wrapped_phase(run, result.full_ref_ix()))[:, shown],
                titles,
                out / "ps_plot_w.png",
                wrapped=True,
                px=px,
                suptitle=f"wrapped phase (rc2), reference date {dates[run.master_ix]}, relative to "
                f"the reference",
            )
        )
    uw, uname = unwrapped_phase(run, result)
    paths.append(
        plot_ifg_panels(
            lonlat,
            uw[:, shown],
            titles,
            out / f"ps_plot_{_slug(uname)}.png",
            wrapped=False,
            px=px,
            suptitle=f"unwrapped phase {uname} (rad), relative to the reference",
        )
    )
    for p in paths:
        log.info("wrote %s", p)
    return paths


# --------------------------------------------------------------------------------------------
# command line

_POINT_RE = re.compile(
    r"^\s*([-+]?\d+(?:\.\d*)?|[-+]?\.\d+)\s*,\s*([-+]?\d+(?:\.\d*)?|[-+]?\.\d+)\s*$"
)


def parse_point(text: str) -> tuple[float, float]:
    """``LON,LAT`` in degrees."""
    m = _POINT_RE.match(text)
    if not m:
        raise StampsError(f"--ts-points '{text}': expected LON,LAT in degrees, like -120.5,37.0")
    lon, lat = float(m.group(1)), float(m.group(2))
    if not (-180.0 <= lon <= 360.0 and -90.0 <= lat <= 90.0):
        raise StampsError(f"--ts-points '{text}': not a longitude, latitude in degrees")
    return lon, lat


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one-line StampsErrors (exit 1)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise StampsError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="ps_plot",
        formatter_class=HelpFormatter,
        description="PNG plots of a StaMPS run: velocity map, time series, wrapped and "
        "unwrapped interferograms.",
    )
    add_run_argument(p, "run directory after Steps 6-8", aliases=["--input-path"])
    p.add_argument(
        "--correction",
        help="velocity type, e.g. v-do, v-dso (default v-do; without --value-type only)",
    )
    p.add_argument(
        "--value-type",
        action="append",
        default=[],
        metavar="TYPE",
        help="other ps_plot value type, repeatable: w, w-d, w-o, w-do, w-dm, w-dmo, w-a, u, "
        "u-d, u-o, u-do, u-dm, u-dmo, u-dms, u-dmos, u-a, u-da, u-dao, ..., d, D, m, o, s, a, "
        "a-o, hgt; small baselines usb, usb-d, usb-o, usb-do, usb-a, usb-dao, rsb, rsb-o, asb, "
        "asb-o, dsb; vdrop, vdrop-d, vdrop-o, vdrop-do, vdrop-dos, vdrop-dao (Vdrop...: from "
        "the single-master series of an SB run)",
    )
    p.add_argument(
        "--ref-ifg",
        type=int,
        default=0,
        metavar="N",
        help="ps_plot's REF_IFG: subtract interferogram N from every shown one; -1: each "
        "minus the one shown before it (default 0: none)",
    )
    p.add_argument(
        "--ifg-list",
        nargs="+",
        type=_ifg_numbers,
        metavar="N",
        help="ps_plot's IFG_LIST: interferograms to show (1-based numbers or ranges like "
        "3-7; for vdrop those of the velocity fit; default: those in use)",
    )
    p.add_argument(
        "--lims",
        nargs=2,
        type=float,
        metavar=("MIN", "MAX"),
        help="colour limits of the value-type panels (default: 0.1 and 99.9 %% of the "
        "shown values, as ps_plot; wrapped phase always -pi..pi)",
    )
    p.add_argument(
        "--export",
        choices=EXPORT_FORMATS,
        help="also write each value type's shown values as a point layer "
        "ps_plot_<type>.<ext> (default: PNG files only)",
    )
    p.add_argument(
        "--ts-points",
        nargs="+",
        default=[],
        metavar="LON,LAT",
        help="plot the time series of the PS nearest each point (default: the PS "
        "with the largest and the smallest velocity)",
    )
    p.add_argument("--output-dir", help="folder for the PNG files (default: RUN/plots)")
    add_aps_argument(p)
    add_reference_arguments(p)
    add_bootstrap_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def _ifg_numbers(text: str) -> list[int]:
    """``N`` or ``A-B`` (inclusive) as a list of 1-based interferogram numbers."""
    m = re.match(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$", text)
    if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number N or a range A-B (A <= B)")
    first = int(m.group(1))
    return list(range(first, int(m.group(2) or first) + 1))


def _protect_points(argv: Sequence[str]) -> list[str]:
    """Let ``--ts-points -120.5,37`` through argparse (a leading '-' would look like an option)."""
    out: list[str] = []
    in_points = False
    for tok in argv:
        if tok == "--ts-points":
            in_points = True
        elif in_points and _POINT_RE.match(tok) and tok.lstrip().startswith("-"):
            tok = " " + tok
        elif tok.startswith("-"):
            in_points = False
        out.append(tok)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ps_plot command line; errors are StampsError (one line, exit 1)."""
    import sys

    args = build_parser().parse_intermixed_args(
        _protect_points(sys.argv[1:] if argv is None else argv)
    )
    value_types = [parse_value_type(t) for t in args.value_type]
    if args.correction is None and not value_types:
        args.correction = "v-do"
    correction = None if args.correction is None else parse_correction(args.correction)
    points = [parse_point(p) for p in args.ts_points]
    if args.lims is not None and not args.lims[0] < args.lims[1]:
        raise StampsError(f"--lims {args.lims[0]:g} {args.lims[1]:g}: MIN must be below MAX")
    ifg_list = None if args.ifg_list is None else sorted({k for g in args.ifg_list for k in g})
    reference: Reference | None = reference_from_args(
        args.ref_lonlat, args.ref_radius, args.ref_lon_box, args.ref_lat_box
    )
    run_dir = run_argument(args)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: no such run directory")
    out = check_output_dir(args.output_dir or run_dir / "plots", "--output-dir")
    setup_logging(run_dir, args.verbose)
    run = load_run(run_dir)
    run.aps = args.aps
    if correction is not None:
        (correction,) = check_inputs(run, [correction])
        result = compute_results(run, correction, reference, args.n_boot, args.seed)
        for path in make_plots(run, result, out, points):
            print(path)
    log = get_logger()
    for vt in value_types:
        pv = plot_values(
            run,
            vt,
            ref_ifg=args.ref_ifg,
            ifg_list=ifg_list,
            reference=reference,
            lims=None if args.lims is None else (args.lims[0], args.lims[1]),
        )
        log.info(
            "%s: %d interferogram(s), colour range %g to %g %s",
            vt.name,
            len(pv.numbers),
            *pv.lims,
            pv.units,
        )
        for path in plot_value_type(run, pv, out, args.export):
            log.info("wrote %s", path)
            print(path)
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: exit 0, or 1 with a one-line error."""
    return run_cli(main, argv)


if __name__ == "__main__":
    raise SystemExit(cli())

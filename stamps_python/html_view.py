"""One self-contained HTML viewer of exported PS results (``export_results --format html``).

The page works offline: plotly.js is inlined, the background is a shaded-relief image of the
stack's DEM (``hgt.rdr.full`` via ``lat``/``lon.rdr.full``; the points' own heights when the stack
is not reachable) embedded as a PNG, no tiles. The map draws every point with WebGL (plotly
``scattergl``) coloured by VEL (mm/yr, + toward the satellite), one trace per correction with a
menu to switch; hover shows CODE, VEL, V_STDEV, COHERENCE, TCOH, HEIGHT. Clicking a point shows
its displacement series (mm) and the line of slope VEL through it beside the map; a box or
lasso selection shows the mean series of the points inside.

The series are packed per correction as int16 base64 (``step`` mm per unit, chosen per
correction from 1, 2, 5 x 10^k so that the largest |D| fits; -32768 is NaN), decoded by a small
inline script: a shown value differs from the layer's D field by at most step / 2.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stamps_python.results import ExportResult, RunData
from stamps_python.rundir import metadata_path, read_metadata
from stamps_python.utils import StampsError, atomic_output, get_logger

HTML_NAME = "ps_view.html"
NAN_CODE = -32768
INT16_MAX = 32767
BACKGROUND_PX = 900  # long side of the background image, pixels
# plotly's RdYlBu: red (away from the satellite) -> blue (toward it), as ps_plot
VELOCITY_COLORSCALE = "RdYlBu"

VIEWER_JS = r"""
function stampsViewer(mapId) {
  const meta = JSON.parse(document.getElementById('stamps-meta').textContent);
  const gd = document.getElementById(mapId);
  const tsDiv = document.getElementById('stamps-ts');
  const info = document.getElementById('stamps-info');
  const cache = {};
  let state = null;
  function bytes(id) {
    const el = document.getElementById(id);
    if (!el) throw new Error('the page is still loading its series');
    const text = el.textContent.trim();
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function packed(c) {
    if (!cache[c]) {
      cache[c] = {
        ts: new Int16Array(bytes('stamps-ts-' + c).buffer),
        code: new Int32Array(bytes('stamps-code-' + c).buffer),
        vel: new Float32Array(bytes('stamps-vel-' + c).buffer),
      };
    }
    return cache[c];
  }
  function current() {
    const n = meta.corrections.length;
    const k = gd.data.slice(0, n).findIndex(t => t.visible === undefined || t.visible === true);
    return k < 0 ? 0 : k;
  }
  function indexOf(c, code) {
    const a = packed(c).code;
    let lo = 0, hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid] === code) return mid;
      if (a[mid] < code) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }
  function series(c, i) {
    const m = meta.corrections[c], p = packed(c), nd = m.dates.length, out = new Array(nd);
    for (let j = 0; j < nd; j++) {
      const q = p.ts[i * nd + j];
      out[j] = q === -32768 ? null : q * m.step;
    }
    return out;
  }
  function show(codes, label) {
    const c = current(), m = meta.corrections[c], nd = m.dates.length;
    let p;
    try { p = packed(c); } catch (err) { info.textContent = err.message; return; }
    const idx = codes.map(code => indexOf(c, code)).filter(i => i >= 0);
    if (!idx.length) {
      info.textContent = label + ': not in correction ' + m.name;
      Plotly.react(tsDiv, [], tsDiv.layout);
      return;
    }
    const sum = new Float64Array(nd), cnt = new Float64Array(nd);
    let vel = 0;
    for (const i of idx) {
      const y = series(c, i);
      for (let j = 0; j < nd; j++) if (y[j] !== null) { sum[j] += y[j]; cnt[j] += 1; }
      vel += p.vel[i];
    }
    vel /= idx.length;
    const y = Array.from(sum, (s, j) => cnt[j] ? s / cnt[j] : null);
    let off = 0, k = 0;
    for (let j = 0; j < nd; j++) if (y[j] !== null) { off += y[j] - vel * m.t_yr[j]; k++; }
    off = k ? off / k : 0;
    const fit = m.t_yr.map(t => off + vel * t);
    const what = idx.length === 1 ? 'CODE ' + codes[0] : 'mean of ' + idx.length + ' points';
    Plotly.react(tsDiv, [
      {x: m.iso, y: y, mode: 'lines+markers', name: 'D (mm)', marker: {size: 5},
       line: {color: '#1f3b73'}},
      {x: m.iso, y: fit, mode: 'lines', name: 'VEL ' + vel.toFixed(2) + ' mm/yr',
       line: {color: '#c0392b', dash: 'dash'}},
    ], Object.assign({}, tsDiv.layout, {
      title: {text: what + ', ' + m.name + ': VEL ' + vel.toFixed(2) + ' mm/yr'},
      xaxis: Object.assign({}, tsDiv.layout.xaxis, {autorange: true}),
      yaxis: Object.assign({}, tsDiv.layout.yaxis, {autorange: true}),
    }));
    info.textContent = label;
    state = {codes: codes, label: label, shown: idx.length === 1 ? codes[0] : null};
    window.stampsShown = {correction: m.name, codes: idx.map(i => p.code[i]), y: y, vel: vel};
  }
  Plotly.newPlot(tsDiv, [], {
    margin: {l: 60, r: 20, t: 50, b: 50},
    xaxis: {title: {text: 'date'}, type: 'date',
            range: [meta.corrections[0].iso[0], meta.corrections[0].iso.slice(-1)[0]]},
    yaxis: {title: {text: 'LOS displacement (mm, + toward the satellite)'}, zeroline: true},
    legend: {orientation: 'h', y: -0.2},
    title: {text: 'click a point, or select with box / lasso'},
    template: 'plotly_white',
  }, {responsive: true, displaylogo: false});
  gd.on('plotly_click', ev => {
    if (!ev || !ev.points || !ev.points.length) return;
    const pt = ev.points[0], cd = pt.customdata;
    const code = Math.round(cd[0]);
    Plotly.restyle(gd, {x: [[pt.x]], y: [[pt.y]]}, [meta.corrections.length]);
    show([code], 'CODE ' + code + '  lon ' + pt.x.toFixed(5) + '  lat ' + pt.y.toFixed(5) +
      '  HEIGHT ' + cd[5].toFixed(1) + ' m  COHERENCE ' + cd[3].toFixed(3));
  });
  gd.on('plotly_selected', ev => {
    if (!ev || !ev.points || !ev.points.length) return;
    const c = current();
    let p;
    try { p = packed(c); } catch (err) { info.textContent = err.message; return; }
    const codes = ev.points.filter(q => q.curveNumber === c).map(q => p.code[q.pointIndex]);
    if (codes.length) show(codes, codes.length + ' points selected');
  });
  gd.on('plotly_update', () => { if (state) show(state.codes, state.label); });
  window.stampsShow = show;
  window.stampsReady = performance.now();
}
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
html, body {{ margin: 0; height: 100%; font-family: sans-serif; }}
#stamps-wrap {{ display: flex; height: 100vh; }}
#stamps-left {{ flex: 3; min-width: 0; order: 1; }}
#stamps-side {{ flex: 2; min-width: 0; order: 2; display: flex; flex-direction: column;
  border-left: 1px solid #ccc; }}
#stamps-info {{ padding: 8px 12px; font-size: 13px; color: #333; min-height: 1.4em; }}
#stamps-ts {{ flex: 1; min-height: 0; }}
#stamps-notes {{ padding: 6px 12px; font-size: 11px; color: #666; }}
</style>
<script>{viewer_js}</script>
</head>
<body>
<script type="application/json" id="stamps-meta">{meta}</script>
<div id="stamps-wrap">
<div id="stamps-side">
<div id="stamps-info">click a point for its time series; box or lasso (toolbar) for the mean series
</div>
<div id="stamps-ts"></div>
<div id="stamps-notes">{notes}</div>
</div>
<div id="stamps-left">{map_html}</div>
</div>
{blobs}
</body>
</html>
"""


def quant_step(max_abs_mm: float) -> float:
    """Smallest 1, 2 or 5 x 10^k mm (k >= -4) whose int16 range holds ``max_abs_mm``."""
    need = max(float(max_abs_mm), 1e-9) / INT16_MAX
    k = math.floor(math.log10(need))
    for exp in (k, k + 1):
        for m in (1.0, 2.0, 5.0):
            step = m * 10.0**exp
            if step >= need:
                return max(round(step, 12), 1e-4)
    return 10.0 ** (k + 1)


def pack_series(disp_mm: np.ndarray) -> tuple[np.ndarray, float]:
    """(n, m) displacements (mm) as int16 (NaN -> -32768) and the step (mm per unit)."""
    d = np.asarray(disp_mm, dtype=np.float64)
    finite = np.isfinite(d)
    step = quant_step(float(np.abs(d[finite]).max()) if finite.any() else 1.0)
    q = np.full(d.shape, NAN_CODE, dtype=np.int16)
    q[finite] = np.clip(np.rint(d[finite] / step), -INT16_MAX, INT16_MAX).astype(np.int16)
    return q, step


def unpack_series(q: np.ndarray, step: float) -> np.ndarray:
    """Inverse of :func:`pack_series` (mm, NaN where -32768), as the page's script decodes."""
    q = np.asarray(q)
    return np.where(q == NAN_CODE, np.nan, q.astype(np.float64) * step)


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(
        np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
    ).decode("ascii")


def _blob(name: str, arr: np.ndarray) -> str:
    return f'<script type="application/octet-stream" id="{name}">{_b64(arr)}</script>'


# --------------------------------------------------------------------------------------------
# background


def _height_samples(run: RunData, max_pixels: int = 4_000_000) -> tuple[np.ndarray, ...] | None:
    """lon, lat, height (deg, deg, m) of the stack's DEM pixels (decimated to at most
    ``max_pixels``), None when the stack's geometry rasters are not reachable."""
    import rasterio
    from rasterio.enums import Resampling

    import stamps_python.io.isce  # noqa: F401  (quiets GDAL's no-geotransform warning)

    if not metadata_path(run.run_dir).is_file():
        return None
    merged = read_metadata(run.run_dir).get("merged_dir")
    if not merged:
        return None
    geom = Path(merged) / "geom_reference"
    paths = []
    for name in ("lon", "lat", "hgt"):
        vrt = geom / f"{name}.rdr.full.vrt"
        raw = geom / f"{name}.rdr.full"
        path = vrt if vrt.is_file() else raw if raw.is_file() else None
        if path is None:
            return None
        paths.append(path)
    out = []
    for path in paths:
        with rasterio.open(path) as ds:
            k = max(1, math.ceil(math.sqrt(ds.height * ds.width / max_pixels)))
            shape = (max(1, ds.height // k), max(1, ds.width // k))
            out.append(
                ds.read(1, out_shape=shape, resampling=Resampling.nearest).astype(np.float64)
            )
    lon, lat, hgt = (a.ravel() for a in out)
    good = np.isfinite(lon) & np.isfinite(lat) & np.isfinite(hgt) & (lon != 0) & (lat != 0)
    return lon[good], lat[good], hgt[good]


def _grid_mean(
    lon: np.ndarray,
    lat: np.ndarray,
    val: np.ndarray,
    extent: Sequence[float],
    shape: tuple[int, int],
) -> np.ndarray:
    """Mean of ``val`` in each cell of a lon/lat grid (row 0 at the north), NaN where empty."""
    x0, x1, y0, y1 = extent
    ny, nx = shape
    col = np.floor((lon - x0) / (x1 - x0) * nx).astype(np.int64)
    row = np.floor((y1 - lat) / (y1 - y0) * ny).astype(np.int64)
    ok = (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
    cell = row[ok] * nx + col[ok]
    total = np.bincount(cell, weights=val[ok], minlength=nx * ny)
    count = np.bincount(cell, minlength=nx * ny)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).reshape(shape)


def _fill_holes(z: np.ndarray, passes: int = 3) -> np.ndarray:
    """Fill empty cells from the mean of their 3 x 3 neighbours, ``passes`` times."""
    from scipy.ndimage import uniform_filter

    z = z.copy()
    for _ in range(passes):
        good = np.isfinite(z)
        if good.all():
            break
        s = uniform_filter(np.where(good, z, 0.0), 3, mode="nearest")
        n = uniform_filter(good.astype(np.float64), 3, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            fill = s / n
        z = np.where(good, z, np.where(n > 0.1, fill, np.nan))  # >= 1 of 9 (not float dust)
    return z


def shaded_relief(z: np.ndarray, cell_m: tuple[float, float]) -> np.ndarray:
    """RGBA uint8 grey shaded relief of heights ``z`` (m; NaN transparent) on cells of
    ``cell_m`` (north, east) m, light from the north-west at 45 deg, blended with the height."""
    from scipy.ndimage import gaussian_filter

    good = np.isfinite(z)
    # a 1-cell Gaussian (NaN-aware) first: cell means of scattered radar samples are slightly
    # uneven, which the shading would turn into stripes
    w = gaussian_filter(good.astype(np.float64), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        smooth = gaussian_filter(np.where(good, z, 0.0), 1.0) / w
    zf = np.where(good, smooth, np.nanmean(z) if good.any() else 0.0)
    dy, dx = np.gradient(zf, cell_m[0], cell_m[1])
    slope = np.arctan(np.hypot(dx, dy))
    aspect = np.arctan2(-dx, dy)
    az, alt = math.radians(315.0), math.radians(45.0)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    lo, hi = np.percentile(zf[good], [2, 98]) if good.any() else (0.0, 1.0)
    norm = np.clip((zf - lo) / max(hi - lo, 1e-6), 0, 1)
    grey = np.clip(0.65 * np.clip(shade, 0, 1) + 0.35 * norm, 0, 1)
    value = (90 + 150 * grey).astype(np.uint8)
    rgba = np.dstack([value, value, value, np.where(good, 255, 0).astype(np.uint8)])
    return rgba


def background_png(
    run: RunData, extent: Sequence[float], points: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[bytes, str]:
    """PNG of the shaded relief over ``extent`` (lon0, lon1, lat0, lat1) and its source: the
    stack's DEM, or the points' heights ``points`` (lon, lat, m) without the stack."""
    import matplotlib.image as mpimg

    samples = _height_samples(run)
    source = "stack DEM (hgt.rdr.full)"
    if samples is None or samples[0].size == 0:
        samples, source = points, "PS heights (hgt2)"
    x0, x1, y0, y1 = extent
    lat0 = 0.5 * (y0 + y1)
    w_m = (x1 - x0) * 111_320.0 * math.cos(math.radians(lat0))
    h_m = (y1 - y0) * 110_574.0
    # cells no smaller than 1.5 x the ground area of one sample, so that the grid has no gaps
    coarse = np.isfinite(_grid_mean(*samples, extent, (100, 100)))
    lon, lat = samples[0], samples[1]
    inside = (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
    n_in = max(int(np.count_nonzero(inside)), 1)
    sample_m = math.sqrt(coarse.mean() * w_m * h_m / n_in)
    cell_m = max(max(w_m, h_m) / BACKGROUND_PX, 1.5 * sample_m)
    shape = (max(2, round(h_m / cell_m)), max(2, round(w_m / cell_m)))
    z = _fill_holes(_grid_mean(*samples, extent, shape), 2)
    rgba = shaded_relief(z, (h_m / shape[0], w_m / shape[1]))
    buf = io.BytesIO()
    mpimg.imsave(buf, rgba, format="png")
    return buf.getvalue(), source


# --------------------------------------------------------------------------------------------
# the page


def _t_years(result: ExportResult, run: RunData) -> list[float]:
    day = np.asarray(run.ps["day"], dtype=np.float64).ravel()
    t = (day[result.ts.date_ix] - day[run.master_ix]) / 365.25
    return [float(v) for v in t]


def _iso(yyyymmdd: str) -> str:
    return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}"


def _limit(vel: np.ndarray) -> float:
    finite = np.abs(vel[np.isfinite(vel)])
    lim = float(np.percentile(finite, 99.9)) if finite.size else 1.0
    return lim if lim > 0 else 1.0


def _marker_size(n: int) -> float:
    return float(np.clip(9.0 - 1.2 * math.log10(max(n, 1)), 2.5, 7.0))


def build_figure(results: Sequence[ExportResult], extent: Sequence[float], png: bytes) -> object:
    """The plotly map: one scattergl trace per correction (the first visible), colour bar in
    mm/yr, a last trace ringing the clicked point, the background image below, a menu to
    switch corrections."""
    import plotly.graph_objects as go

    fig = go.Figure()
    n_max = max(r.codes.size for r in results)
    big_codes = n_max >= 2**24 or max(int(r.codes.max()) for r in results) >= 2**24
    for k, r in enumerate(results):
        vel = np.asarray(r.ts.vel, dtype=np.float32)
        lim = _limit(vel)
        tcoh = r.tcoh if r.tcoh is not None else np.full(r.codes.size, np.nan)
        custom = np.column_stack([r.codes, vel, r.ts.vel_std, r.coh, tcoh, r.hgt]).astype(
            np.float64 if big_codes else np.float32
        )
        fig.add_trace(
            go.Scattergl(
                x=r.lonlat[:, 0].astype(np.float32),
                y=r.lonlat[:, 1].astype(np.float32),
                mode="markers",
                name=r.correction.name,
                visible=k == 0,
                customdata=custom,
                marker=dict(
                    color=vel,
                    colorscale=VELOCITY_COLORSCALE,
                    cmin=-lim,
                    cmax=lim,
                    size=_marker_size(r.codes.size),
                    colorbar=dict(title=dict(text="VEL (mm/yr)"), thickness=14),
                ),
                hovertemplate=(
                    "CODE %{customdata[0]:.0f}<br>VEL %{customdata[1]:.2f} ± "
                    "%{customdata[2]:.2f} mm/yr<br>COHERENCE %{customdata[3]:.3f}<br>"
                    "TCOH %{customdata[4]:.3f}<br>HEIGHT %{customdata[5]:.1f} m<extra>"
                    f"{r.correction.name}</extra>"
                ),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            name="clicked",
            hoverinfo="skip",
            marker=dict(symbol="circle-open", size=18, color="#111", line=dict(width=2)),
        )
    )
    x0, x1, y0, y1 = extent
    lat0 = 0.5 * (y0 + y1)
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    n_ref = results[0].metadata.get("n_reference_ps", 0)
    fig.update_layout(
        template="plotly_white",
        title=dict(
            text=f"Mean LOS velocity, {results[0].correction.name}: {results[0].codes.size} PS "
            f"(reference: {n_ref} PS)",
            font=dict(size=14),
            x=0.55,
            xanchor="center",
        ),
        margin=dict(l=60, r=20, t=80, b=50),
        xaxis=dict(title=dict(text="longitude (deg)"), range=[x0, x1], showgrid=False),
        yaxis=dict(
            title=dict(text="latitude (deg)"),
            range=[y0, y1],
            scaleanchor="x",
            scaleratio=1.0 / max(math.cos(math.radians(lat0)), 1e-3),
            showgrid=False,
        ),
        images=[
            dict(
                source=uri,
                xref="x",
                yref="y",
                x=x0,
                y=y1,
                sizex=x1 - x0,
                sizey=y1 - y0,
                sizing="stretch",
                layer="below",
            )
        ],
        dragmode="zoom",
        hovermode="closest",
        showlegend=False,
    )
    if len(results) > 1:
        buttons = [
            dict(
                label=r.correction.name,
                method="update",
                args=[
                    {"visible": [j == k for j in range(len(results))] + [True]},
                    {
                        "title.text": f"Mean LOS velocity, {r.correction.name}: "
                        f"{r.codes.size} PS (reference: {r.metadata.get('n_reference_ps', 0)} PS)"
                    },
                ],
            )
            for k, r in enumerate(results)
        ]
        fig.update_layout(
            updatemenus=[
                dict(
                    buttons=buttons, x=0.0, xanchor="left", y=1.0, yanchor="bottom", pad=dict(b=28)
                )
            ]
        )
    return fig


def write_html(
    run: RunData, results: Sequence[ExportResult], output_dir: str | Path, name: str = HTML_NAME
) -> Path:
    """Write the viewer of ``results`` (one per correction) as ``output_dir/name``, atomically."""
    import plotly.io as pio

    if not results:
        raise StampsError("--format html: no correction to show")
    log = get_logger()
    lon = np.concatenate([r.lonlat[:, 0] for r in results])
    lat = np.concatenate([r.lonlat[:, 1] for r in results])
    pad_x = max(0.03 * float(np.ptp(lon)), 1e-4)
    pad_y = max(0.03 * float(np.ptp(lat)), 1e-4)
    extent = (
        float(lon.min()) - pad_x,
        float(lon.max()) + pad_x,
        float(lat.min()) - pad_y,
        float(lat.max()) + pad_y,
    )
    all_hgt = (
        np.asarray(run.product("hgt2", "the HTML background")["hgt"], dtype=np.float64).ravel()
        if run.has("hgt2")
        else np.zeros(run.n_ps)
    )
    ps_ll = np.asarray(run.ps["lonlat"], dtype=np.float64)
    png, source = background_png(run, extent, (ps_ll[:, 0], ps_ll[:, 1], all_hgt))
    fig = build_figure(results, extent, png)
    map_html = pio.to_html(
        fig,
        include_plotlyjs=True,
        full_html=False,
        div_id="stamps-map",
        default_height="100%",
        default_width="100%",
        config={"responsive": True, "displaylogo": False, "scrollZoom": True},
        post_script="stampsViewer('{plot_id}');",
    )
    meta: dict[str, object] = {"run": str(run.run_dir), "background": source, "corrections": []}
    blobs = []
    for k, r in enumerate(results):
        q, step = pack_series(np.asarray(r.ts.disp_mm, dtype=np.float32))
        dates = [r.dates[j] for j in r.ts.date_ix]
        meta["corrections"].append(  # type: ignore[union-attr]
            {
                "name": r.correction.name,
                "n": int(r.codes.size),
                "step": step,
                "dates": dates,
                "iso": [_iso(d) for d in dates],
                "t_yr": _t_years(r, run),
                "reference_date": r.metadata.get("reference_date"),
                "reference_area": r.metadata.get("reference_area"),
            }
        )
        blobs += [
            _blob(f"stamps-ts-{k}", q),
            _blob(f"stamps-code-{k}", np.asarray(r.codes, dtype=np.int32)),
            _blob(f"stamps-vel-{k}", np.asarray(r.ts.vel, dtype=np.float32)),
        ]
        log.info("html: %s, %d PS, series step %g mm", r.correction.name, r.codes.size, step)
    first = results[0].metadata
    notes = (
        f"Run {html.escape(str(run.run_dir))}. LOS displacement and velocity + toward the "
        f"satellite, reference date {html.escape(str(first.get('reference_date')))}, reference "
        f"area: {html.escape(str(first.get('reference_area')))}. Background: shaded relief of the "
        f"{html.escape(source)}. Series stored to "
        + ", ".join(f"{c['step']:g} mm" for c in meta["corrections"])  # type: ignore[union-attr]
        + f". stamps_python {html.escape(str(first.get('stamps_python_version', '')))}."
    )
    page = PAGE.format(
        title=html.escape(f"StaMPS PS viewer: {run.run_dir.name}"),
        viewer_js=VIEWER_JS,
        map_html=map_html,
        notes=notes,
        meta=json.dumps(meta).replace("</", "<\\/"),
        blobs="\n".join(blobs),
    )
    path = Path(output_dir) / name
    with atomic_output(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path

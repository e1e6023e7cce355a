"""Check ``export_results --format html`` in a real browser (headless Chromium via Playwright).

Loads ``ps_view.html`` of an export folder in Debian's Chromium (``apt-get install chromium``;
Playwright's Python package drives it through ``executable_path``, no browser download) with
every network request refused, then:

1. measures the time to the first contentful paint and to the drawn WebGL map, the file size
   and the JS heap;
2. zooms onto the point with the largest |VEL| of the first correction, hovers it (the label
   must show its CODE), clicks it, and checks that the series shown equals its D fields in
   ``ps_<correction>.gpkg`` (to the page's packing step / 2);
3. switches to every other correction with the page's menu and checks the same point's series;
4. drags a box selection and checks the mean series shown against the mean of the selected
   points' D fields, and that the selection is the points inside the box;
5. saves screenshots (``DIR/html_*.png``) and ``DIR/html_check.json``.

    python bench/html_check.py runs/demo/export [--out DIR]
    python bench/html_check.py --synthetic 500000 --out bench/out/html500k   # scale test

``--synthetic N`` first writes a run of N points (48 dates) with its GeoPackage and viewer, to
measure the size and first paint at scale. Exit 1 on a failed check, 2 without a browser.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # WebGL without a GPU: SwiftShader (Chromium refuses it silently otherwise)
    "--enable-unsafe-swiftshader",
    "--use-angle=swiftshader",
]


def read_layer(path: Path) -> dict[str, np.ndarray]:
    """CODE, LON, LAT, VEL and the D fields (n, m) of a GeoPackage layer."""
    import pyogrio

    frame = pyogrio.read_dataframe(path)
    dnames = [c for c in frame.columns if c.startswith("D") and c[1:].isdigit()]
    return {
        "CODE": frame["CODE"].to_numpy(np.int64),
        "LON": frame.geometry.x.to_numpy(),
        "LAT": frame.geometry.y.to_numpy(),
        "VEL": frame["VEL"].to_numpy(np.float64),
        "D": frame[dnames].to_numpy(np.float64),
        "dates": np.array([c[1:] for c in dnames]),
    }


# --------------------------------------------------------------------------------------------
# a synthetic run at scale


def synthetic_export(n: int, out: Path, n_dates: int = 48, seed: int = 16) -> Path:
    """A run directory of ``n`` points (ps2, hgt2) and its two-correction export (GeoPackages
    and ps_view.html) in ``out``; returns the export folder."""
    from stamps_python.export_results import write_layer
    from stamps_python.html_view import write_html
    from stamps_python.io.products import save_product
    from stamps_python.numerics.timeseries import TimeSeries, parse_correction
    from stamps_python.results import ExportResult, RunData
    from stamps_python.utils import datenum, datestr

    rng = np.random.default_rng(seed)
    run_dir = out / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    lonlat = np.column_stack([rng.uniform(-120.6, -120.2, n), rng.uniform(36.9, 37.2, n)])
    order = np.lexsort((lonlat[:, 0], lonlat[:, 1]))
    lonlat = lonlat[order]
    day = datenum("20210105") + 12.0 * np.arange(n_dates)
    master = n_dates // 2
    t = (day - day[master]) / 365.25
    r2 = ((lonlat[:, 0] + 120.4) / 0.08) ** 2 + ((lonlat[:, 1] - 37.05) / 0.06) ** 2
    vel = -25.0 * np.exp(-r2) + rng.normal(0, 1.0, n)
    hgt = 200 + 800 * np.exp(
        -(((lonlat[:, 0] + 120.3) / 0.1) ** 2 + ((lonlat[:, 1] - 37.1) / 0.1) ** 2)
    )
    ps = {"lonlat": lonlat, "day": day, "master_ix": master, "n_ps": n, "n_ifg": n_dates}
    save_product(run_dir / "ps2.h5", ps)
    save_product(run_dir / "hgt2.h5", {"hgt": hgt})
    run = RunData(run_dir, {}, ps)
    dates = [datestr(d) for d in day]
    results = []
    for name, noise in (("v-do", 3.0), ("v-dso", 1.0)):
        disp = vel[:, None] * t[None, :] + rng.normal(0, noise, (n, n_dates))
        disp[:, master] = 0.0
        ts = TimeSeries(disp, np.arange(n_dates), vel, np.full(n, 0.5), np.zeros(n), None)
        meta = {"reference_date": dates[master], "reference_area": "all PS", "n_reference_ps": n}
        results.append(
            ExportResult(
                parse_correction(name),
                ts,
                dates,
                np.arange(1, n + 1, dtype=np.int32),
                lonlat,
                hgt,
                rng.uniform(0.6, 1.0, n),
                meta,
                rng.uniform(0.5, 1.0, n),
            )
        )
    export = out / "export"
    t0 = time.perf_counter()
    for r in results:
        write_layer(r, export, "gpkg")
    t1 = time.perf_counter()
    write_html(run, results, export)
    t2 = time.perf_counter()
    print(f"synthetic: {n} points, {n_dates} dates; gpkg {t1 - t0:.1f} s, html {t2 - t1:.1f} s")
    return export


# --------------------------------------------------------------------------------------------
# the browser


def browser_check(export: Path, out: Path) -> int:
    from playwright.sync_api import sync_playwright

    html = export / "ps_view.html"
    if not html.is_file():
        print(f"{html}: not found (export with --format html)")
        return 1
    if not Path(CHROMIUM).is_file():
        print(f"{CHROMIUM} not found: apt-get install -y chromium")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "html": str(html),
        "size_mb": round(html.stat().st_size / 2**20, 2),
        "checks": {},
    }
    failures: list[str] = []

    def check(name: str, ok: bool, detail: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
        report["checks"][name] = {"ok": bool(ok), "detail": detail}
        if not ok:
            failures.append(name)

    blocked: list[str] = []
    profile = Path(tempfile.mkdtemp(prefix="html_check_profile_"))
    try:
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(profile),
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                viewport={"width": 1600, "height": 900},
            )

            def route(r):  # noqa: ANN001
                if r.request.url.startswith(("file:", "data:", "blob:")):
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            ctx.route("**/*", route)
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            t0 = time.perf_counter()
            page.goto(html.resolve().as_uri(), wait_until="commit", timeout=300_000)
            page.wait_for_function("window.stampsReady !== undefined", timeout=300_000)
            page.evaluate(
                "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
            )
            wall = time.perf_counter() - t0
            perf = page.evaluate(
                """() => ({
                  fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,
                  ready: window.stampsReady,
                  load: performance.timing.loadEventEnd - performance.timing.navigationStart,
                  heap: performance.memory ? performance.memory.usedJSHeapSize : null,
                  gl: document.querySelectorAll('#stamps-map canvas').length,
                  webgl: !!document.createElement('canvas').getContext('webgl'),
                })"""
            )
            report["timing_ms"] = {
                "first_contentful_paint": perf["fcp"],
                "map_drawn": perf["ready"],
                "wall_to_map_drawn": round(wall * 1000),
            }
            report["js_heap_mb"] = perf["heap"] and round(perf["heap"] / 2**20, 1)
            check(
                "loads offline, WebGL map",
                not blocked and perf["webgl"] and perf["gl"] > 0 and not errors,
                f"{report['size_mb']} MB; first paint {perf['fcp']:.0f} ms, map drawn "
                f"{perf['ready']:.0f} ms after navigation ({wall:.1f} s wall); "
                f"{perf['gl']} canvases; "
                f"{len(blocked)} network requests refused; JS errors {errors or 'none'}",
            )
            page.screenshot(path=str(out / "html_loaded.png"))
            meta = page.evaluate(
                "() => JSON.parse(document.getElementById('stamps-meta').textContent)"
            )
            layers = [read_layer(export / f"ps_{c['name']}.gpkg") for c in meta["corrections"]]
            first = layers[0]
            k = int(np.nanargmax(np.abs(first["VEL"])))
            code = int(first["CODE"][k])
            lon, lat = float(first["LON"][k]), float(first["LAT"][k])
            span = max(float(np.ptp(first["LON"])), float(np.ptp(first["LAT"]))) / 400
            page.evaluate(
                "([x0, x1, y0, y1]) => Plotly.relayout('stamps-map', "
                "{'xaxis.range': [x0, x1], 'yaxis.range': [y0, y1]})",
                [lon - span, lon + span, lat - span, lat + span],
            )
            page.wait_for_timeout(500)

            def pixel(x: float, y: float) -> tuple[float, float]:
                return page.evaluate(
                    """([x, y]) => { const gd = document.getElementById('stamps-map');
                      const L = gd._fullLayout, b = gd.getBoundingClientRect();
                      return [b.left + L.xaxis._offset + L.xaxis.l2p(x),
                              b.top + L.yaxis._offset + L.yaxis.l2p(y)]; }""",
                    [x, y],
                )

            px, py = pixel(lon, lat)
            page.mouse.move(px, py)
            page.wait_for_timeout(700)
            hover = page.evaluate(
                "() => Array.from(document.querySelectorAll('.hoverlayer .hovertext'))"
                ".map(e => e.textContent).join(' | ')"
            )
            check("hover label", f"CODE {code}" in hover, f"'{hover[:120]}'")
            page.mouse.click(px, py)
            page.wait_for_function("window.stampsShown !== undefined", timeout=60_000)
            for c, (corr, layer) in enumerate(zip(meta["corrections"], layers)):
                if c > 0:
                    page.click(".updatemenu-header-group")
                    page.wait_for_timeout(300)
                    page.locator(".updatemenu-dropdown-button").nth(c).click()
                    page.wait_for_function(
                        f"window.stampsShown && window.stampsShown.correction === '{corr['name']}'",
                        timeout=60_000,
                    )
                shown = page.evaluate("() => window.stampsShown")
                plotted = page.evaluate("() => document.getElementById('stamps-ts').data[0].y")
                row = int(np.flatnonzero(layer["CODE"] == code)[0])
                y = np.array([np.nan if v is None else v for v in shown["y"]])
                err = float(np.nanmax(np.abs(y - layer["D"][row])))
                ok = (
                    shown["codes"] == [code]
                    and err <= corr["step"] / 2 + 1e-9
                    and plotted == shown["y"]
                    and corr["dates"] == list(layer["dates"])
                )
                check(
                    f"click CODE {code}, {corr['name']}",
                    ok,
                    f"{len(y)} dates, max |shown - D| {err:.2e} mm (step {corr['step']:g} mm), "
                    f"VEL shown {shown['vel']:.3f}, layer {layer['VEL'][row]:.3f} mm/yr",
                )
                page.screenshot(path=str(out / f"html_click_{corr['name']}.png"))
            # back to the first correction, whole map, box selection of a block of points
            page.click(".updatemenu-header-group")
            page.wait_for_timeout(300)
            page.locator(".updatemenu-dropdown-button").nth(0).click()
            page.wait_for_timeout(300)
            qx = np.quantile(first["LON"], [0.45, 0.55])
            qy = np.quantile(first["LAT"], [0.45, 0.55])
            page.evaluate(
                "([x0, x1, y0, y1]) => Plotly.relayout('stamps-map', {'xaxis.range': [x0, x1], "
                "'yaxis.range': [y0, y1], dragmode: 'select'})",
                [
                    float(qx[0]) - 0.3 * np.ptp(qx),
                    float(qx[1]) + 0.3 * np.ptp(qx),
                    float(qy[0]) - 0.3 * np.ptp(qy),
                    float(qy[1]) + 0.3 * np.ptp(qy),
                ],
            )
            page.wait_for_timeout(500)
            (ax, ay), (bx, by) = pixel(qx[0], qy[1]), pixel(qx[1], qy[0])
            page.mouse.move(ax, ay)
            page.mouse.down()
            page.mouse.move((ax + bx) / 2, (ay + by) / 2, steps=5)
            page.mouse.move(bx, by, steps=5)
            page.mouse.up()
            page.wait_for_function(
                "window.stampsShown && window.stampsShown.codes.length > 1", timeout=120_000
            )
            shown = page.evaluate("() => window.stampsShown")
            sel = np.isin(first["CODE"], shown["codes"])
            inside = (
                (first["LON"] >= qx[0])
                & (first["LON"] <= qx[1])
                & (first["LAT"] >= qy[0])
                & (first["LAT"] <= qy[1])
            )
            mean = np.nanmean(first["D"][sel], axis=0)
            y = np.array([np.nan if v is None else v for v in shown["y"]])
            err = float(np.nanmax(np.abs(y - mean)))
            # points on the box's edge (within 1.5 pixels) may fall either way
            px_x, px_y = page.evaluate(
                "() => { const L = document.getElementById('stamps-map')._fullLayout;"
                " return [1 / Math.abs(L.xaxis._m), 1 / Math.abs(L.yaxis._m)]; }"
            )
            differ = np.flatnonzero(sel != inside)
            edge = np.minimum(
                np.minimum(
                    np.abs(first["LON"][differ] - qx[0]), np.abs(first["LON"][differ] - qx[1])
                )
                / px_x,
                np.minimum(
                    np.abs(first["LAT"][differ] - qy[0]), np.abs(first["LAT"][differ] - qy[1])
                )
                / px_y,
            )
            far = int(np.count_nonzero(edge > 1.5))
            check(
                "box selection mean",
                err <= meta["corrections"][0]["step"] / 2 + 1e-9 and far == 0 and sel.sum() > 1,
                f"{int(sel.sum())} points selected, {int(inside.sum())} inside the box "
                f"({differ.size} differ, all within 1.5 px of its edge: {far == 0}); "
                f"max |shown - mean D| {err:.2e} mm",
            )
            page.screenshot(path=str(out / "html_select.png"))
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    report["failures"] = failures
    (out / "html_check.json").write_text(json.dumps(report, indent=2) + "\n")
    n = len(report["checks"])
    print(f"{n - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("export_dir", type=Path, nargs="?", help="export folder with ps_view.html")
    p.add_argument("--out", type=Path, help="folder for screenshots and the report")
    p.add_argument(
        "--synthetic", type=int, metavar="N", help="first write a synthetic N-point export"
    )
    args = p.parse_args()
    if args.synthetic:
        out = (args.out or REPO / "bench" / "out" / f"html_{args.synthetic}").resolve()
        export = synthetic_export(args.synthetic, out)
    elif args.export_dir:
        export = args.export_dir.resolve()
        out = (args.out or export / "html_check").resolve()
    else:
        p.error("give an export folder or --synthetic N")
    try:
        import playwright  # noqa: F401
    except ImportError:
        print("playwright not installed: pip install playwright (uses /usr/bin/chromium)")
        return 2
    return browser_check(export, out)


if __name__ == "__main__":
    raise SystemExit(main())

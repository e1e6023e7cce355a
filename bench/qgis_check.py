"""Open every exported GeoPackage and Shapefile in QGIS itself, headless, and render it.

Runs with the system Python and Debian's QGIS (``apt-get install -y python3-qgis
qgis-providers``), not the project venv::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 bench/qgis_check.py runs/demo/export [DIR ...] \\
        [--out bench/out/qgis]

For each ``*.gpkg`` / ``*.shp`` below the folders it checks, with QGIS' own readers, that the
layer is valid, its CRS is EPSG:4326, its feature count is the export's (layer metadata
``n_ps``, the ``.shp.json`` sidecar, or the GeoPackage of the same correction for MintPy's
``save_qgis`` Shapefiles), the fixed fields are there with the types QGIS reports, and every
``D`` field is a real number named ``D`` + a YYYYMMDD date that parses, in date order (as the PS
Time Series Viewer plugin reads them). It then renders the layer coloured by VEL (graduated,
symmetric about 0, red away from / blue toward the satellite) to ``OUT/<file>.png`` with a
legend, and prints the render time. Exit 1 on a failed check.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsGraduatedSymbolRenderer,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsMarkerSymbol,
    QgsRendererRange,
    QgsStyle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize, QVariant  # noqa: E402
from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter  # noqa: E402

REAL = {QVariant.Double}
INTEGER = {QVariant.Int, QVariant.LongLong, QVariant.UInt, QVariant.ULongLong}
FIXED = {
    "CODE": INTEGER | {QVariant.String},
    "HEIGHT": REAL,
    "H_STDEV": REAL,
    "VEL": REAL,
    "V_STDEV": REAL,
    "COHERENCE": REAL,
    "EFF_AREA": INTEGER,
}
D_FIELD = re.compile(r"^D(\d{8})$")
N_CLASSES = 11


def expected_count(path: Path, folders: list[Path]) -> int | None:
    """Feature count the export says the layer has (None: unknown)."""
    if path.suffix == ".gpkg":
        import sqlite3

        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT metadata FROM gpkg_metadata").fetchall()
        for (text,) in rows:
            found = re.search(r'key="n_ps">(\d+)<', text)
            if found:
                return int(found.group(1))
        return None
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        return int(json.loads(sidecar.read_text())["n_ps"])
    m = re.match(r"(.+)_save_qgis$", path.stem)
    if m:
        for d in folders:
            for gpkg in sorted(d.rglob(f"ps_{m.group(1)}.gpkg")):
                return expected_count(gpkg, folders)
    return None


def render(layer: QgsVectorLayer, png: Path, title: str) -> float:
    """Render ``layer`` coloured by VEL with a legend to ``png``; returns the seconds taken."""
    vel = sorted(
        abs(f["VEL"]) for f in layer.getFeatures() if f["VEL"] is not None and f["VEL"] == f["VEL"]
    )
    lim = vel[int(0.999 * (len(vel) - 1))] if vel else 1.0
    lim = lim if lim > 0 else 1.0
    ramp = QgsStyle.defaultStyle().colorRamp("RdYlBu")
    ranges = []
    edges = [-lim + 2 * lim * k / N_CLASSES for k in range(N_CLASSES + 1)]
    edges[0], edges[-1] = -1e30, 1e30
    for k in range(N_CLASSES):
        sym = QgsMarkerSymbol.createSimple(
            {"name": "circle", "size": "0.9", "outline_style": "no", "color": "0,0,0"}
        )
        sym.setColor(ramp.color(k / (N_CLASSES - 1)))
        lo, hi = max(edges[k], -lim), min(edges[k + 1], lim)
        ranges.append(QgsRendererRange(edges[k], edges[k + 1], sym, f"{lo:.1f} to {hi:.1f}"))
    layer.setRenderer(QgsGraduatedSymbolRenderer("VEL", ranges))
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    extent = layer.extent()
    extent.scale(1.05)
    settings.setExtent(extent)
    settings.setOutputSize(QSize(1000, 900))
    settings.setBackgroundColor(QColor(255, 255, 255))
    t0 = time.perf_counter()
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    seconds = time.perf_counter() - t0
    image = job.renderedImage()
    out = QImage(1240, 900, QImage.Format_ARGB32)
    out.fill(QColor(255, 255, 255))
    p = QPainter(out)
    p.drawImage(0, 0, image)
    p.setFont(QFont("Sans", 10))
    p.setPen(QColor(0, 0, 0))
    p.drawText(10, 20, title)
    p.drawText(1010, 40, "VEL (mm/yr)")
    for k, r in enumerate(reversed(ranges)):
        y = 55 + k * 24
        p.fillRect(1010, y, 20, 18, r.symbol().color())
        p.drawText(1036, y + 14, r.label())
    p.end()
    out.save(str(png))
    return seconds


def check_layer(path: Path, out: Path, folders: list[Path], failures: list[str]) -> dict:
    name = path.stem
    layer = QgsVectorLayer(str(path), name, "ogr")
    info: dict = {"path": str(path)}

    def check(what: str, ok: bool, detail: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}: {detail}")
        info[what] = {"ok": bool(ok), "detail": detail}
        if not ok:
            failures.append(f"{path.name}: {what}")

    print(path)
    check("valid", layer.isValid(), f"provider {layer.providerType()}")
    if not layer.isValid():
        return info
    crs = layer.crs()
    check(
        "CRS",
        crs.authid() == "EPSG:4326" or crs == QgsCoordinateReferenceSystem("EPSG:4326"),
        f"{crs.authid() or crs.description()}",
    )
    want = expected_count(path, folders)
    count = layer.featureCount()
    check("feature count", want is None or count == want, f"{count} (export: {want})")
    fields = {f.name(): f for f in layer.fields()}
    bad = [
        f"{n} {fields[n].typeName() if n in fields else 'missing'}"
        for n, types in FIXED.items()
        if n not in fields or fields[n].type() not in types
    ]
    check(
        "fixed fields",
        not bad,
        "CODE, HEIGHT, H_STDEV, VEL, V_STDEV, COHERENCE, EFF_AREA "
        + (f"wrong: {bad}" if bad else "as expected"),
    )
    dnames = [n for n in fields if n.startswith("D") and n != "D"]
    dates, wrong = [], []
    for n in dnames:
        m = D_FIELD.match(n)
        try:
            dates.append(dt.datetime.strptime(m.group(1), "%Y%m%d").date())
        except (AttributeError, ValueError):
            wrong.append(n)
            continue
        if fields[n].type() not in REAL:
            wrong.append(f"{n} {fields[n].typeName()}")
    check(
        "D fields",
        bool(dates) and not wrong and dates == sorted(dates),
        f"{len(dates)} dates {dates[0] if dates else ''} .. {dates[-1] if dates else ''}, "
        f"type {fields[dnames[0]].typeName() if dnames else '-'}; wrong: {wrong or 'none'}",
    )
    png = out / f"{path.parent.name}_{name}.png"
    seconds = render(layer, png, f"{path.name}: {count} features, VEL")
    check("render", png.is_file() and png.stat().st_size > 5000, f"{png} in {seconds:.2f} s")
    info["render_s"] = round(seconds, 3)
    return info


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", type=Path, help="folders with exported layers")
    p.add_argument("--out", type=Path, default=Path("bench/out/qgis"), help="PNG folder")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    QgsApplication.setPrefixPath("/usr", True)
    qgs = QgsApplication([], False)
    qgs.initQgis()
    failures: list[str] = []
    report = []
    try:
        files = sorted(
            {f for d in args.folders for ext in ("gpkg", "shp") for f in d.rglob(f"*.{ext}")}
        )
        if not files:
            print("no .gpkg or .shp found")
            return 1
        for path in files:
            report.append(check_layer(path, args.out, args.folders, failures))
    finally:
        qgs.exitQgis()
    (args.out / "qgis_check.json").write_text(json.dumps(report, indent=2) + "\n")
    n = sum(1 for r in report for v in r.values() if isinstance(v, dict))
    print(f"{n - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Check ``export_results --format mintpy`` with MintPy itself.

Installs MintPy from PyPI into its own venv (default ``bench/out/mintpy_venv``; Debian's GDAL
Python bindings, ``apt-get install python3-gdal``, are linked in for ``save_qgis.py``), then, for
every ``mintpy_<correction>/`` folder of an export folder:

1. ``readfile.read`` / ``read_attribute``: the attributes MintPy needs are there, and every
   dataset at the points' pixels equals the GeoPackage ``ps_<correction>.gpkg`` (timeseries x 1000
   = D fields, velocity / velocityStd x 1000 = VEL / V_STDEV, temporalCoherence = TCOH, height =
   HEIGHT, latitude / longitude = the points), NaN elsewhere, the mask True exactly there;
2. ``view.py`` renders velocity, the last date of the time series and the height to PNG;
3. ``tsview.py --save`` renders the series of the fastest point and writes it as text, which
   must equal its D fields (its series figure is a PDF; ``pdftoppm``, Debian's poppler-utils,
   makes a PNG of it when installed);
4. ``save_qgis.py`` writes a Shapefile whose features (matched by position) carry our VEL,
   V_STDEV, HEIGHT, TCOH (as COHERENCE) and D fields (to its 2 decimals).

    python bench/mintpy_check.py runs/demo/export --run runs/demo/run [--out DIR]

Prints one line per check and a summary; writes ``DIR/mintpy_check.json``; exit 1 on a failure.
Headless: matplotlib's Agg backend.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = REPO / "bench" / "out" / "mintpy_venv"
MINTPY = "mintpy==1.6.4"
SYSTEM_PYTHON = "/usr/bin/python3"
DEBIAN_DIST = Path("/usr/lib/python3/dist-packages")
REQUIRED_ATTRS = (
    "FILE_TYPE",
    "LENGTH",
    "WIDTH",
    "WAVELENGTH",
    "REF_DATE",
    "REF_Y",
    "REF_X",
    "REF_LAT",
    "REF_LON",
    "ORBIT_DIRECTION",
    "STARTING_RANGE",
    "RANGE_PIXEL_SIZE",
    "EARTH_RADIUS",
    "HEIGHT",
    "CENTER_LINE_UTC",
    "ALOOKS",
    "RLOOKS",
    *(f"{a}_REF{k}" for a in ("LAT", "LON") for k in range(1, 5)),
    "UNIT",
)


def ensure_venv(venv: Path) -> Path:
    """The venv's python, creating the venv (MintPy from PyPI, numpy < 2 for Debian's GDAL
    bindings, which are symlinked in) when it has no MintPy yet."""
    python = venv / "bin" / "python"
    cfg = venv / "pyvenv.cfg"
    isolated = cfg.is_file() and "include-system-site-packages = false" in cfg.read_text()
    if isolated and subprocess.run([python, "-c", "import mintpy, osgeo.ogr"]).returncode == 0:
        return python
    if not (DEBIAN_DIST / "osgeo").is_dir():
        sys.exit("Debian's GDAL bindings are missing: apt-get install -y python3-gdal")
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", MINTPY, "numpy<2"], check=True)
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    for name in ("osgeo", "osgeo_utils"):
        link = site / name
        if not link.exists():
            link.symlink_to(DEBIAN_DIST / name)
    return python


# --------------------------------------------------------------------------------------------
# inside the MintPy venv


def _read_gpkg(path: Path) -> dict:
    """CODE -> (lon, lat, fields) of a GeoPackage or Shapefile, with GDAL's ogr."""
    from osgeo import ogr

    ds = ogr.Open(str(path))
    layer = ds.GetLayer(0)
    defn = layer.GetLayerDefn()
    names = [defn.GetFieldDefn(k).GetName() for k in range(defn.GetFieldCount())]
    rows = []
    for feat in layer:
        geom = feat.GetGeometryRef()
        rows.append((geom.GetX(), geom.GetY(), {n: feat.GetField(n) for n in names}))
    return {"names": names, "rows": rows}


def _run(cmd: list[str], cwd: Path, log: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    with log.open("w") as fh:
        rc = subprocess.run(
            cmd,
            cwd=cwd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, MPLBACKEND="Agg"),
        ).returncode
    return rc, time.perf_counter() - t0


def inner(export_dir: Path, run_dir: Path, out: Path) -> int:
    import h5py
    import numpy as np
    from mintpy.utils import readfile

    out.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    with h5py.File(run_dir / "ps2.h5", "r") as f:
        ij = f["ij"][:]
    pixel_of = {int(c): (int(y), int(x)) for c, y, x in ij}
    report: dict = {"export_dir": str(export_dir), "corrections": {}}
    failures = []

    def check(name: str, ok: bool, detail: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {name}: {detail}")
        if not ok:
            failures.append(name)
        rep["checks"][name] = {"ok": bool(ok), "detail": detail}

    for folder in sorted(export_dir.glob("mintpy_*")):
        corr = folder.name.removeprefix("mintpy_")
        gpkg = export_dir / f"ps_{corr}.gpkg"
        print(f"{corr}: {folder}")
        rep = report["corrections"][corr] = {"checks": {}, "times_s": {}}
        layer = _read_gpkg(gpkg)
        dfields = [n for n in layer["names"] if n.startswith("D") and n[1:].isdigit()]
        codes = np.array([int(r[2]["CODE"]) for r in layer["rows"]])
        lon = np.array([r[0] for r in layer["rows"]])
        lat = np.array([r[1] for r in layer["rows"]])
        field = {
            n: np.array([r[2][n] for r in layer["rows"]], dtype=float)
            for n in layer["names"]
            if n != "CODE"
        }
        yx = np.array([pixel_of[c] for c in codes])
        y, x = yx[:, 0], yx[:, 1]

        # 1. readfile
        ts_file, geom_file = folder / "timeseries.h5", folder / "inputs" / "geometryRadar.h5"
        files = {
            "timeseries": ts_file,
            "velocity": folder / "velocity.h5",
            "temporalCoherence": folder / "temporalCoherence.h5",
            "mask": folder / "maskTempCoh.h5",
        }
        for ftype, path in files.items():
            atr = readfile.read_attribute(str(path))
            missing = [k for k in REQUIRED_ATTRS if k not in atr]
            check(
                f"attributes {path.name}",
                not missing and atr["FILE_TYPE"] == ftype,
                f"FILE_TYPE {atr['FILE_TYPE']}, UNIT {atr.get('UNIT')}, "
                f"missing {missing or 'none'}",
            )
        ts, atr = readfile.read(str(ts_file))
        dates = readfile.get_slice_list(str(ts_file))
        check(
            "timeseries dates",
            [f"D{d.split('-')[-1]}" for d in dates] == dfields,
            f"{len(dates)} dates, REF_DATE {atr['REF_DATE']}",
        )
        ref_k = [d.split("-")[-1] for d in dates].index(atr["REF_DATE"])
        check(
            "reference epoch zero",
            bool(np.all(ts[ref_k][np.isfinite(ts[ref_k])] == 0)),
            f"date {atr['REF_DATE']} (index {ref_k})",
        )
        d_gpkg = np.column_stack([field[n] for n in dfields])
        d_h5 = ts[:, y, x].T * 1000.0
        err = float(np.nanmax(np.abs(d_h5 - d_gpkg)))
        check("timeseries = D fields", err < 1e-3, f"max |diff| {err:.2e} mm over {codes.size} PS")
        off = np.ones(ts.shape[1:], dtype=bool)
        off[y, x] = False
        check(
            "NaN away from the points",
            bool(np.isnan(ts[:, off]).all()),
            f"{int(off.sum())} empty pixels of {off.size}",
        )
        for dset, name, scale in (
            ("velocity", "VEL", 1000.0),
            ("velocityStd", "V_STDEV", 1000.0),
        ):
            data = readfile.read(str(files["velocity"]), datasetName=dset)[0]
            err = float(np.nanmax(np.abs(data[y, x] * scale - field[name])))
            check(f"{dset} = {name}", err < 1e-3, f"max |diff| {err:.2e} mm/yr")
        tc = readfile.read(str(files["temporalCoherence"]))[0]
        err = float(np.nanmax(np.abs(tc[y, x] - field["TCOH"])))
        check("temporalCoherence = TCOH", err < 1e-6, f"max |diff| {err:.2e}")
        mask = readfile.read(str(files["mask"]))[0]
        check(
            "mask = the points' pixels",
            bool(mask[y, x].all()) and int(mask.sum()) == codes.size,
            f"{int(mask.sum())} True, {codes.size} PS",
        )
        for dset, want, tol in (
            ("height", field["HEIGHT"], 1e-3),
            ("latitude", lat, 1e-9),
            ("longitude", lon, 1e-9),
        ):
            data = readfile.read(str(geom_file), datasetName=dset)[0]
            err = float(np.nanmax(np.abs(data[y, x] - want)))
            check(f"geometry {dset}", err < tol, f"max |diff| {err:.2e}")
        g_atr = readfile.read_attribute(str(geom_file))
        check("geometry FILE_TYPE", g_atr["FILE_TYPE"] == "geometry", g_atr["FILE_TYPE"])

        # 2. view.py
        for label, args in (
            ("view velocity", ["velocity.h5", "velocity"]),
            ("view timeseries", ["timeseries.h5", dates[-1].split("-")[-1]]),
            ("view height", ["inputs/geometryRadar.h5", "height"]),
        ):
            png = out / f"{corr}_{label.replace(' ', '_')}.png"
            rc, dt = _run(
                [str(bindir / "view.py"), *args, "--nodisplay", "-o", str(png)],
                folder,
                out / f"{corr}_{label.replace(' ', '_')}.log",
            )
            rep["times_s"][label] = round(dt, 2)
            check(label, rc == 0 and png.is_file(), f"rc {rc}, {png} ({dt:.1f} s)")

        # 3. tsview.py at the fastest point
        k = int(np.nanargmax(np.abs(field["VEL"])))
        stem = out / f"{corr}_tsview"
        rc, dt = _run(
            [
                str(bindir / "tsview.py"),
                "timeseries.h5",
                "--yx",
                str(y[k]),
                str(x[k]),
                "--nodisplay",
                "--save",
                "-o",
                str(stem),
            ],
            folder,
            out / f"{corr}_tsview.log",
        )
        rep["times_s"]["tsview"] = round(dt, 2)
        txt = sorted(out.glob(f"{stem.name}*ts.txt"))
        pdf = out / f"{stem.name}_ts.pdf"
        if pdf.is_file() and shutil.which("pdftoppm"):  # tsview draws the series as PDF only
            subprocess.run(
                ["pdftoppm", "-png", "-r", "110", "-singlefile", str(pdf), str(pdf.with_suffix(""))]
            )
        pngs = sorted(out.glob(f"{stem.name}*.png"))
        detail = (
            f"rc {rc}, CODE {codes[k]} at y {y[k]} x {x[k]}, {[p.name for p in pngs]} ({dt:.1f} s)"
        )
        if rc == 0 and txt:
            lines = txt[0].read_text().splitlines()
            unit = next((ln.split(":")[1].strip() for ln in lines if ln.startswith("# unit:")), "m")
            to_mm = {"m": 1000.0, "cm": 10.0, "mm": 1.0}[unit]
            rows = [ln.split() for ln in lines if ln and not ln.startswith("#")]
            shown = np.array([float(r[1]) for r in rows]) * to_mm
            err = float(np.max(np.abs(shown - d_gpkg[k])))
            detail += f", series ({unit} in the text) vs D fields max |diff| {err:.2e} mm"
            check("tsview.py", err < 1e-3 and bool(pngs), detail)
        else:
            check("tsview.py", False, detail)

        # 4. save_qgis.py
        shp = out / f"{corr}_save_qgis.shp"
        rc, dt = _run(
            [
                str(bindir / "save_qgis.py"),
                "timeseries.h5",
                "-g",
                "inputs/geometryRadar.h5",
                "-o",
                str(shp),
            ],
            folder,
            out / f"{corr}_save_qgis.log",
        )
        rep["times_s"]["save_qgis"] = round(dt, 2)
        if rc != 0 or not shp.is_file():
            check("save_qgis.py", False, f"rc {rc}")
            continue
        theirs = _read_gpkg(shp)
        # save_qgis takes the coordinates from geometryRadar.h5 as float32 (ut.get_lat_lon)
        index = {(np.float32(r[0]), np.float32(r[1])): r[2] for r in theirs["rows"]}
        check(
            "save_qgis feature count",
            len(theirs["rows"]) == codes.size,
            f"{len(theirs['rows'])} vs {codes.size}",
        )
        worst: dict[str, float] = {}
        missing = 0
        pairs = (
            ("VEL", "VEL"),
            ("V_STDEV", "V_STDEV"),
            ("HEIGHT", "HEIGHT"),
            ("COHERENCE", "TCOH"),
        )
        for i in range(codes.size):
            f = index.get((np.float32(lon[i]), np.float32(lat[i])))
            if f is None:
                missing += 1
                continue
            for a, b in pairs + tuple((n, n) for n in dfields):
                worst[a] = max(worst.get(a, 0.0), abs(float(f[a]) - field[b][i]))
        tol = {"COHERENCE": 5e-4}
        d_worst = max(worst[n] for n in dfields)
        ok = (
            missing == 0
            and all(worst[a] <= tol.get(a, 5e-3) + 1e-6 for a, _ in pairs)
            and d_worst <= 5e-3 + 1e-6
        )
        check(
            "save_qgis = GeoPackage",
            ok,
            f"{missing} unmatched (by float32 position); max |diff| VEL {worst['VEL']:.4f}, "
            f"V_STDEV {worst['V_STDEV']:.4f}, HEIGHT {worst['HEIGHT']:.4f}, "
            f"COHERENCE-TCOH {worst['COHERENCE']:.4f}, D {d_worst:.4f} "
            f"(Shapefile keeps 2 decimals, 3 for COHERENCE) ({dt:.1f} s)",
        )
    report["failures"] = failures
    (out / "mintpy_check.json").write_text(json.dumps(report, indent=2) + "\n")
    n = sum(len(c["checks"]) for c in report["corrections"].values())
    print(f"{n - len(failures)} passed, {len(failures)} failed")
    return 1 if failures or not report["corrections"] else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("export_dir", type=Path, help="export folder with ps_*.gpkg and mintpy_*/")
    p.add_argument("--run", type=Path, required=True, help="the run directory (its ps2.h5)")
    p.add_argument("--out", type=Path, help="folder for the PNGs, Shapefiles, logs")
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="MintPy's venv")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    out = (args.out or args.export_dir / "mintpy_check").resolve()
    if args.inner:
        return inner(args.export_dir.resolve(), args.run.resolve(), out)
    python = ensure_venv(args.venv)
    cmd = [
        str(python),
        __file__,
        str(args.export_dir),
        "--run",
        str(args.run),
        "--out",
        str(out),
        "--inner",
    ]
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    raise SystemExit(main())

"""export_results: PS velocities and time series as GeoPackage, Shapefile or CSV point layers.

For each correction (a StaMPS ``ps_plot`` velocity value type such as ``v-do`` or ``v-dso``) one
EPSG:4326 point layer is written with the fields CODE, HEIGHT (m), H_STDEV, VEL (mm/yr), V_STDEV
(mm/yr), COHERENCE, EFF_AREA, TCOH and one DYYYYMMDD field per date (mm, 0 on the reference date),
displacements and velocities positive toward the satellite. ``--format mintpy`` also writes,
beside the GeoPackage, MintPy's HDF5 files on the radar grid (``mintpy_<correction>/``,
:mod:`stamps_python.io.mintpy`); ``--format html`` one self-contained interactive viewer of all
corrections (``ps_view.html``, :mod:`stamps_python.html_view`). See docs/export.md.

    python stamps_python/export_results.py --input-path RUN --output-dir DIR --format gpkg \\
        --correction v-do --correction v-dso [--ref-lonlat LON LAT --ref-radius M] [--plot]
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stamps_python.numerics.timeseries import Correction, parse_correction
from stamps_python.results import (
    ExportResult,
    RunData,
    add_aps_argument,
    add_bootstrap_arguments,
    add_reference_arguments,
    check_inputs,
    compute_results,
    load_run,
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
    timed,
)

if TYPE_CHECKING:
    from stamps_python.io.mintpy import MintpyPoints

FORMATS = ("gpkg", "shp", "csv")
VIEW_FORMATS = ("mintpy", "html")  # written beside the GeoPackage
FIXED_FIELDS = ("CODE", "HEIGHT", "H_STDEV", "VEL", "V_STDEV", "COHERENCE", "EFF_AREA", "TCOH")
SHP_MAX_FIELDS = 255


# --------------------------------------------------------------------------------------------
# writing


def date_fields(result: ExportResult) -> list[str]:
    """``DYYYYMMDD`` field names of the layer's dates."""
    return [f"D{result.dates[k]}" for k in result.ts.date_ix]


def result_table(result: ExportResult) -> dict[str, np.ndarray]:
    """Field name -> column, in the documented order (CODE ... EFF_AREA, D fields)."""
    n = result.codes.size
    table: dict[str, np.ndarray] = {
        "CODE": result.codes,
        "HEIGHT": result.hgt,
        "H_STDEV": np.zeros(n),
        "VEL": result.ts.vel,
        "V_STDEV": result.ts.vel_std,
        "COHERENCE": result.coh,
        "EFF_AREA": np.ones(n, dtype=np.int32),
        "TCOH": result.tcoh if result.tcoh is not None else np.full(n, np.nan),
    }
    disp = result.ts.disp_mm.astype(np.float32)
    for j, name in enumerate(date_fields(result)):
        table[name] = disp[:, j]
    return table


def _geodataframe(result: ExportResult) -> Any:
    import geopandas as gpd
    import pandas as pd

    frame = pd.DataFrame(result_table(result))
    geometry = gpd.points_from_xy(result.lonlat[:, 0], result.lonlat[:, 1])
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def _metadata_strings(metadata: Mapping[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}


def output_stem(correction: Correction) -> str:
    """File name without extension: ``ps_`` + the correction, e.g. ``ps_v-do``."""
    return f"ps_{correction.name}"


def write_layer(result: ExportResult, output_dir: str | Path, fmt: str = "gpkg") -> Path:
    """Write one correction's layer in ``fmt`` (gpkg, shp or csv) into ``output_dir``.

    The files are written in a temporary folder beside them and renamed into place when
    complete (a Shapefile's .shp last). GeoPackage metadata holds the layer description;
    Shapefile and CSV get a ``<file>.json`` sidecar. Returns the main file's path.
    """
    import pyogrio

    if fmt not in FORMATS:
        raise StampsError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    n_fields = len(FIXED_FIELDS) + result.ts.date_ix.size
    if fmt == "shp" and n_fields > SHP_MAX_FIELDS:
        raise StampsError(
            f"a Shapefile holds at most {SHP_MAX_FIELDS} fields, this layer needs "
            f"{n_fields} ({result.ts.date_ix.size} dates); use --format gpkg or csv"
        )
    out_dir = Path(output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = output_stem(result.correction)
    meta = dict(
        result.metadata,
        format=fmt,
        layer=result.correction.layer_name,
        fields=list(FIXED_FIELDS) + date_fields(result),
        crs="EPSG:4326",
    )
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{stem}.{fmt}.tmp-", dir=out_dir))
    try:
        main_file = tmp_dir / f"{stem}.{fmt}"
        if fmt == "gpkg":
            pyogrio.write_dataframe(
                _geodataframe(result),
                main_file,
                driver="GPKG",
                layer=result.correction.layer_name,
                layer_metadata=_metadata_strings(meta),
                # GeoPackage 1.2: read without a warning by the QGIS LTR releases still in use
                # (QGIS 3.22 with GDAL 3.6 calls newer GDAL's 1.4 files "partially supported")
                dataset_options={"VERSION": "1.2"},
            )
        elif fmt == "shp":
            pyogrio.write_dataframe(
                _geodataframe(result),
                main_file,
                driver="ESRI Shapefile",
                layer=stem,
                encoding="UTF-8",
            )
        else:
            import pandas as pd

            table = result_table(result)
            frame = pd.DataFrame({"LON": result.lonlat[:, 0], "LAT": result.lonlat[:, 1], **table})
            frame.to_csv(main_file, index=False)
        if fmt != "gpkg":
            (tmp_dir / f"{stem}.{fmt}.json").write_text(
                json.dumps(meta, indent=2) + "\n", encoding="utf-8"
            )
        files = sorted(tmp_dir.iterdir(), key=lambda p: p == main_file)
        for path in files:
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out_dir / f"{stem}.{fmt}"


# --------------------------------------------------------------------------------------------
# MintPy


def mintpy_dir(output_dir: str | Path, correction: Correction) -> Path:
    """Folder of one correction's MintPy files: ``mintpy_<correction>`` (e.g. ``mintpy_v-do``)."""
    return Path(output_dir) / f"mintpy_{correction.name}"


def _date_bperp(run: RunData, dates: Sequence[str]) -> np.ndarray:
    """Perpendicular baseline (m) of each date to the reference date: metadata.json ``bperp``,
    else ps2's per-image ``bperp``, else 0."""
    from stamps_python.rundir import metadata_path, read_metadata

    meta = read_metadata(run.run_dir) if metadata_path(run.run_dir).is_file() else {}
    table = meta.get("bperp")
    if isinstance(table, Mapping) and all(d in table for d in dates):
        return np.array([float(table[d]) for d in dates])
    ps_bperp = np.asarray(run.ps.get("bperp", []), dtype=np.float64).ravel()
    if ps_bperp.size == run.n_sm:
        return ps_bperp[[run.dates.index(d) for d in dates]]
    get_logger().info("no per-date bperp found: timeseries.h5 /bperp set to 0")
    return np.zeros(len(dates))


def mintpy_points(run: RunData, result: ExportResult) -> "MintpyPoints":
    """The points of ``result`` in MintPy's units (m, m/year) at their ps2 pixels; the reference
    pixel is the reference PS nearest to the reference PS's centroid."""
    from stamps_python.io.mintpy import MintpyPoints

    rows = np.arange(run.n_ps) if result.rows is None else result.rows
    ij = np.asarray(run.ps["ij"], dtype=np.int64)[rows]
    dates = [result.dates[k] for k in result.ts.date_ix]
    ref_point = None
    if result.ts.ref_ix is not None and result.ts.ref_ix.size:
        ref = np.asarray(result.ts.ref_ix)
        ll = result.lonlat[ref]
        d = (ll - ll.mean(axis=0)) * [np.cos(np.radians(ll[:, 1].mean())), 1.0]
        ref_point = int(ref[np.argmin(np.hypot(d[:, 0], d[:, 1]))])
    meta = result.metadata
    n = result.codes.size
    return MintpyPoints(
        line=ij[:, 1],
        sample=ij[:, 2],
        lonlat=result.lonlat,
        dates=dates,
        ref_date=str(meta["reference_date"]),
        disp_m=result.ts.disp_mm.astype(np.float32) / 1000.0,
        bperp=_date_bperp(run, dates),
        vel_m=np.asarray(result.ts.vel) / 1000.0,
        vel_std_m=np.asarray(result.ts.vel_std) / 1000.0,
        tcoh=result.tcoh if result.tcoh is not None else np.full(n, np.nan),
        ref_point=ref_point,
        attrs={
            "STAMPS_CORRECTION": result.correction.name,
            "STAMPS_CORRECTION_MEANING": str(meta["correction_meaning"]),
            "STAMPS_REFERENCE_AREA": str(meta["reference_area"]),
            "STAMPS_N_REFERENCE_PS": str(meta["n_reference_ps"]),
            "STAMPS_N_PS": str(n),
            "STAMPS_SIGN": "LOS displacement and velocity positive toward the satellite",
            "STAMPS_PYTHON_VERSION": str(meta["stamps_python_version"]),
        },
    )


def geometry_overrides(run: RunData) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every ps2 PS's latitude, longitude and height (hgt2) at its pixel, for geometryRadar.h5."""
    ij = np.asarray(run.ps["ij"], dtype=np.int64)
    lonlat = np.asarray(run.ps["lonlat"], dtype=np.float64)
    out = {
        "latitude": (ij[:, 1], ij[:, 2], lonlat[:, 1]),
        "longitude": (ij[:, 1], ij[:, 2], lonlat[:, 0]),
    }
    if run.has("hgt2"):
        out["height"] = (ij[:, 1], ij[:, 2], run.per_ps("hgt2", "hgt", "HEIGHT"))
    return out


# --------------------------------------------------------------------------------------------
# command line


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one-line StampsErrors (exit 1)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise StampsError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="export_results",
        formatter_class=HelpFormatter,
        description="Export PS mean LOS velocities and time series (mm, positive toward "
        "the satellite) as EPSG:4326 point layers, one per correction.",
    )
    add_run_argument(p, "run directory after Steps 6-8", aliases=["--input-path"])
    p.add_argument("--output-dir", help="folder for the layers (default: the run directory)")
    p.add_argument(
        "--format",
        default="gpkg",
        choices=FORMATS + VIEW_FORMATS,
        help="layer file format; mintpy: also MintPy HDF5 (mintpy_<correction>/), html: also "
        "one interactive viewer (ps_view.html), each beside the GeoPackage",
    )
    p.add_argument(
        "--mintpy-looks",
        nargs=2,
        type=int,
        default=(1, 1),
        metavar=("AZ", "RG"),
        help="--format mintpy: average the points over AZ lines x RG samples (multilook)",
    )
    p.add_argument(
        "--correction",
        action="append",
        metavar="TYPE",
        help="ps_plot velocity type, repeatable: v, v-d, v-o, v-do, v-s, v-so, v-ds, "
        "v-dso, v-a, v-da, v-ao, v-dao (default v-do)",
    )
    add_aps_argument(p)
    add_reference_arguments(p)
    p.add_argument("--plot", action="store_true", help="also write the PNG plots (ps_plot)")
    add_bootstrap_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export command line; errors are StampsError (one line, exit 1)."""
    args = build_parser().parse_intermixed_args(argv)
    corrections = [parse_correction(c) for c in (args.correction or ["v-do"])]
    reference = reference_from_args(
        args.ref_lonlat, args.ref_radius, args.ref_lon_box, args.ref_lat_box
    )
    if args.n_boot < 2:
        raise StampsError(f"--n-boot {args.n_boot}: at least 2 draws are needed")
    run_dir = run_argument(args)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: no such run directory")
    output_dir = check_output_dir(args.output_dir or run_dir, "--output-dir")
    setup_logging(run_dir, args.verbose)
    log = get_logger()
    run = load_run(run_dir)
    run.aps = args.aps
    corrections = check_inputs(run, corrections)
    layer_format = "gpkg" if args.format in VIEW_FORMATS else args.format
    geometry = None
    if args.format == "mintpy":
        from stamps_python.io.mintpy import check_looks, read_radar_geometry
        from stamps_python.rundir import read_metadata

        meta = read_metadata(run_dir, hint="run prep_isce --bootstrap-metadata first")
        geometry = read_radar_geometry(meta, float(run.parms["lambda"]))
        check_looks(args.mintpy_looks, geometry)
        overrides = geometry_overrides(run)
    written: list[Path] = []
    results: list[ExportResult] = []
    for correction in corrections:
        with timed(f"export {correction.name}"):
            result = compute_results(run, correction, reference, args.n_boot, args.seed)
            path = write_layer(result, output_dir, layer_format)
            log.info(
                "wrote %s: %d PS, %d dates, reference %s",
                path,
                result.codes.size,
                result.ts.date_ix.size,
                result.metadata["reference_area"],
            )
            written.append(path)
            if geometry is not None:
                from stamps_python.io.mintpy import write_mintpy

                written.extend(
                    write_mintpy(
                        mintpy_dir(output_dir, correction),
                        mintpy_points(run, result),
                        geometry,
                        args.mintpy_looks,
                        overrides,
                    )
                )
            if args.format == "html":
                results.append(result)
            if args.plot:
                from stamps_python.ps_plot import make_plots

                written.extend(make_plots(run, result, output_dir))
    if results:
        from stamps_python.html_view import write_html

        with timed("export html"):
            written.append(write_html(run, results, output_dir))
    for path in written:
        print(path)
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: exit 0, or 1 with a one-line error."""
    return run_cli(main, argv)


if __name__ == "__main__":
    raise SystemExit(cli())

"""export_results: PS velocities and time series as GeoPackage, Shapefile or CSV point layers.

For each correction (a StaMPS ``ps_plot`` velocity value type such as ``v-do`` or ``v-dso``) one
EPSG:4326 point layer is written with the fields CODE, HEIGHT (m), H_STDEV, VEL (mm/yr), V_STDEV
(mm/yr), COHERENCE, EFF_AREA, TCOH and one DYYYYMMDD field per date (mm, 0 on the reference date),
displacements and velocities positive toward the satellite. See docs/export.md.

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
from typing import Any

import numpy as np

from stamps_python.numerics.timeseries import Correction, parse_correction
from stamps_python.results import (
    ExportResult,
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

FORMATS = ("gpkg", "shp", "csv")
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
    p.add_argument("--format", default="gpkg", choices=FORMATS, help="layer file format")
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
    written: list[Path] = []
    for correction in corrections:
        with timed(f"export {correction.name}"):
            result = compute_results(run, correction, reference, args.n_boot, args.seed)
            path = write_layer(result, output_dir, args.format)
            log.info(
                "wrote %s: %d PS, %d dates, reference %s",
                path,
                result.codes.size,
                result.ts.date_ix.size,
                result.metadata["reference_area"],
            )
            written.append(path)
            if args.plot:
                from stamps_python.ps_plot import make_plots

                written.extend(make_plots(run, result, output_dir))
    for path in written:
        print(path)
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: exit 0, or 1 with a one-line error."""
    return run_cli(main, argv)


if __name__ == "__main__":
    raise SystemExit(cli())

"""The whole PS chain (prep, Steps 1-8, export) on the golden stack against StaMPS' ps_vdo/ps_vdso."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from conftest import GOLDEN, GOLDEN_HEADING, GOLDEN_MERGED, GOLDEN_REFERENCE
from scipy.spatial import cKDTree

from stamps_python import parms
from stamps_python.export_results import main as export_main
from stamps_python.prep_isce import prepare
from stamps_python.stamps_main import run_steps


def _golden_layer(name: str, tmp: Path) -> gpd.GeoDataFrame:
    out = tmp / f"{name}.gpkg"
    with gzip.open(GOLDEN / f"{name}.gpkg.gz", "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return gpd.read_file(out)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("chain")
    run = base / "run"
    prepare(GOLDEN_MERGED, run, reference_date=GOLDEN_REFERENCE, heading=GOLDEN_HEADING,
            inc_angle=False)
    run_steps(run, 1, 5)
    parms.set_parm(run, "unwrap_grid_size", 55)  # the one non-default StaMPS needed
    run_steps(run, 6, 8)
    out = base / "export"
    assert export_main(["--input-path", str(run), "--output-dir", str(out), "--correction",
                        "v-do", "--correction", "v-dso"]) == 0
    return {"v-do": out / "ps_v-do.gpkg", "v-dso": out / "ps_v-dso.gpkg", "tmp": base}


def _matched(ours: gpd.GeoDataFrame, theirs: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    a = np.column_stack([ours.geometry.x, ours.geometry.y])
    b = np.column_stack([theirs.geometry.x, theirs.geometry.y])
    dist, j = cKDTree(b).query(a)
    ok = dist < 1e-6
    return np.flatnonzero(ok), j[ok]


@pytest.mark.parametrize("correction,name", [("v-do", "ps_vdo"), ("v-dso", "ps_vdso")])
def test_velocities_and_time_series_match_stamps(exported, correction, name):
    ours = gpd.read_file(exported[correction])
    theirs = _golden_layer(name, exported["tmp"])
    assert ours.crs.to_epsg() == 4326
    i, j = _matched(ours, theirs)
    assert len(i) >= 0.95 * len(theirs)  # common points (StaMPS kept 6089)
    dv = ours.VEL.values[i] - theirs.VEL.values[j]
    assert np.sqrt(np.mean(dv**2)) <= 2.0  # mm/yr RMS (issue target); measured ~0.05
    assert np.corrcoef(ours.VEL.values[i], theirs.VEL.values[j])[0, 1] > 0.99
    dcols = [c for c in theirs.columns if c.startswith("D") and c[1:].isdigit()]
    assert [c for c in ours.columns if c.startswith("D") and c[1:].isdigit()] == dcols
    dd = ours[dcols].values[i] - theirs[dcols].values[j]
    assert np.sqrt(np.mean(dd**2)) < 1.0  # mm
    assert np.all(ours[f"D{GOLDEN_REFERENCE}"] == 0)


def test_export_fields_and_units(exported):
    ours = gpd.read_file(exported["v-do"])
    fields = [c for c in ours.columns if c != "geometry"]
    assert fields[:7] == ["CODE", "HEIGHT", "H_STDEV", "VEL", "V_STDEV", "COHERENCE", "EFF_AREA"]
    assert fields[7] == "TCOH"
    assert all(c.startswith("D") for c in fields[8:]) and len(fields) == 8 + 24
    assert np.all(ours.V_STDEV > 0) and np.all((ours.COHERENCE > 0) & (ours.COHERENCE <= 1))

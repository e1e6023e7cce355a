"""Shared fixtures: the golden StaMPS stack copied into tests/data, its prepared run, and the
whole golden chain (Steps 1-5, then 6-8 and the export) run once per session.

The golden files are part of the repository (tests/data/golden_small, a copy of
shared/golden/stamps_octave_small without truth/); a missing one is a test failure, never a skip.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "golden_small"
GOLDEN_MERGED = GOLDEN / "stack" / "merged"
GOLDEN_REFERENCE = "20210529"
GOLDEN_HEADING = -168.165222  # the heading StaMPS was given (golden metadata.json)


@pytest.fixture(scope="session")
def golden_candidates() -> pd.DataFrame:
    """StaMPS' per-candidate Step 1-4 values (ps1 order)."""
    with gzip.open(GOLDEN / "candidates_steps1-4.csv.gz", "rt") as f:
        return pd.read_csv(f)


@pytest.fixture(scope="session")
def golden_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """prep_isce (with Step-1 products) on the golden stack, with StaMPS' inputs."""
    from stamps_python.prep_isce import prepare

    run = tmp_path_factory.mktemp("golden") / "run"
    prepare(
        GOLDEN_MERGED,
        run,
        reference_date=GOLDEN_REFERENCE,
        bootstrap_metadata=True,
        heading=GOLDEN_HEADING,
        write_step1=True,
        inc_angle=False,
    )
    return run


@pytest.fixture(scope="session")
def golden_gpkg(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """StaMPS' ps_vdo / ps_vdso GeoPackages, decompressed: {"ps_vdo": path, "ps_vdso": path}."""
    out = tmp_path_factory.mktemp("golden_gpkg")
    paths = {}
    for name in ("ps_vdo", "ps_vdso"):
        paths[name] = out / f"{name}.gpkg"
        with gzip.open(GOLDEN / f"{name}.gpkg.gz", "rb") as src, open(paths[name], "wb") as dst:
            shutil.copyfileobj(src, dst)
    return paths


@pytest.fixture(scope="session")
def golden_steps1to5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Golden stack, 1 patch, prep then Steps 1-5 with StaMPS' default parameters.

    Shared by the session: copy it before changing anything in it.
    """
    from stamps_python.pipeline import run_steps
    from stamps_python.prep_isce import prepare

    run = tmp_path_factory.mktemp("golden_steps1to5") / "run"
    prepare(
        GOLDEN_MERGED, run, reference_date=GOLDEN_REFERENCE, heading=GOLDEN_HEADING, inc_angle=False
    )
    run_steps(run, 1, 5)
    return run


@pytest.fixture(scope="session")
def golden_chain(
    golden_steps1to5: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """:func:`golden_steps1to5`, then unwrap_grid_size 55 m (the one non-default StaMPS needed),
    Steps 6-8 and the v-do / v-dso export, as the golden StaMPS run.

    {"run": run directory, "v-do": GeoPackage, "v-dso": GeoPackage, "tmp": scratch folder};
    shared by the session: copy before changing anything.
    """
    from stamps_python import parms
    from stamps_python.export_results import main as export_main
    from stamps_python.pipeline import run_steps

    base = tmp_path_factory.mktemp("golden_chain")
    run = base / "run"
    shutil.copytree(golden_steps1to5, run)
    parms.set_parm(run, "unwrap_grid_size", 55)
    run_steps(run, 6, 8)
    out = base / "export"
    assert (
        export_main(
            [
                "--input-path",
                str(run),
                "--output-dir",
                str(out),
                "--correction",
                "v-do",
                "--correction",
                "v-dso",
            ]
        )
        == 0
    )
    return {"run": run, "v-do": out / "ps_v-do.gpkg", "v-dso": out / "ps_v-dso.gpkg", "tmp": base}


@pytest.fixture()
def stack_copy(tmp_path: Path) -> Path:
    """A writable copy of the golden ISCE2 stack (returns its merged/ folder)."""
    dst = tmp_path / "stack"
    shutil.copytree(GOLDEN / "stack", dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst / "merged"


def direct_dispersion(merged: Path, dates: list[str], calconst: np.ndarray) -> np.ndarray:
    """D_A of every pixel computed directly with numpy (whole stack in memory; small stacks)."""
    import rasterio

    amps = []
    for d, c in zip(dates, calconst):
        with rasterio.open(merged / "SLC" / d / f"{d}.slc.full.vrt") as ds:
            amps.append(np.abs(ds.read(1)).astype(np.float64) / c)
    amps = np.array(amps)
    with np.errstate(invalid="ignore", divide="ignore"):
        return amps.std(axis=0) / amps.mean(axis=0)

"""Shared fixtures: the golden StaMPS stack copied into tests/data, and its prepared run."""

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
    prepare(GOLDEN_MERGED, run, reference_date=GOLDEN_REFERENCE, bootstrap_metadata=True,
            heading=GOLDEN_HEADING, write_step1=True, inc_angle=False)
    return run


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

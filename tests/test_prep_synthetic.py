"""prep_isce on the generator's easy stack: true PS become candidates; Step-1 products are right."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from stamps_python.io.products import load_product
from stamps_python.prep.prepare import prepare
from stamps_python.synthetic import generate_stack


@pytest.fixture(scope="module")
def easy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("easy")
    generate_stack(base / "stack", profile="easy", rows=150, cols=300, seed=21, progress=False)
    prepare(
        base / "stack" / "merged",
        base / "run",
        bootstrap_metadata=True,
        range_patches=2,
        azimuth_patches=2,
        range_overlap=20,
        azimuth_overlap=20,
        write_step1=True,
    )
    return base / "stack", base / "run"


def test_at_least_95_percent_of_true_ps_are_candidates(easy_run):
    stack, run = easy_run
    with h5py.File(stack / "truth.h5", "r") as t:
        ps_mask = t["ps_mask"][()].astype(bool)
    cand = np.zeros_like(ps_mask)
    for pdir in run.glob("PATCH_*"):
        ij = load_product(pdir / "ps1.h5", ["ij"])["ij"]
        cand[ij[:, 1], ij[:, 2]] = True
    recall = (cand & ps_mask).sum() / ps_mask.sum()
    assert ps_mask.sum() > 500
    assert recall >= 0.95


def test_step1_dates_baselines_and_calibrated_phase(easy_run):
    stack, run = easy_run
    with h5py.File(stack / "truth.h5", "r") as t:
        dates = [d.decode() for d in t["dates"][()]]
        ref = t["reference_date"][()].decode()
        bperp = t["bperp_m"][()]
        ps_rows, ps_cols = t["ps/rows"][()], t["ps/cols"][()]
    pdir = run / "PATCH_1"
    ps1 = load_product(pdir / "ps1.h5")
    ph = load_product(pdir / "ph1.h5")["ph"]
    assert ps1["dates"] == dates and ps1["dates"][ps1["master_ix"]] == ref
    np.testing.assert_allclose(ps1["bperp"], bperp, atol=1e-9)
    assert ps1["bperp"][ps1["master_ix"]] == 0
    np.testing.assert_array_equal(ph[:, ps1["master_ix"]], 1)
    # calibrated PS interferograms have amplitude close to |ref| * |sec| / c_sec ~ O(calconst)
    sec_amp = np.abs(np.delete(ph, ps1["master_ix"], axis=1))
    assert np.all(np.isfinite(sec_amp)) and np.median(sec_amp) > 0
    # order: ascending local y, ids 1..n
    np.testing.assert_array_equal(ps1["ij"][:, 0], np.arange(1, ps1["n_ps"] + 1))
    assert np.all(np.diff(ps1["xy"][:, 2]) >= 0)
    assert set(zip(ps_rows.tolist(), ps_cols.tolist())) & set(map(tuple, ps1["ij"][:, 1:].tolist()))


def test_full_resolution_baseline_grids_are_sampled_per_candidate(easy_run, tmp_path):
    """Baseline grids the size of the image go into pscands.h5 per candidate (bperp_mat), taken
    at each candidate's own pixel, and from there into bp1."""
    import shutil

    from stamps_python.io import isce
    from stamps_python.io.isce_sidecars import write_sidecars

    stack_dir = tmp_path / "stack"
    shutil.copytree(easy_run[0], stack_dir)
    stack = isce.open_stack(stack_dir / "merged")
    rows, cols = np.mgrid[0 : stack.length, 0 : stack.width]
    truth = {}
    for k, date in enumerate(stack.dates):
        path = isce.baseline_grid_path(stack, date)
        if path is None:
            continue
        raw = path.with_suffix("") if path.suffix == ".vrt" else path
        grid = (10.0 * k + 0.01 * cols + 0.001 * rows).astype("<f4")
        grid.tofile(raw)
        write_sidecars(
            raw, width=stack.width, length=stack.length, dtype="f4", scheme="BIP", envi=False
        )
        truth[date] = grid
    run = tmp_path / "run"
    summary = prepare(stack_dir / "merged", run, bootstrap_metadata=True, write_step1=True)
    meta = summary["metadata"]
    secondaries = [d for d in meta["dates"] if d != meta["reference_date"]]
    cands = load_product(run / "PATCH_1" / "pscands.h5")
    assert "bperp_grids" not in cands
    ij = np.asarray(cands["ij"])
    expected = np.stack([truth[d][ij[:, 0], ij[:, 1]] for d in secondaries], axis=1)
    np.testing.assert_array_equal(cands["bperp_mat"], expected)
    ps1 = load_product(run / "PATCH_1" / "ps1.h5")
    bp1 = load_product(run / "PATCH_1" / "bp1.h5")["bperp_mat"]
    np.testing.assert_array_equal(bp1, expected[ps1["sort_ix"]][:, ps1["day_ix"]])

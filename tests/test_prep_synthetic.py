"""prep_isce on the generator's easy stack: true PS become candidates; Step-1 products are right."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from stamps_python.io.products import load_product
from stamps_python.prep_isce import prepare
from stamps_python.synthetic import generate_stack


@pytest.fixture(scope="module")
def easy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("easy")
    generate_stack(base / "stack", profile="easy", rows=150, cols=300, seed=21, progress=False)
    prepare(base / "stack" / "merged", base / "run", bootstrap_metadata=True, range_patches=2,
            azimuth_patches=2, range_overlap=20, azimuth_overlap=20, write_step1=True)
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

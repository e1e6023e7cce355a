"""prep_isce and Step 1 against the original StaMPS run on the golden stack, number by number."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import GOLDEN, GOLDEN_MERGED, GOLDEN_REFERENCE, direct_dispersion

from stamps_python.io.products import load_product


def test_calibration_constants_match_stamps(golden_run):
    meta = json.loads((golden_run / "metadata.json").read_text())
    ref = pd.read_csv(GOLDEN / "calamp.csv", dtype={"DATE": str})
    ours = np.array([meta["calconst"][d] for d in ref.DATE])
    np.testing.assert_allclose(ours, ref.CALCONST.values, rtol=1e-3)
    # calamp.csv holds 6 significant digits; ours agree to that precision
    assert np.max(np.abs(ours / ref.CALCONST.values - 1)) < 1e-5


def test_candidate_set_and_da_match_stamps(golden_run, golden_candidates):
    ps1 = load_product(golden_run / "PATCH_1" / "ps1.h5")
    da = load_product(golden_run / "PATCH_1" / "da1.h5")["D_A"]
    ours = set(zip(ps1["ij"][:, 1].tolist(), ps1["ij"][:, 2].tolist()))
    theirs = set(zip(golden_candidates.AZ.tolist(), golden_candidates.RG.tolist()))
    assert len(ours & theirs) / len(ours | theirs) >= 0.99
    assert ours == theirs  # in fact identical (14 828 candidates)
    lookup = dict(zip(zip(ps1["ij"][:, 1].tolist(), ps1["ij"][:, 2].tolist()), da))
    diff = [
        abs(lookup[k] - v)
        for k, v in zip(zip(golden_candidates.AZ, golden_candidates.RG), golden_candidates.D_A)
    ]
    assert max(diff) < 1e-3


def test_step1_order_lonlat_and_rotation_match_stamps(golden_run, golden_candidates):
    ps1 = load_product(golden_run / "PATCH_1" / "ps1.h5")
    # StaMPS' candidate order (rotated y, then x) reproduced exactly
    np.testing.assert_array_equal(ps1["ij"][:, 1], golden_candidates.AZ.values)
    np.testing.assert_array_equal(ps1["ij"][:, 2], golden_candidates.RG.values)
    np.testing.assert_array_equal(ps1["ij"][:, 0], np.arange(1, len(golden_candidates) + 1))
    np.testing.assert_allclose(ps1["lonlat"][:, 0], golden_candidates.LON.values, atol=2e-6)
    np.testing.assert_allclose(ps1["lonlat"][:, 1], golden_candidates.LAT.values, atol=2e-6)
    meta = json.loads((GOLDEN / "metadata.json").read_text())
    assert abs(ps1["xy_rotation_deg"] - meta["xy_rotation_deg"]) < 1e-3
    # xy is in metres, rounded to mm, ascending in y
    assert np.all(np.diff(ps1["xy"][:, 2]) >= 0)
    np.testing.assert_allclose(
        ps1["xy"][:, 1:] * 1000, np.round(ps1["xy"][:, 1:] * 1000), atol=1e-2
    )


def test_step1_dates_baselines_and_phases(golden_run):
    patch = golden_run / "PATCH_1"
    ps1 = load_product(patch / "ps1.h5")
    ph = load_product(patch / "ph1.h5")["ph"]
    bp = load_product(patch / "bp1.h5")["bperp_mat"]
    meta = json.loads((GOLDEN / "metadata.json").read_text())
    assert ps1["dates"] == meta["dates"]
    assert ps1["n_ifg"] == ps1["n_image"] == 24 and ps1["n_ps"] == 14828
    mi = ps1["master_ix"]
    assert ps1["dates"][mi] == GOLDEN_REFERENCE and ps1["bperp"][mi] == 0.0
    assert np.all(np.diff(ps1["day"]) > 0)
    assert ps1["day"][1] - ps1["day"][0] == 12  # datenum differences are days
    ref_bperp = pd.read_csv(GOLDEN / "bperp.csv", dtype={"DATE": str})
    np.testing.assert_allclose(ps1["bperp"], ref_bperp.BPERP_M.values, atol=1e-5)
    np.testing.assert_allclose(
        bp, np.delete(ps1["bperp"], mi)[None, :].repeat(len(bp), 0), atol=1e-4
    )
    # master column is exactly 1; the others are ref x conj(sec) / calconst(sec)
    np.testing.assert_array_equal(ph[:, mi], 1)
    import rasterio

    k = 1234
    az, rg = ps1["ij"][k, 1:]
    vals = {}
    for d in ps1["dates"]:
        with rasterio.open(GOLDEN_MERGED / "SLC" / d / f"{d}.slc.full.vrt") as ds:
            vals[d] = ds.read(1, window=((az, az + 1), (rg, rg + 1)))[0, 0]
    sec = [d for d in ps1["dates"] if d != GOLDEN_REFERENCE]
    expected = np.array([vals[GOLDEN_REFERENCE] * np.conj(vals[d]) for d in sec])
    expected /= ps1["calconst"]
    np.testing.assert_allclose(np.delete(ph[k], mi), expected, rtol=1e-5)
    la = load_product(patch / "la1.h5")["la"]
    assert np.all((la > np.radians(30)) & (la < np.radians(40)))  # radians
    assert not (patch / "inc1.h5").exists()  # --no-inc-angle, as StaMPS was run


def test_dispersion_equals_direct_numpy(golden_run):
    meta = json.loads((golden_run / "metadata.json").read_text())
    dates = meta["dates"]
    direct = direct_dispersion(GOLDEN_MERGED, dates, np.array([meta["calconst"][d] for d in dates]))
    ps1 = load_product(golden_run / "PATCH_1" / "ps1.h5")
    da = load_product(golden_run / "PATCH_1" / "da1.h5")["D_A"]
    np.testing.assert_allclose(da, direct[ps1["ij"][:, 1], ps1["ij"][:, 2]], rtol=1e-5)
    # every pixel below the threshold (and never zero) is a candidate, and only those
    n_expected = int(np.sum(direct < 0.4))
    assert abs(n_expected - ps1["n_ps"]) <= 2  # float32 ties at the threshold only


def _pass_candidates(stack, spill: Path) -> tuple[np.ndarray, np.ndarray, int, int]:
    """candidate_blocks with an on_sure collector: all candidates (ij, D_A) in row-major order,
    the number of SURE candidates and how often the pass was discarded."""
    from stamps_python.prep import candidates

    sure: list[tuple[int, np.ndarray, np.ndarray]] = []
    discards = []

    def on_discard() -> None:
        discards.append(1)
        sure.clear()

    _, cands = candidates.candidate_blocks(
        stack,
        0.4,
        spill,
        block_mb=8,
        on_discard=on_discard,
        on_sure=lambda b, rows, cols, values, geo: sure.append((b, rows, cols)),
    )
    maybe = list(cands)
    rows = np.concatenate([s[1] for s in sure] + [m[1] for m in maybe])
    cols = np.concatenate([s[2] for s in sure] + [m[2] for m in maybe])
    d_a = np.concatenate([cands.sure_d_a[s[0]] for s in sure] + [m[3] for m in maybe])
    order = np.lexsort((cols, rows))
    assert not list(spill.glob("*.npy"))  # spill cleaned up
    return (
        np.column_stack([rows, cols])[order],
        d_a[order],
        sum(len(s[1]) for s in sure),
        len(discards),
    )


def test_sure_pixels_during_the_pass_and_the_rest_after_it(golden_run, tmp_path):
    """Candidates handed over during the pass (SURE) plus those confirmed after it are exactly
    the candidate set, with the exact D_A."""
    from stamps_python.io import isce

    expected = load_product(golden_run / "PATCH_1" / "pscands.h5", ["ij", "D_A"])
    ij, d_a, n_sure, n_discard = _pass_candidates(
        isce.open_stack(GOLDEN_MERGED), tmp_path / "spill"
    )
    np.testing.assert_array_equal(ij, expected["ij"][np.lexsort(expected["ij"].T[::-1])])
    np.testing.assert_allclose(d_a, expected["D_A"][np.lexsort(expected["ij"].T[::-1])], rtol=1e-6)
    assert n_discard == 0
    # the golden stack's 240 lines make a coarse sample (margin 2 %): a quarter are sure here
    assert 0.1 * len(ij) < n_sure < len(ij)


def test_spilled_and_second_pass_paths_give_the_same_candidates(golden_run, monkeypatch, tmp_path):
    """Superset spilled to disk, and a calamp sample deemed too coarse (forcing a second pass)."""
    from stamps_python.io import isce
    from stamps_python.prep import calamp, candidates

    expected = load_product(golden_run / "PATCH_1" / "pscands.h5", ["ij", "D_A"])
    monkeypatch.setattr(candidates, "SPILL_AFTER_BYTES", 0)
    monkeypatch.setattr(calamp, "MIN_MARGIN", 1e-9)
    monkeypatch.setattr(calamp, "MAX_MARGIN", 1e-9)
    ij, d_a, n_sure, n_discard = _pass_candidates(
        isce.open_stack(GOLDEN_MERGED), tmp_path / "spill"
    )
    order = np.lexsort(expected["ij"].T[::-1])
    np.testing.assert_array_equal(ij, expected["ij"][order])
    np.testing.assert_allclose(d_a, expected["D_A"][order], rtol=1e-6)
    assert n_discard == 1 and n_sure > 0  # the first pass was thrown away, the second kept


def test_buffered_io_gives_identical_products(golden_run, tmp_path):
    """--buffered-io (page cache instead of O_DIRECT) changes nothing in the run's products."""
    from conftest import GOLDEN_HEADING

    from stamps_python.prep_isce import main

    run = tmp_path / "run"
    assert (
        main(
            [
                str(GOLDEN_MERGED),
                "--output",
                str(run),
                "--reference-date",
                GOLDEN_REFERENCE,
                "--bootstrap-metadata",
                "--heading",
                str(GOLDEN_HEADING),
                "--write-step1",
                "--no-inc-angle",
                "--buffered-io",
            ]
        )
        == 0
    )
    for name in ("pscands.h5", "ps1.h5", "ph1.h5", "bp1.h5", "da1.h5"):
        new = load_product(run / "PATCH_1" / name)
        old = load_product(golden_run / "PATCH_1" / name)
        assert new.keys() == old.keys()
        for key, value in old.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(new[key], value, err_msg=f"{name}:{key}")
            else:
                assert new[key] == value, f"{name}:{key}"

"""Step 6 sb_invert_uw: SB network inverted to single master on hand-made products."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from factories import ps_product, write_workspace

from stamps_python.io.products import load_product, save_product
from stamps_python.parms import default_parms
from stamps_python.steps import sb_invert_uw
from stamps_python.utils import StampsError, datenum

DATES = ["20210105", "20210117", "20210129", "20210210", "20210222", "20210306"]
MASTER = 2
# 9 interferograms: a redundant network over the 6 images
IFGS = np.array([[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [2, 4], [3, 4], [3, 5], [4, 5]])
N_PS = 50


def truth_phase(seed: int = 1) -> np.ndarray:
    """(N_PS, 6) single-master phase, rad, 0 at the master."""
    rng = np.random.default_rng(seed)
    ph = rng.normal(0.0, 3.0, (N_PS, len(DATES)))
    ph[:, MASTER] = 0.0
    return ph


def sb_phase(ph: np.ndarray, ifgs: np.ndarray = IFGS) -> np.ndarray:
    return ph[:, ifgs[:, 1]] - ph[:, ifgs[:, 0]]


def write_run(run: Path, ph_sb: np.ndarray, ifgs: np.ndarray = IFGS, master: int = MASTER) -> Path:
    rng = np.random.default_rng(7)
    lon = -120.5 + rng.uniform(0, 0.02, N_PS)
    lat = 37.0 + rng.uniform(0, 0.02, N_PS)
    xy = rng.uniform(0, 2000, (N_PS, 2))
    ps = ps_product(
        xy,
        np.array([datenum(d) for d in DATES], dtype=float),
        master,
        None,
        lonlat=np.column_stack([lon, lat]),
        ll0=np.array([-120.49, 37.01]),
        ifgday_ix=ifgs,
    )
    assert ps["dates"] == DATES
    write_workspace(run, ps2=ps, phuw_sb2={"ph_uw": ph_sb.astype(np.float32)})
    return run


def parms(**kw):
    p = default_parms(small_baseline=True)
    p.update(kw)
    return p


def test_recovers_truth_after_reference_offset(tmp_path):
    truth = truth_phase()
    run = write_run(tmp_path, sb_phase(truth))
    path = sb_invert_uw.run(run, parms())
    assert path == tmp_path / "phuw2.h5"
    out = load_product(path)
    # default reference area is every PS: the SB phase is referenced to the mean over all PS
    expected = truth - truth.mean(axis=0)
    expected[:, MASTER] = 0.0
    assert out["ph_uw"].dtype == np.float32 and out["ph_uw"].shape == (N_PS, 6)
    np.testing.assert_allclose(out["ph_uw"], expected, atol=1e-5)
    assert out["unwrap_ifg_index_sm"].tolist() == [0, 1, 2, 3, 4, 5]
    res = load_product(tmp_path / "phuw_sb_res2.h5")
    np.testing.assert_allclose(res["ph_res"], sb_phase(expected), atol=1e-5)
    np.testing.assert_array_equal(res["sb_cov"], np.eye(9))
    # identity covariance: sm_cov = inv(G' G) on the solved images, 0 at the master
    G = np.zeros((9, 6))
    G[np.arange(9), IFGS[:, 0]] = -1
    G[np.arange(9), IFGS[:, 1]] = 1
    keep = [0, 1, 3, 4, 5]
    np.testing.assert_allclose(
        res["sm_cov"][np.ix_(keep, keep)], np.linalg.inv(G[:, keep].T @ G[:, keep]), atol=1e-12
    )
    assert not res["sm_cov"][MASTER].any() and not res["sm_cov"][:, MASTER].any()


def test_reference_box_and_no_reference(tmp_path):
    truth = truth_phase(3)
    run = write_run(tmp_path, sb_phase(truth))
    lonlat = load_product(run / "ps2.h5", ["lonlat"])["lonlat"]
    box = {"ref_lon": [-120.5, -120.49], "ref_lat": [37.0, 37.01]}
    ref = (
        (lonlat[:, 0] > -120.5)
        & (lonlat[:, 0] < -120.49)
        & (lonlat[:, 1] > 37.0)
        & (lonlat[:, 1] < 37.01)
    )
    assert 3 < ref.sum() < N_PS - 3
    sb_invert_uw.run(run, parms(**box))
    got = load_product(run / "phuw2.h5")["ph_uw"]
    np.testing.assert_allclose(got, truth - truth[ref].mean(axis=0), atol=1e-5)
    assert np.abs(got[ref].mean(axis=0)).max() < 1e-5
    # ref_radius = -inf: no reference, the phase is the truth itself
    sb_invert_uw.run(run, parms(ref_radius=float("-inf")))
    np.testing.assert_allclose(load_product(run / "phuw2.h5")["ph_uw"], truth, atol=1e-5)


def test_dropped_interferograms(tmp_path):
    truth = truth_phase(4)
    ph_sb = sb_phase(truth)
    ph_sb[:, 2] = 0.0  # ifg 3 (1-based) dropped: its column is empty
    ph_sb[:, 6] = 55.0  # ifg 7 dropped: garbage that must not leak in
    run = write_run(tmp_path, ph_sb)
    sb_invert_uw.run(run, parms(drop_ifg_index=[3, 7], ref_radius=float("-inf")))
    out = load_product(run / "phuw2.h5")
    np.testing.assert_allclose(out["ph_uw"], truth, atol=1e-5)
    # the model of every ifg, dropped ones included
    res = load_product(run / "phuw_sb_res2.h5")["ph_res"]
    np.testing.assert_allclose(res, sb_phase(truth), atol=1e-5)
    # dropping both ifgs of image 5 leaves it unsolved: phase 0 and not in unwrap_ifg_index_sm
    sb_invert_uw.run(run, parms(drop_ifg_index=[3, 7, 8, 9], ref_radius=float("-inf")))
    out = load_product(run / "phuw2.h5")
    assert out["unwrap_ifg_index_sm"].tolist() == [0, 1, 2, 3, 4]
    assert not out["ph_uw"][:, 5].any()
    np.testing.assert_allclose(out["ph_uw"][:, :5], truth[:, :5], atol=1e-5)


def test_isolated_subset_is_rank_deficient(tmp_path):
    ifgs = np.array([[0, 1], [1, 2], [3, 4], [4, 5], [3, 5]])
    run = write_run(tmp_path, sb_phase(truth_phase(), ifgs), ifgs)
    with pytest.raises(
        StampsError,
        match=r"^SB network is rank deficient: dates 20210210, "
        r"20210222, 20210306 form a subset not connected to the reference "
        r"20210129; drop fewer interferograms \(drop_ifg_index\) or add pairs$",
    ):
        sb_invert_uw.run(run, parms())
    assert not (tmp_path / "phuw2.h5").exists() and not (tmp_path / "phuw_sb_res2.h5").exists()
    # the same by dropping: without ifgs 4 and 5 (1,3), (2,3) images 3-5 are cut off
    run2 = write_run(tmp_path / "b", sb_phase(truth_phase()))
    with pytest.raises(StampsError, match=r"dates 20210210, 20210222, 20210306 form a subset"):
        sb_invert_uw.run(run2, parms(drop_ifg_index=[4, 5, 6]))
    # two subsets are each named
    ifgs3 = np.array([[0, 2], [1, 3], [4, 5]])
    run3 = write_run(tmp_path / "c", sb_phase(truth_phase(), ifgs3), ifgs3)
    with pytest.raises(
        StampsError,
        match=r"dates 20210117, 20210210 \| 20210222, 20210306 form 2 "
        r"subsets not connected to the reference 20210129",
    ):
        sb_invert_uw.run(run3, parms())


def test_network_without_master(tmp_path):
    ifgs = np.array([[0, 1], [1, 3], [3, 4], [4, 5]])
    run = write_run(tmp_path, sb_phase(truth_phase(), ifgs), ifgs)
    with pytest.raises(
        StampsError,
        match=r"^none of the unwrapped interferograms include the "
        r"reference image 20210129",
    ):
        sb_invert_uw.run(run, parms())
    # the master only in dropped interferograms is the same error
    run2 = write_run(tmp_path / "b", sb_phase(truth_phase()))
    with pytest.raises(StampsError, match=r"include the reference image 20210129"):
        sb_invert_uw.run(run2, parms(drop_ifg_index=[2, 3, 5, 6]))
    assert not (tmp_path / "b" / "phuw2.h5").exists()


def test_covariance_weighting_from_rc_and_pm(tmp_path):
    rng = np.random.default_rng(11)
    truth = truth_phase(5)
    # interferogram noise with correlation through shared images plus its own part, rad
    image_noise = rng.normal(0.0, 0.25, (N_PS, 6))
    noise = sb_phase(image_noise) + rng.normal(0.0, 0.1, (N_PS, 9)) * np.linspace(0.5, 2, 9)
    signal = sb_phase(truth)
    ph_sb = signal + noise  # inconsistent in the network: the weighting changes the answer
    run = write_run(tmp_path, ph_sb)
    patch = rng.uniform(-np.pi, np.pi, (N_PS, 9))
    save_product(
        run / "pm2.h5",
        {"ph_patch": (2.0 * np.exp(1j * patch)).astype(np.complex64), "K_ps": np.zeros(N_PS)},
    )
    save_product(run / "rc2.h5", {"ph_rc": np.exp(1j * (patch + noise)).astype(np.complex64)})
    sb_invert_uw.run(run, parms(ref_radius=float("-inf"), drop_ifg_index=[9]))
    res = load_product(run / "phuw_sb_res2.h5")
    np.testing.assert_allclose(res["sb_cov"], np.cov(noise, rowvar=False), rtol=1e-4, atol=1e-6)
    # generalised least squares with the kept part of sb_cov (well conditioned: no regularising)
    keep = np.arange(8)
    C = np.cov(noise, rowvar=False)[np.ix_(keep, keep)]
    assert 1.0 / np.linalg.cond(C, 1) > 0.001
    G = np.zeros((8, 6))
    G[np.arange(8), IFGS[keep, 0]] = -1
    G[np.arange(8), IFGS[keep, 1]] = 1
    G = G[:, [0, 1, 3, 4, 5]]
    normal = G.T @ np.linalg.solve(C, G)
    d = ph_sb[:, keep].astype(np.float32).astype(np.float64)
    expected = np.linalg.solve(normal, G.T @ np.linalg.solve(C, d.T)).T
    got = load_product(run / "phuw2.h5")["ph_uw"]
    np.testing.assert_allclose(got[:, [0, 1, 3, 4, 5]], expected, atol=2e-5)
    assert not got[:, MASTER].any()
    unweighted = np.linalg.lstsq(G, d.T, rcond=None)[0].T
    assert np.abs(unweighted - expected).max() > 0.01  # the weighting matters here
    np.testing.assert_allclose(
        res["sm_cov"][np.ix_([0, 1, 3, 4, 5], [0, 1, 3, 4, 5])], np.linalg.inv(normal), rtol=1e-3
    )


def test_regularise_singular_covariance():
    C, rounds = sb_invert_uw.regularise(np.ones((3, 3)))
    # rcond(J + aI) = a / (a + 4): a = 0.01 gives 0.0025 >= 0.001 after one round
    assert rounds == 1
    np.testing.assert_allclose(C, np.ones((3, 3)) + 0.01 * np.eye(3))
    assert sb_invert_uw.rcond1(C) == pytest.approx(0.01 / 4.01)
    _, rounds2 = sb_invert_uw.regularise(np.diag([1.0, 2e-4]))
    # rcond = (2e-4 + 0.01 k) / (1 + 0.01 k) >= 0.001 from k = 1
    assert rounds2 == 1 and sb_invert_uw.rcond1(np.diag([1.0, 2e-4])) == pytest.approx(2e-4)
    C3, rounds3 = sb_invert_uw.regularise(np.eye(4))
    assert rounds3 == 0 and np.array_equal(C3, np.eye(4))


def test_missing_inputs(tmp_path):
    with pytest.raises(StampsError, match=r"ps2.h5: not found; run Step 5 first"):
        sb_invert_uw.run(tmp_path, parms())
    run = write_run(tmp_path, sb_phase(truth_phase()))
    (run / "phuw_sb2.h5").unlink()
    with pytest.raises(StampsError, match=r"phuw_sb2.h5: not found; run Step 6 \(ps_unwrap\)"):
        sb_invert_uw.run(run, parms())
    save_product(run / "phuw_sb2.h5", {"ph_uw": np.zeros((N_PS - 1, 9), np.float32)})
    with pytest.raises(StampsError, match=r"has 49 PS but ps2.h5 has 50"):
        sb_invert_uw.run(run, parms())
    save_product(run / "phuw_sb2.h5", {"ph_uw": np.zeros((N_PS, 9), np.float32)})
    with pytest.raises(StampsError, match=r"drop_ifg_index"):
        sb_invert_uw.run(run, parms(drop_ifg_index=list(range(1, 10))))


def test_covariance_sources(tmp_path):
    run = write_run(tmp_path, sb_phase(truth_phase()))
    save_product(run / "pm2.h5", {"K_ps": np.zeros(N_PS)})  # no ph_patch: identity
    sb_invert_uw.run(run, parms())
    np.testing.assert_array_equal(load_product(run / "phuw_sb_res2.h5")["sb_cov"], np.eye(9))
    save_product(run / "pm2.h5", {"ph_patch": np.ones((N_PS, 9), np.complex64)})
    with pytest.raises(StampsError, match=r"rc2.h5: not found; run Step 5 first"):
        sb_invert_uw.run(run, parms())
    save_product(run / "rc2.h5", {"ph_rc": np.ones((N_PS, 8), np.complex64)})
    with pytest.raises(StampsError, match=r"rc2.h5: shape \(50, 8\) differs from \(n_ps, n_ifg\)"):
        sb_invert_uw.run(run, parms())

"""Step 2 (ps_est_gamma_quick) on a small synthetic Step-1 patch, and its helper numerics."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
from factories import days, ps_product, scene_points, write_workspace

from stamps_python.io.products import load_product, save_product
from stamps_python.numerics.matlab import matlab_interp
from stamps_python.numerics.random_phase import (
    COH_BINS,
    hist_centres,
    random_phase_coherence,
    random_phase_distribution,
)
from stamps_python.numerics.topofit import ps_topofit
from stamps_python.parms import with_defaults
from stamps_python.steps import ps_est_gamma_quick as step
from stamps_python.utils import StampsError

LAMBDA = 0.05546576

GIVEN = {
    "max_topo_err": 20,
    "quick_est_gamma_flag": "y",
    "filter_grid_size": 50,
    "filter_weighting": "P-square",
    "gamma_change_convergence": 0.005,
    "gamma_max_iterations": 3,
    "clap_win": 32,
    "clap_low_pass_wavelength": 800,
    "clap_alpha": 1,
    "clap_beta": 0.3,
    "small_baseline_flag": "n",
    "lambda": LAMBDA,
    "heading": -168.165222,
}
PARMS = with_defaults(GIVEN)  # what load_parms gives a run with these values


def _make_patch(
    patch: Path,
    n_ps: int = 3000,
    n_ifg: int = 20,
    seed: int = 7,
    extent_m: tuple[float, float] = (2000, 1600),
) -> dict[str, np.ndarray]:
    """Step-1 products of a patch (default 2 km x 1.6 km): 60 % stable PS (smooth atmosphere +
    K bperp + 0.3 rad noise), 40 % random-phase pixels. Returns the truth."""
    rng = np.random.default_rng(seed)
    master_ix = 8
    x, y = np.round(scene_points(rng, n_ps, extent_m), 3).T
    is_ps = rng.random(n_ps) < 0.6
    bperp = np.round(rng.uniform(-120, 120, n_ifg), 2)
    bperp[master_ix] = 0
    bperp_mat = (bperp[None, :] + rng.normal(0, 2, (n_ps, n_ifg))).astype(np.float32)
    bperp_mat[:, master_ix] = 0
    k_true = np.where(is_ps, rng.uniform(-0.008, 0.008, n_ps), 0.0)
    # smooth atmosphere: a plane plus one long-wavelength wave per interferogram
    a, b, c = rng.normal(0, 1.5e-3, (3, n_ifg))
    atmo = a * x[:, None] + b * y[:, None] + np.sin(2 * np.pi * x[:, None] / 3000 + c)
    phase = atmo + k_true[:, None] * bperp_mat + rng.normal(0, 0.3, (n_ps, n_ifg))
    phase[~is_ps] = rng.uniform(-np.pi, np.pi, ((~is_ps).sum(), n_ifg))
    amp = rng.uniform(0.5, 2.0, (n_ps, n_ifg))
    ph = (amp * np.exp(1j * phase)).astype(np.complex64)
    ph[:, master_ix] = 1
    keep = np.arange(n_ifg) != master_ix
    d_a = np.where(is_ps, rng.uniform(0.05, 0.25, n_ps), rng.uniform(0.25, 0.4, n_ps))
    ij = np.column_stack([np.arange(1, n_ps + 1), (y / 4).astype(int), (x / 15).astype(int)])
    write_workspace(
        patch,
        ps1=ps_product(
            np.column_stack([x, y]),
            days(738000.0, n_ifg, 12),
            master_ix,
            bperp.astype(np.float64),
            ij=ij,
        ),
        ph1={"ph": ph},
        bp1={"bperp_mat": bperp_mat[:, keep]},
        la1={"la": np.full(n_ps, math.radians(34.6))},
        da1={"D_A": d_a},
        hgt1={"hgt": np.zeros(n_ps)},
    )
    return {"is_ps": is_ps, "k_true": k_true, "bperp": bperp[keep]}


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
    patch = tmp_path_factory.mktemp("run1") / "PATCH_1"
    truth = _make_patch(patch)
    pm_path = step.run(patch, PARMS)
    return patch, truth, load_product(pm_path)


def test_step2_separates_ps_from_random_and_recovers_k(patch_run):
    _, truth, pm = patch_run
    is_ps = truth["is_ps"]
    coh = pm["coh_ps"]
    assert np.median(coh[is_ps]) > 0.85
    assert np.median(coh[~is_ps]) < 0.45
    assert np.mean(coh[is_ps] > 0.6) > 0.97
    assert np.mean(coh[~is_ps] > 0.6) < 0.05
    k_err = pm["K_ps"][is_ps] - truth["k_true"][is_ps]
    # 0.3 rad noise over 19 ifgs with a ~70 m baseline spread -> K error ~ 1e-3 rad/m
    assert np.median(np.abs(k_err)) < 1e-3
    assert np.percentile(np.abs(k_err), 95) < 3e-3


def test_step2_products_shapes_and_consistency(patch_run):
    patch, truth, pm = patch_run
    n_ps, n_ifg = 3000, 19
    assert pm["ph_patch"].shape == (n_ps, n_ifg) and pm["ph_patch"].dtype == np.complex64
    assert pm["ph_res"].shape == (n_ps, n_ifg) and pm["ph_res"].dtype == np.float32
    np.testing.assert_allclose(np.abs(pm["ph_patch"]), 1, atol=1e-6)
    assert pm["grid_ij"].min() == 0
    n_i, n_j = pm["grid_ij"].max(axis=0) + 1
    # 1600 m x 2000 m at 50 m: 32 x 40 cells, the last row and column merged into the ones before
    assert (n_i, n_j) == (31, 39)
    assert pm["ph_grid"].shape == (n_i, n_j, n_ifg)
    assert pm["low_pass"].shape == (32, 32)
    assert pm["Nr"].shape == (100,) and pm["coh_bins"].shape == (100,)
    assert pm["Nr"][pm["Nr_max_nz_ix"]] > 0 and not pm["Nr"][pm["Nr_max_nz_ix"] + 1 :].any()
    assert 1 <= pm["i_loop"] <= 3 and pm["step_number"] == 1
    np.testing.assert_array_equal(pm["coh_ps_save"], pm["coh_ps"])
    max_k = 20 / (LAMBDA * 830000 * math.sin(math.radians(34.6) + 0.052) / 4 / math.pi)
    assert pm["n_trial_wraps"] == pytest.approx(np.ptp(truth["bperp"]) * max_k / (2 * math.pi))
    # K_ps, C_ps, coh_ps and ph_res are the topofit of the candidate phase against ph_patch
    ph = load_product(patch / "ph1.h5")["ph"][:, np.arange(20) != 8]
    bp = load_product(patch / "bp1.h5")["bperp_mat"]
    sel = slice(0, 200)
    psdph = ph[sel] / np.abs(ph[sel]) * np.conj(pm["ph_patch"][sel])
    k, c, coh, res = ps_topofit(psdph.astype(complex), bp[sel], pm["n_trial_wraps"])
    np.testing.assert_allclose(pm["K_ps"][sel], k, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(pm["coh_ps"][sel], coh, rtol=1e-5)
    np.testing.assert_allclose(pm["ph_res"][sel], np.angle(res), atol=1e-4)


def test_step2_bit_identical_rerun(patch_run, tmp_path):
    _, _, pm1 = patch_run
    patch = tmp_path / "PATCH_1"
    _make_patch(patch)
    pm2 = load_product(step.run(patch, PARMS))
    assert pm1.keys() == pm2.keys()
    for name in pm1:
        np.testing.assert_array_equal(pm1[name], pm2[name], err_msg=name)


def test_step2_snr_weighting_and_inc_file(tmp_path):
    patch = tmp_path / "PATCH_1"
    truth = _make_patch(patch, n_ps=1500, seed=8)
    save_product(patch / "inc1.h5", {"inc": np.full(1500, math.radians(39.0))})
    pm = load_product(
        step.run(patch, {**PARMS, "filter_weighting": "SNR", "gamma_max_iterations": 2})
    )
    max_k = 20 / (LAMBDA * 830000 * math.sin(math.radians(39.0)) / 4 / math.pi)
    assert pm["n_trial_wraps"] == pytest.approx(np.ptp(truth["bperp"]) * max_k / (2 * math.pi))
    assert pm["i_loop"] == 2
    assert np.median(pm["coh_ps"][truth["is_ps"]]) > 0.85
    assert np.median(pm["coh_ps"][~truth["is_ps"]]) < 0.45


def test_step2_small_baseline_mode(tmp_path):
    """Same patch as Small Baselines (each secondary paired with the master image): no column
    is dropped, interferograms come from ifgday_ix, PS still separate from random pixels."""
    patch = tmp_path / "PATCH_1"
    truth = _make_patch(patch, n_ps=1500, seed=9)
    ps = load_product(patch / "ps1.h5")
    keep = np.arange(20) != 8
    secondaries = np.flatnonzero(keep)
    ps.update(
        bperp=ps["bperp"][keep],
        n_ifg=19,
        ifgday_ix=np.column_stack([np.full(19, 8), secondaries]).astype(np.int64),
    )
    save_product(patch / "ps1.h5", ps)
    save_product(patch / "ph1.h5", {"ph": load_product(patch / "ph1.h5")["ph"][:, keep]})
    pm = load_product(step.run(patch, with_defaults({**GIVEN, "small_baseline_flag": "y"})))
    assert pm["ph_patch"].shape == (1500, 19)
    assert np.median(pm["coh_ps"][truth["is_ps"]]) > 0.85
    assert np.median(pm["coh_ps"][~truth["is_ps"]]) < 0.45


def test_step2_missing_parameter_and_product(tmp_path):
    with pytest.raises(StampsError, match="lambda"):
        step.run(tmp_path, {k: v for k, v in PARMS.items() if k != "lambda"})
    with pytest.raises(StampsError, match="ps1.h5"):
        step.run(tmp_path, PARMS)


def test_grid_indices_single_precision_and_merge():
    xy = np.array(
        [[1, 0.0, 0.0], [2, 49.999, 50.0], [3, 100.0, 149.0], [4, 120.0, 151.0]], dtype=np.float32
    )
    gij = step.grid_indices(xy, 50.0)
    # y: 0 -> cell 1, 50 -> ceil(50/50) = 1 (the 1e-6 is lost in single precision), 149 -> 3,
    # 151 -> 4 merged into 3; converted to 0-based
    np.testing.assert_array_equal(gij[:, 0], [0, 0, 2, 2])
    np.testing.assert_array_equal(gij[:, 1], [0, 0, 1, 1])


def test_grid_phase_sums_per_cell():
    gij = np.array([[0, 0], [0, 0], [1, 2], [0, 1]])
    w = np.array([[1 + 1j], [2 + 0j], [1j], [3 + 0j]])
    g = step.grid_phase(w, gij, 2, 3)
    assert g.shape == (2, 3, 1)
    assert g[0, 0, 0] == 3 + 1j and g[1, 2, 0] == 1j and g[0, 1, 0] == 3 and g[1, 0, 0] == 0


def test_hist_centres_matches_matlab_hist():
    values = np.array([0.0, 0.004, 0.0101, 0.015, 0.5, 0.9951, 1.0, -0.2, np.nan])
    counts = hist_centres(values, COH_BINS)
    assert counts.sum() == 8
    assert counts[0] == 3  # 0.0, 0.004 and the out-of-range -0.2
    assert counts[1] == 2  # 0.0101, 0.015
    assert counts[49] + counts[50] == 1
    assert counts[99] == 2


def test_random_phase_distribution_is_seeded_and_matches_direct_draw():
    bperp = np.linspace(-100, 120, 15)
    nr, bins, nz = random_phase_distribution(bperp, 0.5, n_rand=20000)
    nr2, _, _ = random_phase_distribution(bperp, 0.5, n_rand=20000)
    np.testing.assert_array_equal(nr, nr2)
    assert nr.sum() == 20000 and nr[nz] > 0 and not nr[nz + 1 :].any()
    np.testing.assert_allclose(bins, np.arange(0.005, 1.0, 0.01))
    rng = np.random.default_rng(2005)
    phases = 2 * np.pi * rng.random((20000, 15))
    _, _, coh, _ = ps_topofit(np.exp(1j * phases), bperp, 0.5)
    np.testing.assert_array_equal(nr, hist_centres(coh, bins))
    # |mean of 15 random unit phasors| is Rayleigh-like around sqrt(pi / (4 * 15)) = 0.23;
    # the search over trial K raises it somewhat
    assert 0.2 < bins[np.argmax(nr)] < 0.45


def test_random_phase_small_baseline_uses_image_differences():
    ifgday_ix = np.array([[0, 1], [1, 2], [0, 2], [2, 3], [1, 3]])
    bperp = np.array([10.0, -40, 25, 60, -5])
    coh = random_phase_coherence(bperp, 0.3, n_rand=1000, ifgday_ix=ifgday_ix, n_image=4)
    rng = np.random.default_rng(2005)
    img = 2 * np.pi * rng.random((1000, 4))
    ifg = img[:, ifgday_ix[:, 1]] - img[:, ifgday_ix[:, 0]]
    _, _, want, _ = ps_topofit(np.exp(1j * ifg), bperp, 0.3)
    np.testing.assert_array_equal(coh, want)


def test_matlab_interp_known_properties():
    x = np.sin(np.arange(30) / 3.0)
    y = matlab_interp(x, 10)
    assert len(y) == 300
    np.testing.assert_allclose(y[::10], x, atol=1e-12)
    t = np.arange(290) / 10.0
    err = np.abs(y[:290] - np.sin(t / 3.0))
    assert err[:260].max() < 2e-4  # interior: band-limited interpolation is nearly exact
    assert err.max() < 2e-3  # ends: started on point-reflected copies of the data
    with pytest.raises(ValueError):
        matlab_interp(np.ones(8), 10)


def test_prand_weighting_limits():
    rng = np.random.default_rng(3)
    nr = hist_centres(np.clip(rng.normal(0.25, 0.07, 300000), 0, 1), COH_BINS)
    nz = int(np.flatnonzero(nr)[-1])
    coh = np.r_[np.clip(rng.normal(0.25, 0.07, 4000), 0, 1), rng.uniform(0.85, 1.0, 3000)]
    weighting, nr_scaled = step.prand_weighting(coh, nr, nz, COH_BINS, 31)
    # scaled to the 4000 random-like candidates below coherence 0.31
    na = hist_centres(coh, COH_BINS)
    assert nr_scaled[:31].sum() == pytest.approx(na[:31].sum())
    assert weighting[coh < 0.2].max() < 0.01
    assert weighting[coh > 0.85].min() > 0.99
    assert np.all((weighting >= 0) & (weighting <= 1.0 + 1e-9))


def test_pm_file_is_hdf5_with_matlab_names(patch_run):
    patch, _, _ = patch_run
    with h5py.File(patch / "pm1.h5") as f:
        names = set(f.keys())
    assert names == {
        "ph_patch",
        "K_ps",
        "C_ps",
        "coh_ps",
        "N_opt",
        "ph_res",
        "step_number",
        "ph_grid",
        "n_trial_wraps",
        "grid_ij",
        "grid_size",
        "low_pass",
        "i_loop",
        "ph_weight",
        "Nr",
        "Nr_max_nz_ix",
        "coh_bins",
        "coh_ps_save",
        "gamma_change_save",
    }

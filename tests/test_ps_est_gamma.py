"""Step 2 with quick_est_gamma_flag 'n' (ps_est_gamma, the per-pixel circular-patch estimator):
its numerics, a synthetic patch, and the golden stack against the quick estimator."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from factories import days, ps_product, scene_points, write_workspace
from scipy.stats import spearmanr

from stamps_python import parms as P
from stamps_python.io.products import load_product, product_path
from stamps_python.numerics.est_gamma import disc_response, patch_phase, patch_radius, patch_sums
from stamps_python.numerics.topofit import ps_topofit
from stamps_python.parms import with_defaults
from stamps_python.pipeline import run_steps
from stamps_python.steps import ps_est_gamma, ps_est_gamma_quick, ps_select

PARMS = with_defaults({"lambda": 0.05546576, "heading": -168.165222})
SLOW = PARMS | {"quick_est_gamma_flag": "n"}
GRID_ONLY = {"ph_grid", "grid_ij", "grid_size", "low_pass"}  # the quick estimator's grid


def test_patch_sums_equal_brute_force() -> None:
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 900, (400, 2))
    xy[5] = xy[6]  # two candidates at one position: each is in the other's patch
    vals = rng.normal(size=(400, 3)) + 1j * rng.normal(size=(400, 3))
    got, counts = patch_sums(xy, vals, 120.0)
    d2 = np.sum((xy[:, None] - xy[None]) ** 2, axis=2)
    near = (d2 < 120.0**2) & ~np.eye(400, dtype=bool)
    np.testing.assert_allclose(got, near.astype(float) @ vals, atol=1e-12)
    np.testing.assert_array_equal(counts, near.sum(axis=1))
    assert counts[5] >= 1
    unit, _ = patch_phase(xy, vals, 120.0)
    ok = counts > 0
    np.testing.assert_allclose(np.abs(unit[ok]), 1, atol=1e-6)
    assert np.all(unit[~ok] == 0)


def test_patch_radius_passes_half_the_amplitude_at_the_low_pass_wavelength() -> None:
    r = patch_radius(800.0)
    assert r == pytest.approx(282.03, abs=0.01)
    assert float(disc_response(2 * np.pi * r / 800.0)) == pytest.approx(0.5, abs=1e-9)
    assert patch_radius(400.0) == pytest.approx(r / 2)


def _make_patch(patch: Path, n_ps: int = 2500, n_ifg: int = 20, seed: int = 11) -> dict:
    """Step-1 products over 2 km x 1.6 km: 60 % PS (smooth atmosphere + K bperp + 0.3 rad
    noise), 40 % random phase. Returns the truth."""
    rng = np.random.default_rng(seed)
    master_ix = 8
    x, y = np.round(scene_points(rng, n_ps, (2000, 1600)), 3).T
    is_ps = rng.random(n_ps) < 0.6
    bperp = np.round(rng.uniform(-120, 120, n_ifg), 2)
    bperp[master_ix] = 0
    bperp_mat = (bperp[None, :] + rng.normal(0, 2, (n_ps, n_ifg))).astype(np.float32)
    bperp_mat[:, master_ix] = 0
    k_true = np.where(is_ps, rng.uniform(-0.008, 0.008, n_ps), 0.0)
    a, b, c = rng.normal(0, 1.5e-3, (3, n_ifg))
    atmo = a * x[:, None] + b * y[:, None] + np.sin(2 * np.pi * x[:, None] / 3000 + c)
    phase = atmo + k_true[:, None] * bperp_mat + rng.normal(0, 0.3, (n_ps, n_ifg))
    phase[~is_ps] = rng.uniform(-np.pi, np.pi, ((~is_ps).sum(), n_ifg))
    ph = (rng.uniform(0.5, 2.0, (n_ps, n_ifg)) * np.exp(1j * phase)).astype(np.complex64)
    ph[:, master_ix] = 1
    keep = np.arange(n_ifg) != master_ix
    d_a = np.where(is_ps, rng.uniform(0.05, 0.25, n_ps), rng.uniform(0.25, 0.4, n_ps))
    ij = np.column_stack([np.arange(1, n_ps + 1), (y / 4).astype(int), (x / 15).astype(int)])
    write_workspace(
        patch,
        ps1=ps_product(np.column_stack([x, y]), days(738000.0, n_ifg, 12), master_ix, bperp, ij=ij),
        ph1={"ph": ph},
        bp1={"bperp_mat": bperp_mat[:, keep]},
        la1={"la": np.full(n_ps, math.radians(34.6))},
        da1={"D_A": d_a},
        hgt1={"hgt": np.zeros(n_ps)},
    )
    return {"is_ps": is_ps, "k_true": k_true}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    slow, quick = (tmp_path_factory.mktemp(n) / "PATCH_1" for n in ("slow", "quick"))
    truth = _make_patch(slow)
    _make_patch(quick)
    return {
        "slow": load_product(ps_est_gamma.run(slow, SLOW)),
        "quick": load_product(ps_est_gamma_quick.run(quick, PARMS)),
        "truth": truth,
        "dir": slow,
    }


def test_slow_estimator_separates_ps_and_recovers_k(synthetic):
    pm, truth = synthetic["slow"], synthetic["truth"]
    is_ps, coh = truth["is_ps"], pm["coh_ps"]
    print("median gamma PS / random:", np.median(coh[is_ps]), np.median(coh[~is_ps]))
    assert np.median(coh[is_ps]) > 0.85 and np.median(coh[~is_ps]) < 0.45
    assert np.mean(coh[is_ps] > 0.6) > 0.97 and np.mean(coh[~is_ps] > 0.6) < 0.05
    k_err = np.abs(pm["K_ps"][is_ps] - truth["k_true"][is_ps])
    assert np.median(k_err) < 1e-3 and np.percentile(k_err, 95) < 3e-3
    assert np.corrcoef(coh, synthetic["quick"]["coh_ps"])[0, 1] > 0.97


def test_slow_products_match_the_quick_ones(synthetic):
    pm, quick = synthetic["slow"], synthetic["quick"]
    assert set(pm) == (set(quick) - GRID_ONLY) | {"N_patch", "patch_radius"}
    for name in set(pm) & set(quick):
        assert np.shape(pm[name]) == np.shape(quick[name]), name
        assert np.asarray(pm[name]).dtype == np.asarray(quick[name]).dtype, name
    assert pm["patch_radius"] == pytest.approx(patch_radius(800.0))
    ps = load_product(product_path(synthetic["dir"], "ps", 1))
    xy = np.asarray(ps["xy"], dtype=np.float64)[:, 1:3]
    # ph_patch is the patch sum of the last iteration's ph_weight; the fit is against it
    again, n_patch = patch_phase(xy, pm["ph_weight"], float(pm["patch_radius"]))
    np.testing.assert_allclose(again, pm["ph_patch"], atol=2e-4)
    np.testing.assert_array_equal(n_patch, pm["N_patch"])
    ph = load_product(product_path(synthetic["dir"], "ph", 1))["ph"][:, np.arange(20) != 8]
    bperp_mat = load_product(product_path(synthetic["dir"], "bp", 1))["bperp_mat"]
    ph = ph.astype(np.complex128) / np.abs(ph)
    k, c, coh, _ = ps_topofit(ph * np.conj(pm["ph_patch"]), bperp_mat, float(pm["n_trial_wraps"]))
    np.testing.assert_allclose(pm["coh_ps"], coh, rtol=1e-5)
    np.testing.assert_allclose(pm["K_ps"], k, rtol=1e-5, atol=1e-9)
    # Step 3 runs on it without re-estimation, as stamps.m calls ps_select(1) after ps_est_gamma
    sel = load_product(ps_select.run(synthetic["dir"], SLOW))
    assert np.sum(sel["keep_ix"]) > 0.9 * np.sum(synthetic["truth"]["is_ps"])


@pytest.fixture(scope="module")
def golden_pair(golden_run, tmp_path_factory):
    """The golden Step-1 patch through Step 2 twice: quick (StaMPS default) and per-pixel."""
    out = {}
    for name in ("quick", "slow"):
        run = tmp_path_factory.mktemp(f"golden_{name}") / "run"
        shutil.copytree(golden_run, run)
        out[name] = run
    P.set_parm(out["slow"], "quick_est_gamma_flag", "n")
    for run in out.values():
        run_steps(run, 2, 3)
    return out


def test_golden_gamma_correlates_with_quick_estimator(golden_pair, golden_candidates):
    pm = {k: load_product(r / "PATCH_1" / "pm1.h5") for k, r in golden_pair.items()}
    assert "N_patch" in pm["slow"] and "ph_grid" not in pm["slow"]  # dispatched to ps_est_gamma
    q, s = pm["quick"]["coh_ps"], pm["slow"]["coh_ps"]
    pearson = float(np.corrcoef(q, s)[0, 1])
    rank = float(spearmanr(q, s).statistic)
    stamps = float(np.corrcoef(golden_candidates["GAMMA_STEP2"].to_numpy(), s)[0, 1])
    hi = (q > 0.7) & (s > 0.7)
    k_corr = float(np.corrcoef(pm["quick"]["K_ps"][hi], pm["slow"]["K_ps"][hi])[0, 1])
    print(
        f"golden gamma, per-pixel vs quick: Pearson {pearson:.4f}, Spearman {rank:.4f}, "
        f"mean |diff| {np.mean(np.abs(q - s)):.4f}; vs StaMPS' GAMMA_STEP2 {stamps:.4f}; "
        f"K_ps where both > 0.7 ({hi.sum()}): {k_corr:.4f}"
    )
    assert pearson > 0.98 and rank > 0.97 and stamps > 0.98
    assert np.mean(np.abs(q - s)) < 0.06
    assert k_corr > 0.9


def test_golden_selection_close_to_stamps(golden_pair, golden_candidates):
    def selected(run: Path) -> np.ndarray:
        sel = load_product(run / "PATCH_1" / "select1.h5", ["ix", "keep_ix"])
        mask = np.zeros(len(golden_candidates), dtype=bool)
        mask[np.asarray(sel["ix"])[np.asarray(sel["keep_ix"], dtype=bool)]] = True
        return mask

    stamps = golden_candidates["SELECTED_STEP3"].to_numpy().astype(bool)
    slow, quick = selected(golden_pair["slow"]), selected(golden_pair["quick"])

    def jaccard(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / (a | b).sum())

    print(
        f"Step 3 selections: per-pixel {slow.sum()}, quick {quick.sum()}, StaMPS {stamps.sum()};"
        f" Jaccard per-pixel/StaMPS {jaccard(slow, stamps):.3f}, quick/StaMPS "
        f"{jaccard(quick, stamps):.3f}"
    )
    assert jaccard(slow, stamps) > 0.85
    assert abs(int(slow.sum()) - int(stamps.sum())) < 0.05 * stamps.sum()

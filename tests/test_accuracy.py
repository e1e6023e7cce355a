"""The opt-in corrections beyond StaMPS (docs/accuracy.md): known answers on hand-built data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from test_export import make_run  # hand-made runs of the neighbouring test files
from test_scla import make_ps_run
from test_scn import _workspace

from stamps_python.io.products import load_product, save_product
from stamps_python.numerics.defo_model import model_design, residual_deramp, temporal_coherence
from stamps_python.numerics.deramp import ps_deramp
from stamps_python.numerics.timeseries import parse_correction
from stamps_python.parms import (
    PRESETS,
    apply_preset,
    load_parms,
    set_parm,
    with_defaults,
    write_parms,
)
from stamps_python.results import compute_results, load_run, point_temporal_coherence
from stamps_python.stamps_parms import main as parms_main
from stamps_python.steps import ps_scn_filt
from stamps_python.utils import StampsError, datenum

WAVELENGTH = 0.05546576
MM_TO_RAD = -4 * np.pi / WAVELENGTH / 1000.0


def _scene(n: int, n_dates: int, seed: int = 3, spacing: float = 12.0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 6000, (n, 2))
    day = datenum("20210105") + spacing * np.arange(n_dates)
    return rng, xy, day


def _atmosphere(rng: np.random.Generator, xy: np.ndarray, n_dates: int, amp: float) -> np.ndarray:
    """(n, n_dates) smooth atmosphere (rad): six plane waves of 1.5-6 km of amplitude ``amp``."""
    atm = np.zeros((len(xy), n_dates))
    for _ in range(6):
        k = rng.uniform(2 * np.pi / 6000, 2 * np.pi / 1500, (2, n_dates))
        atm += amp * np.cos(xy @ k + rng.uniform(0, 2 * np.pi, n_dates))
    return atm


def _planar_rate(xy: np.ndarray) -> np.ndarray:
    """A planar LOS rate (mm/yr): 12 mm/yr across 6 km in x, 6 in y."""
    return 2.0e-3 * (xy[:, 0] - 3000.0) - 1.0e-3 * (xy[:, 1] - 3000.0)


def test_model_deramp_keeps_planar_rate_and_removes_random_ramps() -> None:
    rng, xy, day = _scene(2000, 30)
    master = 15
    t = (day - day[master]) / 365.25
    ph_def = MM_TO_RAD * _planar_rate(xy)[:, None] * t[None, :]
    A = np.column_stack([xy / 1000.0, np.ones(len(xy))])
    coef = rng.normal(0, 0.1, (3, day.size))  # rad/km: ~0.6 rad across the scene
    coef[:, master] = 0.0
    ph_ramp = A @ coef
    noise = rng.normal(0, 0.3, ph_def.shape)
    noise[:, master] = 0.0
    ph = ph_def + ph_ramp + noise
    cols = np.setdiff1d(np.arange(day.size), [master])
    G = model_design(day[cols], day[master], "linear")
    out = ph.copy()
    out[:, cols], ramp = residual_deramp(ph[:, cols], xy, G)

    def rate(p: np.ndarray) -> np.ndarray:  # mm/yr of every point
        return np.polyfit(t, p.T / MM_TO_RAD, 1)[0]

    v_true = _planar_rate(xy)
    v_model = rate(out - noise)
    v_plane = rate(ps_deramp({"xy": np.column_stack([np.arange(len(xy)), xy])}, ph - noise)[0])
    # the random ramps are removed up to their own linear-in-time part (which no estimator
    # can tell from a planar rate): that part is what is left
    ramp_trend = rate(ph_ramp)
    np.testing.assert_allclose(v_model, v_true + ramp_trend, atol=0.05)
    # StaMPS' plane fit removes the planar rate entirely
    assert np.std(v_plane) < 0.2
    # every non-trend part of each injected ramp is gone
    resid = out[:, cols] - ph_def[:, cols] - noise[:, cols]
    resid_trend = np.outer(ramp_trend * MM_TO_RAD, t[cols])
    c = resid - resid_trend
    c -= c.mean(axis=1, keepdims=True)
    assert np.sqrt(np.mean(c**2)) < 0.02
    assert np.sqrt(np.mean((ph_ramp[:, cols] - ph_ramp[:, cols].mean(1, keepdims=True)) ** 2)) > 0.3


def test_temporal_coherence_separates_noise_points_from_ps() -> None:
    rng, xy, day = _scene(3000, 30)
    t = (day - day[15]) / 365.25
    v = rng.normal(0, 10, len(xy))
    atm = _atmosphere(rng, xy, day.size, 0.6)
    ph = MM_TO_RAD * v[:, None] * t[None, :] + atm + rng.normal(0, 0.35, atm.shape)
    noise_pts = rng.random(len(xy)) < 0.2
    ph[noise_pts] = rng.uniform(-np.pi, np.pi, (int(noise_pts.sum()), day.size)) * 1.5
    G = model_design(day, day[15], "linear")
    tcoh = point_temporal_coherence(ph, xy, G, 100.0)
    assert np.median(tcoh[~noise_pts]) > 0.85
    assert np.median(tcoh[noise_pts]) < 0.4
    keep = tcoh >= 0.7
    assert keep[~noise_pts].mean() > 0.98
    assert keep[noise_pts].mean() < 0.03
    # the plain temporal coherence of a perfect fit is 1
    assert temporal_coherence(np.zeros((2, 5))).tolist() == [1.0, 1.0]


def _scn_run(root: Path, detrend: str, auto_win: str = "n") -> tuple[np.ndarray, np.ndarray]:
    """A run whose phase is a linear bowl of known rate + atmosphere; returns rate and Step 8's
    estimate of the rate left in ph_uw - SCN (mm/yr)."""
    rng, xy, day = _scene(1500, 30, seed=5)
    master = 15
    t = (day - day[master]) / 365.25
    r2 = ((xy - 2500.0) ** 2).sum(axis=1) / 900.0**2
    v = -30.0 * np.exp(-0.5 * r2)
    atm = _atmosphere(rng, xy, day.size, 0.25)
    atm -= atm[:, [master]]
    ph = MM_TO_RAD * v[:, None] * t[None, :] + atm + rng.normal(0, 0.2, atm.shape)
    ph[:, master] = 0.0
    _workspace(root, xy, day, master, ph, None)
    ps_scn_filt.run(root, with_defaults({"detrend_scn": detrend, "auto_scn_time_win": auto_win}))
    scn = load_product(root / "scn2.h5")["ph_scn_slave"]
    cols = np.setdiff1d(np.arange(day.size), [master])

    def rate(p: np.ndarray) -> np.ndarray:
        p = p[:, cols] - p[:, cols].mean(axis=0)
        r = np.polyfit(t[cols], p.T / MM_TO_RAD, 1)[0]
        return r - r.mean()

    return v - v.mean(), rate(ph - scn), rate(ph)


def test_scn_detrend_keeps_linear_rate(tmp_path: Path) -> None:
    v, v_faithful, v_unfiltered = _scn_run(tmp_path / "faithful", "n")
    v, v_detrend, _ = _scn_run(tmp_path / "detrend", "y", "y")

    def rms(x: np.ndarray) -> float:
        return float(np.sqrt(np.mean(x**2)))

    # StaMPS' filter takes most of a 30 mm/yr bowl away; with detrend_scn the bowl stays and
    # the error is that of a fit without any filtering (the atmosphere's own trend), or less
    assert rms(v_faithful - v) > 0.4 * rms(v)
    assert rms(v_detrend - v) < 1.1 * rms(v_unfiltered - v)
    assert rms(v_detrend - v) < 0.25 * rms(v)
    assert np.corrcoef(v_detrend, v)[0, 1] > 0.98


def test_auto_scn_time_win() -> None:
    day = datenum("20210105") + 12.0 * np.arange(31)
    assert ps_scn_filt.auto_time_win(day, 365.0) == pytest.approx(360 / 8)
    assert ps_scn_filt.auto_time_win(day[:5], 365.0) == pytest.approx(24.0)
    assert ps_scn_filt.auto_time_win(day, 30.0) == 30.0


def test_preset_accurate_and_back(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_parms(tmp_path)
    assert parms_main([str(tmp_path), "preset", "accurate"]) == 0
    printed = capsys.readouterr().out
    parms = load_parms(tmp_path)
    for name, value in PRESETS["accurate"].items():
        assert parms[name] == value
        assert name in printed
    raw = json.loads((tmp_path / "parms.json").read_text())
    assert raw["deramp_method"] == "model" and raw["detrend_scn"] == "y"
    apply_preset(tmp_path, "faithful")
    parms = load_parms(tmp_path)
    assert parms["deramp_method"] == "plane" and parms["detrend_scn"] == "n"
    assert parms["export_tcoh_min"] == 0.0 and parms["export_coh_ps_min"] == 0.0
    with pytest.raises(StampsError, match="preset 'fast'"):
        apply_preset(tmp_path, "fast")


def test_export_quality_rules_drop_noise_points_keep_ps(tmp_path: Path) -> None:
    root = tmp_path / "run"
    truth = make_run(root, n_ps=400, n_dates=20, master_ix=8)
    ph = np.array(load_product(root / "phuw2.h5")["ph_uw"])
    rng = np.random.default_rng(11)
    noisy = rng.random(ph.shape[0]) < 0.15
    ph[noisy] += rng.uniform(-np.pi, np.pi, (int(noisy.sum()), ph.shape[1])) * 2
    ph[:, 8] = 0.0
    save_product(root / "phuw2.h5", {"ph_uw": ph})
    coh = np.where(noisy, 0.45, 0.9) + rng.uniform(-0.05, 0.05, ph.shape[0])
    save_product(root / "pm2.h5", {"coh_ps": coh})
    set_parm(root, "export_tcoh_min", 0.7)
    set_parm(root, "scn_wavelength", 600)  # 400 points over ~15 km^2
    res = compute_results(load_run(root), parse_correction("v-dso"))
    kept = np.isin(np.arange(1, 401), res.codes)
    assert kept[~noisy].mean() > 0.97
    assert kept[noisy].mean() < 0.05
    assert res.metadata["points_left_out"] == {"export_tcoh_min 0.7": int((~kept).sum())}
    assert res.tcoh.min() >= 0.7
    # the rule keeps the velocity of the points it keeps within the noise of the ramp fit
    assert (
        np.sqrt(
            np.mean(
                (res.ts.vel - res.ts.vel.mean() - truth["v"][kept] + truth["v"][kept].mean()) ** 2
            )
        )
        < 1.5
    )
    set_parm(root, "export_tcoh_min", 0.0)
    set_parm(root, "export_coh_ps_min", 0.7)
    res2 = compute_results(load_run(root), parse_correction("v-dso"))
    assert set(res2.codes.tolist()) == set((np.flatnonzero(coh >= 0.7) + 1).tolist())
    set_parm(root, "export_coh_ps_min", 1.0)
    with pytest.raises(StampsError, match="no point passes"):
        compute_results(load_run(root), parse_correction("v-dso"))


def test_faithful_defaults_unchanged_by_new_code(tmp_path: Path) -> None:
    """With the defaults every new option is off: Step 8 and the export give StaMPS' numbers."""
    root = tmp_path / "run"
    truth = make_run(root, n_ps=200)
    res = compute_results(load_run(root), parse_correction("v-dso"))
    np.testing.assert_allclose(res.ts.vel, truth["v"], atol=1e-3)
    assert res.codes.size == 200 and res.metadata["points_left_out"] == {}
    assert np.all((res.tcoh > 0) & (res.tcoh <= 1))
    assert not math.isnan(float(np.mean(res.tcoh)))


def test_step7_seasonal_model_keeps_seasonal_motion_out_of_the_dem_error(tmp_path: Path) -> None:
    """Seasonal motion that varies over the scene and is correlated with the baselines leaks
    into K_ps_uw with StaMPS' fit (offset, rate, K); defo_model 'seasonal' co-estimates it."""
    run = tmp_path / "run"
    truth = make_ps_run(run, n_ps=300, n_ifg=30, noise=0.05)
    mi = truth["mi"]
    t = (truth["day"] - truth["day"][mi]) / 365.25
    season = np.sin(2 * np.pi * t)
    bp = np.delete(truth["bpm"], mi, axis=1).astype(np.float64)
    bp += 150.0 * np.delete(season, mi)[None, :]  # baselines that follow the seasons
    save_product(run / "bp2.h5", {"bperp_mat": bp.astype(np.float32)})
    amp = 3.0 * (1.0 + 0.5 * np.cos(2 * np.pi * truth["xy"][:, 1] / 3000.0))

    def k_error(seasonal_amp: np.ndarray, model: str) -> float:
        ph = (
            truth["ph"].astype(np.float64)
            + seasonal_amp[:, None] * season[None, :]
            + truth["K"][:, None] * 150.0 * season[None, :]
        )
        ph[:, mi] = 0.0
        save_product(run / "phuw2.h5", {"ph_uw": ph.astype(np.float32), "msd": np.zeros(30)})
        from stamps_python.steps import ps_calc_scla

        ps_calc_scla.run(run, with_defaults({"defo_model": model}))
        K = np.asarray(load_product(run / "scla2.h5")["K_ps_uw"]).ravel()
        # every PS is in the reference area: K is relative to the mean over the PS
        return float(np.sqrt(np.mean((K - K.mean() - truth["K"] + truth["K"].mean()) ** 2)))

    clean = k_error(np.zeros(len(amp)), "linear")
    leak = k_error(amp, "linear")
    fixed = k_error(amp, "seasonal")
    assert leak > 2.0 * clean
    assert fixed < 1.2 * clean


def test_plots_of_an_export_that_left_points_out(tmp_path: Path) -> None:
    """ps_plot's phase panels show the exported points only, referenced to the same PS."""
    from stamps_python.ps_plot import exported_rows, make_plots, unwrapped_phase

    root = tmp_path / "run"
    make_run(root, n_ps=300, n_dates=14)
    coh = np.linspace(0.5, 1.0, 300)
    save_product(root / "pm2.h5", {"coh_ps": coh})
    set_parm(root, "export_coh_ps_min", 0.75)
    run = load_run(root)
    res = compute_results(run, parse_correction("v-do"))
    assert res.rows is not None and res.rows.tolist() == np.flatnonzero(coh >= 0.75).tolist()
    uw, _ = unwrapped_phase(run, res)
    assert uw.shape[0] == res.codes.size
    # referenced to the exported reference PS (all of them): zero mean over the kept points
    np.testing.assert_allclose(uw.mean(axis=0), 0.0, atol=1e-9)
    assert exported_rows(res, np.arange(300)).tolist() == res.rows.tolist()
    paths = make_plots(run, res, tmp_path / "plots")
    assert len(paths) >= 3 and all(p.is_file() for p in paths)

"""Step 8 (ps_scn_filt): known answers on hand-built workspaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from factories import ps_product, scene_points, write_workspace
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve

from stamps_python.io.products import load_product, save_product
from stamps_python.numerics.triangulation import delaunay_edges
from stamps_python.parms import default_parms
from stamps_python.steps import ps_scn_filt
from stamps_python.utils import StampsError, datenum


def _workspace(
    run: Path, xy: np.ndarray, day: np.ndarray, master_ix: int, ph_uw: np.ndarray, scla: dict | None
) -> None:
    write_workspace(
        run,
        ps2=ps_product(xy, day, master_ix, np.zeros(len(day))),
        phuw2={"ph_uw": ph_uw.astype(np.float32)},
        scla2=scla,
    )


def _points(n: int, size: float, rng: np.random.Generator) -> np.ndarray:
    return scene_points(rng, n, size).astype(np.float32).astype(np.float64)


def _smooth_fields(
    xy: np.ndarray, n: int, rng: np.random.Generator, shortest: float = 800.0
) -> np.ndarray:
    """n random smooth fields (wavelengths ``shortest`` to 3.75 x that, m), ~1 rad rms each."""
    out = np.zeros((len(xy), n))
    for _ in range(8):
        lam = rng.uniform(shortest, 3.75 * shortest, n)
        theta = rng.uniform(0, 2 * np.pi, n)
        phase = rng.uniform(0, 2 * np.pi, n)
        k = 2 * np.pi / lam
        out += np.cos(
            np.outer(xy[:, 0], k * np.cos(theta)) + np.outer(xy[:, 1], k * np.sin(theta)) + phase
        )
    return out / 2.0


def stamps_scn_reference(xy, ph_uw, day, master_ix, uii, scla, time_win, wavelength, deramp):
    """ps_scn_filt as StaMPS computes it: arcs filtered in time, integrated by least squares,
    then a Gaussian spatial filter PS by PS (the master's time weight at its own column)."""
    n_ps = len(xy)
    ph_all = ph_uw[:, uii] - scla["ph_scla"][:, uii] - scla["C_ps_uw"][:, None]
    ph_all = ph_all - scla["ph_ramp"][:, uii]
    ph_all = np.nan_to_num(ph_all.astype(np.float64))
    deramp_ix = [int(np.flatnonzero(uii == d)[0]) for d in deramp if d in uii]
    G = np.column_stack([np.ones(n_ps), xy])
    ramps = np.zeros((n_ps, len(deramp_ix)))
    for j, i3 in enumerate(deramp_ix):
        ramps[:, j] = G @ np.linalg.lstsq(G, ph_all[:, i3], rcond=None)[0]
        ph_all[:, i3] -= ramps[:, j]
    edges = delaunay_edges(xy)
    dph = ph_all[edges[:, 1]] - ph_all[edges[:, 0]]
    day = day[uii]
    mcol = int(np.flatnonzero(uii == master_ix)[0])
    dph_lpt = np.zeros_like(dph)
    for i1 in range(len(uii)):
        w = np.exp(-((day[i1] - day) ** 2) / (2 * time_win**2))
        w[mcol] = 0
        dph_lpt[:, i1] = dph @ (w / w.sum())
    dph_hpt = dph - dph_lpt
    n_e = len(edges)
    A = coo_matrix(
        (
            np.r_[-np.ones(n_e), np.ones(n_e)],
            (np.r_[np.arange(n_e), np.arange(n_e)], np.r_[edges[:, 0], edges[:, 1]]),
        ),
        shape=(n_e, n_ps),
    ).tocsc()[:, 1:]
    sol = spsolve((A.T @ A).tocsc(), A.T @ dph_hpt)
    ph_hpt = np.vstack([np.zeros((1, len(uii))), np.asarray(sol).reshape(n_ps - 1, -1)])
    ph_hpt[:, deramp_ix] += ramps
    ph_scn = np.zeros_like(ph_hpt)
    for i in range(n_ps):
        d2 = np.sum((xy - xy[i]) ** 2, axis=1)
        near = d2 < (4 * wavelength) ** 2
        w = np.exp(-d2[near] / (2 * wavelength**2))
        ph_scn[i] = (w / w.sum()) @ ph_hpt[near]
    ph_scn -= ph_scn[0]
    slave = np.zeros(ph_uw.shape)
    slave[:, uii] = ph_scn
    slave[:, master_ix] = 0
    return ph_hpt, slave, ramps


def test_scn_equals_stamps_arc_computation(tmp_path):
    rng = np.random.default_rng(3)
    n_ps, n_ifg, mi = 150, 20, 10
    xy = _points(n_ps, 1500.0, rng)
    day = datenum("20200101") + np.cumsum(rng.choice([12.0, 24.0], n_ifg))
    ph_uw = rng.normal(0, 2.0, (n_ps, n_ifg)) + _smooth_fields(xy, n_ifg, rng)
    ph_uw[:, mi] = 0.0
    ph_uw[5, 7] = np.nan
    scla = {
        "ph_scla": rng.normal(0, 0.3, (n_ps, n_ifg)).astype(np.float32),
        "C_ps_uw": rng.normal(0, 0.5, n_ps),
        "ph_ramp": rng.normal(0, 0.2, (n_ps, n_ifg)).astype(np.float32),
        "K_ps_uw": np.zeros(n_ps),
    }
    _workspace(tmp_path, xy, day, mi, ph_uw, scla)
    parms = default_parms() | {
        "drop_ifg_index": [3],
        "scn_deramp_ifg": [5, 16, 3],
        "scn_time_win": 60.0,
        "scn_wavelength": 150.0,
    }
    out = load_product(ps_scn_filt.run(tmp_path, parms))
    uii = np.setdiff1d(np.arange(n_ifg), [2])
    hpt, slave, ramps = stamps_scn_reference(
        xy,
        ph_uw.astype(np.float32).astype(np.float64),
        day,
        mi,
        uii,
        {k: np.asarray(v, dtype=np.float64) for k, v in scla.items()},
        60.0,
        150.0,
        [4, 15],
    )
    np.testing.assert_allclose(out["ph_hpt"], hpt, atol=2e-4)
    np.testing.assert_allclose(out["ph_ramp"], ramps, atol=1e-4)
    np.testing.assert_allclose(out["ph_scn_slave"], slave, atol=2e-4)
    assert out["ph_scn_slave"].shape == (n_ps, n_ifg)
    assert np.all(out["ph_scn_slave"][:, [2, mi]] == 0)
    # residual noise: ph_hpt minus the screen, whose master column StaMPS zeroes afterwards
    screen = slave[:, uii].copy()
    mcol = int(np.flatnonzero(uii == mi)[0])
    screen[:, mcol] = -out["ph_scn_master"]
    np.testing.assert_allclose(out["ph_noise_res"][:, uii], hpt - screen, atol=3e-4)
    np.testing.assert_allclose(
        out["std_ph_noise"], np.std(out["ph_noise_res"][:, uii], axis=1, ddof=1), rtol=1e-5
    )


@pytest.fixture(scope="module")
def atmosphere_run(tmp_path_factory):
    """1500 PS, 122 images 12 days apart: master and slave atmospheres, a linear deformation
    bowl and 0.3 rad noise; scla2 holds the master atmosphere as C_ps_uw."""
    rng = np.random.default_rng(11)
    n_ps, n_img, mi = 1500, 122, 61
    xy = _points(n_ps, 3000.0, rng)
    day = datenum("20180101") + 12.0 * np.arange(n_img)
    aps = _smooth_fields(xy, n_img, rng, shortest=1500.0)
    v = 2.0 / 365.0 * np.exp(-((xy[:, 0] - 1500) ** 2 + (xy[:, 1] - 1500) ** 2) / (2 * 700.0**2))
    t = day - day[mi]
    ph = aps[:, [mi]] - aps + v[:, None] * t + rng.normal(0, 0.3, (n_ps, n_img))
    ph[:, mi] = 0.0
    run = tmp_path_factory.mktemp("scn_atmo")
    scla = {
        "ph_scla": np.zeros((n_ps, n_img), np.float32),
        "C_ps_uw": aps[:, mi],
        "ph_ramp": np.zeros((0, 0)),
        "K_ps_uw": np.zeros(n_ps),
    }
    _workspace(run, xy, day, mi, ph, scla)
    out = load_product(ps_scn_filt.run(run, default_parms() | {"scn_time_win": 120.0}))
    return {"out": out, "aps": aps, "v": v, "t": t, "ph": ph, "mi": mi, "xy": xy}


def test_scn_captures_atmosphere_and_keeps_linear_deformation(atmosphere_run):
    r = atmosphere_run
    aps, ph, t, v, mi = r["aps"], r["ph"], r["t"], r["v"], r["mi"]
    slave = r["out"]["ph_scn_slave"]
    slaves = np.setdiff1d(np.arange(ph.shape[1]), [mi])
    # the secondary atmosphere (as it enters the interferograms: -aps), relative to PS 1
    truth = -(aps - aps[0])
    # away from the ends of the series (2 x scn_time_win), where the one-sided time window
    # lets part of the deformation into the high-pass part, as in StaMPS
    inner = slaves[(t[slaves] > t[0] + 240) & (t[slaves] < t[-1] - 240)]
    err = slave[:, inner] - truth[:, inner]
    print(
        "SCN error rms",
        np.std(err),
        "of",
        np.std(truth[:, inner]),
        "; all ifgs",
        np.std(slave[:, slaves] - truth[:, slaves]),
    )
    assert np.std(err) < 0.25 * np.std(truth[:, inner])
    assert np.all(slave[:, mi] == 0)
    # removing it leaves the linear deformation (and the per-PS noise)
    no_master = ph - np.where(np.arange(ph.shape[1]) == mi, 0.0, 1.0) * aps[:, [mi]]
    defo = (v - v[0])[:, None] * t

    def resid(a):
        r_ = a - defo
        return np.std((r_ - r_[0])[:, inner])

    assert resid(no_master - slave) < 0.35 * resid(no_master)
    G = np.column_stack([np.ones(len(t)), t])
    vel = np.linalg.lstsq(G, (no_master - slave).T, rcond=None)[0][1]
    vel -= vel[0]
    assert np.std((vel - (v - v[0])) * 365) < 0.2 * np.std(v * 365)
    assert abs(np.mean((vel - (v - v[0])) * 365)) < 0.05 * np.ptp(v * 365)


def test_scn_master_estimate(atmosphere_run):
    r = atmosphere_run
    truth = r["aps"][:, r["mi"]] - r["aps"][0, r["mi"]]
    est = r["out"]["ph_scn_master"]
    assert est.shape == truth.shape
    print("master SCN error rms", np.std(est - truth), "of", np.std(truth))
    assert np.corrcoef(est, truth)[0, 1] > 0.95
    assert np.std(est - truth) < 0.3 * np.std(truth)


def test_scn_deramped_ifg_keeps_its_ramp(tmp_path):
    """A ramp in an scn_deramp_ifg interferogram goes whole into that one's SCN and no other."""
    rng = np.random.default_rng(5)
    n_ps, n_ifg, mi = 200, 16, 8
    xy = _points(n_ps, 2000.0, rng)
    day = datenum("20200101") + 12.0 * np.arange(n_ifg)
    ph = rng.normal(0, 1.0, (n_ps, n_ifg)) + _smooth_fields(xy, n_ifg, rng)
    ph[:, mi] = 0
    ramp = 0.002 * xy[:, 0] - 0.001 * xy[:, 1] + 0.7
    parms = default_parms() | {"scn_deramp_ifg": [14], "scn_wavelength": 120.0}
    a, b = tmp_path / "a", tmp_path / "b"
    _workspace(a, xy, day, mi, ph, None)
    ph_r = ph.copy()
    ph_r[:, 13] += ramp
    _workspace(b, xy, day, mi, ph_r, None)
    out_a = load_product(ps_scn_filt.run(a, parms))
    out_b = load_product(ps_scn_filt.run(b, parms))
    diff = out_b["ph_scn_slave"].astype(np.float64) - out_a["ph_scn_slave"]
    lp = ps_scn_filt.spatial_lowpass(
        xy, ramp[:, None].astype(np.float32), 120.0, show_progress=False
    )[:, 0]
    np.testing.assert_allclose(diff[:, 13], lp - lp[0], atol=5e-4)
    np.testing.assert_allclose(np.delete(diff, 13, axis=1), 0, atol=5e-4)
    np.testing.assert_allclose(out_b["ph_ramp"][:, 0] - out_a["ph_ramp"][:, 0], ramp, atol=2e-4)
    # without deramping, the time filter spreads the ramp over its neighbours in time
    out_c = load_product(ps_scn_filt.run(b, default_parms() | {"scn_wavelength": 120.0}))
    out_d = load_product(ps_scn_filt.run(a, default_parms() | {"scn_wavelength": 120.0}))
    spread = out_c["ph_scn_slave"].astype(np.float64) - out_d["ph_scn_slave"]
    assert np.abs(np.delete(spread, [13, mi], axis=1)).max() > 0.05


def test_scn_spatial_filter_matches_brute_force():
    rng = np.random.default_rng(9)
    xy = _points(300, 1000.0, rng)
    vals = rng.normal(0, 1, (300, 3)).astype(np.float32)
    got = ps_scn_filt.spatial_lowpass(xy, vals, 60.0, show_progress=False)
    want = np.empty((300, 3))
    for i in range(300):
        d2 = np.sum((xy - xy[i]) ** 2, axis=1)
        near = d2 < 240.0**2
        w = np.exp(-d2[near] / (2 * 60.0**2))
        want[i] = (w / w.sum()) @ vals[near]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_scn_missing_inputs_and_kriging(tmp_path):
    parms = default_parms()
    with pytest.raises(StampsError, match=r"ps2\.h5: not found; run Step 5 first"):
        ps_scn_filt.run(tmp_path, parms)
    rng = np.random.default_rng(1)
    xy = _points(20, 500.0, rng)
    day = datenum("20200101") + 12.0 * np.arange(6)
    _workspace(tmp_path, xy, day, 2, np.zeros((20, 6)), None)
    (tmp_path / "phuw2.h5").unlink()
    with pytest.raises(StampsError, match=r"phuw2\.h5: not found; run Step 6 first"):
        ps_scn_filt.run(tmp_path, parms)
    with pytest.raises(StampsError, match="scn_kriging_flag"):
        ps_scn_filt.run(tmp_path, parms | {"scn_kriging_flag": "y"})
    _workspace(
        tmp_path,
        xy,
        day,
        2,
        np.zeros((20, 6)),
        {"ph_scla": np.zeros((19, 6)), "C_ps_uw": np.zeros(19), "ph_ramp": np.zeros((0, 0))},
    )
    with pytest.raises(StampsError, match=r"scla2\.h5: has 19 PS but ps2\.h5 has 20; run Step 7"):
        ps_scn_filt.run(tmp_path, parms)


def test_scn_small_baseline_run_uses_all_images(tmp_path):
    """SB runs filter the single-master phase of every image (drop_ifg_index counts SB ifgs)."""
    rng = np.random.default_rng(12)
    n_ps, n_image, mi = 120, 14, 6
    xy = _points(n_ps, 1200.0, rng)
    day = datenum("20200101") + 12.0 * np.arange(n_image)
    ph = rng.normal(0, 1.0, (n_ps, n_image)) + _smooth_fields(xy, n_image, rng)
    ph[:, mi] = 0.0
    ps_dir, sb_dir = tmp_path / "ps", tmp_path / "sb"
    _workspace(ps_dir, xy, day, mi, ph, None)
    _workspace(sb_dir, xy, day, mi, ph, None)
    ps = load_product(sb_dir / "ps2.h5")
    save_product(sb_dir / "ps2.h5", ps | {"n_ifg": 30})
    want = load_product(ps_scn_filt.run(ps_dir, default_parms() | {"scn_deramp_ifg": "all"}))
    got = load_product(
        ps_scn_filt.run(
            sb_dir,
            default_parms(small_baseline=True)
            | {"drop_ifg_index": [2, 3], "scn_deramp_ifg": "all"},
        )
    )
    assert got["ph_scn_slave"].shape == (n_ps, n_image)
    assert got["ph_ramp"].shape == (n_ps, n_image)
    np.testing.assert_allclose(got["ph_scn_slave"], want["ph_scn_slave"], atol=1e-6)

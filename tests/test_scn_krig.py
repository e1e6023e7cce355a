"""Step 8 with scn_kriging_flag 'y' (ps_scn_filt_krig): its variogram and kriging numerics
against direct transcriptions of ps_fit_vario / ps_kriging, and the step on synthetic stacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from factories import ps_product, scene_points, write_workspace
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve

from stamps_python.io.products import load_product
from stamps_python.numerics.kriging import (
    arc_model_design,
    empirical_variogram,
    exponential_variogram,
    fit_variogram,
    integrate_arcs,
    ordinary_kriging,
    spatial_kriging,
    temporal_kriging,
)
from stamps_python.numerics.scn_filter import time_lowpass_weights
from stamps_python.numerics.triangulation import delaunay_edges
from stamps_python.parms import default_parms, write_parms
from stamps_python.pipeline import run_steps
from stamps_python.steps import ps_scn_filt, ps_scn_filt_krig
from stamps_python.utils import StampsError, datenum

KRIG = default_parms() | {"scn_kriging_flag": "y"}


def _stamps_kriging(x, z, x0, n_max, dx_max, a, c1, c2):
    """ps_kriging, method 2 (ordinary), cv_model [1 NaN c2; 2 a c1], transcribed directly."""
    dx = np.hypot(x[:, 0] - x0[0], x[:, 1] - x0[1])
    index = np.argsort(dx, kind="stable")[: min(n_max, len(x))]
    index = index[dx[index] < dx_max]
    x, z = x[index], z[index]
    n = len(x)
    h = np.hypot(x[:, None, 0] - x[None, :, 0], x[:, None, 1] - x[None, :, 1])
    h0 = np.hypot(x[:, 0] - x0[0], x[:, 1] - x0[1])
    k = c2 * np.eye(n) + c1 * np.exp(-h / a)
    k0 = c1 * np.exp(-h0 / a)
    k = np.block([[k, np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    k0 = np.r_[k0, 1.0]
    w = np.linalg.solve(k, k0)
    avg = z.mean()
    return float(w[:n] @ (z - avg) + avg)


def test_empirical_variogram_follows_ps_fit_vario_bins() -> None:
    rng = np.random.default_rng(4)
    coords = rng.uniform(0, 1000, (120, 2))
    z = rng.normal(0, 1, (120, 3))
    centres, semi, count = empirical_variogram(coords, z, 600.0, 13)
    lags = np.linspace(0, 600, 13)
    i, j = np.triu_indices(120, 1)
    d = np.hypot(*(coords[i] - coords[j]).T)
    want_c, want_s, want_n = [], [], []
    for v in range(12):
        inside = (d >= lags[v]) & (d < lags[v + 1])
        if inside.any():
            want_c.append((lags[v] + lags[v + 1]) / 2)
            want_s.append(0.5 * np.mean((z[i[inside]] - z[j[inside]]) ** 2, axis=0))
            want_n.append(inside.sum())
    keep = round(12 / 1.75)  # ps_fit_vario keeps the first round((Nlags - 1) / 1.75) bins
    assert len(centres) == keep == 7
    np.testing.assert_allclose(centres, want_c[:keep])
    np.testing.assert_allclose(semi, np.array(want_s[:keep]), rtol=1e-12)
    np.testing.assert_array_equal(count, want_n[:keep])
    # 1-D (time, second coordinate 0): empty bins are dropped before the first 14 are kept, so
    # lags beyond 14 bin widths (0.875 years) stay when nearer bins are empty
    years = np.r_[0.0, 0.1, 0.2, 1.0, 1.1]
    c1d, _, n1d = empirical_variogram(np.c_[years, 0 * years], np.arange(5.0), 1.5, 25)
    np.testing.assert_array_equal(n1d, [3, 1, 1, 2, 2, 1])
    assert c1d[-1] == pytest.approx(1.125 - 0.03125)


def test_fit_variogram_recovers_model_and_respects_bounds() -> None:
    h = np.linspace(0.03, 0.85, 14)
    a, c1, c2 = fit_variogram(h, exponential_variogram(h, 0.3, 0.8, 0.2), 0.25, 1.0, 2.0)
    np.testing.assert_allclose([a, c1, c2], [0.3, 0.8, 0.2], rtol=1e-4)
    lags = np.linspace(517, 16000, 16)
    got = fit_variogram(lags, exponential_variogram(lags, 3000.0, 0.7, 0.05), 15000, 1, 1)
    np.testing.assert_allclose(got, [3000.0, 0.7, 0.05], rtol=1e-3)
    # a decreasing variogram: no negative sill or nugget
    got = fit_variogram(h, 1.0 - h, 0.25, 1.0, 2.0)
    assert min(got) >= 0
    assert np.all(np.isnan(fit_variogram(np.zeros(0), np.zeros(0), 1, 1, 1)))


def test_ordinary_kriging_matches_ps_kriging() -> None:
    rng = np.random.default_rng(6)
    x = rng.uniform(0, 5000, (80, 2))
    z = rng.normal(0, 1, 80)
    for x0, n_max, dx_max in (([2500, 2500], 50, 2000.0), ([100, 4900], 10, 8000.0)):
        want = _stamps_kriging(x, z, np.asarray(x0, float), n_max, dx_max, 1500.0, 0.8, 0.3)
        got = ordinary_kriging(x, z, x0, 1500.0, 0.8, 0.3, n_max, dx_max)
        assert got == pytest.approx(want, abs=1e-10)
    # without nugget kriging interpolates exactly; with it the observation is smoothed
    assert ordinary_kriging(x, z, x[7], 1500.0, 0.8, 0.0, 50, 1e9) == pytest.approx(z[7])
    smooth = ordinary_kriging(x, z, x[7], 1500.0, 0.8, 0.5, 50, 1e9)
    assert abs(smooth - z[7]) > 1e-3
    assert ordinary_kriging(x, np.full(80, 2.5), [10, 20], 800.0, 1.0, 0.1, 30, 1e9) == (
        pytest.approx(2.5)
    )
    assert np.isnan(ordinary_kriging(x, z, [-1e6, 0], 100.0, 1.0, 0.1, 10, 50.0))


def test_batched_kriging_equals_single_calls() -> None:
    rng = np.random.default_rng(8)
    years = 18 + np.cumsum(rng.choice([0.033, 0.066, 0.066], 30))
    vals = rng.normal(0, 1, (5, 30))
    a = np.array([0.2, 0.5, 1.0, 0.05, 3.0])
    c1 = np.array([0.5, 1.0, 0.2, 0.7, 1.5])
    c2 = np.array([0.3, 0.1, 0.6, 0.2, 0.0])
    for leave_one_out in (True, False):
        got = temporal_kriging(years, vals, a, c1, c2, 12, leave_one_out)
        for r in range(5):
            for nn in range(30):
                use = np.flatnonzero(years != years[nn]) if leave_one_out else np.arange(30)
                pts = np.c_[years[use], 0 * use]
                want = _stamps_kriging(
                    pts, vals[r, use], (years[nn], 0.0), 12, 4 * a[r], a[r], c1[r], c2[r]
                )
                np.testing.assert_allclose(got[r, nn], want, atol=1e-9)
    xy = rng.uniform(0, 3000, (60, 2))
    z = rng.normal(0, 1, (60, 2))
    vario = np.array([[400.0, 0.9, 0.2], [2000.0, 0.5, 0.5]])
    got = spatial_kriging(xy, z, vario, n_max=15)
    for k in range(2):
        for i in range(60):
            want = _stamps_kriging(xy, z[:, k], xy[i], 15, 4 * vario[k, 0], *vario[k])
            np.testing.assert_allclose(got[i, k], want, atol=1e-9)


def test_integrate_arcs_least_squares() -> None:
    rng = np.random.default_rng(2)
    xy = rng.uniform(0, 1000, (40, 2))
    edges = delaunay_edges(xy)
    field = rng.normal(0, 1, (40, 2))
    out, solved = integrate_arcs(edges, 40, field[edges[:, 1]] - field[edges[:, 0]])
    np.testing.assert_allclose(out, field - field[0], atol=1e-10)
    assert solved.all()
    dph = rng.normal(0, 1, (len(edges), 2))  # not integrable: least squares, PS 1 fixed
    n_e = len(edges)
    A = coo_matrix(
        (np.r_[-np.ones(n_e), np.ones(n_e)], (np.tile(np.arange(n_e), 2), edges.T.ravel())),
        shape=(n_e, 40),
    ).tocsc()[:, 1:]
    want = spsolve((A.T @ A).tocsc(), A.T @ dph)
    got, _ = integrate_arcs(edges, 40, dph)
    np.testing.assert_allclose(got[1:], want, atol=1e-9)
    got, solved = integrate_arcs(edges, 41, dph)  # a point on no arc
    assert not solved[40] and np.all(got[40] == 0)


def _field(rng: np.random.Generator, xy: np.ndarray, n: int, extent: float, corr: float):
    """n random fields of ~exponential covariance (length ``corr`` m), unit std, at ``xy``."""
    cell = extent / 200
    ng = 201
    f = np.fft.fftfreq(2 * ng, cell)
    spec = np.sqrt((1 + (2 * np.pi * np.hypot(f[:, None], f[None, :]) * corr) ** 2) ** -1.5)
    ix = np.clip((xy / cell).astype(int), 0, ng - 1)
    out = np.empty((len(xy), n))
    for i in range(n):
        w = rng.normal(size=(2 * ng, 2 * ng)) + 1j * rng.normal(size=(2 * ng, 2 * ng))
        g = np.fft.ifft2(w * spec).real[:ng, :ng]
        out[:, i] = (g / g.std())[ix[:, 1], ix[:, 0]]
    return out


def _stack(run: Path, xy, day, mi, ph, c_ps_uw) -> None:
    n_ps, n_img = ph.shape
    write_workspace(
        run,
        ps2=ps_product(xy, day, mi, np.zeros(n_img)),
        phuw2={"ph_uw": ph.astype(np.float32)},
        scla2={
            "ph_scla": np.zeros((n_ps, n_img), np.float32),
            "C_ps_uw": c_ps_uw,
            "ph_ramp": np.zeros((0, 0)),
            "K_ps_uw": np.zeros(n_ps),
        },
    )


@pytest.fixture(scope="module")
def seasonal_run(tmp_path_factory):
    """700 PS over 40 km x 40 km, 60 images 24 days apart: an atmosphere of 4 km exponential
    covariance (1 rad), a bowl of 2 rad/yr and 3 rad seasonal deformation, 0.3 rad noise."""
    rng = np.random.default_rng(5)
    n_ps, n_img, mi, extent = 700, 60, 30, 40000.0
    xy = scene_points(rng, n_ps, extent).astype(np.float32).astype(np.float64)
    day = datenum("20180101") + 24.0 * np.arange(n_img)
    aps = _field(rng, xy, n_img, extent, 4000.0)
    bowl = np.exp(-np.sum((xy - extent / 2) ** 2, axis=1) / (2 * (extent / 6) ** 2))
    season = np.sin(2 * np.pi * (day - day[0]) / 365.25)
    defo = bowl[:, None] * (2 / 365.0 * (day - day[mi]) + 3.0 * (season - season[mi]))
    ph = aps[:, [mi]] - aps + defo + rng.normal(0, 0.3, (n_ps, n_img))
    ph[:, mi] = 0.0
    runs = {}
    for name, parms in (("filt", default_parms()), ("krig", KRIG)):
        runs[name] = tmp_path_factory.mktemp(f"scn_{name}")
        _stack(runs[name], xy, day, mi, ph, aps[:, mi])
    out_f = load_product(ps_scn_filt.run(runs["filt"], default_parms()))
    out_k = load_product(ps_scn_filt_krig.run(runs["krig"], KRIG))
    return {"filt": out_f, "krig": out_k, "aps": aps, "mi": mi, "run": runs["krig"], "xy": xy}


def test_kriging_removes_the_noise_field_at_least_as_well_as_ps_scn_filt(seasonal_run):
    r = seasonal_run
    mi, aps = r["mi"], r["aps"]
    slaves = np.setdiff1d(np.arange(aps.shape[1]), [mi])
    truth = -(aps - aps[0])[:, slaves]

    def rmse(out):
        return float(np.sqrt(np.mean((out["ph_scn_slave"][:, slaves] - truth) ** 2)))

    e_krig, e_filt, size = rmse(r["krig"]), rmse(r["filt"]), float(np.sqrt(np.mean(truth**2)))
    print(
        f"SCN RMSE: ps_scn_filt_krig {e_krig:.3f} rad, ps_scn_filt {e_filt:.3f} rad, of {size:.3f}"
    )
    assert e_krig < 0.85 * e_filt
    assert e_krig < 0.45 * size
    # what is left after removing the screen: the deformation and noise, not the atmosphere
    resid = (-(aps - aps[0]))[:, slaves] - r["krig"]["ph_scn_slave"][:, slaves]
    assert np.corrcoef(resid.ravel(), truth.ravel())[0, 1] < 0.45


def test_kriging_products(seasonal_run):
    out, run = seasonal_run["krig"], seasonal_run["run"]
    n_ps, mi = len(seasonal_run["xy"]), seasonal_run["mi"]
    assert out["ph_scn_slave"].shape == (n_ps, 60) and out["ph_scn_slave"].dtype == np.float32
    assert np.all(out["ph_scn_slave"][:, mi] == 0) and np.all(out["ph_scn_slave"][0] == 0)
    assert out["ph_ramp"].shape == (n_ps, 60)  # every interferogram used is deramped
    assert np.all(out["ph_hpt"][0] == 0)
    screen = out["ph_scn_slave"].astype(np.float64)
    screen[:, mi] = -out["ph_scn_master"]
    ramp = out["ph_ramp"] - out["ph_ramp"][0]
    np.testing.assert_allclose(out["ph_noise_res"], out["ph_hpt"] - (screen - ramp), atol=1e-4)
    vario = out["aps_variogram"]
    assert vario.shape == (60, 3) and np.all(vario >= 0)
    print("median spatial variogram (range m, sill, nugget):", np.round(np.median(vario, 0), 3))
    assert 2000 < np.median(vario[:, 0]) < 12000  # the atmosphere's 4 km, as an exponential
    defo = load_product(run / "modeled_defo_edges.h5")
    n_edges = defo["modeled_defo_edges"].shape[0]
    assert defo["modeled_defo_edges"].shape == (n_edges, 5)
    np.testing.assert_allclose(defo["A_time"], arc_model_design(defo["years"]))
    assert np.sum(~np.isnan(defo["a"])) > 0.8 * n_edges
    tv = load_product(run / "temp_vario.h5")  # the arcs were kriged in time
    assert tv["dph"].shape == (n_edges, 60) and tv["ind_in"].sum() > 50
    ue = load_product(run / "unwrapping_errors_edges.h5")
    assert ue["unwrapping_errors"].dtype == np.int8
    np.testing.assert_allclose(
        tv["corrected_dph"], tv["dph"] + 2 * np.pi * ue["unwrapping_errors"], atol=1e-5
    )


def _small_stack(rng: np.random.Generator, n_ps: int = 300, n_img: int = 40):
    xy = scene_points(rng, n_ps, 6000.0).astype(np.float32).astype(np.float64)
    day = datenum("20190105") + 30.0 * np.arange(n_img)
    return xy, day


def test_time_filter_fallback_equals_per_ps_filter(tmp_path, monkeypatch):
    """With too few reliable arc variograms the arcs get ps_scn_filt's Gaussian time filter
    after the per-arc model; both are linear, so ph_hpt is that filter applied per PS."""
    rng = np.random.default_rng(3)
    xy, day = _small_stack(rng)
    ph = rng.normal(0, 1.0, (len(xy), len(day)))
    ph[:, 20] = 0
    _stack(tmp_path, xy, day, 20, ph, np.zeros(len(xy)))
    (tmp_path / "temp_vario.h5").write_bytes(b"stale")
    monkeypatch.setattr(ps_scn_filt_krig, "MIN_RELIABLE_ARCS", 10**9)
    monkeypatch.setattr(ps_scn_filt_krig, "MAX_OB_VARIO", 300)
    out = load_product(ps_scn_filt_krig.run(tmp_path, KRIG | {"scn_time_win": 120.0}))
    assert not (tmp_path / "temp_vario.h5").exists()
    assert not (tmp_path / "unwrapping_errors_edges.h5").exists()
    x = ph.astype(np.float32).astype(np.float64)
    G = np.c_[np.ones(len(xy)), xy]
    x -= G @ np.linalg.lstsq(G, x, rcond=None)[0]
    A = arc_model_design((day - datenum("20000101")) / 365.25)
    x -= x @ A @ np.linalg.pinv(A)
    x -= x @ time_lowpass_weights(day, 120.0, 20).T
    np.testing.assert_allclose(out["ph_hpt"], x - x[0], atol=2e-4)


def test_unwrapping_errors_are_flagged_on_the_arcs_of_the_pixel(tmp_path):
    """A per-PS signal correlated over about a year makes the arc variograms reliable; a 2 pi
    jump of one PS in one image is flagged on its arcs in that image, with the sign that
    corrects it. Run through stamps_main's Step 8 with scn_kriging_flag 'y'."""
    rng = np.random.default_rng(9)
    xy, day = _small_stack(rng)
    n_ps, n_img = len(xy), len(day)
    lag = np.abs(day[:, None] - day[None, :]) / 365.25
    walk = (
        rng.normal(0, 1, (n_ps, n_img))
        @ np.linalg.cholesky(np.exp(-lag / 1.0) + 1e-9 * np.eye(n_img)).T
    )
    ph = walk + rng.normal(0, 0.2, (n_ps, n_img))
    ph[:, 20] = 0
    p = int(np.argmin(np.sum((xy - 3000.0) ** 2, axis=1)))  # a PS in the middle
    ph[p, 27] += 2 * np.pi
    _stack(tmp_path, xy, day, 20, ph, np.zeros(n_ps))
    (tmp_path / "PATCH_1").mkdir()
    (tmp_path / "patch.list").write_text("PATCH_1\n")
    write_parms(tmp_path, overrides={"scn_kriging_flag": "y"})
    run_steps(tmp_path, 8, 8)
    ue = load_product(tmp_path / "unwrapping_errors_edges.h5")
    err, edges = ue["unwrapping_errors"], ue["edges"]
    mine = np.flatnonzero((edges == p).any(axis=1))
    sign = np.where(edges[mine, 1] == p, -1, 1)  # dph = ph[second] - ph[first]
    np.testing.assert_array_equal(err[mine, 27], sign)
    others = np.ones(err.shape, dtype=bool)
    others[mine, 27] = False
    print(f"flags: {len(mine)} of the jumped PS's arcs, {np.count_nonzero(err[others])} others")
    assert np.count_nonzero(err[others]) <= 0.002 * others.sum()
    assert load_product(tmp_path / "scn2.h5")["ph_scn_slave"].shape == (n_ps, n_img)


def test_missing_inputs(tmp_path):
    with pytest.raises(StampsError, match=r"ps2\.h5: not found; run Step 5 first"):
        ps_scn_filt_krig.run(tmp_path, KRIG)

"""Step 7 (ps_calc_scla, ps_smooth_scla) and ps_deramp: known answers on hand-built workspaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from factories import days, ps_product, scene_points, write_workspace
from scipy.optimize import linprog
from scipy.spatial import Delaunay

from stamps_python.io.products import load_product, save_product
from stamps_python.numerics.deramp import ps_deramp
from stamps_python.parms import default_parms
from stamps_python.steps import ps_calc_scla, ps_smooth_scla
from stamps_python.utils import StampsError

LAMBDA = 0.0555
LL0 = np.array([10.02, 45.013])


def _dates(n: int, rng: np.random.Generator) -> np.ndarray:
    """Irregular acquisition datenums (12 or 24 days apart)."""
    return days("20190105", n, rng.choice([12.0, 24.0], size=n - 1))


def _xy(n_ps: int, rng: np.random.Generator, size: float = 3000.0) -> np.ndarray:
    return np.column_stack([np.arange(1, n_ps + 1), scene_points(rng, n_ps, size)])


def _ps_product(
    xy: np.ndarray, day: np.ndarray, bperp: np.ndarray, master_ix: int, **kw: object
) -> dict:
    """ps2 of the PS ``xy`` (id, x, y) with a rough lon, lat around (10, 45)."""
    lonlat = np.column_stack([10.0 + xy[:, 1] / 78000.0, 45.0 + xy[:, 2] / 111000.0])
    return ps_product(xy[:, 1:], day, master_ix, bperp, lonlat=lonlat, ll0=LL0, **kw)


def make_ps_run(
    run: Path,
    *,
    n_ps: int = 300,
    n_ifg: int = 36,
    seed: int = 1,
    c_amp: float = 0.3,
    noise: float = 0.05,
    k_tilt: float = 0.0,
) -> dict:
    """Single-master workspace: ph_uw = C + K * bperp + v * t + noise (master column 0)."""
    rng = np.random.default_rng(seed)
    xy = _xy(n_ps, rng)
    x, y = xy[:, 1], xy[:, 2]
    day = _dates(n_ifg, rng)
    mi = n_ifg // 2
    bperp = rng.normal(0.0, 120.0, n_ifg)
    bperp[mi] = 0.0
    bpm = np.outer(1.0 + 0.01 * (y / 3000.0 - 0.5), bperp)  # baselines vary slightly over the scene
    K = 0.004 * np.sin(2 * np.pi * x / 2500) * np.cos(2 * np.pi * y / 3000) + 0.002
    K = K + k_tilt * (x / 3000.0 - 0.5)
    v = (1.0 + 0.5 * np.sin(2 * np.pi * x / 4000)) / 365.0
    C = c_amp * np.cos(2 * np.pi * (x + y) / 3500)
    t = day - day[mi]
    ph = C[:, None] + K[:, None] * bpm + v[:, None] * t + rng.normal(0, noise, (n_ps, n_ifg))
    ph[:, mi] = 0.0
    ifg_std = rng.uniform(10.0, 30.0, n_ifg)
    ifg_std[mi] = 0.0
    write_workspace(
        run,
        ps2=_ps_product(xy, day, bperp, mi),
        phuw2={"ph_uw": ph.astype(np.float32), "msd": np.zeros(n_ifg)},
        bp2={"bperp_mat": np.delete(bpm, mi, axis=1).astype(np.float32)},
        ifgstd2={"ifg_std": ifg_std},
    )
    return {
        "K": K,
        "C": C,
        "v": v,
        "bpm": bpm.astype(np.float32),
        "day": day,
        "mi": mi,
        "ph": ph.astype(np.float32),
        "xy": xy,
        "ifg_std": ifg_std,
    }


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a))))


def _plane(xy_m: np.ndarray, data: np.ndarray) -> np.ndarray:
    A = np.column_stack([xy_m / 1000.0, np.ones(len(xy_m))])
    return A @ np.linalg.lstsq(A, data, rcond=None)[0]


# ------------------------------------------------------------------------ ps_calc_scla


def test_scla_recovers_look_angle_error_and_master_aoe(tmp_path):
    truth = make_ps_run(tmp_path)
    path = ps_calc_scla.run(tmp_path, default_parms())
    assert path == tmp_path / "scla2.h5"
    s = load_product(path)
    K, C = truth["K"], truth["C"]
    # referenced to the mean of all PS (ref_lon/ref_lat at +-inf)
    k_err = s["K_ps_uw"] - (K - K.mean())
    assert _rms(k_err) < 0.08 * np.std(K)
    assert np.corrcoef(s["K_ps_uw"], K)[0, 1] > 0.995
    assert _rms(s["C_ps_uw"] - (C - C.mean())) < 0.03
    # ph_scla = K_ps_uw * bperp with the master column (0 m) in place
    np.testing.assert_allclose(s["ph_scla"], s["K_ps_uw"][:, None] * truth["bpm"], atol=1e-5)
    assert s["ph_scla"].shape == truth["ph"].shape and np.all(s["ph_scla"][:, truth["mi"]] == 0)
    # removing ph_scla removes the baseline-correlated phase: per-PS slope vs bperp collapses
    ph_ref = truth["ph"] - truth["ph"].mean(axis=0)
    others = np.setdiff1d(np.arange(ph_ref.shape[1]), [truth["mi"]])
    bp = truth["bpm"][:, others]

    def slope(ph):
        d = ph[:, others] - ph[:, others].mean(axis=1, keepdims=True)
        b = bp - bp.mean(axis=1, keepdims=True)
        return np.sum(d * b, axis=1) / np.sum(b * b, axis=1)

    before, after = slope(ph_ref), slope(ph_ref - s["ph_scla"])
    assert _rms(after) < 0.1 * _rms(before)
    assert s["ph_ramp"].size == 0
    np.testing.assert_allclose(np.diag(s["ifg_vcm"]), np.radians(truth["ifg_std"]) ** 2)


@pytest.mark.parametrize("coest", [True, False])
def test_scla_equals_stamps_least_squares(tmp_path, coest):
    """Per-PS MATLAB recipe: lscov on consecutive differences, then C from a weighted fit."""
    truth = make_ps_run(tmp_path, n_ps=60, n_ifg=12, seed=5, noise=0.3)
    s = load_product(ps_calc_scla.run(tmp_path, default_parms(), coest_mean_vel=coest))
    ph = truth["ph"].astype(np.float64)
    ph = ph - ph.mean(axis=0)
    day, mi, bpm = truth["day"], truth["mi"], truth["bpm"].astype(np.float64)
    dph, dbp, dday = np.diff(ph, axis=1), np.diff(bpm, axis=1).mean(axis=0), np.diff(day)
    cols = [np.ones(len(dday)), dbp] + ([dday] if coest else [])
    G = np.column_stack(cols)
    others = np.setdiff1d(np.arange(len(day)), [mi])
    W = np.diag(1.0 / np.radians(truth["ifg_std"][others]) ** 2)
    for i in range(ph.shape[0]):
        m = np.linalg.lstsq(G, dph[i], rcond=None)[0]
        assert s["K_ps_uw"][i] == pytest.approx(m[1], abs=1e-9)
        resid = ph[i, others] - s["ph_scla"][i, others]
        if coest:
            G2 = np.column_stack([np.ones(len(others)), day[others] - day[mi]])
            c = np.linalg.solve(G2.T @ W @ G2, G2.T @ W @ resid)[0]
        else:
            c = resid.mean()
        assert s["C_ps_uw"][i] == pytest.approx(c, abs=1e-5)


def test_scla_deramp_removes_planar_ramps(tmp_path):
    truth = make_ps_run(tmp_path, seed=2, k_tilt=0.004)
    rng = np.random.default_rng(22)
    xy_m = truth["xy"][:, 1:3]
    n_ifg = truth["ph"].shape[1]
    coef = rng.normal(0, 1.0, (3, n_ifg))  # rad per km in x and y, and an offset
    ramps = np.column_stack([xy_m / 1000.0, np.ones(len(xy_m))]) @ coef
    ramps[:, truth["mi"]] = 0.0
    save_product(tmp_path / "phuw2.h5", {"ph_uw": (truth["ph"] + ramps).astype(np.float32)})
    parms = default_parms() | {"scla_deramp": "y"}
    s = load_product(ps_calc_scla.run(tmp_path, parms))
    # the ramp is the plane fitted to each interferogram: injected ramp + plane of the signal
    expected = ramps + _plane(xy_m, truth["ph"].astype(np.float64))
    np.testing.assert_allclose(s["ph_ramp"], expected, atol=2e-5)
    # K loses only its own planar part (removed with the ramps)
    K = truth["K"]
    k_expect = K - _plane(xy_m, K[:, None])[:, 0]
    assert _rms(s["K_ps_uw"] - k_expect) < 0.08 * np.std(K)
    assert _rms(s["K_ps_uw"] - (K - K.mean())) > 0.2 * np.std(K)  # K's plane did go


def test_scla_drop_index_excludes_interferograms(tmp_path):
    clean_dir, bad_dir = tmp_path / "clean", tmp_path / "bad"
    make_ps_run(clean_dir, seed=3)
    truth = make_ps_run(bad_dir, seed=3)
    ph = truth["ph"].copy()
    rng = np.random.default_rng(33)
    ph[:, [3, 10]] += rng.uniform(-20, 20, (ph.shape[0], 2)).astype(np.float32)
    save_product(bad_dir / "phuw2.h5", {"ph_uw": ph})
    parms = default_parms() | {"scla_drop_index": [4, 11]}
    clean = load_product(ps_calc_scla.run(clean_dir, parms))
    dropped = load_product(ps_calc_scla.run(bad_dir, parms))
    np.testing.assert_allclose(dropped["K_ps_uw"], clean["K_ps_uw"], atol=1e-9)
    np.testing.assert_allclose(dropped["C_ps_uw"], clean["C_ps_uw"], atol=1e-5)
    kept = load_product(ps_calc_scla.run(bad_dir, default_parms()))
    assert _rms(kept["K_ps_uw"] - clean["K_ps_uw"]) > 0.05 * np.std(truth["K"])
    assert list((bad_dir).glob("tmp_scla2_*.h5")), "the previous scla2 is kept as StaMPS does"


def test_scla_reference_area_and_tropo_correction(tmp_path):
    truth = make_ps_run(tmp_path, seed=4)
    lonlat = load_product(tmp_path / "ps2.h5", ["lonlat"])["lonlat"]
    lon_lim = [float(np.percentile(lonlat[:, 0], 20)), float(np.percentile(lonlat[:, 0], 45))]
    lat_lim = [float(np.percentile(lonlat[:, 1], 30)), float(np.percentile(lonlat[:, 1], 70))]
    ref = (
        (lonlat[:, 0] > lon_lim[0])
        & (lonlat[:, 0] < lon_lim[1])
        & (lonlat[:, 1] > lat_lim[0])
        & (lonlat[:, 1] < lat_lim[1])
    )
    parms = default_parms() | {"ref_lon": lon_lim, "ref_lat": lat_lim}
    s = load_product(ps_calc_scla.run(tmp_path, parms))
    # every estimate is linear in the referenced data, whose mean over the reference PS is 0
    assert abs(s["K_ps_uw"][ref].mean()) < 1e-9
    assert abs(s["K_ps_uw"].mean()) > 1e-5
    # a TRAIN correction (tca2) is subtracted before the fit
    rng = np.random.default_rng(44)
    tropo = rng.normal(0, 0.5, truth["ph"].shape).astype(np.float32)
    tropo[:, truth["mi"]] = 0.0
    save_product(tmp_path / "tca2.h5", {"ph_tropo_linear": tropo})
    save_product(tmp_path / "phuw2.h5", {"ph_uw": truth["ph"] + tropo})
    s2 = load_product(
        ps_calc_scla.run(tmp_path, parms | {"subtr_tropo": "y", "tropo_method": "a_l"})
    )
    np.testing.assert_allclose(s2["K_ps_uw"], s["K_ps_uw"], atol=1e-8)
    with pytest.raises(StampsError, match="ph_tropo_era"):
        ps_calc_scla.run(tmp_path, parms | {"subtr_tropo": "y", "tropo_method": "a_e"})
    with pytest.raises(StampsError, match="reference area"):
        ps_calc_scla.run(tmp_path, parms | {"ref_lon": [0.0, 1.0]})


def test_scla_l1_resists_outliers(tmp_path):
    truth = make_ps_run(tmp_path, n_ps=120, seed=6)
    ph = truth["ph"].copy()
    rng = np.random.default_rng(66)
    bad = rng.random(ph.shape) < 0.04
    bad[:, truth["mi"]] = False
    ph[bad] += rng.choice([-6.0, 6.0], size=int(bad.sum())).astype(np.float32)
    save_product(tmp_path / "phuw2.h5", {"ph_uw": ph})
    l2 = load_product(ps_calc_scla.run(tmp_path, default_parms()))["K_ps_uw"]
    l1 = load_product(ps_calc_scla.run(tmp_path, default_parms() | {"scla_method": "L1"}))
    K = truth["K"] - truth["K"].mean()
    assert _rms(l1["K_ps_uw"] - K) < 0.5 * _rms(l2 - K)
    # it is the least-absolute-deviation solution (checked by linear programming)
    php = ph.astype(np.float64) - ph.astype(np.float64).mean(axis=0)
    d_all = np.diff(php, axis=1)
    G = np.column_stack(
        [
            np.ones(d_all.shape[1]),
            np.diff(truth["bpm"].astype(np.float64), axis=1).mean(axis=0),
            np.diff(truth["day"]),
        ]
    )
    n, p = G.shape
    for i in (0, 57, 119):
        c = np.concatenate([np.zeros(p), np.ones(n)])
        A = np.block([[G, -np.eye(n)], [-G, -np.eye(n)]])
        res = linprog(
            c,
            A_ub=A,
            b_ub=np.concatenate([d_all[i], -d_all[i]]),
            bounds=[(None, None)] * p + [(0, None)] * n,
        )
        assert res.status == 0
        assert l1["K_ps_uw"][i] == pytest.approx(res.x[1], abs=1e-5)


def test_scla_small_baseline_passes(tmp_path):
    rng = np.random.default_rng(7)
    n_ps, n_image = 200, 14
    xy = _xy(n_ps, rng)
    day = _dates(n_image, rng)
    mi = 6
    pairs = [(i, j) for i in range(n_image) for j in (i + 1, i + 2) if j < n_image]
    ix = np.array(pairs)
    G = np.zeros((len(ix), n_image))
    G[np.arange(len(ix)), ix[:, 0]] = -1
    G[np.arange(len(ix)), ix[:, 1]] = 1
    b_img = rng.normal(0, 100, n_image)
    b_img -= b_img[mi]
    bp_img = np.outer(1 + 0.01 * (xy[:, 2] / 3000 - 0.5), b_img)
    K = 0.003 * np.cos(2 * np.pi * xy[:, 1] / 2000) + 0.001
    v = 0.8 / 365 * np.ones(n_ps)
    phi = K[:, None] * bp_img + v[:, None] * (day - day[mi]) + rng.normal(0, 0.05, (n_ps, n_image))
    ph_sb = phi @ G.T
    ps = _ps_product(xy, day, G @ b_img, mi, ifgday_ix=ix)
    save_product(tmp_path / "ps2.h5", ps)
    save_product(tmp_path / "phuw_sb2.h5", {"ph_uw": ph_sb.astype(np.float32)})
    sb_cov = np.diag(rng.uniform(0.1, 0.4, len(ix)))
    sm = phi - phi[:, [mi]]
    save_product(
        tmp_path / "phuw2.h5",
        {"ph_uw": sm.astype(np.float32), "unwrap_ifg_index_sm": np.arange(n_image)},
    )
    save_product(tmp_path / "phuw_sb_res2.h5", {"sb_cov": sb_cov, "sm_cov": np.eye(n_image)})
    save_product(tmp_path / "bp2.h5", {"bperp_mat": (bp_img @ G.T).astype(np.float32)})
    parms = default_parms(small_baseline=True)
    sb = load_product(ps_calc_scla.run(tmp_path, parms, use_small_baselines=True))
    Kc = K - K.mean()
    assert _rms(sb["K_ps_uw"] - Kc) < 0.1 * np.std(K)
    assert np.all(sb["C_ps_uw"] == 0) and sb["ph_scla"].shape == ph_sb.shape
    # weighted by sb_cov, as lscov(G, ph', sb_cov)
    ph_ref = ph_sb - ph_sb.mean(axis=0)
    Gf = np.column_stack(
        [np.ones(len(ix)), (bp_img @ G.T).mean(axis=0), day[ix[:, 1]] - day[ix[:, 0]]]
    )
    Wf = np.linalg.inv(sb_cov)
    m = np.linalg.solve(Gf.T @ Wf @ Gf, Gf.T @ Wf @ ph_ref.T)
    np.testing.assert_allclose(sb["K_ps_uw"], m[1], atol=1e-8)
    smooth = load_product(ps_smooth_scla.run(tmp_path, parms, use_small_baselines=True))
    assert (tmp_path / "scla_smooth_sb2.h5").is_file() and smooth["ph_scla"].shape == ph_sb.shape
    # single-master pass of the SB run: baselines from the SB ones by least squares
    s = load_product(ps_calc_scla.run(tmp_path, parms))
    assert _rms(s["K_ps_uw"] - Kc) < 0.1 * np.std(K)
    b_sm = bp_img - bp_img[:, [mi]]
    np.testing.assert_allclose(s["ph_scla"], s["K_ps_uw"][:, None] * b_sm, atol=1e-4)


def test_scla_missing_inputs_and_bad_requests(tmp_path):
    parms = default_parms()
    with pytest.raises(StampsError, match=r"ps2\.h5: not found; run Step 5 first"):
        ps_calc_scla.run(tmp_path, parms)
    make_ps_run(tmp_path, n_ps=30, n_ifg=8)
    (tmp_path / "phuw2.h5").unlink()
    with pytest.raises(StampsError, match=r"phuw2\.h5: not found; run Step 6 first"):
        ps_calc_scla.run(tmp_path, parms)
    with pytest.raises(StampsError, match="small_baseline_flag"):
        ps_calc_scla.run(tmp_path, parms, use_small_baselines=True)
    with pytest.raises(StampsError, match=r"scla2\.h5: not found; run ps_calc_scla"):
        ps_smooth_scla.run(tmp_path, parms)
    save_product(tmp_path / "phuw2.h5", {"ph_uw": np.zeros((30, 8), dtype=np.float32)})
    with pytest.raises(StampsError, match=r"phuw_sb_res2\.h5: not found; run Step 6 first"):
        ps_calc_scla.run(tmp_path, default_parms(small_baseline=True))


# ------------------------------------------------------------------------ ps_deramp


def test_ps_deramp_fits_surfaces_and_skips_sparse_columns():
    rng = np.random.default_rng(8)
    xy = _xy(80, rng, size=5000.0)
    xk, yk = xy[:, 1] / 1000, xy[:, 2] / 1000
    plane = 0.3 * xk - 0.2 * yk + 1.5
    quad = 0.05 * xk**2 - 0.02 * yk**2 + 0.03 * xk * yk - 0.4
    noise = rng.normal(0, 0.01, 80)
    ph = np.column_stack([plane + noise, plane, plane]).astype(np.float32)
    ph[:3, 1] = np.nan  # fitted on the others
    ph[6:, 2] = np.nan  # only 6 valid left -> fitted (more than 5)
    sparse_col = np.where(np.arange(80) < 5, 1.0, np.nan)  # 5 valid: not deramped
    ph = np.column_stack([ph, sparse_col]).astype(np.float32)
    out, ramp = ps_deramp({"xy": xy}, ph)
    assert out.dtype == np.float32 and ramp.dtype == np.float64
    np.testing.assert_allclose(ramp[:, 0], _plane(xy[:, 1:3], plane + noise), atol=1e-9)
    np.testing.assert_allclose(ramp[:, 1], plane, atol=1e-5)
    np.testing.assert_allclose(ramp[:, 2], plane, atol=1e-4)
    assert np.all(np.isnan(ramp[:, 3]))
    np.testing.assert_array_equal(out[:, 3], ph[:, 3])
    np.testing.assert_allclose(out[:, 0], noise - (ramp[:, 0] - plane), atol=1e-5)
    assert np.all(np.isnan(out[:3, 1])) and np.allclose(out[3:, 1], 0, atol=1e-5)
    out2, ramp2 = ps_deramp({"xy": xy}, quad[:, None] + 0.0, degree=2)
    np.testing.assert_allclose(ramp2[:, 0], quad, atol=1e-10)
    np.testing.assert_allclose(out2[:, 0], 0, atol=1e-10)


# ------------------------------------------------------------------------ ps_smooth_scla


def test_smooth_scla_clips_to_delaunay_neighbour_range(tmp_path):
    truth = make_ps_run(tmp_path, n_ps=250, seed=9)
    ps_calc_scla.run(tmp_path, default_parms())
    scla = load_product(tmp_path / "scla2.h5")
    rng = np.random.default_rng(99)
    K = scla["K_ps_uw"].copy()
    C = scla["C_ps_uw"].copy()
    spikes = rng.choice(len(K), 12, replace=False)
    K[spikes] += rng.choice([-0.02, 0.02], 12)
    C[spikes[:6]] += 5.0
    save_product(tmp_path / "scla2.h5", scla | {"K_ps_uw": K, "C_ps_uw": C})
    out = load_product(ps_smooth_scla.run(tmp_path, default_parms()))
    xy = truth["xy"][:, 1:3].astype(np.float32).astype(np.float64)
    indptr, nbr = Delaunay(xy).vertex_neighbor_vertices
    k_want, c_want = K.copy(), C.copy()
    for i in range(len(K)):
        nb = nbr[indptr[i] : indptr[i + 1]]
        for vals, want in ((K, k_want), (C, c_want)):
            lo, hi = np.float32(vals[nb].min()), np.float32(vals[nb].max())
            if vals[i] > hi:
                want[i] = hi
            elif vals[i] < lo:
                want[i] = lo
    np.testing.assert_array_equal(out["K_ps_uw"], k_want)
    np.testing.assert_array_equal(out["C_ps_uw"], c_want)
    lonely = [i for i in spikes if not np.isin(nbr[indptr[i] : indptr[i + 1]], spikes).any()]
    assert len(lonely) >= 6
    assert np.all(np.abs(out["K_ps_uw"][lonely] - scla["K_ps_uw"][lonely]) < 0.01)
    np.testing.assert_allclose(out["ph_scla"], k_want[:, None] * truth["bpm"], atol=1e-5)
    assert out["ph_ramp"].size == 0


def test_clip_to_neighbours_ignores_nan_and_isolated_points():
    edges = np.array([[0, 1], [0, 2], [1, 2]])  # point 3 has no arc
    out = ps_smooth_scla.clip_to_neighbours(np.array([5.0, 1.0, np.nan, 7.0]), edges)
    np.testing.assert_array_equal(out, [1.0, 5.0, np.nan, 7.0])

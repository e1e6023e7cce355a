"""export_results and numerics.timeseries on hand-made runs with known answers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from factories import days, ps_product, write_workspace

from stamps_python.export_results import FIXED_FIELDS, cli, write_layer
from stamps_python.io.products import save_product
from stamps_python.numerics.geodesy import llh2local
from stamps_python.numerics.timeseries import (
    bootstrap_velocity_std,
    fit_velocity,
    fit_velocity_cov,
    parse_correction,
    phase_to_mm,
    reference_ps,
    sb_velocity,
    used_ifg_index,
)
from stamps_python.parms import write_parms
from stamps_python.results import Reference, compute_results, load_run
from stamps_python.utils import StampsError, datestr

WAVELENGTH = 0.05546576
LL0 = np.array([-120.50, 37.00])
REPO = Path(__file__).resolve().parents[1]


def _project_out_plane(xy: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``f`` minus its least-squares plane in x, y (km), column by column."""
    a = np.column_stack([xy[:, 0] / 1000.0, xy[:, 1] / 1000.0, np.ones(len(xy))])
    return f - a @ np.linalg.lstsq(a, f, rcond=None)[0]


def make_run(
    root: Path,
    n_ps: int = 300,
    n_dates: int = 14,
    master_ix: int = 5,
    drop_ifg_index: list[int] | None = None,
    ifg_std: np.ndarray | None = None,
    seed: int = 7,
) -> dict:
    """A run after Step 8 whose unwrapped phase is the sum of known terms.

    ph_uw = deformation (linear, velocity v mm/yr) + SCLA + SCN + planar ramp + reference AOE C
    (secondary columns only). Every term but the ramp has no planar part, so deramping removes
    exactly the ramp. Returns the truth.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lonlat = LL0 + rng.uniform(-0.02, 0.02, size=(n_ps, 2))
    xy_m = np.round(llh2local(lonlat, LL0).astype(np.float32) * 1000) / 1000
    xyd = xy_m.astype(np.float32).astype(np.float64)
    day = days("20210105", n_dates, 12.0)
    dates = [datestr(d) for d in day]
    t_yr = (day - day[master_ix]) / 365.25
    bperp = rng.uniform(-120, 120, n_dates)
    bperp[master_ix] = 0.0
    r = np.hypot(*(xyd - xyd.mean(0)).T)
    v = _project_out_plane(xyd, (-15.0 * np.exp(-((r / 800.0) ** 2)))[:, None])[:, 0]  # mm/yr
    disp = v[:, None] * t_yr[None, :]  # mm toward the satellite
    ph_def = -4 * np.pi / WAVELENGTH * disp / 1000.0
    k_ps = _project_out_plane(xyd, rng.normal(0, 0.004, (n_ps, 1)))[:, 0]
    ph_scla = k_ps[:, None] * bperp[None, :]
    ph_scn = _project_out_plane(xyd, rng.normal(0, 0.8, (n_ps, n_dates)))
    ph_scn[:, master_ix] = 0.0
    coef = rng.normal(0, 1.0, (3, n_dates))
    coef[:, master_ix] = 0.0
    a = np.column_stack([xyd[:, 0] / 1000, xyd[:, 1] / 1000, np.ones(n_ps)])
    ramp = a @ coef
    c_ps = _project_out_plane(xyd, rng.normal(0, 1.0, (n_ps, 1)))[:, 0]
    aoe = np.repeat(c_ps[:, None], n_dates, axis=1)
    aoe[:, master_ix] = 0.0
    ph_uw = ph_def + ph_scla + ph_scn + ramp + aoe
    overrides = {"lambda": WAVELENGTH}
    if drop_ifg_index:
        overrides["drop_ifg_index"] = drop_ifg_index
        for k in drop_ifg_index:
            ph_uw[:, k - 1] = rng.normal(0, 50, n_ps)  # garbage in a dropped interferogram
    write_parms(root, overrides=overrides)
    ij = np.column_stack(
        [np.arange(1, n_ps + 1), rng.integers(0, 200, n_ps), rng.integers(0, 400, n_ps)]
    )
    hgt = rng.uniform(100, 400, n_ps)
    coh = rng.uniform(0.5, 1.0, n_ps)
    write_workspace(
        root,
        ps2=ps_product(xy_m, day, master_ix, bperp, ij=ij, lonlat=lonlat, ll0=LL0),
        phuw2={"ph_uw": ph_uw.astype(np.float32).astype(np.float64)},
        scla2={
            "ph_scla": ph_scla,
            "K_ps_uw": k_ps,
            "C_ps_uw": c_ps,
            "ph_ramp": np.zeros_like(ph_scla),
        },
        scn2={"ph_scn_slave": ph_scn},
        hgt2={"hgt": hgt},
        pm2={"coh_ps": coh},
        rc2={"ph_rc": np.exp(1j * ph_uw).astype(np.complex64)},
        ifgstd2=None if ifg_std is None else {"ifg_std": ifg_std},
    )
    return {
        "v": v,
        "disp": disp,
        "ph_uw": ph_uw,
        "ph_scla": ph_scla,
        "ph_scn": ph_scn,
        "ramp": ramp,
        "c_ps": c_ps,
        "t_yr": t_yr,
        "dates": dates,
        "lonlat": lonlat,
        "hgt": hgt,
        "coh": coh,
        "master_ix": master_ix,
        "xy": xyd,
        "day": day,
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("export") / "run"
    return root, make_run(root)


def _mm(ph: np.ndarray) -> np.ndarray:
    return -ph * WAVELENGTH * 1000 / (4 * np.pi)


# --------------------------------------------------------------------------------------------
# numerics


def test_sign_phase_to_mm() -> None:
    # a phase of -4 pi / lambda * d is a displacement d toward the satellite
    assert phase_to_mm(-4 * np.pi / WAVELENGTH * 0.001, WAVELENGTH) == pytest.approx(1.0)
    assert phase_to_mm(np.pi, WAVELENGTH) == pytest.approx(-WAVELENGTH * 1000 / 4)


def test_parse_correction() -> None:
    c = parse_correction("v-DSO")
    assert (c.text, c.kind, c.letters, c.layer_name) == ("v-dso", "v", frozenset("dso"), "ps_v_dso")
    assert not c.single_master
    # upper-case V: SB velocity from the single-master series, a layer of its own
    c = parse_correction("V-do")
    assert (c.text, c.single_master, c.name, c.layer_name) == (
        "v-do",
        True,
        "v-do_sm",
        "ps_v_do_sm",
    )
    assert parse_correction("v").letters == frozenset()
    assert parse_correction("u-dmo").has("m")
    for bad in ("v-x", "w", "v-dd", "v-dm", "vdo", ""):
        with pytest.raises(StampsError):
            parse_correction(bad)


def test_weighted_fit_matches_polyfit() -> None:
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(-1, 2, 15))
    w = rng.uniform(0.2, 3.0, 15)
    y = rng.normal(size=(4, 15))
    vel, icpt = fit_velocity(y, t, w)
    for i in range(4):
        slope, c0 = np.polyfit(t, y[i], 1, w=np.sqrt(w))
        assert vel[i] == pytest.approx(slope, rel=1e-10)
        assert icpt[i] == pytest.approx(c0, rel=1e-10, abs=1e-12)


def test_bootstrap_std_known_answers() -> None:
    rng = np.random.default_rng(3)
    t = np.linspace(-0.5, 1.5, 40)
    exact = 3.0 + 7.0 * t[None, :] * np.ones((5, 1))
    assert np.abs(bootstrap_velocity_std(exact, t, np.ones(40), 50, seed=1)).max() < 1e-9
    sigma = 2.0
    noisy = rng.normal(0, sigma, (3000, 40)) + 5.0 * t
    std = bootstrap_velocity_std(noisy, t, np.ones(40), n_boot=300, seed=5)
    formal = sigma / math.sqrt(((t - t.mean()) ** 2).sum())
    assert np.median(std) / formal == pytest.approx(1.0, abs=0.1)
    again = bootstrap_velocity_std(noisy, t, np.ones(40), n_boot=300, seed=5)
    assert np.array_equal(again, std)  # seeded: reruns are bit-identical
    subset = bootstrap_velocity_std(noisy[:50], t, np.ones(40), n_boot=300, seed=5, chunk=7)
    np.testing.assert_allclose(subset, std[:50], rtol=1e-12)  # same draws for every PS
    other = bootstrap_velocity_std(noisy[:50], t, np.ones(40), n_boot=300, seed=6)
    assert not np.array_equal(other, std[:50])


def test_fit_velocity_cov_is_lscov() -> None:
    # a full covariance: the weighted solution (G' C^-1 G)^-1 G' C^-1 d, by hand
    rng = np.random.default_rng(11)
    t = np.sort(rng.uniform(-1, 1, 12))
    a = rng.normal(size=(12, 12))
    cov = a @ a.T + 12 * np.eye(12)
    d = rng.normal(size=(5, 12)) + 4.0 * t
    vel, icpt, w = fit_velocity_cov(d, t, cov)
    G = np.column_stack([np.ones(12), t])
    ci = np.linalg.inv(cov)
    m = np.linalg.solve(G.T @ ci @ G, G.T @ ci @ d.T)
    np.testing.assert_allclose(vel, m[1], rtol=1e-10)
    np.testing.assert_allclose(icpt, m[0], rtol=1e-10)
    np.testing.assert_allclose(w, 1 / np.diag(cov))
    with pytest.raises(StampsError, match="covariance"):
        fit_velocity_cov(d, t, np.eye(11))


def test_sb_velocity_known_network() -> None:
    # points moving at v mm/yr; SB phase of pair (a, b) is -4 pi / lambda x v x (t_b - t_a)
    day = 738000.0 + np.array([0, 12, 24, 48, 60, 84, 96])
    pairs = np.array(
        [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [3, 4], [3, 5], [4, 5], [4, 6], [5, 6]]
    )
    v_true = np.array([-10.0, 0.0, 3.0, 7.5])
    dt = (day[pairs[:, 1]] - day[pairs[:, 0]]) / 365.25
    ph = -4 * np.pi / WAVELENGTH * (v_true[:, None] / 1000.0) * dt[None, :]
    ph += 0.7  # a constant per pair (the reference removes it)
    vel, std = sb_velocity(
        ph,
        ifgday_ix=pairs,
        day=day,
        use_ix=np.arange(len(pairs)),
        wavelength=WAVELENGTH,
        ref_ix=np.array([1]),
        n_boot=20,
        seed=1,
    )
    np.testing.assert_allclose(vel, v_true - v_true[1], atol=1e-9)
    assert np.abs(std).max() < 1e-6
    # dropping a pair, or a ref_velocity (m/yr), works as for the single-master fit
    vel2, _ = sb_velocity(
        ph,
        ifgday_ix=pairs,
        day=day,
        use_ix=np.arange(1, len(pairs)),
        wavelength=WAVELENGTH,
        ref_ix=np.array([1]),
        ref_velocity=0.002,
        n_boot=5,
    )
    np.testing.assert_allclose(vel2, v_true - v_true[1] + 2.0, atol=1e-9)


def test_used_ifg_index() -> None:
    # drop_ifg_index is 1-based; the master (0-based 2) is never in the fit
    assert used_ifg_index(6, 2, []).tolist() == [0, 1, 3, 4, 5]
    assert used_ifg_index(6, 2, [1, 6]).tolist() == [1, 3, 4]
    assert used_ifg_index(6, 2, [9]).tolist() == [0, 1, 3, 4, 5]  # as MATLAB setdiff


def test_reference_ps_box_and_circle() -> None:
    lonlat = np.array([[-120.50, 37.00], [-120.49, 37.00], [-120.48, 37.01], [-120.50, 37.02]])
    assert reference_ps(lonlat, LL0).tolist() == [0, 1, 2, 3]
    assert reference_ps(lonlat, LL0, ref_radius=-math.inf) is None
    assert reference_ps(lonlat, LL0, ref_lon=(-120.495, -120.47)).tolist() == [1, 2]
    # 0.01 deg of longitude at 37 N is about 889 m
    assert reference_ps(
        lonlat, LL0, ref_centre_lonlat=(-120.50, 37.00), ref_radius=900.0
    ).tolist() == [0, 1]
    assert reference_ps(
        lonlat, LL0, ref_centre_lonlat=(-120.50, 37.00), ref_radius=880.0
    ).tolist() == [0]


# --------------------------------------------------------------------------------------------
# corrections on the hand-made run


def _result(root: Path, corr: str, reference: Reference | None = None, n_boot: int = 20):
    return compute_results(load_run(root), parse_correction(corr), reference, n_boot=n_boot)


def test_upper_case_v_is_v_in_a_ps_run(run: tuple[Path, dict], tmp_path: Path) -> None:
    # ps_plot: 'V' differs from 'v' only in small-baseline runs
    root, _ = run
    upper, lower = _result(root, "V-do"), _result(root, "v-do")
    assert upper.correction.name == lower.correction.name == "v-do"
    np.testing.assert_array_equal(upper.ts.vel, lower.ts.vel)
    assert write_layer(upper, tmp_path).name == "ps_v-do.gpkg"


def test_vdso_recovers_truth(run: tuple[Path, dict]) -> None:
    root, truth = run
    res = _result(root, "v-dso")
    np.testing.assert_allclose(res.ts.vel, truth["v"], atol=2e-4)
    np.testing.assert_allclose(res.ts.disp_mm, truth["disp"], atol=2e-4)
    assert np.all(res.ts.disp_mm[:, truth["master_ix"]] == 0.0)
    assert np.abs(res.ts.vel_std).max() < 1e-3
    assert res.ts.date_ix.tolist() == list(range(len(truth["dates"])))
    # sign: the PS at the bowl centre moves away from the satellite (negative)
    centre = np.argmin(truth["v"])
    assert res.ts.vel[centre] < -5


@pytest.mark.parametrize(
    "corr, left",
    [
        ("v", ("ph_scla", "ph_scn", "ramp")),
        ("v-d", ("ph_scn", "ramp")),
        ("v-o", ("ph_scla", "ph_scn")),
        ("v-s", ("ph_scla", "ramp")),
        ("v-do", ("ph_scn",)),
        ("v-ds", ("ramp",)),
        ("v-so", ("ph_scla",)),
    ],
)
def test_each_letter_removes_its_term(run: tuple[Path, dict], corr: str, left: tuple) -> None:
    root, truth = run
    res = _result(root, corr)
    extra = sum(truth[k] for k in left)
    extra = extra - extra.mean(axis=0)  # the reference is every PS
    expected = truth["disp"] + _mm(extra)
    np.testing.assert_allclose(res.ts.disp_mm, expected, atol=2e-4)
    vel, _ = fit_velocity(
        np.delete(expected, truth["master_ix"], axis=1),
        np.delete(truth["t_yr"], truth["master_ix"]),
        np.ones(13),
    )
    np.testing.assert_allclose(res.ts.vel, vel, atol=2e-4)


def test_tropospheric_term_a(tmp_path: Path) -> None:
    from stamps_python.io.products import load_product

    truth = make_run(tmp_path, n_ps=80)
    rng = np.random.default_rng(11)
    aps = _project_out_plane(truth["xy"], rng.normal(0, 1.0, (80, 14)))
    aps[:, truth["master_ix"]] = 0.0
    ph_uw = load_product(tmp_path / "phuw2.h5")["ph_uw"] + aps
    save_product(tmp_path / "phuw2.h5", {"ph_uw": ph_uw})
    save_product(tmp_path / "tca2.h5", {"ph_tropo_linear": aps})  # tropo_method 'a_l'
    res = _result(tmp_path, "v-dsao")
    np.testing.assert_allclose(res.ts.disp_mm, truth["disp"], atol=2e-4)
    res = _result(tmp_path, "v-dso")
    np.testing.assert_allclose(res.ts.disp_mm, truth["disp"] + _mm(aps - aps.mean(0)), atol=2e-4)


def test_reference_area_subtraction(run: tuple[Path, dict]) -> None:
    root, truth = run
    centre = truth["lonlat"][17]
    ref = Reference(ref_centre_lonlat=tuple(centre), ref_radius=600.0, source="test")
    res = _result(root, "v-dso", ref)
    d = llh2local(truth["lonlat"], LL0) - llh2local(centre, LL0)
    in_ref = np.flatnonzero(np.hypot(*d.T) <= 600.0)
    assert 1 < in_ref.size < 300
    assert res.ts.ref_ix.tolist() == in_ref.tolist()
    np.testing.assert_allclose(res.ts.vel, truth["v"] - truth["v"][in_ref].mean(), atol=2e-4)
    np.testing.assert_allclose(
        res.ts.disp_mm, truth["disp"] - truth["disp"][in_ref].mean(0), atol=2e-4
    )
    assert res.metadata["n_reference_ps"] == in_ref.size
    assert "600 m" in res.metadata["reference_area"]
    box = Reference(
        ref_lon=(centre[0] - 0.003, centre[0] + 0.003),
        ref_lat=(centre[1] - 0.003, centre[1] + 0.003),
        source="test",
    )
    inside = np.flatnonzero((np.abs(truth["lonlat"] - centre) < 0.003).all(axis=1))
    res_box = _result(root, "v-dso", box)
    np.testing.assert_allclose(res_box.ts.vel, truth["v"] - truth["v"][inside].mean(), atol=2e-4)
    empty = Reference(ref_lon=(10.0, 11.0), source="test")
    with pytest.raises(StampsError, match="no PS in the reference area"):
        _result(root, "v-dso", empty)


def test_ref_velocity_parms_reference_and_weights(tmp_path: Path) -> None:
    std = np.linspace(20, 60, 14)
    truth = make_run(tmp_path, n_ps=120, ifg_std=std, drop_ifg_index=[3, 10])
    from stamps_python.parms import set_parm

    set_parm(tmp_path, "ref_velocity", 0.002)  # m/yr
    set_parm(tmp_path, "ref_lon", "[-120.51, -120.49]")
    res = _result(tmp_path, "v-do")
    ref = np.flatnonzero((truth["lonlat"][:, 0] > -120.51) & (truth["lonlat"][:, 0] < -120.49))
    assert res.ts.ref_ix.tolist() == ref.tolist()
    keep = [k for k in range(14) if k not in (2, 9)]
    assert res.ts.date_ix.tolist() == keep
    assert res.metadata["dropped_dates"] == [truth["dates"][2], truth["dates"][9]]
    expected = truth["disp"] + _mm(truth["ph_scn"])
    expected = expected - expected[ref].mean(0) + 2.0 * truth["t_yr"]
    np.testing.assert_allclose(res.ts.disp_mm, expected[:, keep], atol=2e-4)
    use = [k for k in keep if k != truth["master_ix"]]
    w = 1.0 / np.radians(std[use]) ** 2
    vel, _ = fit_velocity(expected[:, use], truth["t_yr"][use], w)
    np.testing.assert_allclose(res.ts.vel, vel, atol=2e-4)
    unweighted, _ = fit_velocity(expected[:, use], truth["t_yr"][use], np.ones(len(use)))
    assert np.abs(unweighted - vel).max() > 0.01  # the weights matter here


# --------------------------------------------------------------------------------------------
# files


def test_geopackage_fields_crs_metadata(run: tuple[Path, dict], tmp_path: Path) -> None:
    import geopandas as gpd
    import pyogrio

    root, truth = run
    res = _result(root, "v-do")
    path = write_layer(res, tmp_path, "gpkg")
    assert path.name == "ps_v-do.gpkg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ps_v-do.gpkg"]
    info = pyogrio.read_info(path)
    assert pyogrio.list_layers(path)[:, 0].tolist() == ["ps_v_do"]
    fields = list(FIXED_FIELDS) + [f"D{d}" for d in truth["dates"]]
    assert info["fields"].tolist() == fields
    assert info["crs"] == "EPSG:4326"
    meta = info["layer_metadata"]
    assert meta["correction"] == "v-do"
    assert float(meta["wavelength_m"]) == WAVELENGTH
    assert meta["reference_date"] == truth["dates"][truth["master_ix"]]
    assert meta["reference_area"] == "all PS"
    assert meta["stamps_python_version"]
    import sqlite3

    with sqlite3.connect(path) as db:  # GeoPackage 1.2 (10200), which older QGIS read quietly
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
    gdf = gpd.read_file(path, layer="ps_v_do")
    assert gdf.crs.to_epsg() == 4326
    np.testing.assert_allclose(gdf.geometry.x, truth["lonlat"][:, 0])
    np.testing.assert_allclose(gdf.geometry.y, truth["lonlat"][:, 1])
    assert gdf["CODE"].tolist() == list(range(1, 301))
    np.testing.assert_allclose(gdf["HEIGHT"], truth["hgt"])
    np.testing.assert_allclose(gdf["COHERENCE"], truth["coh"])
    assert (gdf["H_STDEV"] == 0).all() and (gdf["EFF_AREA"] == 1).all()
    np.testing.assert_allclose(gdf["VEL"], res.ts.vel)
    np.testing.assert_allclose(gdf["V_STDEV"], res.ts.vel_std)
    expected = truth["disp"] + _mm(truth["ph_scn"])
    np.testing.assert_allclose(gdf[fields[len(FIXED_FIELDS) :]].to_numpy(), expected, atol=1e-3)
    assert (gdf[f"D{truth['dates'][truth['master_ix']]}"] == 0).all()


def test_shapefile_and_csv(run: tuple[Path, dict], tmp_path: Path) -> None:
    import geopandas as gpd
    import pandas as pd

    root, truth = run
    res = _result(root, "v-dso")
    shp = write_layer(res, tmp_path, "shp")
    gdf = gpd.read_file(shp)
    assert gdf.crs.to_epsg() == 4326
    assert list(gdf.columns[:-1]) == list(FIXED_FIELDS) + [f"D{d}" for d in truth["dates"]]
    np.testing.assert_allclose(gdf["VEL"], truth["v"], atol=1e-3)
    side = json.loads((tmp_path / "ps_v-dso.shp.json").read_text())
    assert side["correction"] == "v-dso" and side["format"] == "shp"
    assert {p.suffix for p in tmp_path.iterdir()} >= {".shp", ".shx", ".dbf", ".prj"}
    csv = write_layer(res, tmp_path, "csv")
    table = pd.read_csv(csv)
    assert list(table.columns) == ["LON", "LAT", *FIXED_FIELDS, *[f"D{d}" for d in truth["dates"]]]
    np.testing.assert_allclose(table["VEL"], truth["v"], atol=1e-3)
    np.testing.assert_allclose(table["LON"], truth["lonlat"][:, 0], atol=1e-6)
    assert json.loads((tmp_path / "ps_v-dso.csv.json").read_text())["reference_date"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_shapefile_refuses_more_than_255_fields(tmp_path: Path) -> None:
    make_run(tmp_path / "run", n_ps=20, n_dates=248, master_ix=100)
    res = _result(tmp_path / "run", "v-do")
    assert res.ts.date_ix.size == 248
    with pytest.raises(StampsError, match="at most 255 fields.*gpkg or csv"):
        write_layer(res, tmp_path / "out", "shp")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    make_run(tmp_path / "run2", n_ps=20, n_dates=247, master_ix=100)
    ok = write_layer(_result(tmp_path / "run2", "v-do"), tmp_path / "out2", "shp")
    assert ok.is_file()


def test_missing_products_one_line(run: tuple[Path, dict], tmp_path: Path) -> None:
    root = tmp_path / "run"
    make_run(root, n_ps=40)
    (root / "scn2.h5").unlink()
    with pytest.raises(StampsError) as err:
        _result(root, "v-dso")
    msg = str(err.value)
    assert "scn2" in msg and "Step 8" in msg and "\n" not in msg
    (root / "scla2.h5").unlink()
    with pytest.raises(StampsError, match="scla2.*Step 7"):
        _result(root, "v-d")
    res = _result(root, "v-o")  # no SCLA needed: the reference AOE is then not subtracted
    assert res.metadata["reference_aoe_subtracted"] == "no"
    (root / "phuw2.h5").unlink()
    with pytest.raises(StampsError, match="phuw2.*Step 6"):
        _result(root, "v")
    with pytest.raises(StampsError, match="tca2"):
        make_run(tmp_path / "r2", n_ps=40)
        _result(tmp_path / "r2", "v-da")


# --------------------------------------------------------------------------------------------
# command line


def test_cli_writes_layers(run: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    import pyogrio

    root, truth = run
    code = cli(
        [
            "--input-path",
            str(root),
            "--output-dir",
            str(tmp_path),
            "--correction",
            "v-do",
            "--correction",
            "v-dso",
            "--ref-lonlat",
            *map(str, truth["lonlat"][3]),
            "--ref-radius",
            "700",
            "--n-boot",
            "10",
        ]
    )
    assert code == 0
    for name in ("ps_v-do.gpkg", "ps_v-dso.gpkg"):
        info = pyogrio.read_info(tmp_path / name)
        assert info["features"] == 300
        assert info["layer_metadata"]["reference_area_source"] == "command line"
    out = capsys.readouterr().out.split()
    assert [Path(p).name for p in out] == ["ps_v-do.gpkg", "ps_v-dso.gpkg"]


@pytest.mark.parametrize(
    "args, text",
    [
        (["--input-path", "/nonexistent/run"], "no such run directory"),
        (["--correction", "v-x"], "unknown letter"),
        (["--format", "kml"], "invalid choice"),
        (["--ref-radius", "100"], "go together"),
        (["--ref-lonlat", "1", "2", "--ref-radius", "-5"], "radius"),
        (["--ref-lon-box", "2", "1"], "MIN must be below MAX"),
    ],
)
def test_cli_bad_input_one_line(run: tuple[Path, dict], capsys, args: list, text: str) -> None:
    root, _ = run
    base = [] if "--input-path" in args else ["--input-path", str(root)]
    assert cli(base + args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and text in err


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_cli_output_dir_that_cannot_be_used(run: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    root, _ = run
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    base = ["--input-path", str(root), "--correction", "v-o", "--n-boot", "5"]
    assert cli(base + ["--output-dir", str(a_file)]) == 1
    assert f"--output-dir {a_file}: exists and is not a directory" in _one_line_error(capsys)
    assert cli(base + ["--output-dir", str(a_file / "out")]) == 1
    assert (
        f"--output-dir {a_file / 'out'}: cannot be created: {a_file} is not a directory"
        in _one_line_error(capsys)
    )
    assert a_file.read_text() == "not a folder"


def test_cli_checks_every_correction_before_writing(tmp_path: Path, capsys) -> None:
    root = tmp_path / "run"
    make_run(root, n_ps=40)
    (root / "scn2.h5").unlink()
    out = tmp_path / "out"
    assert (
        cli(
            [
                "--input-path",
                str(root),
                "--output-dir",
                str(out),
                "--correction",
                "v-do",
                "--correction",
                "v-dso",
                "--plot",
                "--n-boot",
                "5",
            ]
        )
        == 1
    )
    assert "scn2.h5 not found: correction 'v-dso'" in _one_line_error(capsys)
    assert not out.exists()  # not even the v-do layer


def test_drop_ifg_index_beyond_the_interferograms_is_refused(tmp_path: Path, capsys) -> None:
    from stamps_python.parms import set_parm
    from stamps_python.ps_plot import cli as ps_plot_cli
    from stamps_python.results import check_inputs

    root = tmp_path / "run"
    make_run(root, n_ps=40, n_dates=14)
    set_parm(root, "drop_ifg_index", "[1, 99]")
    with pytest.raises(
        StampsError,
        match=r"parameter drop_ifg_index: \[1\.0, 99\.0\] must be "
        r"interferogram numbers 1\.\.14",
    ):
        check_inputs(load_run(root), [parse_correction("v-do")])
    with pytest.raises(StampsError, match="drop_ifg_index"):
        _result(root, "v-do")
    out = tmp_path / "out"
    assert cli(["--input-path", str(root), "--output-dir", str(out), "--n-boot", "5"]) == 1
    assert "drop_ifg_index" in _one_line_error(capsys) and not out.exists()
    assert ps_plot_cli([str(root), "--output-dir", str(out), "--n-boot", "5"]) == 1
    assert "1..14" in _one_line_error(capsys) and not out.exists()


def test_script_runs_as_file(run: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = run
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "stamps_python" / "export_results.py"),
            "--input-path",
            str(root),
            "--output-dir",
            str(tmp_path),
            "--format",
            "csv",
            "--correction",
            "v-o",
            "--n-boot",
            "5",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "ps_v-o.csv").is_file()
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "stamps_python" / "export_results.py"),
            "--input-path",
            str(tmp_path / "none"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1

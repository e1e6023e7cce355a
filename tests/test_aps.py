"""TRAIN's troposphere: aps_linear's fit, its products and every 'a' correction end to end,
and aps_import of MATLAB tca files (-v7 and -v7.3)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import geopandas as gpd
import h5py
import numpy as np
import pytest
import scipy.io
import shapely

from stamps_python import aps_import as aps_import_cli
from stamps_python import aps_linear as aps_linear_cli
from stamps_python import export_results
from stamps_python.io.products import load_product, save_product
from stamps_python.io.train import read_mat, read_polygon
from stamps_python.numerics.timeseries import parse_correction
from stamps_python.numerics.tropo_linear import (
    dem_error_removed,
    heights_km,
    linear_tropo,
    points_in_polygon,
    polygon_from_vertices,
)
from stamps_python.parms import load_parms, set_parm
from stamps_python.pipeline import run_steps
from stamps_python.prep_isce import prepare
from stamps_python.results import RunData, aps_phase, compute_results, load_run
from stamps_python.steps.aps_import import aps_import
from stamps_python.steps.aps_linear import aps_linear
from stamps_python.synthetic import generate_stack
from stamps_python.utils import StampsError

STRAT_STD = 4.0  # rad/km: the synthetic stack's stratification, well above its turbulence
PS_NOISE_K = 0.4  # rad/km: slope the PS's own phase noise and unwrapping errors may add
RELIEF_M = 1500.0  # hills of a mountainous scene: heights vary by ~100 m (std) on 1 km


# --------------------------------------------------------------------------------------------
# the fit


def test_linear_fit_recovers_k_and_c_exactly() -> None:
    rng = np.random.default_rng(1)
    h = rng.uniform(0.1, 0.9, 500)
    K, c = np.array([0.0, 2.5, -1.2]), np.array([0.0, 0.3, -4.0])
    ph = h[:, None] * K + c
    ph[7, 1] = np.nan  # NaN phase: left out of the fit, NaN in the estimate
    est, k_fit, c_fit = linear_tropo(ph, h)
    np.testing.assert_allclose(k_fit, K, atol=1e-12)
    np.testing.assert_allclose(c_fit, c, atol=1e-12)
    assert np.isnan(est[7, 1]) and np.isfinite(np.delete(est[:, 1], 7)).all()
    np.testing.assert_allclose(est[:, 2], ph[:, 2], atol=1e-5)
    assert est.dtype == np.float32


def test_fit_is_ordinary_least_squares() -> None:
    rng = np.random.default_rng(2)
    h = rng.uniform(0, 1.5, 300)
    ph = 1.7 * h[:, None] + 0.2 + rng.normal(0, 0.5, (300, 2))
    _, k_fit, c_fit = linear_tropo(ph, h)
    A = np.column_stack([h, np.ones_like(h)])
    coef = np.linalg.lstsq(A, ph, rcond=None)[0]
    np.testing.assert_allclose(k_fit, coef[0], rtol=1e-10)
    np.testing.assert_allclose(c_fit, coef[1], rtol=1e-10)


def test_fit_uses_the_points_inside_the_non_deforming_polygon() -> None:
    # deformation correlated with height in the east half only: the fit on the west (inside a
    # non-deforming polygon) finds K; the fit on all points, or on the east as TRAIN's
    # aps_linear.m does by leaving the inside points out, does not
    rng = np.random.default_rng(3)
    n = 2000
    lonlat = np.column_stack([rng.uniform(10.0, 10.2, n), rng.uniform(45.0, 45.1, n)])
    h = rng.uniform(0.0, 1.0, n)
    east = lonlat[:, 0] > 10.1
    ph = (1.5 * h + 0.4 + np.where(east, -3.0 * h, 0.0))[:, None]
    west = polygon_from_vertices(
        np.array([[9.9, 44.9], [10.1, 44.9], [10.1, 45.2], [9.9, 45.2]]), "test"
    )
    inside = points_in_polygon(lonlat, west)
    assert inside.sum() == (~east).sum()
    _, k_in, _ = linear_tropo(ph, h, inside)
    _, k_all, _ = linear_tropo(ph, h)
    _, k_out, _ = linear_tropo(ph, h, ~inside)
    assert k_in[0] == pytest.approx(1.5, abs=1e-9)
    assert abs(k_all[0] - 1.5) > 1.0 and k_out[0] == pytest.approx(-1.5, abs=1e-9)


def test_points_on_the_edge_are_inside_as_inpolygon() -> None:
    square = polygon_from_vertices(np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]), "sq")
    pts = np.array([[0.5, 0.5], [1.0, 0.5], [0.0, 0.0], [1.0001, 0.5]])
    assert points_in_polygon(pts, square).tolist() == [True, True, True, False]


def test_heights_are_km_when_above_ten() -> None:
    np.testing.assert_allclose(heights_km(np.array([12.0, 500.0])), [0.012, 0.5])
    np.testing.assert_allclose(heights_km(np.array([0.2, 3.0])), [0.2, 3.0])


def test_no_fit_gives_nan_k() -> None:
    h = np.full(10, 0.3)  # one height: no slope
    _, k, c = linear_tropo(np.ones((10, 1)), h)
    assert np.isnan(k[0]) and np.isnan(c[0])


def test_dem_error_removal_takes_out_the_baseline_term() -> None:
    rng = np.random.default_rng(4)
    b = rng.normal(0, 100, 12)
    e = rng.normal(0, 0.01, 50)
    other = rng.normal(0, 1, (50, 1)) * np.ones(12)  # constant in time: no baseline part...
    other -= (other @ b / (b @ b))[:, None] * b  # ...made exactly orthogonal to b
    ph = other + e[:, None] * b
    np.testing.assert_allclose(dem_error_removed(ph, b), other, atol=1e-10)


def test_bad_polygons() -> None:
    with pytest.raises(StampsError, match="three distinct"):
        polygon_from_vertices(np.array([[0, 0], [1, 1], [0, 0]]), "p.txt")
    with pytest.raises(StampsError, match="no area"):
        polygon_from_vertices(np.array([[0, 0], [1, 1], [2, 2]]), "p.txt")


# --------------------------------------------------------------------------------------------
# files


def test_polygon_files(tmp_path: Path) -> None:
    verts = np.array([[10.0, 45.0], [10.1, 45.0], [10.1, 45.1], [10.0, 45.1]])
    txt = tmp_path / "area.txt"
    txt.write_text("# lon lat\n" + "\n".join(f"{a},{b}" for a, b in verts) + "\n")
    mat = tmp_path / "non_defo.mat"
    scipy.io.savemat(mat, {"poly": verts})
    gpkg = tmp_path / "area.gpkg"
    gdf = gpd.GeoDataFrame(geometry=[shapely.Polygon(verts)], crs="EPSG:4326").to_crs(32632)
    gdf.to_file(gpkg)  # in UTM: read back in lon/lat
    pts = np.array([[10.05, 45.05], [10.2, 45.05]])
    for path in (txt, mat, gpkg):
        assert points_in_polygon(pts, read_polygon(path)).tolist() == [True, False], path
    bad = tmp_path / "bad.txt"
    bad.write_text("10 45\n10.1 oops\n")
    with pytest.raises(StampsError, match="bad.txt, line 2"):
        read_polygon(bad)
    scipy.io.savemat(tmp_path / "nopoly.mat", {"x": verts})
    with pytest.raises(StampsError, match="no variable 'poly'"):
        read_polygon(tmp_path / "nopoly.mat")


def _save_mat73(path: Path, variables: dict[str, np.ndarray]) -> None:
    """A file laid out as MATLAB's save -v7.3: 512-byte header, HDF5, arrays column-major."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            ds = f.create_dataset(name, data=np.asarray(value, dtype=np.float64).T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Dec  3 12:00:00 2026")


def test_read_mat_v7_and_v73_agree(tmp_path: Path) -> None:
    a = np.arange(12.0).reshape(4, 3)
    scipy.io.savemat(tmp_path / "v7.mat", {"ph_tropo_era5": a, "note": "text"})
    _save_mat73(tmp_path / "v73.mat", {"ph_tropo_era5": a})
    with h5py.File(tmp_path / "bare.mat", "w") as f:  # HDF5 without MATLAB's header text
        f["ph_tropo_era5"] = a.T
    np.testing.assert_array_equal(read_mat(tmp_path / "bare.mat")["ph_tropo_era5"], a)
    m7, m73 = read_mat(tmp_path / "v7.mat"), read_mat(tmp_path / "v73.mat")
    np.testing.assert_array_equal(m7["ph_tropo_era5"], a)
    np.testing.assert_array_equal(m73["ph_tropo_era5"], a)
    assert "note" not in m7
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(StampsError, match="junk.mat"):
        read_mat(tmp_path / "junk.mat")


def _tiny_run(tmp_path: Path, n_ps: int = 6, n_ifg: int = 4, sb: bool = False) -> Path:
    run = tmp_path / "run"
    run.mkdir(parents=True)
    if sb:
        set_parm(run, "small_baseline_flag", "y")
    ps = {"n_ps": n_ps, "n_ifg": n_ifg}
    if sb:
        ps["n_image"] = 3
    save_product(run / "ps2.h5", ps)
    return run


def test_aps_import_checks_counts_and_keeps_other_methods(tmp_path: Path, capsys) -> None:
    run = _tiny_run(tmp_path)
    era = np.random.default_rng(5).normal(size=(6, 4))
    _save_mat73(tmp_path / "tca2.mat", {"ph_tropo_era5": era, "ph_tropo_gacos": 2 * era})
    save_product(run / "tca2.h5", {"ph_tropo_linear": np.ones((6, 4))})
    assert aps_import_cli.main([str(run), str(tmp_path / "tca2.mat")]) == 0
    tca = load_product(run / "tca2.h5")
    np.testing.assert_array_equal(tca["ph_tropo_era5"], era)
    np.testing.assert_array_equal(tca["ph_tropo_gacos"], 2 * era)
    np.testing.assert_array_equal(tca["ph_tropo_linear"], 1.0)  # kept, as aps_save appends
    # a file from another run: PS count, interferogram count
    scipy.io.savemat(tmp_path / "other.mat", {"ph_tropo_era5": np.zeros((5, 4))})
    capsys.readouterr()
    code = aps_import_cli.run_cli(aps_import_cli.main, [str(run), str(tmp_path / "other.mat")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert "other.mat: ph_tropo_era5 has shape (5, 4), but " in err and "ps2.h5 has 6 PS" in err
    scipy.io.savemat(tmp_path / "cols.mat", {"ph_tropo_era5": np.zeros((6, 3))})
    with pytest.raises(StampsError, match=r"\(6, 3\).*4 interferograms"):
        aps_import(run, tmp_path / "cols.mat")
    scipy.io.savemat(tmp_path / "none.mat", {"lonlat": np.zeros((6, 2))})
    with pytest.raises(StampsError, match="holds no TRAIN correction"):
        aps_import(run, tmp_path / "none.mat")
    np.testing.assert_array_equal(load_product(run / "tca2.h5")["ph_tropo_era5"], era)


def test_aps_import_small_baseline_targets(tmp_path: Path) -> None:
    run = _tiny_run(tmp_path, n_ps=5, n_ifg=4, sb=True)  # 4 pairs of 3 images
    scipy.io.savemat(tmp_path / "tca_sb2.mat", {"ph_tropo_era5": np.ones((5, 4))})
    assert aps_import(run, tmp_path / "tca_sb2.mat").name == "tca_sb2.h5"
    scipy.io.savemat(tmp_path / "tca2.mat", {"ph_tropo_era5": np.ones((5, 3))})
    assert aps_import(run, tmp_path / "tca2.mat").name == "tca2.h5"  # inverted to the images
    pr = _tiny_run(tmp_path / "ps")
    with pytest.raises(StampsError, match="cannot go into the PS run"):
        aps_import(pr, tmp_path / "tca_sb2.mat")


# --------------------------------------------------------------------------------------------
# a synthetic stack: K recovered, Steps 6-7 and the export with 'a'


@pytest.fixture(scope="module")
def strat_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("aps")
    stack, run = root / "stack", root / "run"
    generate_stack(
        stack, profile="easy", rows=160, cols=320, n_dates=16, seed=3, progress=False,
        truth_cube="yes", strat_std=STRAT_STD, terrain_relief=RELIEF_M,
    )  # fmt: skip
    prepare(stack / "merged", run, bootstrap_metadata=True)
    set_parm(run, "unwrap_grid_size", 20)
    run_steps(run, 1, 6)
    return run, stack / "truth.h5"


def _truth_at_ps(run: Path, truth: Path) -> dict:
    """Truth at the run's PS pixels: K (rad/km) of every interferogram (strat(ref) -
    strat(date)), the modelled interferogram phase (rad, n_ps x n_ifg) and the bowl flag."""
    ps = load_product(run / "ps2.h5")
    r, c = np.asarray(ps["ij"])[:, 1].astype(int), np.asarray(ps["ij"])[:, 2].astype(int)
    with h5py.File(truth, "r") as t:
        strat = t["strat_rad_per_km"][()]
        ref = int(np.argmin(np.abs(t["t_years"][()])))
        lam = float(t["wavelength_m"][()])
        q = (  # SLC-convention phase of every modelled term, (n_dates, n_ps)
            t["atmosphere_rad"][()][:, r, c]
            + t["orbit_ramp_rad"][()][:, r, c]
            + t["dem_error_rad"][()][:, r, c]
            + 4 * math.pi / lam * t["displacement_mm"][()][:, r, c] / 1000.0
        )
        bowl = t["bowl_mask"][()][r, c].astype(bool)
    return {"k": strat[ref] - strat, "phase": (q[ref] - q).T, "bowl": bowl}


def _non_defo_half(run: Path, bowl: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (lon, lat) of the west or east half of the scene, whichever holds fewer PS of
    the subsidence bowl, and the PS inside it."""
    lonlat = load_product(run / "ps2.h5")["lonlat"]
    lo, hi = lonlat.min(axis=0) - 1e-4, lonlat.max(axis=0) + 1e-4
    mid = float(np.median(lonlat[:, 0]))
    west = lonlat[:, 0] <= mid
    a, b = (lo[0], mid) if bowl[west].sum() <= bowl[~west].sum() else (mid, hi[0])
    verts = np.array([[a, lo[1]], [b, lo[1]], [b, hi[1]], [a, hi[1]]])
    return verts, points_in_polygon(lonlat, polygon_from_vertices(verts, "half"))


@pytest.mark.parametrize("area", ["all PS", "non-deforming half"])
def test_k_of_every_date_recovered(strat_run: tuple[Path, Path], tmp_path: Path, area: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(strat_run[0], run)
    truth = _truth_at_ps(run, strat_run[1])
    h = heights_km(load_product(run / "hgt2.h5")["hgt"])
    if area == "all PS":
        used = np.ones(h.size, dtype=bool)
        written = aps_linear(run)
    else:
        verts, used = _non_defo_half(run, truth["bowl"])
        text = run / "non_defo.txt"
        text.write_text("".join(f"{x} {y}\n" for x, y in verts))
        written = aps_linear(run, read_polygon(text), str(text))
    assert [p.name for p in written] == ["tca2.h5"]
    tca = load_product(run / "tca2.h5")
    ps = load_product(run / "ps2.h5")
    n_ps, n_ifg, mi = int(ps["n_ps"]), int(ps["n_ifg"]), int(ps["master_ix"])
    assert tca["ph_tropo_linear"].shape == (n_ps, n_ifg)
    assert tca["K_tropo"].shape == tca["c_tropo"].shape == (n_ifg,)
    k_fit, k_true = tca["K_tropo"], truth["k"]
    assert k_fit[mi] == 0.0 and np.all(tca["ph_tropo_linear"][:, mi] == 0)
    np.testing.assert_allclose(
        tca["ph_tropo_linear"], h[:, None] * k_fit + tca["c_tropo"], atol=1e-4
    )
    # the noise of the fit: the slope that every other modelled term (turbulence, ramps, DEM
    # errors, deformation) has against height at the PS of the fit
    other = truth["phase"] - h[:, None] * k_true
    _, k_other, _ = linear_tropo(other[used], h[used])
    err = np.abs(k_fit - k_true)
    allowed = 0.05 * np.abs(k_true) + np.abs(k_other) + PS_NOISE_K  # 5 %, plus that noise
    assert np.all(err <= allowed), np.column_stack([k_true, k_fit, k_other, allowed])
    # what is left is the PS's own phase noise and unwrapping errors
    left = np.abs(k_fit - k_true - k_other)
    assert np.max(left) < PS_NOISE_K and np.median(left) < 0.2  # measured 0.33, 0.13 rad/km
    assert np.std(k_true) > 0.5 * STRAT_STD  # the stack is as stratified as asked


def test_a_corrections_end_to_end(strat_run: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(strat_run[0], run)
    out = tmp_path / "export"
    # 'a' before aps_linear: the export and Step 6 say which command writes tca2
    code = export_results.cli([str(run), "--correction", "v-ao", "--output-dir", str(out)])
    assert code == 1 and "run aps_linear RUN" in capsys.readouterr().err
    set_parm(run, "subtr_tropo", "y")
    with pytest.raises(StampsError, match="tca2.h5 not found: subtr_tropo is 'y'; write it with"):
        run_steps(run, 6, 6)
    assert aps_linear_cli.main([str(run)]) == 0
    aps = load_product(run / "tca2.h5")["ph_tropo_linear"].astype(np.float64)
    uw_before = load_product(run / "phuw2.h5")["ph_uw"]
    run_steps(run, 6, 7)  # Step 6 subtracts tca2 before unwrapping and adds it back; Step 7
    uw = load_product(run / "phuw2.h5")["ph_uw"]  # subtracts it before the SCLA fit
    assert np.isfinite(uw).all()
    # unwrapping without the stratified part changes the result of few interferograms only
    same = np.mean(np.abs(uw - uw_before - np.median(uw - uw_before, axis=0)) < 1.0, axis=0)
    assert np.median(same) > 0.9
    names = ("v-d", "v-da", "v-dao")
    args = [str(run), "--output-dir", str(out), *(f"--correction={n}" for n in names)]
    assert export_results.cli(args) == 0
    vel = {n: gpd.read_file(out / f"ps_{n}.gpkg").VEL.to_numpy() for n in names}
    # v-d minus v-da is the velocity of the subtracted correction at every PS
    data = load_run(run)
    ts = compute_results(data, parse_correction("v-d"), n_boot=5)
    days = np.asarray(data.ps["day"], dtype=np.float64).ravel()
    t = (days - days[data.master_ix]) / 365.25
    mm = -aps * float(data.parms["lambda"]) / (4 * math.pi) * 1000.0  # rad -> mm toward sat.
    rate = np.polyfit(t, mm[ts.rows if ts.rows is not None else slice(None)].T, 1)[0]
    dv = vel["v-d"] - vel["v-da"]
    assert abs(np.corrcoef(dv, rate)[0, 1]) > 0.98
    assert np.std(dv) > 0.5  # mm/yr: the correction matters on this stack
    # --aps names the correction (ps_plot's second argument); an unknown one is refused
    data.aps = "a_linear"
    res = compute_results(data, parse_correction("v-dao"), n_boot=5)
    assert res.metadata["tropo_method"] == "a_linear"
    np.testing.assert_allclose(res.ts.vel, vel["v-dao"], atol=1e-3)
    data.aps = "a_era5"
    with pytest.raises(StampsError, match="ph_tropo_era5"):
        compute_results(data, parse_correction("v-dao"), n_boot=5)
    capsys.readouterr()
    assert export_results.cli([str(run), "--aps", "a_bogus", "--output-dir", str(out)]) == 1
    assert "--aps: 'a_bogus' is not a TRAIN correction" in capsys.readouterr().err


def test_non_defo_cli_and_errors(strat_run: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(strat_run[0], run)
    lonlat = load_product(run / "ps2.h5")["lonlat"]
    lo, la = lonlat.min(axis=0), lonlat.max(axis=0)
    mid = (lo + la) / 2
    args = [str(run), "--non-defo-poly", *map(str, [lo[0], lo[1], mid[0], lo[1], mid[0], la[1]])]
    assert aps_linear_cli.main(args) == 0
    tca = load_product(run / "tca2.h5")
    assert np.isfinite(tca["K_tropo"]).all()
    far = [str(v) for v in (0.0, 0.0, 0.1, 0.0, 0.1, 0.1)]
    code = aps_linear_cli.run_cli(aps_linear_cli.main, [str(run), "--non-defo-poly", *far])
    assert code == 1 and "0 of the" in capsys.readouterr().err
    code = aps_linear_cli.run_cli(aps_linear_cli.main, [str(run), "--non-defo-poly", "1", "2"])
    assert code == 1 and "three distinct" in capsys.readouterr().err
    np.testing.assert_array_equal(load_product(run / "tca2.h5")["K_tropo"], tca["K_tropo"])
    (run / "phuw2.h5").unlink()
    code = aps_linear_cli.run_cli(aps_linear_cli.main, [str(run)])
    assert code == 1 and "phuw2.h5: not found; run Step 6" in capsys.readouterr().err


def test_small_baseline_branch_and_its_inversion(tmp_path: Path) -> None:
    # 5 images, 6 pairs; the pairs' phase is exactly K * h + c with K, c differences of per-date
    # values: aps_linear finds the pairs' K, and the inversion (sb_invert_aps) the dates'
    rng = np.random.default_rng(7)
    n_ps, n_image, mi = 400, 5, 2
    pairs = np.array([[0, 1], [0, 2], [1, 2], [1, 3], [2, 4], [3, 4]])
    days = 738000.0 + 12.0 * np.arange(n_image)
    k_date = rng.normal(0, 2, n_image)
    c_date = rng.normal(0, 1, n_image)
    hgt = rng.uniform(100, 900, n_ps)  # m
    k_sb = k_date[pairs[:, 1]] - k_date[pairs[:, 0]]
    c_sb = c_date[pairs[:, 1]] - c_date[pairs[:, 0]]
    run = tmp_path / "run"
    run.mkdir()
    set_parm(run, "small_baseline_flag", "y")
    save_product(
        run / "ps2.h5",
        {
            "n_ps": n_ps, "n_ifg": len(pairs), "n_image": n_image, "master_ix": mi,
            "master_day": days[mi], "day": days, "ifgday_ix": pairs, "ifgday": days[pairs],
            "lonlat": np.column_stack([rng.uniform(10, 10.1, n_ps), rng.uniform(45, 45.1, n_ps)]),
            "bperp": rng.normal(0, 50, len(pairs)),
        },
    )  # fmt: skip
    save_product(run / "hgt2.h5", {"hgt": hgt})
    save_product(run / "phuw_sb2.h5", {"ph_uw": hgt[:, None] / 1000 * k_sb + c_sb})
    written = aps_linear(run)
    assert [p.name for p in written] == ["tca_sb2.h5", "tca2.h5"]
    sb = load_product(run / "tca_sb2.h5")
    np.testing.assert_allclose(sb["K_tropo"], k_sb, atol=1e-6)
    np.testing.assert_allclose(sb["c_tropo"], c_sb, atol=1e-6)
    sm = load_product(run / "tca2.h5")
    np.testing.assert_allclose(sm["K_tropo"], k_date - k_date[mi], atol=1e-5)
    expect = hgt[:, None] / 1000 * (k_date - k_date[mi]) + (c_date - c_date[mi])
    np.testing.assert_allclose(sm["ph_tropo_linear"], expect, atol=1e-4)
    # the export's single-reference 'a' term is the same inversion (done on the fly)
    data = RunData(run, load_parms(run), load_product(run / "ps2.h5"))
    np.testing.assert_allclose(aps_phase(data, "test"), sm["ph_tropo_linear"], atol=1e-5)

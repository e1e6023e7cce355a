"""Tests of the synthetic ISCE2 topsStack generator (stamps_python.synthetic)."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
from isce_xml_reader import read_isce_xml, read_raster
from rasterio.errors import NotGeoreferencedWarning
from scipy import ndimage

from stamps_python import synthetic as syn
from stamps_python.stamps_synthetic import build_parser, main
from stamps_python.synthetic import (
    EARTH_RADIUS_M,
    RANGE_PIXEL_M,
    SATELLITE_ALTITUDE_M,
    WAVELENGTH_M,
    generate_stack,
)
from stamps_python.synthetic.baselines import _Baselines
from stamps_python.synthetic.orbit import _look_angle, _make_orbit, _slant_range_at_incidence
from stamps_python.utils import StampsError, run_cli

ROWS, COLS, N_DATES, SEED = 60, 120, 8, 7
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("easy") / "stack"
    summary = generate_stack(out, "easy", ROWS, COLS, N_DATES, seed=SEED, progress=False)
    return out, summary


@pytest.fixture(scope="module")
def truth(stack):
    with h5py.File(stack[0] / "truth.h5", "r") as f:
        yield f


@pytest.fixture(scope="module")
def slcs(stack, truth) -> dict[str, np.ndarray]:
    dates = [d.decode() for d in truth["dates"][()]]
    return {
        d: np.fromfile(stack[0] / f"merged/SLC/{d}/{d}.slc.full", "<c8").reshape(ROWS, COLS)
        for d in dates
    }


def _dates(truth) -> list[str]:
    return [d.decode() for d in truth["dates"][()]]


def _read_vrt(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return ds.read()


# ---------------------------------------------------------------------------------------------
# layout, sizes, sidecars
# ---------------------------------------------------------------------------------------------

GEOM = {  # name: (dtype, bands)
    "hgt": ("<f8", 1),
    "lat": ("<f8", 1),
    "lon": ("<f8", 1),
    "los": ("<f4", 2),
    "incLocal": ("<f4", 2),
    "shadowMask": ("u1", 1),
}


def test_layout_sizes_and_dtypes(stack, truth):
    out, summary = stack
    dates = _dates(truth)
    ref = truth.attrs["reference_date"]
    assert len(dates) == N_DATES and ref == dates[N_DATES // 2] == summary["reference_date"]
    assert not (out / "merged" / "truth.h5").exists() and (out / "truth.h5").is_file()
    for d in dates:  # every date, the reference included
        base = out / "merged" / "SLC" / d
        raw = base / f"{d}.slc.full"
        assert raw.stat().st_size == ROWS * COLS * 8
        for side in (f"{d}.slc.full.vrt", f"{d}.slc.full.xml", f"{d}.slc.hdr"):
            assert (base / side).is_file(), side
        info = read_isce_xml(base / f"{d}.slc.full.xml")
        assert (info.width, info.length, info.bands, info.dtype.str, info.scheme) == (
            COLS, ROWS, 1, "<c8", "BIP",
        )  # fmt: skip
        hdr = (base / f"{d}.slc.hdr").read_text()
        assert "samples = 120" in hdr and "lines   = 60" in hdr and "data type = 6" in hdr
    geom = out / "merged" / "geom_reference"
    for name, (dtype, bands) in GEOM.items():
        size = np.dtype(dtype).itemsize * bands
        assert (geom / f"{name}.rdr.full").stat().st_size == ROWS * COLS * size
        assert (geom / f"{name}.rdr").stat().st_size == (ROWS // 3) * (COLS // 9) * size
        assert (geom / f"{name}.rdr.hdr").is_file() and (geom / f"{name}.hdr").is_file()
        info = read_isce_xml(geom / f"{name}.rdr.full.xml")
        assert (info.width, info.length, info.bands, info.dtype) == (COLS, ROWS, bands, dtype)
    for d in dates:
        if d == ref:
            assert not (out / "baselines" / f"{ref}_{d}").exists()
            assert not (out / "merged" / "baselines" / d).exists()
            continue
        txt = (out / "baselines" / f"{ref}_{d}" / f"{ref}_{d}.txt").read_text()
        assert txt.startswith("swath: IW1\nBperp (average): ")
        grid = out / "merged" / "baselines" / d
        for name in (d, f"{d}.xml", f"{d}.vrt", f"{d}.full.vrt"):
            assert (grid / name).is_file(), name


def test_reference_xml(stack, truth):
    root = ET.parse(stack[0] / "reference" / "IW1.xml").getroot()
    inst = root.find("component[@name='instance']")
    bursts = inst.find("component[@name='bursts']").findall("component")
    assert int(inst.find("property[@name='numberofbursts']/value").text) == len(bursts) >= 2

    def prop(b, name):
        return b.find(f"property[@name='{name}']/value").text

    b1 = bursts[0]
    assert float(prop(b1, "radarwavelength")) == WAVELENGTH_M
    assert float(prop(b1, "rangepixelsize")) == RANGE_PIXEL_M
    assert float(prop(b1, "startingrange")) == pytest.approx(truth["slant_range_m"][0], abs=1e-6)
    assert 850e3 < float(prop(b1, "startingrange")) < 900e3
    assert float(prop(b1, "azimuthtimeinterval")) == pytest.approx(0.002055556)
    assert prop(b1, "passdirection") == "DESCENDING"
    svs = b1.findall("component[@name='orbit']/component[@name='state_vectors']/component")
    assert len(svs) == 7
    pos = np.array([eval(sv.find("property[@name='position']/value").text) for sv in svs])
    vel = np.array([eval(sv.find("property[@name='velocity']/value").text) for sv in svs])
    radius = np.linalg.norm(pos, axis=1)
    np.testing.assert_allclose(radius, EARTH_RADIUS_M + SATELLITE_ALTITUDE_M, rtol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(vel, axis=1), 7512.0, atol=5.0)  # circular, m/s
    assert np.abs(np.sum(pos * vel, axis=1)).max() < 1e-3 * radius[0] * 7512.0


def test_vrt_returns_exactly_the_values_written(stack, truth):
    out = stack[0]
    n = 0
    for vrt in sorted((out / "merged").rglob("*.vrt")):
        if vrt.name.endswith(".full.vrt") and vrt.parent.parent.name == "baselines":
            continue  # resampled (bilinear) view, tested below
        raster = vrt.with_name(vrt.name[: -len(".vrt")])
        info = read_isce_xml(raster.with_name(raster.name + ".xml"))
        raw = np.fromfile(raster, dtype=info.dtype)
        if info.scheme == "BIL":
            raw = raw.reshape(info.length, info.bands, info.width).transpose(1, 0, 2)
        else:
            raw = raw.reshape(1, info.length, info.width)
        got = _read_vrt(vrt)
        assert got.dtype == raw.dtype.newbyteorder("=")
        np.testing.assert_array_equal(got, raw, err_msg=str(vrt))
        n += 1
    assert n == N_DATES + 2 * len(GEOM) + (N_DATES - 1)
    hgt = read_raster(out / "merged/geom_reference/hgt.rdr.full")
    np.testing.assert_array_equal(hgt.astype(np.float32), truth["hgt"][()])


def test_zero_filled_borders(stack, truth, slcs):
    valid = truth["valid_mask"][()].astype(bool)
    assert 0 < (~valid).sum() < 0.2 * valid.size
    assert (~valid[:, 0]).all() and (~valid[0]).all() and (~valid[-1]).all()
    for d, slc in slcs.items():
        assert (slc.view(np.uint64)[~valid] == 0).all(), d  # exact zeros, not -0.0
        assert (slc[valid] != 0).all(), d


# ---------------------------------------------------------------------------------------------
# physics
# ---------------------------------------------------------------------------------------------


def test_geometry_is_sentinel1_iw(stack, truth):
    out = stack[0]
    lat, lon = truth["lat"][()], truth["lon"][()]
    los = read_raster(out / "merged/geom_reference/los.rdr.full")
    inc_local = read_raster(out / "merged/geom_reference/incLocal.rdr.full")
    assert 30.0 < los[0].min() and los[0].max() < 45.0
    np.testing.assert_allclose(los[1], -102.0, atol=0.2)  # target->sensor azimuth, anticlockwise
    # look angle (incLocal band 1) and incidence obey the sphere's sine rule
    rs = EARTH_RADIUS_M + SATELLITE_ALTITUDE_M
    hgt = truth["hgt"][()]
    lhs = rs * np.sin(np.radians(inc_local[0].astype(np.float64)))
    rhs = (EARTH_RADIUS_M + hgt) * np.sin(np.radians(los[0].astype(np.float64)))
    np.testing.assert_allclose(lhs, rhs, rtol=2e-6)
    # pixel steps on the ground: one line = ~13.9 m along the heading; one sample = 2.33 m of
    # slant range = dr/sin(inc) in the look direction; terrain adds dh/tan(inc) along the look
    hd, lk = np.radians(-168.0), np.radians(-78.0)
    lat_r, lon_r = np.radians(lat), np.radians(lon)
    tan_inc = np.tan(np.radians(los[0].astype(np.float64)))
    for axis in (0, 1):
        north = np.diff(lat_r, axis=axis) * EARTH_RADIUS_M
        east = (
            np.diff(lon_r, axis=axis)
            * EARTH_RADIUS_M
            * np.cos(lat_r[:-1] if axis == 0 else lat_r[:, :-1])
        )
        along = north * np.cos(hd) + east * np.sin(hd)
        across = north * np.cos(lk) + east * np.sin(lk)
        terrain = np.diff(hgt, axis=axis) / (tan_inc[:-1] if axis == 0 else tan_inc[:, :-1])
        flat = 0.0 if axis == 0 else RANGE_PIXEL_M / np.sin(np.radians(39.0))
        np.testing.assert_allclose(across - terrain, flat, atol=0.03 + 0.02 * flat)
        np.testing.assert_allclose(along, 13.9 if axis == 0 else 0.0, atol=0.15)
    assert truth.attrs["heading_deg"] == pytest.approx(-168.0, abs=0.05)
    np.testing.assert_allclose(np.diff(truth["slant_range_m"][()]), RANGE_PIXEL_M, rtol=1e-9)


def test_interferogram_phase_matches_truth_model(truth, slcs):
    dates = _dates(truth)
    ref = truth.attrs["reference_date"]
    primary = truth["ps/is_sidelobe"][()] == 0
    r, c = truth["ps/rows"][()][primary], truth["ps/cols"][()][primary]
    disp = truth["ps/displacement_mm"][()][primary]
    dem = truth["ps/dem_ifg_rad"][()][primary]
    nuis = truth["ps/nuisance_ifg_rad"][()][primary]
    da = truth["ps/amp_dispersion_nominal"][()][primary].astype(np.float64)
    ifg = np.stack([slcs[ref][r, c] * np.conj(slcs[d][r, c]) for d in dates], axis=1)
    model = -4 * np.pi / WAVELENGTH_M * disp / 1000.0 + dem + nuis
    resid = np.angle(ifg * np.exp(-1j * model))
    # phase noise of a PS interferogram ~ sqrt(2) * D_A rad
    assert np.sqrt(np.mean(resid**2)) == pytest.approx(np.sqrt(2 * np.mean(da**2)), rel=0.2)
    assert np.mean(np.abs(resid) < 4 * np.sqrt(2) * da[:, None]) > 0.995
    # sensitivity: the opposite displacement sign or a missing DEM term do not fit
    flipped = np.angle(ifg * np.exp(-1j * (model + 8 * np.pi / WAVELENGTH_M * disp / 1000.0)))
    assert np.sqrt(np.mean(flipped**2)) > 3 * np.sqrt(np.mean(resid**2))
    # the truth terms follow the documented formulas and units
    t = truth["t_years"][()]
    vel = truth["velocity_mm_yr"][()][r, c].astype(np.float64)
    amp = truth["seasonal_amp_mm"][()][r, c].astype(np.float64)
    expect = vel[:, None] * t + amp[:, None] * truth["seasonal_term"][()]
    np.testing.assert_allclose(disp, expect, atol=1e-3)
    bperp = truth["bperp_m"][()]
    rng_m = truth["slant_range_m"][()][c]
    inc = np.radians(truth["incidence_deg"][()][r, c].astype(np.float64))
    dz = truth["dem_error_m"][()][r, c].astype(np.float64)
    approx = 4 * np.pi / WAVELENGTH_M * bperp * (dz / (rng_m * np.sin(inc)))[:, None]
    np.testing.assert_allclose(dem, approx, atol=0.01 * np.abs(approx).max() + 1e-6)
    assert np.abs(dem[:, dates.index(ref)]).max() == 0.0


def test_sidelobes_follow_their_ps(truth, slcs):
    dates = _dates(truth)
    ref = truth.attrs["reference_date"]
    side = truth["ps/is_sidelobe"][()] == 1
    assert side.sum() > 0
    rows, cols = truth["ps/rows"][()], truth["ps/cols"][()]
    prim = truth["ps/primary_index"][()]
    # one of the 8 neighbours of its PS
    assert np.all(
        np.maximum(np.abs(rows[side] - rows[prim[side]]), np.abs(cols[side] - cols[prim[side]]))
        == 1
    )
    assert (truth["pixel_class"][()][rows[side], cols[side]] == 2).all()

    def phase(ix):
        return np.stack(
            [np.angle(slcs[ref][rows[ix], cols[ix]] * np.conj(slcs[d][rows[ix], cols[ix]]))
             for d in dates], axis=1,
        )  # fmt: skip

    diff = np.angle(np.exp(1j * (phase(np.where(side)[0]) - phase(prim[side]))))
    assert np.sqrt(np.mean(diff**2)) < 0.6  # coherent with the primary, not random (1.8 rad)


def test_amplitude_dispersion_of_ps_easy(truth, slcs):
    dates = _dates(truth)
    cal = truth["amp_calibration"][()]
    amp = np.stack([np.abs(slcs[d]) / cal[k] for k, d in enumerate(dates)])
    ps = truth["ps_mask"][()].astype(bool)
    da_ps = amp[:, ps].std(axis=0, ddof=1) / amp[:, ps].mean(axis=0)
    assert ps.sum() > 0.015 * ps.size
    assert np.mean(da_ps < 0.4) >= 0.95
    # calamp-style calibration (mean amplitude of each date) selects them just as well
    calconst = np.array([np.abs(slcs[d])[np.abs(slcs[d]) > 0.001].mean() for d in dates])
    amp_c = np.stack([np.abs(slcs[d])[ps] / calconst[k] for k, d in enumerate(dates)])
    assert np.mean(amp_c.std(axis=0, ddof=1) / amp_c.mean(axis=0) < 0.4) >= 0.95
    ds = truth["pixel_class"][()] == 3
    da_ds = amp[:, ds].std(axis=0, ddof=1) / amp[:, ds].mean(axis=0)
    assert np.median(da_ds) > 0.35  # distributed scatterers are not PS-like


def test_baselines_text_grid_and_truth_agree(stack, truth):
    out = stack[0]
    dates = _dates(truth)
    ref = truth.attrs["reference_date"]
    bperp = truth["bperp_m"][()]
    assert bperp[dates.index(ref)] == 0.0
    assert 20.0 < np.std(bperp) < 150.0
    primary = truth["ps/is_sidelobe"][()] == 0
    r, c = truth["ps/rows"][()][primary], truth["ps/cols"][()][primary]
    for k, d in enumerate(dates):
        if d == ref:
            continue
        lines = (out / "baselines" / f"{ref}_{d}" / f"{ref}_{d}.txt").read_text().splitlines()
        assert float(lines[1].split(":")[1]) == bperp[k]
        copy = out / "merged" / "baselines" / f"{ref}_{d}" / f"{ref}_{d}.txt"
        assert copy.read_text() == "\n".join(lines) + "\n"
        coarse = read_raster(out / "merged" / "baselines" / d / d)
        assert coarse.shape == (2, 2) and coarse.dtype == np.float32
        full = _read_vrt(out / "merged" / "baselines" / d / f"{d}.full.vrt")[0]
        assert full.shape == (ROWS, COLS)
        np.testing.assert_allclose(full[r, c], truth["ps/bperp_m"][()][primary, k], atol=0.05)
        np.testing.assert_allclose(truth["ps/bperp_m"][()][primary, k], bperp[k], atol=0.2)


def test_same_seed_is_byte_identical_other_seed_differs(stack, tmp_path):
    first = stack[0]
    again = tmp_path / "again"
    generate_stack(again, "easy", ROWS, COLS, N_DATES, seed=SEED, progress=False)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = tmp_path / "other"
    generate_stack(other, "easy", ROWS, COLS, N_DATES, seed=SEED + 1, progress=False)
    d = _dates(h5py.File(other / "truth.h5", "r"))[0]
    rel = Path("merged/SLC") / d / f"{d}.slc.full"
    assert (other / rel).read_bytes() != (first / rel).read_bytes()


# ---------------------------------------------------------------------------------------------
# truth file
# ---------------------------------------------------------------------------------------------


def test_truth_fields_and_units(truth):
    n = N_DATES
    shape2 = (ROWS, COLS)
    expected = {
        "dates": ((n,), "YYYYMMDD"),
        "reference_date": ((), "YYYYMMDD"),
        "t_years": ((n,), "year"),
        "decimal_year": ((n,), "year"),
        "bperp_m": ((n,), "m"),
        "bpar_m": ((n,), "m"),
        "amp_calibration": ((n,), "1"),
        "wavelength_m": ((), "m"),
        "heading_deg": ((), "deg"),
        "lat": (shape2, "deg"),
        "lon": (shape2, "deg"),
        "hgt": (shape2, "m"),
        "incidence_deg": (shape2, "deg"),
        "look_angle_deg": (shape2, "deg"),
        "ps_mask": (shape2, "1"),
        "pixel_class": (shape2, "class"),
        "valid_mask": (shape2, "1"),
        "velocity_mm_yr": (shape2, "mm/yr"),
        "seasonal_amp_mm": (shape2, "mm"),
        "dem_error_m": (shape2, "m"),
        "displacement_mm": ((n, *shape2), "mm"),
        "slant_range_m": ((COLS,), "m"),
    }
    for name, (shape, units) in expected.items():
        assert truth[name].shape == shape, name
        assert truth[name].attrs["units"] == units, name
    n_ps = int(truth["ps_mask"][()].sum()) + int(truth["ps_sidelobe_mask"][()].sum())
    for name in ("displacement_mm", "dem_ifg_rad", "nuisance_ifg_rad", "bperp_m"):
        assert truth[f"ps/{name}"].shape == (n_ps, n)
    assert truth["ps/rows"].shape == truth["ps/cols"].shape == (n_ps,)
    assert truth.attrs["wavelength_m"] == WAVELENGTH_M == truth["wavelength_m"][()]
    assert truth.attrs["complete"]
    dates = _dates(truth)
    assert dates == sorted(dates) and truth["reference_date"][()].decode() in dates
    # the cube equals the per-PS series and is 0 at the reference
    cube = truth["displacement_mm"][()]
    r, c = truth["ps/rows"][()], truth["ps/cols"][()]
    primary = truth["ps/is_sidelobe"][()] == 0
    np.testing.assert_allclose(
        cube[:, r[primary], c[primary]].T, truth["ps/displacement_mm"][()][primary], atol=1e-4
    )
    assert np.abs(cube[dates.index(truth.attrs["reference_date"])]).max() == 0.0
    cls = truth["pixel_class"][()]
    assert set(np.unique(cls)) == {0, 1, 2, 3, 4}
    assert ((cls == 1) == truth["ps_mask"][()].astype(bool)).all()
    assert truth["velocity_mm_yr"][()].min() < -5.0  # the subsidence bowl


# ---------------------------------------------------------------------------------------------
# profiles, options, CLI
# ---------------------------------------------------------------------------------------------


def test_realistic_ascending_reference_option(tmp_path):
    out = tmp_path / "real"
    s = generate_stack(
        out, "realistic", 48, 96, 6, seed=3, reference_date=None, pass_direction="ASCENDING",
        truth_cube="no", multilooked=False, progress=False,
    )  # fmt: skip
    with h5py.File(out / "truth.h5", "r") as t:
        assert "displacement_mm" not in t and "ps/displacement_mm" in t
        assert not any(name in t for name in syn.PHASE_CUBES)
        assert "coherence_12day" not in t and 5 not in np.unique(t["pixel_class"][()])
        assert t.attrs["heading_deg"] == pytest.approx(-12.0, abs=0.05)
        dates = _dates(t)
        span = (np.datetime64(f"{dates[-1][:4]}-{dates[-1][4:6]}-{dates[-1][6:]}")
                - np.datetime64(f"{dates[0][:4]}-{dates[0][4:6]}-{dates[0][6:]}"))  # fmt: skip
        assert span.astype(int) >= 360
        assert t["atm_std_rad"][()].min() >= 0.6
    los = read_raster(out / "merged/geom_reference/los.rdr.full")
    np.testing.assert_allclose(los[1], 102.0, atol=0.2)
    assert not (out / "merged/geom_reference/hgt.rdr").exists()
    again = generate_stack(
        out, "realistic", 48, 96, 6, seed=3, reference_date=s["dates"][1], overwrite=True,
        progress=False,
    )  # fmt: skip
    assert again["reference_date"] == s["dates"][1] and again["dates"] == s["dates"]


def test_errors_are_one_line_stamps_errors(stack, tmp_path):
    with pytest.raises(StampsError, match="already holds"):
        generate_stack(stack[0], "easy", ROWS, COLS, N_DATES, seed=SEED, progress=False)
    with pytest.raises(StampsError, match="not an acquisition date"):
        generate_stack(tmp_path / "x", "easy", ROWS, COLS, N_DATES, reference_date="20210106")
    with pytest.raises(StampsError, match="profile"):
        generate_stack(tmp_path / "x", "hard", ROWS, COLS, N_DATES)
    for kwargs, match in (
        ({"bowl_centre": (1.2, 0.5)}, "bowl centre"),
        ({"bowl_centre": (0.5, -0.1)}, "bowl centre"),
        ({"bowl_centre": (0.5, 0.5), "bowl_anywhere": True}, "not both"),
        ({"ds_short_fraction": 1.5}, "ds short fraction"),
        ({"ds_short_fraction": float("nan")}, "ds short fraction"),
        ({"ds_short_alpha12": (0.9, 0.5)}, "ds short coherence"),
        ({"ds_short_alpha12": (0.0, 0.5)}, "ds short coherence"),
        ({"ds_short_alpha12": (0.5, 1.0)}, "ds short coherence"),
    ):
        with pytest.raises(StampsError, match=match) as err:
            generate_stack(tmp_path / "x", "easy", ROWS, COLS, N_DATES, **kwargs)
        assert "\n" not in str(err.value)
    assert not (tmp_path / "x").exists()
    assert run_cli(main, [str(tmp_path / "y"), "--rows", "10", "--quiet"]) == 1
    assert not (tmp_path / "y").exists()


def test_cli_script_runs_as_a_file(tmp_path):
    out = tmp_path / "cli"
    cmd = [
        sys.executable, str(REPO / "stamps_python" / "stamps_synthetic.py"), str(out),
        "--profile", "easy", "--rows", "36", "--cols", "72", "--dates", "4", "--seed", "1",
        "--quiet",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "4 dates" in done.stdout and (out / "truth.h5").is_file()
    bad = subprocess.run(cmd[:3] + ["--reference-date", "2021-01-05", "--quiet"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1].startswith("error: reference date")


def test_baseline_sign_and_dem_phase_follow_isce_geometry():
    """ISCE's computeBaseline formula on explicit orbit vectors gives the generator's Bperp and
    Bpar, and exact ranges give +4 pi/lambda Bperp dz/(R sin inc) in ref*conj(sec)."""
    orbit = _make_orbit(37.0, -120.5, -168.0, 39.0)
    r = _slant_range_at_incidence(39.0)
    rs, re = orbit.radius, EARTH_RADIUS_M
    look = float(_look_angle(np.array([r]))[0])

    def target(h: float) -> np.ndarray:
        rh = re + h
        g = math.acos((rs * rs + rh * rh - r * r) / (2 * rs * rh))
        return rh * (math.cos(g) * orbit.unit(0.0) + math.sin(g) * orbit.side)

    ref_pos, ref_vel = orbit.position(0.0), orbit.velocity(0.0)
    for b_cross, b_up in ((50.0, 0.0), (0.0, 50.0), (-30.0, 20.0)):
        base = _Baselines(
            b_cross0=np.array([b_cross]), b_up0=np.array([b_up]), rate_cross=np.zeros(1),
            rate_up=np.zeros(1), bperp_txt=np.zeros(1), bpar_txt=np.zeros(1),
        )  # fmt: skip
        bperp, bpar = base.at(0, np.array(0.0), np.array(look))
        sec = ref_pos + b_cross * orbit.side + b_up * orbit.unit(0.0)
        t0 = target(0.0)
        aa = np.linalg.norm(sec - ref_pos)
        cos_t = (r * r + aa * aa - np.linalg.norm(t0 - sec) ** 2) / (2 * r * aa)
        sign = np.sign(np.dot(np.cross(t0 - ref_pos, sec - ref_pos), ref_vel))
        assert bperp == pytest.approx(sign * aa * math.sqrt(1 - cos_t**2), abs=1e-6)
        assert bpar == pytest.approx(aa * cos_t, abs=1e-6)
        dz = 10.0
        t1 = target(dz)  # same reference range, 10 m higher
        ifg = (
            -4
            * np.pi
            / WAVELENGTH_M
            * (
                (np.linalg.norm(t1 - ref_pos) - np.linalg.norm(t1 - sec))
                - (np.linalg.norm(t0 - ref_pos) - np.linalg.norm(t0 - sec))
            )
        )
        expect = 4 * np.pi / WAVELENGTH_M * bperp * dz / (r * np.sin(np.radians(39.0)))
        assert ifg == pytest.approx(expect, rel=1e-3)


# ---------------------------------------------------------------------------------------------
# defaults stay byte-identical; bowl placement, short-lived DS, nuisance truth cubes
# ---------------------------------------------------------------------------------------------

# datasets added to truth.h5 after the reference digests below were taken
NEW_TRUTH_DATASETS = {"atmosphere_rad", "orbit_ramp_rad", "dem_error_rad", "coherence_12day"}


def _digests(out: Path) -> tuple[str, str]:
    """sha256 of the SLC files (date order) and of the truth datasets other than
    NEW_TRUTH_DATASETS (sorted names, dtype, shape, raw values)."""
    with h5py.File(out / "truth.h5", "r") as truth:
        slc = hashlib.sha256()
        for d in _dates(truth):
            slc.update((out / f"merged/SLC/{d}/{d}.slc.full").read_bytes())
        names: list[str] = []
        truth.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        values = hashlib.sha256()
        for name in sorted(set(names) - NEW_TRUTH_DATASETS):
            arr = np.asarray(truth[name][()])
            values.update(f"{name} {arr.dtype.str} {arr.shape}".encode())
            values.update(arr.tobytes())
    return slc.hexdigest(), values.hexdigest()


def test_defaults_are_byte_identical_to_the_generator_before_the_options(stack):
    """Reference digests measured on the module's stack (easy, 60 x 120, 8 dates, seed 7) made
    by the generator of commit b9bd690, before bowl_centre / bowl_anywhere /
    ds_short_fraction and the phase cubes existed (``git show b9bd690:stamps_python/
    synthetic.py > /tmp/s.py; python /tmp/s.py OUT --rows 60 --cols 120 --dates 8 --seed 7``,
    then ``_digests(OUT)``). The options at their defaults must not change a byte of them."""
    assert _digests(stack[0]) == (
        "93112c9cd6c1987f573c4dc2fa7551b790c508cec95e748d661235c1bd8d1a04",
        "ed02a3aa75887c38bfeec49bb3c3acb9ce99bb59d6845183d778b1ec938a265f",
    )


def _gen(out: Path, rows: int, cols: int, profile: str = "easy", n_dates: int = 3,
         **kwargs) -> Path:  # fmt: skip
    generate_stack(out, profile, rows, cols, n_dates, **kwargs)
    return out


def _bowl(out: Path) -> tuple:
    """params_json bowl and args, velocity_mm_yr, east_m, north_m, valid_mask."""
    with h5py.File(out / "truth.h5", "r") as t:
        params = json.loads(t.attrs["params_json"])
        return (params["bowl"], params["args"], t["velocity_mm_yr"][()], t["east_m"][()],
                t["north_m"][()], t["valid_mask"][()])  # fmt: skip


def test_bowl_centre_anywhere_and_given(tmp_path):
    rows, cols = 48, 96
    small = {"truth_cube": "no", "multilooked": False, "progress": False}
    bowl, args, _, _, _, _ = _bowl(_gen(tmp_path / "default", rows, cols, seed=1, **small))
    assert bowl["placement"] == "profile" and args["bowl_centre"] is None
    assert not args["bowl_anywhere"]
    for n, ix in ((rows, bowl["center_row"]), (cols, bowl["center_col"])):  # easy: central 10 %
        assert int(0.45 * n) <= ix < int(0.55 * n)
    centres = []
    for seed in range(4):
        out = _gen(tmp_path / f"any{seed}", rows, cols, seed=seed, bowl_anywhere=True, **small)
        bowl, args, vel, east, north, valid = _bowl(out)
        i, j = bowl["center_row"], bowl["center_col"]
        assert bowl["placement"] == "anywhere" and args["bowl_anywhere"] and valid[i, j]
        assert (bowl["center_e_m"], bowl["center_n_m"]) == (float(east[i, j]), float(north[i, j]))
        assert np.unravel_index(np.argmin(vel), vel.shape) == (i, j)  # easy: no regional field
        centres.append((i / rows, j / cols))
    centres = np.array(centres)
    assert np.any((centres < 0.45) | (centres >= 0.55))  # not only in the profile's spread
    assert np.ptp(centres[:, 0]) > 0.2 and np.ptp(centres[:, 1]) > 0.2
    for frac in ((0.0, 1.0), (0.8, 0.15)):
        out = _gen(tmp_path / f"at{frac}", rows, cols, seed=1, bowl_centre=frac, **small)
        bowl, args, vel, east, north, _ = _bowl(out)
        i, j = round(frac[0] * (rows - 1)), round(frac[1] * (cols - 1))
        assert bowl["placement"] == "given" and args["bowl_centre"] == list(frac)
        assert (bowl["center_row"], bowl["center_col"]) == (i, j)
        assert (bowl["center_e_m"], bowl["center_n_m"]) == (float(east[i, j]), float(north[i, j]))
        assert np.unravel_index(np.argmin(vel), vel.shape) == (i, j)


SHORT_ROWS, SHORT_COLS, SHORT_DATES, SHORT_F = 96, 192, 12, 0.5


@pytest.fixture(scope="module")
def short_stack(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("short") / "stack"
    generate_stack(
        out, "realistic", SHORT_ROWS, SHORT_COLS, SHORT_DATES, seed=4, truth_cube="yes",
        multilooked=False, progress=False, ds_short_fraction=SHORT_F,
        ds_short_alpha12=(0.5, 0.9),
    )  # fmt: skip
    return out


def test_short_lived_ds_population_and_patches(short_stack):
    with h5py.File(short_stack / "truth.h5", "r") as t:
        cls = t["pixel_class"][()]
        a12 = t["coherence_12day"][()]
        gam = t["temporal_coherence_inf"][()]
        assert t["coherence_12day"].dtype == np.float32
        assert json.loads(t.attrs["class_names"])["5"] == "distributed_short"
        args = json.loads(t.attrs["params_json"])["args"]
    assert args["ds_short_fraction"] == SHORT_F and args["ds_short_alpha12"] == [0.5, 0.9]
    short, ds = cls == 5, cls == 3
    assert set(np.unique(cls)) == {0, 1, 2, 3, 4, 5}
    assert short.sum() / (short.sum() + ds.sum()) == pytest.approx(SHORT_F, abs=0.03)
    assert np.all(gam[short] == 0.0) and gam[ds].max() > 0.1
    assert 0.5 <= a12[short].min() and a12[short].max() < 0.9
    assert 0.2 <= a12[ds].min() and a12[ds].max() < 0.7  # the realistic profile's range
    assert np.all(a12[(cls == 1) | (cls == 4) | (cls == 0)] == 0.0)
    # fields, not salt and pepper: most class-5 pixels lie in patches of tens of pixels or more
    lab, n = ndimage.label(short)
    sizes = np.bincount(lab.ravel())[1:]
    assert sizes.mean() > 20 and sizes[sizes >= 20].sum() > 0.9 * short.sum()
    # a random choice of the same number of DS pixels would not be
    rand = np.zeros_like(short)
    pick = np.random.default_rng(0).permutation(np.flatnonzero(short | ds))[: short.sum()]
    rand.ravel()[pick] = True
    assert np.bincount(ndimage.label(rand)[0].ravel())[1:].mean() < 0.2 * sizes.mean()


def test_short_lived_ds_coherence_from_the_slcs(short_stack):
    """Coherence of the SLC pairs, the true phase removed, over the pixels of each DS class,
    against the model gam_inf + (1 - gam_inf) alpha12^(dt / 12 d), diluted by the thermal
    noise (power thermal_sigma^2 noise_factor^2)."""
    with h5py.File(short_stack / "truth.h5", "r") as t:
        dates = _dates(t)
        cls = t["pixel_class"][()]
        a12 = t["coherence_12day"][()].astype(np.float64)
        gam = t["temporal_coherence_inf"][()].astype(np.float64)
        phase = (4e-3 * np.pi / WAVELENGTH_M * t["displacement_mm"][()] + t["atmosphere_rad"][()]
                 + t["orbit_ramp_rad"][()] + t["dem_error_rad"][()])  # fmt: skip
        cal, nf = t["amp_calibration"][()], t["noise_factor"][()]
        sigma = json.loads(t.attrs["params_json"])["thermal_sigma"]
    days = np.array([np.datetime64(f"{d[:4]}-{d[4:6]}-{d[6:]}") for d in dates]).astype(float)
    slc = np.stack([
        np.fromfile(short_stack / f"merged/SLC/{d}/{d}.slc.full", "<c8").reshape(
            SHORT_ROWS, SHORT_COLS) for d in dates
    ])  # fmt: skip
    n = len(dates)
    got = {}
    for k in (3, 5):
        m = cls == k
        z = slc[:, m] * np.exp(-1j * phase[:, m]) / cal[:, None]
        power = np.abs(z) ** 2
        noise2 = (sigma * nf) ** 2
        signal2 = np.maximum(power.mean(axis=0) - noise2.mean(), 0.0)
        for i in range(n):
            for j in range(i + 1, n):
                lag = (days[j] - days[i]) / 12.0
                emp = np.real(np.vdot(z[j], z[i])) / np.sqrt(power[i].sum() * power[j].sum())
                rho = gam[m] + (1.0 - gam[m]) * a12[m] ** lag
                model = np.sum(signal2 * rho) / np.sqrt(
                    np.sum(signal2 + noise2[i]) * np.sum(signal2 + noise2[j])
                )
                got.setdefault(k, []).append((lag, emp, model))
    for k, res in got.items():
        lag, emp, model = np.array(res).T
        assert np.abs(emp - model).max() < 0.06, k
        short_lag = lag == 1.0
        assert short_lag.sum() >= 2
        np.testing.assert_allclose(emp[short_lag], model[short_lag], atol=0.03)
    lag5, emp5, model5 = np.array(got[5]).T
    lag3, emp3, _ = np.array(got[3]).T
    assert emp5[lag5 == 1.0].mean() > 0.5  # coherent over 12 days (after thermal noise) ...
    assert emp5[lag5 >= 15].mean() < 0.05  # ... gone after half a year
    assert emp3[lag3 >= 15].mean() > emp5[lag5 >= 15].mean() + 0.05  # DS keep gam_inf


def test_short_ds_take_sidelobes_like_ds(short_stack):
    """PS sidelobes form on class-5 ground as often as on DS ground (the DS mask includes it).
    coherence_12day keeps the background of a sidelobe pixel: >= 0.7 is class-5 ground only
    (realistic DS: 0.2-0.7), < 0.5 DS ground only (class 5: 0.5-0.9)."""
    with h5py.File(short_stack / "truth.h5", "r") as t:
        a12 = t["coherence_12day"][()]
        side = t["pixel_class"][()] == 2
    short_bg, ds_bg = a12 >= 0.7, (a12 > 0.0) & (a12 < 0.5)
    rate_short, rate_ds = side[short_bg].mean(), side[ds_bg].mean()
    assert side[short_bg].sum() > 50
    assert 0.7 < rate_short / rate_ds < 1.4


def test_phase_cubes_match_the_ps_truth(truth):
    dates = _dates(truth)
    ref = dates.index(truth.attrs["reference_date"])
    for name in syn.PHASE_CUBES:
        ds = truth[name]
        assert ds.shape == (N_DATES, ROWS, COLS) and ds.dtype == np.float32, name
        assert ds.chunks == (1, ROWS, COLS) and ds.compression == "gzip" and ds.shuffle, name
        assert ds.attrs["units"] == "rad"
        assert (
            "interferogram (reference x conj(date)) phase = X[ref] - X[date]"
            in (ds.attrs["description"])
        )
    atm, ramp, dem = (truth[n][()].astype(np.float64) for n in syn.PHASE_CUBES)
    primary = truth["ps/is_sidelobe"][()] == 0
    r, c = truth["ps/rows"][()][primary], truth["ps/cols"][()][primary]
    nuis = atm[:, r, c] + ramp[:, r, c]
    np.testing.assert_allclose((nuis[ref] - nuis).T, truth["ps/nuisance_ifg_rad"][()][primary],
                               atol=1e-4)  # fmt: skip
    np.testing.assert_allclose((dem[ref, r, c] - dem[:, r, c]).T,
                               truth["ps/dem_ifg_rad"][()][primary], atol=1e-4)  # fmt: skip
    assert np.abs(dem[ref]).max() == 0.0 and np.abs(ramp[ref]).max() > 0.0
    # the ramp is the plane of ramp_coeffs_rad; the atmosphere holds the stratified term
    yn = (np.arange(ROWS) - 0.5 * (ROWS - 1)) / ROWS
    xn = (np.arange(COLS) - 0.5 * (COLS - 1)) / COLS
    coef = truth["ramp_coeffs_rad"][()]
    plane = coef[:, 0, None, None] * yn[None, :, None] + coef[:, 1, None, None] * xn[None, None]
    np.testing.assert_allclose(ramp, plane, atol=1e-5)
    # the model phase of the cubes matches the SLC interferograms at the PS
    slc = np.stack([
        np.fromfile(Path(truth.filename).parent / f"merged/SLC/{d}/{d}.slc.full", "<c8").reshape(
            ROWS, COLS) for d in dates
    ])  # fmt: skip
    disp = truth["displacement_mm"][()].astype(np.float64)
    x = 4e-3 * np.pi / WAVELENGTH_M * disp + atm + ramp + dem
    ifg = slc[ref, r, c] * np.conj(slc[:, r, c])
    resid = np.angle(ifg * np.exp(-1j * (x[ref, r, c] - x[:, r, c])))
    da = truth["ps/amp_dispersion_nominal"][()][primary].astype(np.float64)
    assert np.sqrt(np.mean(resid**2)) == pytest.approx(np.sqrt(2 * np.mean(da**2)), rel=0.2)


def test_cli_options(tmp_path):
    out = tmp_path / "cli"
    assert main([str(out), "--rows", "36", "--cols", "72", "--dates", "3", "--seed", "2",
                 "--bowl-centre", "0.25", "0.75", "--ds-short-fraction", "0.4",
                 "--ds-short-coherence", "0.6", "0.8", "--quiet"]) == 0  # fmt: skip
    with h5py.File(out / "truth.h5", "r") as t:
        params = json.loads(t.attrs["params_json"])
        a12 = t["coherence_12day"][()][t["pixel_class"][()] == 5]
    assert params["args"]["bowl_centre"] == [0.25, 0.75] and not params["args"]["bowl_anywhere"]
    assert (params["bowl"]["center_row"], params["bowl"]["center_col"]) == (9, 53)
    assert params["args"]["ds_short_alpha12"] == [0.6, 0.8] and a12.size > 0
    assert 0.6 <= a12.min() and a12.max() < 0.8
    helps = build_parser().format_help()
    for opt in ("--bowl-centre", "--bowl-anywhere", "--ds-short-fraction",
                "--ds-short-coherence"):  # fmt: skip
        assert opt in helps
    assert "default 0.5 0.9" in helps
    assert run_cli(main, [str(tmp_path / "z"), "--bowl-anywhere", "--bowl-centre", "0.5", "0.5",
                          "--quiet"]) == 1  # fmt: skip
    assert not (tmp_path / "z").exists()


def test_strat_std_and_terrain_relief_change_only_their_terms(tmp_path: Path) -> None:
    kw = dict(profile="realistic", rows=48, cols=96, n_dates=5, seed=2, progress=False)
    syn.generate_stack(tmp_path / "base", **kw)
    syn.generate_stack(tmp_path / "strat", strat_std=2.0, **kw)
    syn.generate_stack(tmp_path / "hills", terrain_relief=1500.0, **kw)
    with (
        h5py.File(tmp_path / "base" / "truth.h5") as a,
        h5py.File(tmp_path / "strat" / "truth.h5") as b,
        h5py.File(tmp_path / "hills" / "truth.h5") as c,
    ):
        # the same draws, scaled from the profile's 1.0 rad/km to 2.0
        np.testing.assert_allclose(b["strat_rad_per_km"][()], 2.0 * a["strat_rad_per_km"][()])
        np.testing.assert_array_equal(b["hgt"][()], a["hgt"][()])
        np.testing.assert_array_equal(b["atm_std_rad"][()], a["atm_std_rad"][()])
        assert np.std(c["hgt"][()]) > 3 * np.std(a["hgt"][()])  # 1500 m hills against 300 m
        np.testing.assert_array_equal(c["strat_rad_per_km"][()], a["strat_rad_per_km"][()])
    with pytest.raises(StampsError, match="strat std"):
        syn.generate_stack(tmp_path / "bad", strat_std=-1.0, **kw)
    with pytest.raises(StampsError, match="terrain relief"):
        syn.generate_stack(tmp_path / "bad2", terrain_relief=5000.0, **kw)

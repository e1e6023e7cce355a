"""Tests of the synthetic ISCE2 topsStack generator (stamps_python.synthetic)."""

from __future__ import annotations

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

from stamps_python import synthetic as syn
from stamps_python.synthetic import (
    EARTH_RADIUS_M,
    RANGE_PIXEL_M,
    SATELLITE_ALTITUDE_M,
    WAVELENGTH_M,
    generate_stack,
    main,
)
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
    assert not (tmp_path / "x").exists()
    assert run_cli(main, [str(tmp_path / "y"), "--rows", "10", "--quiet"]) == 1
    assert not (tmp_path / "y").exists()


def test_cli_script_runs_as_a_file(tmp_path):
    out = tmp_path / "cli"
    cmd = [
        sys.executable, str(REPO / "stamps_python" / "synthetic.py"), str(out), "--profile", "easy",
        "--rows", "36", "--cols", "72", "--dates", "4", "--seed", "1", "--quiet",
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
    orbit = syn._make_orbit(37.0, -120.5, -168.0, 39.0)
    r = syn._slant_range_at_incidence(39.0)
    rs, re = orbit.radius, EARTH_RADIUS_M
    look = float(syn._look_angle(np.array([r]))[0])

    def target(h: float) -> np.ndarray:
        rh = re + h
        g = math.acos((rs * rs + rh * rh - r * r) / (2 * rs * rh))
        return rh * (math.cos(g) * orbit.unit(0.0) + math.sin(g) * orbit.side)

    ref_pos, ref_vel = orbit.position(0.0), orbit.velocity(0.0)
    for b_cross, b_up in ((50.0, 0.0), (0.0, 50.0), (-30.0, 20.0)):
        base = syn._Baselines(
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

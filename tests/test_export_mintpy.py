"""export_results --format mintpy: MintPy's HDF5 files on the golden stack's radar grid, read back
with h5py against the GeoPackage written beside them."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
from conftest import GOLDEN_MERGED, GOLDEN_REFERENCE
from test_export import make_run

from stamps_python.export_results import cli
from stamps_python.io import mintpy
from stamps_python.io.isce import bootstrap_metadata, open_stack
from stamps_python.io.products import load_product, save_product
from stamps_python.rundir import write_metadata

GEOM = GOLDEN_MERGED / "geom_reference"
LENGTH, WIDTH = 240, 480
REQUIRED = (
    "FILE_TYPE",
    "LENGTH",
    "WIDTH",
    "WAVELENGTH",
    "REF_DATE",
    "REF_Y",
    "REF_X",
    "REF_LAT",
    "REF_LON",
    "ORBIT_DIRECTION",
    "STARTING_RANGE",
    "RANGE_PIXEL_SIZE",
    "EARTH_RADIUS",
    "HEIGHT",
    "CENTER_LINE_UTC",
    "ALOOKS",
    "RLOOKS",
    *(f"{a}_REF{k}" for a in ("LAT", "LON") for k in range(1, 5)),
    "UNIT",
)


def _raster(name: str, band: int = 1) -> np.ndarray:
    with rasterio.open(GEOM / f"{name}.rdr.full.vrt") as ds:
        return ds.read(band).astype(np.float64)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made run of test_export, its PS on distinct pixels of the golden stack, with the
    stack's metadata.json (geometry rasters, reference XML)."""
    root = tmp_path_factory.mktemp("mintpy") / "run"
    make_run(root)
    ps = load_product(root / "ps2.h5")
    n = int(ps["n_ps"])
    flat = np.random.default_rng(3).choice(LENGTH * WIDTH, n, replace=False)
    ps["ij"] = np.column_stack([np.arange(1, n + 1), flat // WIDTH, flat % WIDTH])
    save_product(root / "ps2.h5", ps)
    write_metadata(root, bootstrap_metadata(open_stack(GOLDEN_MERGED), GOLDEN_REFERENCE))
    return root


def _export(run: Path, out: Path, *extra: str) -> list[Path]:
    args = [str(run), "--output-dir", str(out), "--format", "mintpy", "--n-boot", "5", *extra]
    assert cli(args) == 0
    return sorted(out.rglob("*.h5"))


def _layer(path: Path) -> dict[str, np.ndarray]:
    import pyogrio

    frame = pyogrio.read_dataframe(path)
    dnames = [c for c in frame.columns if c.startswith("D") and c[1:].isdigit()]
    out = {c: frame[c].to_numpy() for c in frame.columns if c != "geometry"}
    out["LON"], out["LAT"] = frame.geometry.x.to_numpy(), frame.geometry.y.to_numpy()
    out["D"] = frame[dnames].to_numpy(np.float64)
    out["dates"] = np.array([c[1:] for c in dnames])
    return out


def _attrs(path: Path) -> dict[str, str]:
    with h5py.File(path, "r") as f:
        return {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}


@pytest.fixture(scope="module")
def export(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mintpy_out")
    _export(run, out, "--correction", "v-do", "--correction", "v-dso")
    return out


def test_files_written_beside_the_geopackage(export: Path) -> None:
    for corr in ("v-do", "v-dso"):
        assert (export / f"ps_{corr}.gpkg").is_file()
        folder = export / f"mintpy_{corr}"
        for name in mintpy.DATA_FILES:
            assert (folder / name).is_file()
        assert (folder / "inputs" / "geometryRadar.h5").is_file()
    assert not list(export.rglob(".*tmp*"))


@pytest.mark.parametrize("corr", ["v-do", "v-dso"])
def test_values_equal_the_geopackage(run: Path, export: Path, corr: str) -> None:
    layer = _layer(export / f"ps_{corr}.gpkg")
    ij = load_product(run / "ps2.h5")["ij"]
    y, x = ij[layer["CODE"] - 1, 1], ij[layer["CODE"] - 1, 2]
    folder = export / f"mintpy_{corr}"
    with h5py.File(folder / "timeseries.h5", "r") as f:
        dates = [d.decode() for d in f["date"][:]]
        ts = f["timeseries"][:]
        bperp = f["bperp"][:]
        assert f["timeseries"].attrs["UNIT"] == "m"
    assert dates == list(layer["dates"])
    assert ts.shape == (len(dates), LENGTH, WIDTH) and ts.dtype == np.float32
    np.testing.assert_allclose(ts[:, y, x].T * 1000.0, layer["D"], rtol=1e-6, atol=1e-6)
    ref_k = dates.index(_attrs(folder / "timeseries.h5")["REF_DATE"])
    assert np.all(ts[ref_k][y, x] == 0)
    empty = np.ones((LENGTH, WIDTH), dtype=bool)
    empty[y, x] = False
    assert np.isnan(ts[:, empty]).all()
    ps_bperp = load_product(run / "ps2.h5")["bperp"]
    day_dates = [str(d) for d in load_product(run / "ps2.h5")["dates"]]
    np.testing.assert_allclose(bperp, ps_bperp[[day_dates.index(d) for d in dates]], atol=1e-4)
    with h5py.File(folder / "velocity.h5", "r") as f:
        np.testing.assert_allclose(
            f["velocity"][:][y, x] * 1000, layer["VEL"], rtol=1e-6, atol=1e-6
        )
        np.testing.assert_allclose(
            f["velocityStd"][:][y, x] * 1000, layer["V_STDEV"], rtol=1e-6, atol=1e-6
        )
        assert np.isnan(f["velocity"][:][empty]).all()
        assert f["velocity"].attrs["UNIT"] == "m/year"
    with h5py.File(folder / "temporalCoherence.h5", "r") as f:
        np.testing.assert_allclose(f["temporalCoherence"][:][y, x], layer["TCOH"], atol=1e-7)
    with h5py.File(folder / "maskTempCoh.h5", "r") as f:
        mask = f["mask"][:]
    assert mask.dtype == bool and mask[y, x].all() and mask.sum() == layer["CODE"].size
    with h5py.File(folder / "inputs" / "geometryRadar.h5", "r") as f:
        geo = {k: f[k][:] for k in f}
    np.testing.assert_array_equal(geo["latitude"][y, x], layer["LAT"])
    np.testing.assert_array_equal(geo["longitude"][y, x], layer["LON"])
    np.testing.assert_allclose(geo["height"][y, x], layer["HEIGHT"], atol=1e-4)
    # away from the points, the stack's own rasters
    np.testing.assert_array_equal(geo["latitude"][empty], _raster("lat")[empty])
    np.testing.assert_allclose(geo["incidenceAngle"], _raster("los", 1), atol=1e-5)
    np.testing.assert_allclose(geo["azimuthAngle"], _raster("los", 2), atol=1e-5)


def test_root_attributes(run: Path, export: Path) -> None:
    folder = export / "mintpy_v-do"
    layer = _layer(export / "ps_v-do.gpkg")
    types = {
        "timeseries.h5": ("timeseries", "m"),
        "velocity.h5": ("velocity", "m/year"),
        "temporalCoherence.h5": ("temporalCoherence", "1"),
        "maskTempCoh.h5": ("mask", "1"),
    }
    meta = bootstrap_metadata(open_stack(GOLDEN_MERGED), GOLDEN_REFERENCE)
    for name, (ftype, unit) in types.items():
        a = _attrs(folder / name)
        assert [k for k in REQUIRED if k not in a] == []
        assert (a["FILE_TYPE"], a["UNIT"]) == (ftype, unit)
        assert (int(a["LENGTH"]), int(a["WIDTH"])) == (LENGTH, WIDTH)
        assert (a["ALOOKS"], a["RLOOKS"]) == ("1", "1")
    a = _attrs(folder / "timeseries.h5")
    assert float(a["WAVELENGTH"]) == pytest.approx(0.05546576)
    assert a["REF_DATE"] == str(load_product(run / "ps2.h5")["dates"][5])  # make_run master_ix 5
    assert a["ORBIT_DIRECTION"] == "descending" and a["PROCESSOR"] == "isce"
    assert float(a["STARTING_RANGE"]) == pytest.approx(meta["slant_range_near"])
    assert float(a["RANGE_PIXEL_SIZE"]) == pytest.approx(meta["range_pixel_spacing"])
    # reference pixel: a reference PS (all PS here), its own coordinates
    ij = load_product(run / "ps2.h5")["ij"]
    k = np.flatnonzero(
        (ij[layer["CODE"] - 1, 1] == int(a["REF_Y"]))
        & (ij[layer["CODE"] - 1, 2] == int(a["REF_X"]))
    )
    assert k.size == 1
    assert float(a["REF_LAT"]) == pytest.approx(layer["LAT"][k[0]], abs=1e-12)
    assert float(a["REF_LON"]) == pytest.approx(layer["LON"][k[0]], abs=1e-12)
    # first burst's mid time: 14:01:12.345678 .. 14:01:12.639623 -> 50472 s (MintPy's integer s)
    assert float(a["CENTER_LINE_UTC"]) == 14 * 3600 + 60 + 12
    # orbit: a Sentinel-1 altitude, a WGS84 radius; MintPy's incidence angle from them matches
    # the stack's at the centre
    r, h = float(a["EARTH_RADIUS"]), float(a["HEIGHT"])
    assert 6.34e6 < r < 6.40e6 and 6.8e5 < h < 7.2e5
    rho = float(a["STARTING_RANGE"]) + float(a["RANGE_PIXEL_SIZE"]) * WIDTH / 2
    inc = 180 - math.degrees(math.acos((r**2 + rho**2 - (r + h) ** 2) / (2 * r * rho)))
    assert inc == pytest.approx(_raster("los", 1)[LENGTH // 2, WIDTH // 2], abs=0.5)
    assert abs(float(a["HEADING"]) - meta["heading"]) < 5
    # corners as MintPy's extract_geometry_metadata: rows 2 and L-3 (no zeros), columns 0, -1
    lat, lon = _raster("lat"), _raster("lon")
    assert [float(a[f"LAT_REF{k}"]) for k in range(1, 5)] == pytest.approx(
        [lat[2, 0], lat[2, -1], lat[-3, 0], lat[-3, -1]]
    )
    assert [float(a[f"LON_REF{k}"]) for k in range(1, 5)] == pytest.approx(
        [lon[2, 0], lon[2, -1], lon[-3, 0], lon[-3, -1]]
    )
    v = _attrs(folder / "velocity.h5")
    assert v["DATE12"] == f"{layer['dates'][0]}_{layer['dates'][-1]}"
    g = _attrs(folder / "inputs" / "geometryRadar.h5")
    assert g["FILE_TYPE"] == "geometry" and "REF_Y" not in g
    with h5py.File(folder / "inputs" / "geometryRadar.h5", "r") as f:
        slant = f["slantRangeDistance"][:]
    expect = float(a["STARTING_RANGE"]) + float(a["RANGE_PIXEL_SIZE"]) * np.arange(WIDTH)
    np.testing.assert_allclose(slant[7], expect, rtol=1e-7)


def test_multilook(run: Path, tmp_path: Path) -> None:
    _export(run, tmp_path, "--mintpy-looks", "2", "4")
    folder = tmp_path / "mintpy_v-do"
    a = _attrs(folder / "velocity.h5")
    assert (int(a["LENGTH"]), int(a["WIDTH"]), a["ALOOKS"], a["RLOOKS"]) == (120, 120, "2", "4")
    base = _attrs(tmp_path / "mintpy_v-do" / "timeseries.h5")
    layer = _layer(tmp_path / "ps_v-do.gpkg")
    ij = load_product(run / "ps2.h5")["ij"][layer["CODE"] - 1]
    cell = (ij[:, 1] // 2) * 120 + ij[:, 2] // 4
    with h5py.File(folder / "velocity.h5", "r") as f:
        vel = f["velocity"][:].ravel()
    with h5py.File(folder / "timeseries.h5", "r") as f:
        ts = f["timeseries"][:].reshape(len(layer["dates"]), -1)
    for c in np.unique(cell)[:50]:
        sel = cell == c
        assert vel[c] * 1000 == pytest.approx(layer["VEL"][sel].mean(), rel=1e-5, abs=1e-5)
        np.testing.assert_allclose(ts[:, c] * 1000, layer["D"][sel].mean(axis=0), atol=1e-4)
    assert np.isnan(np.delete(vel, np.unique(cell))).all()
    assert float(base["RANGE_PIXEL_SIZE"]) == pytest.approx(4 * 2.329562114715323)
    with h5py.File(folder / "inputs" / "geometryRadar.h5", "r") as f:
        lat = f["latitude"][:]
        assert lat.shape == (120, 120)
    full = _raster("lat")
    full_ps = full.copy()
    all_ij = load_product(run / "ps2.h5")["ij"]
    full_ps[all_ij[:, 1], all_ij[:, 2]] = load_product(run / "ps2.h5")["lonlat"][:, 1]
    np.testing.assert_allclose(lat, full_ps.reshape(120, 2, 120, 4).mean(axis=(1, 3)), atol=1e-12)


def test_without_stack_geometry_one_line_error(run: Path, tmp_path: Path, capsys) -> None:
    meta_path = run / "metadata.json"
    saved = meta_path.read_text()
    try:
        meta_path.unlink()
        assert cli([str(run), "--output-dir", str(tmp_path), "--format", "mintpy"]) == 1
        err = capsys.readouterr().err.strip()
        assert "metadata.json" in err and len(err.splitlines()) == 1
        write_metadata(run, {"processor": "isce", "merged_dir": str(tmp_path / "gone")})
        assert cli([str(run), "--output-dir", str(tmp_path), "--format", "mintpy"]) == 1
        err = capsys.readouterr().err.strip()
        assert "--format mintpy needs" in err and len(err.splitlines()) == 1
    finally:
        meta_path.write_text(saved)
    looks = ["--mintpy-looks", "0", "1"]
    assert cli([str(run), "--output-dir", str(tmp_path), "--format", "mintpy", *looks]) == 1
    assert "--mintpy-looks 0 1" in capsys.readouterr().err
    assert not list(tmp_path.glob("mintpy_*"))


def test_orbit_helpers() -> None:
    lat, lon, h = 37.0, -120.5, 693_000.0
    n = mintpy.WGS84_A / math.sqrt(1 - mintpy.WGS84_E2 * math.sin(math.radians(lat)) ** 2)
    la, lo = math.radians(lat), math.radians(lon)
    xyz = np.array(
        [
            (n + h) * math.cos(la) * math.cos(lo),
            (n + h) * math.cos(la) * math.sin(lo),
            (n * (1 - mintpy.WGS84_E2) + h) * math.sin(la),
        ]
    )
    got = mintpy.ecef_to_llh(xyz)
    assert got == pytest.approx((lat, lon, h), abs=1e-6)
    north = np.array([-math.sin(la) * math.cos(lo), -math.sin(la) * math.sin(lo), math.cos(la)])
    assert mintpy.enu_heading(lat, lon, -north) == pytest.approx(180.0)
    m = mintpy.WGS84_A * (1 - mintpy.WGS84_E2) / (1 - mintpy.WGS84_E2 * math.sin(la) ** 2) ** 1.5
    assert mintpy.radius_of_curvature(lat, 0.0) == pytest.approx(m)
    assert mintpy.radius_of_curvature(lat, 90.0) == pytest.approx(n)

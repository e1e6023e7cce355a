"""prep_isce --crop-box / --crop-window / --mask on a small synthetic stack: a cropped or masked
run holds exactly the candidates its amplitude statistics give (D_A recomputed here from the
SLCs), the same pixels as an uncropped run with the same lon/lat, heights, angles and phase;
only the window's lines are read; bad boxes, windows and masks are one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stamps_python import rundir
from stamps_python.io import isce
from stamps_python.io.products import load_product
from stamps_python.numerics.amplitude import amplitude_dispersion
from stamps_python.prep import candidates
from stamps_python.prep.prepare import prepare
from stamps_python.prep_isce import main as prep_main
from stamps_python.synthetic import generate_stack
from stamps_python.utils import StampsError

THRESHOLD = 0.4
WINDOW = (30, 95, 40, 190)  # lines 30..94, samples 40..189


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("crop")
    generate_stack(
        base / "stack", profile="easy", rows=120, cols=240, n_dates=8, seed=21, progress=False
    )
    merged = base / "stack" / "merged"
    st = isce.open_stack(merged)
    slcs = np.stack([isce.read_raster(st.slc[d]) for d in st.dates])
    geo = {n: isce.read_raster(st.geometry_raster(n)) for n in ("lon", "lat", "hgt")}
    prepare(merged, base / "full", bootstrap_metadata=True)
    return {"base": base, "merged": merged, "stack": st, "slcs": slcs, "geo": geo}


def _candidates(run: Path) -> dict[tuple[int, int], dict[str, np.ndarray]]:
    """Every candidate of a run's patches (overlaps once) by (line, sample)."""
    out: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for pdir in rundir.patch_folders(run):
        c = load_product(pdir / "pscands.h5")
        for k, (i, j) in enumerate(np.asarray(c["ij"])):
            out[(int(i), int(j))] = {
                name: np.asarray(c[name])[k] for name in ("D_A", "lonlat", "hgt", "la", "inc", "ph")
            }
    return out


def _calconst(run: Path) -> np.ndarray:
    pdir = rundir.patch_folders(run)[0]
    return np.asarray(load_product(pdir / "pscands.h5", ["calconst"])["calconst"])


def _expected(stack: dict, calconst: np.ndarray, window, excluded=None) -> set[tuple[int, int]]:
    """The pixels of ``window`` not ``excluded`` whose D_A with ``calconst`` is below the
    threshold and that have no zero amplitude: selpsc computed directly."""
    l0, l1, s0, s1 = window
    values = stack["slcs"][:, l0:l1, s0:s1].reshape(len(calconst), -1)
    d_a, has_zero = amplitude_dispersion(values, calconst)
    keep = (d_a < THRESHOLD) & ~has_zero
    if excluded is not None:
        keep &= ~excluded[l0:l1, s0:s1].ravel()
    rows, cols = np.divmod(np.flatnonzero(keep), s1 - s0)
    return set(zip((rows + l0).tolist(), (cols + s0).tolist()))


def _calamp(stack: dict, window, excluded=None) -> np.ndarray:
    """calamp over the window's unmasked pixels: mean amplitude above 0.001 per SLC."""
    l0, l1, s0, s1 = window
    amp = np.abs(stack["slcs"][:, l0:l1, s0:s1]).astype(np.float64)
    ok = amp > 0.001
    if excluded is not None:
        ok &= ~excluded[None, l0:l1, s0:s1]
    return (amp * ok).sum(axis=(1, 2)) / ok.sum(axis=(1, 2))


def _same_values(a: dict, b: dict, keys) -> None:
    for key in keys:
        for name in ("lonlat", "hgt", "la", "inc", "ph"):
            np.testing.assert_array_equal(a[key][name], b[key][name], err_msg=f"{name} {key}")


def test_cropped_run_equals_the_same_pixels_of_an_uncropped_run(stack: dict) -> None:
    run = stack["base"] / "window"
    summary = prepare(
        stack["merged"],
        run,
        crop_window=WINDOW,
        range_patches=2,
        azimuth_patches=2,
        range_overlap=10,
        azimuth_overlap=10,
        write_step1=True,
    )
    full, crop = _candidates(stack["base"] / "full"), _candidates(run)
    calconst = _calconst(run)
    # calamp over the window (as mt_prep on rasters cropped by crop_rdr.py), then selpsc
    np.testing.assert_allclose(calconst, _calamp(stack, WINDOW), rtol=1e-6)
    assert set(crop) == _expected(stack, calconst, WINDOW) and len(crop) == summary["n_candidates"]
    l0, l1, s0, s1 = WINDOW
    in_window = {k for k in full if l0 <= k[0] < l1 and s0 <= k[1] < s1}
    common = in_window & set(crop)
    # the uncropped run's calibration moves D_A a little: only pixels at the threshold differ
    assert len(common) >= 0.99 * len(in_window) and len(in_window ^ set(crop)) < 0.01 * len(crop)
    assert all(
        abs(float((full.get(k) or crop[k])["D_A"]) - THRESHOLD) < 0.01
        for k in in_window ^ set(crop)
    )
    _same_values(full, crop, common)
    # merged-grid positions; lon/lat and heights are the geometry rasters' at them
    rows, cols = np.array(sorted(crop)).T
    np.testing.assert_array_equal(
        np.array([crop[k]["hgt"] for k in sorted(crop)]),
        stack["geo"]["hgt"][rows, cols].astype(np.float32),
    )
    meta = rundir.read_metadata(run)
    assert meta["crop"]["window"] == list(WINDOW) and meta["crop"]["mask"] is None
    assert (meta["length"], meta["width"]) == (120, 240)
    for pdir in rundir.patch_folders(run):
        rg1, rg2, az1, az2 = (int(v) for v in (pdir / "patch.in").read_text().split())
        assert s0 + 1 <= rg1 < rg2 <= s1 and l0 + 1 <= az1 < az2 <= l1
        ps1 = load_product(pdir / "ps1.h5")
        ij = np.asarray(ps1["ij"])[:, 1:3]
        np.testing.assert_allclose(
            ps1["lonlat"][:, 0], stack["geo"]["lon"][ij[:, 0], ij[:, 1]], atol=1e-5
        )
        hgt1 = load_product(pdir / "hgt1.h5")["hgt"]
        np.testing.assert_allclose(hgt1, stack["geo"]["hgt"][ij[:, 0], ij[:, 1]], atol=1e-3)


def test_only_the_window_lines_are_read(stack: dict, monkeypatch, tmp_path: Path) -> None:
    read: list[tuple[int, int]] = []
    original = isce.BlockStack.read

    def spy(self, r0: int, r1: int):
        read.append((r0, r1))
        return original(self, r0, r1)

    monkeypatch.setattr(isce.BlockStack, "read", spy)
    monkeypatch.setattr(candidates, "_block_rows", lambda *a: 16)  # several blocks
    prepare(stack["merged"], tmp_path / "run", crop_window=WINDOW)
    lines = np.concatenate([np.arange(a, b) for a, b in read])
    assert lines.min() >= WINDOW[0] and lines.max() < WINDOW[1]
    assert len(read) > 4


def test_crop_box_is_the_covering_window(stack: dict, tmp_path: Path) -> None:
    lon, lat = stack["geo"]["lon"], stack["geo"]["lat"]
    south, north = np.percentile(lat, [30, 60])
    west, east = np.percentile(lon, [20, 70])
    inside = (lat >= south) & (lat <= north) & (lon >= west) & (lon <= east)
    rows, cols = np.nonzero(inside)
    window = (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)
    run = tmp_path / "box"
    prepare(stack["merged"], run, crop_box=(south, north, west, east))
    meta = rundir.read_metadata(run)
    assert meta["crop"]["window"] == [int(v) for v in window]
    assert meta["crop"]["box_s_n_w_e"] == pytest.approx([south, north, west, east])
    assert set(_candidates(run)) == _expected(stack, _calconst(run), window)


def test_raster_mask_removes_exactly_the_masked_candidates(stack: dict, tmp_path: Path) -> None:
    import rasterio

    st = stack["stack"]
    excluded = np.zeros((st.length, st.width), dtype=np.uint8)
    excluded[10:60, 100:200] = 1
    excluded[80:, :50] = 7
    mask = tmp_path / "mask.tif"
    with rasterio.open(
        mask, "w", driver="GTiff", width=st.width, height=st.length, count=1, dtype="uint8"
    ) as ds:
        ds.write(excluded, 1)
    run = tmp_path / "masked"
    prepare(stack["merged"], run, mask=mask)
    grid = (0, st.length, 0, st.width)
    calconst = _calconst(run)
    np.testing.assert_allclose(calconst, _calamp(stack, grid, excluded > 0), rtol=1e-6)
    got = set(_candidates(run))
    assert got == _expected(stack, calconst, grid, excluded > 0)
    full = set(_candidates(stack["base"] / "full"))
    unmasked = {k for k in full if not excluded[k]}
    assert not [k for k in got if excluded[k]]
    assert len(unmasked ^ got) < 0.01 * len(got)  # calamp without the masked pixels, as mt_prep
    meta = rundir.read_metadata(run)
    assert meta["crop"]["n_masked"] == int((excluded > 0).sum())


def test_polygon_mask_in_lonlat(stack: dict, tmp_path: Path) -> None:
    import geopandas as gpd
    import shapely
    from shapely.geometry import box

    lon, lat = stack["geo"]["lon"], stack["geo"]["lat"]
    w, e = np.percentile(lon, [10, 40])
    s, n = np.percentile(lat, [50, 90])
    polygons = [box(w, s, e, n), shapely.Point(np.median(lon), np.median(lat)).buffer(2e-3)]
    frame = gpd.GeoDataFrame({"id": [1, 2]}, geometry=polygons, crs="EPSG:4326")
    excluded = shapely.contains_xy(shapely.union_all(polygons), lon, lat)
    for name in ("water.gpkg", "water.shp"):
        path = tmp_path / name
        frame.to_file(path)
        run = tmp_path / f"run_{path.suffix[1:]}"
        prepare(stack["merged"], run, mask=path, crop_window=WINDOW)
        meta = rundir.read_metadata(run)
        l0, l1, s0, s1 = WINDOW
        assert meta["crop"]["n_masked"] == int(excluded[l0:l1, s0:s1].sum()) > 100
        assert set(_candidates(run)) == _expected(stack, _calconst(run), WINDOW, excluded)


def test_small_baseline_run_in_a_window(stack: dict, tmp_path: Path) -> None:
    from stamps_python.build_sb_phase import build_sb_phase

    dates = stack["stack"].dates
    sb_list = tmp_path / "small_baselines.list"
    sb_list.write_text("".join(f"{a} {b}\n" for a, b in zip(dates[:-1], dates[1:])))
    runs = {}
    for name, window in (("all", None), ("win", WINDOW)):
        run = tmp_path / name
        prepare(stack["merged"], run, small_baseline=True, sb_list=sb_list, crop_window=window)
        build_sb_phase(run)
        ps1 = load_product(run / "PATCH_1" / "ps1.h5")
        ph1 = load_product(run / "PATCH_1" / "ph1.h5")["ph"]
        calconst = _calconst(run)
        runs[name] = ({tuple(ij): k for k, ij in enumerate(np.asarray(ps1["ij"])[:, 1:3])}, ph1)
        runs[name + "_cal"] = calconst
    (a, ph_a), (b, ph_b) = runs["all"], runs["win"]
    common = sorted(set(a) & set(b))
    assert len(common) > 0.95 * len(b) and all(WINDOW[0] <= i < WINDOW[1] for i, _ in b)
    ia, ib = [a[k] for k in common], [b[k] for k in common]
    # pair interferograms at the same pixels; calibration is per run (calamp over its window)
    np.testing.assert_allclose(np.angle(ph_a[ia] * np.conj(ph_b[ib])), 0, atol=1e-5)


def _one_line(capsys) -> str:
    """The error of a failed command: one line (after any log lines of the run)."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and err.endswith(errors[0] + "\n"), err
    return errors[0]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--crop-box", "10", "11", "20", "21"], "no pixel of"),
        (["--crop-box", "38", "37", "-120.6", "-120.4"], "S < N"),
        (["--crop-window", "0", "500", "0", "100"], "outside the merged grid"),
        (["--crop-window", "5", "5", "0", "100"], "outside the merged grid"),
        (["--crop-window", "0", "10", "0", "10", "--crop-box", "1", "2", "3", "4"], "not both"),
        (["--mask", "NOFILE.tif"], "no such file"),
    ],
)
def test_bad_crop_is_a_one_line_error(stack: dict, tmp_path: Path, capsys, args, text) -> None:
    from stamps_python.utils import run_cli

    argv = [str(stack["merged"]), str(tmp_path / "run"), *args]
    assert run_cli(prep_main, argv) == 1
    assert text in _one_line(capsys)
    assert not (tmp_path / "run" / rundir.METADATA).exists()


def test_mask_of_another_size_and_empty_results(stack: dict, tmp_path: Path, capsys) -> None:
    import rasterio

    from stamps_python.utils import run_cli

    st = stack["stack"]

    def tif(path: Path, values: np.ndarray) -> Path:
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=values.shape[1],
            height=values.shape[0],
            count=1,
            dtype="float32",
        ) as ds:
            ds.write(values.astype(np.float32), 1)
        return path

    small = tif(tmp_path / "small.tif", np.zeros((st.length - 1, st.width)))
    with pytest.raises(StampsError, match="differs from the merged grid"):
        prepare(stack["merged"], tmp_path / "a", mask=small)
    everything = tif(tmp_path / "all.tif", np.ones((st.length, st.width)))
    argv = [str(stack["merged"]), str(tmp_path / "b"), "--mask", str(everything)]
    assert run_cli(prep_main, argv) == 1
    assert "excludes every pixel" in _one_line(capsys)
    nan_window = np.zeros((st.length, st.width))
    nan_window[WINDOW[0] : WINDOW[1], WINDOW[2] : WINDOW[3]] = np.nan  # NaN counts as excluded
    nan_mask = tif(tmp_path / "nan.tif", nan_window)
    argv += ["--crop-window", *map(str, WINDOW)]
    argv[argv.index(str(everything))] = str(nan_mask)
    assert run_cli(prep_main, argv) == 1
    assert "excludes every pixel" in _one_line(capsys)
    argv = [str(stack["merged"]), str(tmp_path / "c"), "--bootstrap-metadata"]
    argv += ["--crop-window", "60", "63", "100", "103"]
    assert run_cli(prep_main, [*argv, "--amp-dispersion", "0.01"]) == 1
    err = _one_line(capsys)
    assert "no candidates" in err and "lines 60-62, samples 100-102" in err
    argv[-4:] = ["0", "2", "0", "2"]  # zero-filled corner of the synthetic SLCs
    assert run_cli(prep_main, argv) == 1
    assert "no amplitude above 0.001 in lines 0-1, samples 0-1" in _one_line(capsys)
    not_polygons = tmp_path / "points.gpkg"
    import geopandas as gpd
    from shapely.geometry import Point

    gpd.GeoDataFrame({"a": [1]}, geometry=[Point(0, 0)], crs="EPSG:4326").to_file(not_polygons)
    with pytest.raises(StampsError, match="a polygon layer is needed"):
        prepare(stack["merged"], tmp_path / "d", mask=not_polygons)


def test_cli_options_reach_the_run(stack: dict, tmp_path: Path) -> None:
    run = tmp_path / "cli"
    argv = [
        str(stack["merged"]),
        str(run),
        "--bootstrap-metadata",
        "--crop-window",
        *map(str, WINDOW),
    ]
    assert prep_main(argv) == 0
    meta = json.loads((run / rundir.METADATA).read_text())
    assert meta["crop"]["window"] == list(WINDOW) and meta["crop"]["n_pixels"] == 65 * 150
    # a rerun without the crop covers the whole grid again and drops the record
    assert prep_main([str(stack["merged"]), str(run), "--bootstrap-metadata"]) == 0
    assert "crop" not in json.loads((run / rundir.METADATA).read_text())

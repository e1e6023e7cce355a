"""The GDAL-based ISCE2 readers return exactly what the synthetic generator wrote."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from stamps_python.io import isce
from stamps_python.synthetic import generate_stack
from stamps_python.utils import StampsError


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "stack"
    generate_stack(out, profile="easy", rows=64, cols=128, n_dates=6, seed=5, progress=False)
    return out


def test_stack_layout_and_geometry_equal_truth(synth):
    stack = isce.open_stack(synth / "merged")
    with h5py.File(synth / "truth.h5", "r") as t:
        dates = [d.decode() for d in t["dates"][()]]
        assert stack.dates == dates and (stack.length, stack.width) == (64, 128)
        for name in ("lat", "lon", "hgt"):
            truth = t[name][()]  # truth keeps lat/lon as float64 and hgt as float32
            got = isce.read_raster(stack.geometry_raster(name))
            assert got.dtype == np.float64  # ISCE writes DOUBLE
            np.testing.assert_array_equal(got.astype(truth.dtype), truth)
        np.testing.assert_array_equal(isce.read_raster(stack.geometry_raster("los"), band=1),
                                      t["incidence_deg"][()])
        np.testing.assert_array_equal(isce.read_raster(stack.geometry_raster("incLocal"), band=1),
                                      t["look_angle_deg"][()])
        ref = t["reference_date"][()].decode()
        bperp = isce.read_bperp(stack, ref)
        np.testing.assert_allclose([bperp[d] for d in dates], t["bperp_m"][()], atol=1e-9)
        assert bperp[ref] == 0.0
        heading = float(t.attrs["heading_deg"])
    meta = isce.bootstrap_metadata(stack, ref)
    assert meta["heading"] == pytest.approx(heading, abs=0.05)
    assert meta["wavelength"] == pytest.approx(0.05546576)


def test_windowed_slc_reads_equal_the_raw_file(synth):
    stack = isce.open_stack(synth / "merged")
    d = stack.dates[2]
    raw = np.fromfile(synth / "merged" / "SLC" / d / f"{d}.slc.full", dtype="<c8").reshape(64, 128)
    with isce.RasterRows(stack.slc[d]) as rows:
        np.testing.assert_array_equal(rows.read(10, 30), raw[10:30])
    np.testing.assert_array_equal(isce.read_raster(stack.slc[d], rows=(5, 9), cols=(3, 50)),
                                  raw[5:9, 3:50])
    rr = np.array([0, 63, 17, 40])
    cc = np.array([0, 127, 5, 99])
    np.testing.assert_array_equal(isce.sample_raster(stack.slc[d], rr, cc, block_rows=7),
                                  raw[rr, cc])
    # the same through line blocks (pread) instead of the memory map
    np.testing.assert_array_equal(
        isce.sample_raster(stack.slc[d], rr, cc, block_rows=7, mmap=False), raw[rr, cc])
    with pytest.raises(StampsError, match="smaller than the pixels"):
        isce.sample_raster(stack.slc[d], np.array([64]), np.array([0]))


def test_baseline_grids_sampled_at_pixels(synth):
    stack = isce.open_stack(synth / "merged")
    with h5py.File(synth / "truth.h5", "r") as t:
        ref = t["reference_date"][()].decode()
    sec = [d for d in stack.dates if d != ref][0]
    path = isce.baseline_grid_path(stack, sec)
    assert path is not None and isce.baseline_grid_path(stack, ref) is None
    grid = isce.read_raster(path).astype(np.float64)
    ny, nx = grid.shape
    # the grid corners sit at the image corners (StaMPS spreads the nodes over [0, W] x [0, L])
    got = isce.sample_baseline_grid(path, np.array([0, 64]), np.array([0, 128]), 64, 128)
    np.testing.assert_allclose(got, [grid[0, 0], grid[-1, -1]], rtol=1e-9)
    mid = isce.sample_baseline_grid(path, np.array([32.0]), np.array([64.0]), 64, 128)
    assert grid.min() - 1e-6 <= mid[0] <= grid.max() + 1e-6
    text = isce.read_bperp(stack, ref)[sec]
    assert abs(np.mean(grid) - text) < 0.05 * abs(text) + 0.5  # grid and text average agree

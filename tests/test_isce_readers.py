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
        np.testing.assert_array_equal(
            isce.read_raster(stack.geometry_raster("los"), band=1), t["incidence_deg"][()]
        )
        np.testing.assert_array_equal(
            isce.read_raster(stack.geometry_raster("incLocal"), band=1), t["look_angle_deg"][()]
        )
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
    np.testing.assert_array_equal(
        isce.read_raster(stack.slc[d], rows=(5, 9), cols=(3, 50)), raw[5:9, 3:50]
    )
    rr = np.array([0, 63, 17, 40])
    cc = np.array([0, 127, 5, 99])
    np.testing.assert_array_equal(
        isce.sample_raster(stack.slc[d], rr, cc, block_rows=7), raw[rr, cc]
    )
    # the same through line blocks (pread) instead of the memory map
    np.testing.assert_array_equal(
        isce.sample_raster(stack.slc[d], rr, cc, block_rows=7, mmap=False), raw[rr, cc]
    )
    with pytest.raises(StampsError, match="smaller than the pixels"):
        isce.sample_raster(stack.slc[d], np.array([64]), np.array([0]))


def _raw_slcs(synth: Path, stack: isce.IsceStack) -> np.ndarray:
    return np.stack(
        [
            np.fromfile(synth / "merged" / "SLC" / d / f"{d}.slc.full", dtype="<c8").reshape(
                64, 128
            )
            for d in stack.dates
        ]
    )


def _with_header(src_vrt: Path, dst: Path, header: int) -> Path:
    """A copy of a raw SLC behind ``header`` bytes, and its VRT (ImageOffset = header)."""
    raw = src_vrt.with_suffix("")
    dst.mkdir(parents=True, exist_ok=True)
    (dst / raw.name).write_bytes(b"\0" * header + raw.read_bytes())
    vrt = dst / src_vrt.name
    vrt.write_text(
        src_vrt.read_text().replace(
            "<ImageOffset>0</ImageOffset>", f"<ImageOffset>{header}</ImageOffset>"
        )
    )
    return vrt


@pytest.mark.parametrize("lines", [(0, 5), (3, 17), (60, 64), (1, 64), (0, 64)])
def test_block_stack_reads_equal_the_raw_files(synth, lines):
    """O_DIRECT blocks (128-sample lines: most starts are not 4096-byte aligned) equal the files,
    including the last lines, where the aligned read runs past the end of the file."""
    stack = isce.open_stack(synth / "merged")
    raw = _raw_slcs(synth, stack)
    with isce.BlockStack([stack.slc[d] for d in stack.dates], max_lines=64) as slcs:
        assert slcs.direct  # pytest's tmp_path is on a file system with O_DIRECT (ext4 here)
        block = slcs.read(*lines)
        np.testing.assert_array_equal(block, raw[:, lines[0] : lines[1]])
        with pytest.raises(ValueError):
            slcs.read(0, 65)


def test_block_stack_offsets_and_fallbacks(synth, tmp_path, monkeypatch):
    """A common image offset is read directly; mixed offsets, a file system refusing O_DIRECT at
    open or at read, all fall back to buffered reads with the same values."""
    stack = isce.open_stack(synth / "merged")
    raw = _raw_slcs(synth, stack)
    same = [_with_header(stack.slc[d], tmp_path / "same" / d, 24) for d in stack.dates]
    mixed = [
        _with_header(stack.slc[d], tmp_path / "mixed" / d, 8 * i) for i, d in enumerate(stack.dates)
    ]
    for paths, direct in ((same, True), (mixed, False)):
        with isce.BlockStack(paths, max_lines=20) as slcs:
            assert slcs.direct == direct
            np.testing.assert_array_equal(slcs.read(7, 27), raw[:, 7:27])
            np.testing.assert_array_equal(slcs.read(44, 64), raw[:, 44:64])

    def refuse_read(*args, **kwargs):
        raise OSError(22, "Invalid argument")

    with isce.BlockStack(same, max_lines=20) as slcs:
        monkeypatch.setattr(slcs, "_read_direct", refuse_read)
        np.testing.assert_array_equal(slcs.read(3, 23), raw[:, 3:23])
        assert not slcs.direct
        np.testing.assert_array_equal(slcs.read(30, 50), raw[:, 30:50])
    real_open = isce.os.open

    def refuse_direct(path, flags, *args):
        if flags & isce.os.O_DIRECT:
            raise OSError(22, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(isce.os, "open", refuse_direct)
    with isce.BlockStack(same, max_lines=20) as slcs:
        assert not slcs.direct
        np.testing.assert_array_equal(slcs.read(0, 20), raw[:, 0:20])


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
    got = _sample_baseline_grid(path, np.array([0, 64]), np.array([0, 128]), 64, 128)
    np.testing.assert_allclose(got, [grid[0, 0], grid[-1, -1]], rtol=1e-9)
    mid = _sample_baseline_grid(path, np.array([32.0]), np.array([64.0]), 64, 128)
    assert grid.min() - 1e-6 <= mid[0] <= grid.max() + 1e-6
    text = isce.read_bperp(stack, ref)[sec]
    assert abs(np.mean(grid) - text) < 0.05 * abs(text) + 0.5  # grid and text average agree


def _sample_baseline_grid(path, rows, cols, length, width):
    """Bperp (m) of one topsStack gridded baseline file at full-resolution pixels (rows, cols)."""
    return isce.sample_grids(isce.read_raster(path)[None], rows, cols, length, width)[:, 0]

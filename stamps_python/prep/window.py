"""The part of the merged grid a prep_isce run covers: a crop window (``--crop-window``, or
``--crop-box`` in lat/lon converted through the geometry rasters, as ``crop_rdr.py -b``) and a
mask of excluded pixels (``--mask``: a raster on the merged grid, non-zero = excluded, as the
maskfile of mt_prep_gamma's calamp / selpsc_patch, or polygons in lon/lat).

Pixel positions stay those of the merged grid (``ij`` of pscands.h5 and Step 1, patch.in), so
lon/lat, heights, angles, baseline grids and build_sb_phase's SLC reads need no offset; only
the window's lines are read. The window and mask are recorded in metadata.json (``crop``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io import isce
from stamps_python.utils import StampsError, get_logger

# Bytes of one block of a geometry or mask raster read while converting a box or a mask.
READ_BLOCK_BYTES = 64 * 2**20
VECTOR_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".kml", ".fgb", ".gml", ".sqlite")


@dataclass(frozen=True)
class CropWindow:
    """Lines [line0, line1) and samples [sample0, sample1) (0-based) of a ``length`` x
    ``width`` merged grid, and the pixels of it a mask excludes (packed bits, (lines,
    ceil(samples / 8)), 1 = excluded; None: no mask)."""

    line0: int
    line1: int
    sample0: int
    sample1: int
    length: int
    width: int
    excluded: np.ndarray | None = None
    n_excluded: int = 0
    box: tuple[float, float, float, float] | None = None
    mask_path: Path | None = None

    @property
    def lines(self) -> int:
        return self.line1 - self.line0

    @property
    def samples(self) -> int:
        return self.sample1 - self.sample0

    @property
    def full(self) -> bool:
        """True when the window is the whole grid and nothing is masked."""
        bounds = (self.line0, self.line1, self.sample0, self.sample1)
        return bounds == (0, self.length, 0, self.width) and self.excluded is None

    def columns(self) -> slice:
        return slice(self.sample0, self.sample1)

    def excluded_rows(self, r0: int, r1: int) -> np.ndarray | None:
        """(r1 - r0, samples) bool of grid lines [r0, r1) inside the window: True = masked."""
        if self.excluded is None:
            return None
        bits = self.excluded[r0 - self.line0 : r1 - self.line0]
        return np.unpackbits(bits, axis=1, count=self.samples).astype(bool)

    def describe(self) -> str:
        """The window (and mask) in words, for the log and errors."""
        text = (
            f"lines {self.line0}-{self.line1 - 1}, samples {self.sample0}-{self.sample1 - 1} "
            f"of {self.length} x {self.width}"
        )
        if self.mask_path is not None:
            text += f", {self.n_excluded} pixels masked by {self.mask_path}"
        return text

    def metadata(self) -> dict[str, Any]:
        """metadata.json's ``crop`` entry."""
        return {
            "window": [self.line0, self.line1, self.sample0, self.sample1],
            "window_convention": "0-based first line, last line + 1, first sample, last sample + 1",
            "box_s_n_w_e": None if self.box is None else list(self.box),
            "mask": None if self.mask_path is None else str(self.mask_path.resolve()),
            "n_masked": self.n_excluded,
            "n_pixels": self.lines * self.samples - self.n_excluded,
        }


def whole_grid(stack: isce.IsceStack) -> CropWindow:
    """The window of the whole merged grid, nothing masked."""
    return CropWindow(0, stack.length, 0, stack.width, stack.length, stack.width)


def _line_blocks(r0: int, r1: int, width: int, itemsize: int = 8) -> Iterator[tuple[int, int]]:
    step = max(1, READ_BLOCK_BYTES // max(width * itemsize, 1))
    for a in range(r0, r1, step):
        yield a, min(a + step, r1)


def _lonlat_blocks(
    stack: isce.IsceStack, r0: int, r1: int
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Lines [r0, r1) of the lon and lat rasters (deg), block by block."""
    with (
        isce.RasterRows(stack.geometry_raster("lon")) as lon_r,
        isce.RasterRows(stack.geometry_raster("lat")) as lat_r,
    ):
        for a, b in _line_blocks(r0, r1, stack.width):
            yield a, b, lon_r.read(a, b), lat_r.read(a, b)


def window_from_box(stack: isce.IsceStack, box: Sequence[float]) -> tuple[int, int, int, int]:
    """The smallest line/sample window holding every pixel whose lat/lon (geometry rasters) is
    inside ``box`` = (S, N, W, E) deg, as (line0, line1, sample0, sample1), 0-based, ends
    exclusive; a box without any pixel is a one-line StampsError."""
    south, north, west, east = (float(v) for v in box)
    text = f"--crop-box {south:g} {north:g} {west:g} {east:g}"
    if not (-90 <= south < north <= 90) or not west < east:
        raise StampsError(f"{text}: expected S < N (within -90..90) and W < E, in degrees")
    rows: list[int] = []
    cols: list[int] = []
    span = [np.inf, -np.inf, np.inf, -np.inf]
    for a, _, lon, lat in _lonlat_blocks(stack, 0, stack.length):
        with np.errstate(invalid="ignore"):
            inside = (lat >= south) & (lat <= north) & (lon >= west) & (lon <= east)
            valid = np.isfinite(lat) & np.isfinite(lon) & ((lat != 0) | (lon != 0))
        if valid.any():
            span = [
                min(span[0], float(lat[valid].min())),
                max(span[1], float(lat[valid].max())),
                min(span[2], float(lon[valid].min())),
                max(span[3], float(lon[valid].max())),
            ]
        in_rows = np.flatnonzero(inside.any(axis=1))
        if in_rows.size:
            in_cols = np.flatnonzero(inside.any(axis=0))
            rows += [a + int(in_rows[0]), a + int(in_rows[-1])]
            cols += [int(in_cols[0]), int(in_cols[-1])]
    if not rows:
        raise StampsError(
            f"{text}: no pixel of {stack.merged} lies inside (the scene spans lat "
            f"{span[0]:.4f}..{span[1]:.4f}, lon {span[2]:.4f}..{span[3]:.4f})"
        )
    return min(rows), max(rows) + 1, min(cols), max(cols) + 1


def _check_window(stack: isce.IsceStack, window: Sequence[int]) -> tuple[int, int, int, int]:
    l0, l1, s0, s1 = (int(v) for v in window)
    if not (0 <= l0 < l1 <= stack.length and 0 <= s0 < s1 <= stack.width):
        raise StampsError(
            f"--crop-window {l0} {l1} {s0} {s1}: outside the merged grid of {stack.length} "
            f"lines x {stack.width} samples (0 <= LINE0 < LINE1 <= {stack.length}, "
            f"0 <= SAMPLE0 < SAMPLE1 <= {stack.width}; ends exclusive)"
        )
    return l0, l1, s0, s1


def _raster_mask(
    path: Path, stack: isce.IsceStack, window: tuple[int, int, int, int]
) -> np.ndarray:
    """Packed excluded bits of a raster mask on the merged grid (non-zero or NaN = excluded)."""
    l0, l1, s0, s1 = window
    try:
        reader = isce.RasterRows(path)
    except StampsError:
        raise StampsError(f"--mask {path}: not a raster GDAL can read") from None
    with reader:
        if (reader.length, reader.width) != (stack.length, stack.width):
            raise StampsError(
                f"--mask {path}: {reader.length} lines x {reader.width} samples differs from "
                f"the merged grid's {stack.length} x {stack.width}"
            )
        out = np.empty((l1 - l0, (s1 - s0 + 7) // 8), dtype=np.uint8)
        for a, b in _line_blocks(l0, l1, stack.width, reader.dtype.itemsize):
            values = reader.read(a, b)[:, s0:s1]
            bad = values != 0
            if np.issubdtype(values.dtype, np.floating):
                bad |= np.isnan(values)
            out[a - l0 : b - l0] = np.packbits(bad, axis=1)
    return out


def _polygons(path: Path) -> Any:
    """The union of the polygons of vector file ``path`` in lon/lat (EPSG:4326), prepared."""
    import geopandas as gpd
    import shapely

    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio's errors are of several types, one line each
        reason = " ".join(str(exc).split())
        raise StampsError(f"--mask {path}: cannot read the polygon layer ({reason})") from None
    if frame.empty:
        raise StampsError(f"--mask {path}: the layer holds no polygon")
    kinds = set(frame.geometry.geom_type.dropna())
    if not kinds or not kinds <= {"Polygon", "MultiPolygon"}:
        raise StampsError(
            f"--mask {path}: a polygon layer is needed, found {', '.join(sorted(kinds)) or 'none'}"
        )
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    geom = shapely.union_all(frame.geometry.values)
    shapely.prepare(geom)
    return geom


def _vector_mask(
    path: Path, stack: isce.IsceStack, window: tuple[int, int, int, int]
) -> np.ndarray:
    """Packed excluded bits: the window's pixels whose lon/lat lie inside a polygon."""
    import shapely

    geom = _polygons(path)
    w0, s_, e0, n_ = geom.bounds
    l0, l1, s0, s1 = window
    out = np.zeros((l1 - l0, (s1 - s0 + 7) // 8), dtype=np.uint8)
    for a, b, lon, lat in _lonlat_blocks(stack, l0, l1):
        lon, lat = lon[:, s0:s1], lat[:, s0:s1]
        with np.errstate(invalid="ignore"):
            near = (lon >= w0) & (lon <= e0) & (lat >= s_) & (lat <= n_)
        if not near.any():
            continue
        inside = np.zeros(lon.shape, dtype=bool)
        inside[near] = shapely.contains_xy(geom, lon[near], lat[near])
        out[a - l0 : b - l0] = np.packbits(inside, axis=1)
    return out


def _count(bits: np.ndarray, samples: int) -> int:
    total = 0
    for r0 in range(0, bits.shape[0], 4096):
        total += int(np.unpackbits(bits[r0 : r0 + 4096], axis=1, count=samples).sum())
    return total


def crop_window(
    stack: isce.IsceStack,
    crop_box: Sequence[float] | None = None,
    window: Sequence[int] | None = None,
    mask: str | Path | None = None,
) -> CropWindow:
    """The checked window and mask of prep_isce's ``--crop-box``, ``--crop-window`` and
    ``--mask`` (whole grid without them). A box outside the scene, a window outside the grid,
    a mask of another size, a mask that is no raster or polygon layer and a mask excluding
    the whole window are one-line StampsErrors."""
    if crop_box is not None and window is not None:
        raise StampsError("give either --crop-box or --crop-window, not both")
    if crop_box is not None:
        bounds = window_from_box(stack, crop_box)
    elif window is not None:
        bounds = _check_window(stack, window)
    else:
        bounds = (0, stack.length, 0, stack.width)
    excluded, n_excluded, mask_path = None, 0, None
    if mask is not None:
        mask_path = Path(mask)
        if not mask_path.exists():
            raise StampsError(f"--mask {mask_path}: no such file")
        if mask_path.suffix.lower() in VECTOR_SUFFIXES:
            excluded = _vector_mask(mask_path, stack, bounds)
        else:
            excluded = _raster_mask(mask_path, stack, bounds)
        n_excluded = _count(excluded, bounds[3] - bounds[2])
        n_pixels = (bounds[1] - bounds[0]) * (bounds[3] - bounds[2])
        if n_excluded == n_pixels:
            raise StampsError(
                f"--mask {mask_path}: excludes every pixel of lines {bounds[0]}-{bounds[1] - 1}, "
                f"samples {bounds[2]}-{bounds[3] - 1}: no pixel left to select candidates from"
            )
        if n_excluded == 0:
            get_logger().warning("--mask %s excludes no pixel of the window", mask_path)
    return CropWindow(
        *bounds,
        stack.length,
        stack.width,
        excluded,
        n_excluded,
        None if crop_box is None else tuple(float(v) for v in crop_box),  # type: ignore[arg-type]
        mask_path,
    )


def blank_excluded(block: np.ndarray, excluded: np.ndarray | None) -> None:
    """Zero the masked pixels of a block (n, lines, samples) in place: a zero amplitude is in
    no calamp sum and never a candidate (mt_prep's mask does both)."""
    if excluded is not None and excluded.any():
        for image in block:
            np.copyto(image, 0, where=excluded)

"""Readers for an ISCE2 topsStack ``merged/`` stack through GDAL (rasterio).

Layout read (as topsStack writes it)::

    STACK/merged/SLC/YYYYMMDD/YYYYMMDD.slc.full(.vrt/.xml)   coregistered, flattened SLCs
    STACK/merged/geom_reference/{hgt,lat,lon,los,incLocal,shadowMask}.rdr.full(.vrt/.xml)
    STACK/merged/baselines/YYYYMMDD/YYYYMMDD(.vrt/.xml)      gridded Bperp (optional)
    STACK/baselines/REF_SEC/REF_SEC.txt                      'Bperp (average): ...' per swath
    STACK/reference/IW*.xml                                   reference swath metadata

Units: angles in degrees in the rasters (converted where stated), heights and baselines in m.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import warnings
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from stamps_python.numerics.interp import bilinear_stack
from stamps_python.utils import StampsError, parse_yyyymmdd

# ISCE radar-geometry rasters carry no geotransform; GDAL's warning about it is noise here.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
# Every line is read once: a large GDAL block cache only costs memory (MiB; before GDAL starts).
os.environ.setdefault("GDAL_CACHEMAX", "64")

_VRT_TYPES = {
    "Byte": "u1",
    "Int16": "i2",
    "UInt16": "u2",
    "Int32": "i4",
    "UInt32": "u4",
    "Float32": "f4",
    "Float64": "f8",
    "CFloat32": "c8",
    "CFloat64": "c16",
}

GEOMETRY_NAMES = ("hgt", "lat", "lon", "los", "incLocal", "shadowMask")
REQUIRED_GEOMETRY = ("hgt", "lat", "lon", "los", "incLocal")
_DATE_RE = re.compile(r"^\d{8}$")


@dataclass
class IsceStack:
    """An ISCE2 topsStack ``merged/`` stack: dates, raster paths and image size."""

    merged: Path
    root: Path
    dates: list[str]
    slc: dict[str, Path]
    length: int
    width: int
    geometry: dict[str, Path] = field(default_factory=dict)

    def geometry_raster(self, name: str) -> Path:
        """Path of geometry raster ``name`` (e.g. ``hgt``); an error if the stack lacks it."""
        if name not in self.geometry:
            raise StampsError(f"{self.merged / 'geom_reference'}: {name}.rdr.full not found")
        return self.geometry[name]


def _gdal_path(base: Path) -> Path | None:
    """The GDAL-readable path of an ISCE raster: ``base.vrt`` when present, else ``base``."""
    vrt = base.with_name(base.name + ".vrt")
    if vrt.is_file():
        return vrt
    if base.is_file() and base.with_name(base.name + ".xml").is_file():
        return base
    return None


def raster_shape(path: Path) -> tuple[int, int, int]:
    """(length, width, bands) of a GDAL-readable raster; unreadable is a StampsError."""
    try:
        with rasterio.open(path) as ds:
            return ds.height, ds.width, ds.count
    except RasterioIOError as exc:
        raise StampsError(f"{path}: cannot open raster ({exc})") from None


@dataclass(frozen=True)
class RawBand:
    """Where one band of a GDAL raw VRT (``VRTRawRasterBand``, as ISCE writes) lies in its file."""

    raw: Path
    dtype: np.dtype
    image_offset: int
    pixel_offset: int
    line_offset: int


def raw_bands(vrt: Path) -> list[RawBand] | None:
    """The raw bands of a VRT made of ``VRTRawRasterBand`` only (None for any other raster)."""
    if vrt.suffix != ".vrt":
        return None
    try:
        root = ET.parse(vrt).getroot()
    except ET.ParseError as exc:
        raise StampsError(f"{vrt}: unreadable VRT ({exc})") from None
    bands = []
    for band in root.findall("VRTRasterBand"):
        src = band.find("SourceFilename")
        kind = _VRT_TYPES.get(band.get("dataType", ""))
        if band.get("subClass") != "VRTRawRasterBand" or src is None or kind is None:
            return None
        name = (src.text or "").strip()
        raw = vrt.parent / name if src.get("relativeToVRT", "0") == "1" else Path(name)
        order = "<" if band.findtext("ByteOrder", "LSB").strip().upper() == "LSB" else ">"
        bands.append(
            RawBand(
                raw=raw,
                dtype=np.dtype(order + kind),
                image_offset=int(band.findtext("ImageOffset", "0")),
                pixel_offset=int(band.findtext("PixelOffset", "0")),
                line_offset=int(band.findtext("LineOffset", "0")),
            )
        )
    return bands or None


def _raw_extent(b: RawBand, length: int, width: int) -> int:
    """Bytes a raw band of ``length`` x ``width`` needs in its file (end of its last pixel)."""
    return (
        b.image_offset
        + b.line_offset * (length - 1)
        + b.pixel_offset * (width - 1)
        + b.dtype.itemsize
    )


def _raw_view(path: Path, band: int, shape: tuple[int, int]) -> tuple[np.ndarray, int] | None:
    """A read-only zero-copy (lines, samples) view of a raw VRT band, and its file descriptor.

    None when the raster is not a plain raw VRT (then GDAL reads it).
    """
    bands = raw_bands(path)
    if bands is None or band > len(bands):
        return None
    b = bands[band - 1]
    need = _raw_extent(b, *shape)
    try:
        fd = os.open(b.raw, os.O_RDONLY)
    except OSError:
        return None
    if os.fstat(fd).st_size < need:
        os.close(fd)
        return None
    buf = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    view = np.ndarray(
        shape,
        dtype=b.dtype,
        buffer=buf,
        offset=b.image_offset,
        strides=(b.line_offset, b.pixel_offset),
    )
    return view, fd


def _check_raw_size(vrt: Path, length: int) -> None:
    """A raw raster behind a VRT shorter than the VRT says is a StampsError (truncated file)."""
    bands = raw_bands(vrt)
    if bands is None:
        return
    width = raster_shape(vrt)[1]
    for b in bands:
        if not b.raw.is_file():
            raise StampsError(f"{b.raw}: raster file missing (referenced by {vrt.name})")
        expected = _raw_extent(b, length, width)
        size = b.raw.stat().st_size
        if size < expected:
            raise StampsError(f"{b.raw}: truncated, {size} bytes where {expected} are expected")


def open_stack(merged: str | Path) -> IsceStack:
    """Open the topsStack ``merged/`` folder, checking that every raster is there and same-sized."""
    merged = Path(merged)
    if not merged.is_dir():
        raise StampsError(f"{merged}: not a directory (expected an ISCE2 topsStack merged/ folder)")
    slc_dir = merged / "SLC"
    if not slc_dir.is_dir():
        raise StampsError(f"{slc_dir}: missing (no coregistered SLCs in this merged/ folder)")
    geom_dir = merged / "geom_reference"
    if not geom_dir.is_dir():
        raise StampsError(f"{geom_dir}: missing (no reference geometry in this merged/ folder)")

    slc: dict[str, Path] = {}
    for sub in sorted(slc_dir.iterdir()):
        if not (sub.is_dir() and _DATE_RE.match(sub.name)):
            continue
        parse_yyyymmdd(sub.name, f"{sub}")
        path = _gdal_path(sub / f"{sub.name}.slc.full")
        if path is None:
            raise StampsError(f"{sub / (sub.name + '.slc.full')}: SLC (or its .vrt/.xml) missing")
        slc[sub.name] = path
    if len(slc) < 2:
        raise StampsError(f"{slc_dir}: found {len(slc)} dated SLC folder(s), need at least 2")
    dates = sorted(slc)

    length, width, _ = raster_shape(slc[dates[0]])
    for date in dates:
        shape = raster_shape(slc[date])[:2]
        if shape != (length, width):
            raise StampsError(
                f"{slc[date]}: size {shape[0]}x{shape[1]} differs from {slc[dates[0]].name} "
                f"({length}x{width})"
            )
        _check_raw_size(slc[date], length)

    geometry: dict[str, Path] = {}
    for name in GEOMETRY_NAMES:
        path = _gdal_path(geom_dir / f"{name}.rdr.full")
        if path is None:
            if name in REQUIRED_GEOMETRY:
                raise StampsError(f"{geom_dir / (name + '.rdr.full')}: missing (or its .vrt/.xml)")
            continue
        shape = raster_shape(path)[:2]
        if shape != (length, width):
            raise StampsError(
                f"{path}: size {shape[0]}x{shape[1]} differs from the SLCs ({length}x{width})"
            )
        _check_raw_size(path, length)
        geometry[name] = path
    return IsceStack(
        merged=merged,
        root=merged.parent,
        dates=dates,
        slc=slc,
        length=length,
        width=width,
        geometry=geometry,
    )


def read_raster(
    path: Path,
    band: int = 1,
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read ``band`` of a raster, optionally only rows [r0, r1) and columns [c0, c1)."""
    try:
        with rasterio.open(path) as ds:
            r0, r1 = rows if rows is not None else (0, ds.height)
            c0, c1 = cols if cols is not None else (0, ds.width)
            return ds.read(band, window=Window(c0, r0, c1 - c0, r1 - r0))
    except RasterioIOError as exc:
        raise StampsError(f"{path}: read failed ({exc})") from None


class RasterRows:
    """An open raster band read in blocks of lines.

    Plain raw VRTs (what ISCE2 writes) are read with ``pread`` straight into the caller's buffer
    (no GDAL block cache, no pages kept mapped), and :meth:`prefetch` asks the kernel to start
    reading the next block while the current one is processed; any other raster is read through
    GDAL.
    """

    def __init__(self, path: Path, band: int = 1) -> None:
        self.path = path
        self.band = band
        self._ds = None
        self._fd = -1
        try:
            with rasterio.open(path) as ds:
                self.length, self.width = ds.height, ds.width
        except RasterioIOError as exc:
            raise StampsError(f"{path}: cannot open raster ({exc})") from None
        bands = raw_bands(path)
        self._raw = bands[band - 1] if bands is not None and band <= len(bands) else None
        if (
            self._raw is not None
            and _is_plain(self._raw, self.width)
            and self._raw.raw.is_file()
            and self._raw.raw.stat().st_size >= _raw_extent(self._raw, self.length, self.width)
        ):
            self._fd = os.open(self._raw.raw, os.O_RDONLY)
        else:
            self._raw = None
            self._ds = rasterio.open(path)

    @property
    def dtype(self) -> np.dtype:
        """Native-order data type of the band."""
        if self._raw is not None:
            return self._raw.dtype.newbyteorder("=")
        return np.dtype(self._ds.dtypes[self.band - 1])

    def read(self, r0: int, r1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Lines [r0, r1) (all samples), into ``out`` (C-contiguous) when given."""
        if self._raw is not None:
            b = self._raw
            if out is None:
                out = np.empty((r1 - r0, self.width), dtype=self.dtype)
            got = os.preadv(
                self._fd, [memoryview(out).cast("B")], b.image_offset + b.line_offset * r0
            )
            if got != out.nbytes:
                raise StampsError(f"{b.raw}: short read at lines {r0}-{r1}")
            if not b.dtype.isnative:
                out.byteswap(inplace=True)
            return out
        try:
            window = Window(0, r0, self.width, r1 - r0)
            if out is not None:
                return self._ds.read(self.band, window=window, out=out)
            return self._ds.read(self.band, window=window)
        except RasterioIOError as exc:
            raise StampsError(f"{self.path}: read failed at lines {r0}-{r1} ({exc})") from None

    def read_lines(self, lines: np.ndarray) -> np.ndarray:
        """The given lines (all samples) as one (len(lines), width) array."""
        out = np.empty((len(lines), self.width), dtype=self.dtype)
        lines = np.asarray(lines, dtype=np.int64)
        breaks = np.flatnonzero(np.diff(lines) != 1) + 1
        for first, run in zip(np.r_[0, breaks], np.split(lines, breaks)):
            if run.size:
                self.read(int(run[0]), int(run[-1]) + 1, out=out[first : first + run.size])
        return out

    def prefetch(self, r0: int, r1: int) -> None:
        """Hint the kernel to read lines [r0, r1) ahead (no-op for GDAL-read rasters)."""
        if self._raw is None or r1 <= r0:
            return
        start = self._raw.image_offset + self._raw.line_offset * r0
        os.posix_fadvise(self._fd, start, self._raw.line_offset * (r1 - r0), os.POSIX_FADV_WILLNEED)

    def close(self) -> None:
        """Release the file (descriptor or GDAL handle)."""
        if self._ds is not None:
            self._ds.close()
            self._ds = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RasterRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_plain(b: RawBand, width: int) -> bool:
    """True when a raw band's lines are contiguous runs of pixels (a single-band raw file)."""
    return b.pixel_offset == b.dtype.itemsize and b.line_offset == b.pixel_offset * width


# O_DIRECT transfers must start, end and land on multiples of this many bytes.
DIRECT_ALIGN = 4096
# Concurrent reads of one block (one per raster), so that the disk sees a queue of requests.
DIRECT_READERS = 16


class BlockStack:
    """Lines [r0, r1) of many rasters of one shape and type as one (n, lines, width) array.

    For a stack of SLCs read once from start to end. Plain raw VRT bands (what ISCE2 writes) are
    read with O_DIRECT where the file system allows it: the disk transfers straight into the
    block buffer, bypassing the page cache, which saves the kernel's copy of every byte (most of
    the CPU time of a cold buffered read) and keeps a stack larger than memory from evicting
    everything else; DIRECT_READERS reads are in flight at once. Anything else (other rasters,
    mixed layouts, a file system without O_DIRECT, ``direct=False``) is read through
    :class:`RasterRows`. The array returned by :meth:`read` is a view into one of ``n_buffers``
    buffers used in turn, valid until that buffer comes round again.
    """

    def __init__(
        self, paths: list[Path], max_lines: int, n_buffers: int = 2, direct: bool = True
    ) -> None:
        self.readers = [RasterRows(p) for p in paths]
        first = self.readers[0]
        self.length, self.width, self.dtype = first.length, first.width, first.dtype
        self.max_lines = max_lines
        self._fds: list[int] = []
        self._turn = 0
        bands = [r._raw for r in self.readers]
        offsets = {b.image_offset % DIRECT_ALIGN for b in bands if b is not None}
        direct = (
            direct
            and hasattr(os, "O_DIRECT")
            and all(b is not None for b in bands)
            and len(offsets) == 1
            and len({b.line_offset for b in bands}) == 1
            and all(b.dtype.isnative and b.dtype == self.dtype for b in bands)
        )
        self.n_buffers = n_buffers
        self._buffers: list[mmap.mmap] = []
        self._fallback: list[np.ndarray] = []
        self._pool: ThreadPoolExecutor | None = None
        if direct:
            try:
                self._fds = [os.open(b.raw, os.O_RDONLY | os.O_DIRECT) for b in bands]
            except OSError:
                self._close_direct()
        if self._fds:
            line_bytes = self.width * np.dtype(self.dtype).itemsize
            self._stride = _round_up(max_lines * line_bytes + 2 * DIRECT_ALIGN, DIRECT_ALIGN)
            self._buffers = [mmap.mmap(-1, self._stride * len(self._fds)) for _ in range(n_buffers)]
            self._pool = ThreadPoolExecutor(max_workers=DIRECT_READERS)
        else:
            self._use_buffered()

    @property
    def direct(self) -> bool:
        """True while the rasters are read with O_DIRECT."""
        return bool(self._fds)

    def _close_direct(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        for fd in self._fds:
            os.close(fd)
        self._fds = []

    def _use_buffered(self) -> None:
        """Read through :class:`RasterRows` from now on."""
        self._close_direct()
        self._buffers = []
        self._fallback = [
            np.empty((len(self.readers), self.max_lines, self.width), self.dtype)
            for _ in range(self.n_buffers)
        ]

    def read(self, r0: int, r1: int) -> np.ndarray:
        """Lines [r0, r1) (at most ``max_lines``) of every raster: (n, r1 - r0, width)."""
        if not 0 <= r0 < r1 <= self.length or r1 - r0 > self.max_lines:
            raise ValueError(f"lines {r0}-{r1} outside 0-{self.length} or over {self.max_lines}")
        k = self._turn
        self._turn = (self._turn + 1) % self.n_buffers
        if self._fds:
            try:
                return self._read_direct(k, r0, r1)
            except OSError:
                # a file system that accepts O_DIRECT opens but not its reads
                self._use_buffered()
        out = self._fallback[k][:, : r1 - r0]
        for i, reader in enumerate(self.readers):
            reader.read(r0, r1, out=out[i])
        return out

    def _read_direct(self, k: int, r0: int, r1: int) -> np.ndarray:
        b = self.readers[0]._raw
        start = b.image_offset + b.line_offset * r0
        stop = b.image_offset + b.line_offset * r1
        a0 = start - start % DIRECT_ALIGN
        a1 = _round_up(stop, DIRECT_ALIGN)
        view = memoryview(self._buffers[k])

        def one(i: int) -> None:
            region = view[i * self._stride : i * self._stride + (a1 - a0)]
            got = os.preadv(self._fds[i], [region], a0)
            if got < stop - a0:
                raise StampsError(f"{self.readers[i]._raw.raw}: short read at lines {r0}-{r1}")

        # every read finishes before a failure is raised, so none still fills the buffer after
        futures = [self._pool.submit(one, i) for i in range(len(self._fds))]
        wait(futures)
        for future in futures:
            future.result()
        return np.ndarray(
            (len(self._fds), r1 - r0, self.width),
            dtype=self.dtype,
            buffer=self._buffers[k],
            offset=start - a0,
            strides=(self._stride, b.line_offset, np.dtype(self.dtype).itemsize),
        )

    def close(self) -> None:
        """Release the files, the read threads and the buffers."""
        self._close_direct()
        for reader in self.readers:
            reader.close()

    def __enter__(self) -> BlockStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def sample_raster(
    path: Path,
    rows: np.ndarray,
    cols: np.ndarray,
    band: int = 1,
    block_rows: int = 512,
    mmap: bool = True,
) -> np.ndarray:
    """Values of ``band`` at pixels (rows, cols), never holding the whole raster.

    A raw VRT band is memory-mapped and indexed (``mmap``; fast once the file is in the page
    cache). Otherwise (or with ``mmap=False``) the lines from the first to the last pixel are
    read in blocks of ``block_rows`` (sequential reads, the next block prefetched) and only the
    wanted pixels kept. A pixel outside the raster is an error.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    length, width, _ = raster_shape(path)
    if rows.size and (
        rows.min() < 0 or cols.min() < 0 or rows.max() >= length or cols.max() >= width
    ):
        raise StampsError(
            f"{path}: {length}x{width} is smaller than the pixels asked for "
            f"(up to line {rows.max()}, sample {cols.max()})"
        )
    raw = _raw_view(path, band, (length, width)) if mmap else None
    if raw is not None:
        view, fd = raw
        try:
            return view[rows, cols].astype(view.dtype.newbyteorder("="))
        finally:
            del view
            os.close(fd)
    with RasterRows(path, band) as reader:
        out = np.empty(rows.shape, dtype=reader.dtype)
        if rows.size == 0:
            return out
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        start, stop = int(sorted_rows[0]), int(sorted_rows[-1]) + 1
        for r0 in range(start, stop, block_rows):
            r1 = min(r0 + block_rows, stop)
            lo, hi = np.searchsorted(sorted_rows, [r0, r1])
            if lo == hi:
                continue
            reader.prefetch(r1, min(r1 + block_rows, stop))
            block = reader.read(r0, r1)
            sel = order[lo:hi]
            out[sel] = block[rows[sel] - r0, cols[sel]]
    return out


# ----------------------------------------------------------------------------- baselines
_BPERP_RE = re.compile(r"^\s*Bperp\s*\(average\)\s*:\s*([-+0-9.eE]+)")


def read_baseline_txt(path: Path) -> float:
    """Mean of the ``Bperp (average)`` lines (one per swath) of a topsStack baseline file, m."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise StampsError(f"{path}: cannot read baseline file ({exc})") from None
    values = [float(m.group(1)) for line in text.splitlines() if (m := _BPERP_RE.match(line))]
    if not values:
        raise StampsError(f"{path}: no 'Bperp (average):' line")
    return float(np.mean(values))


def _baseline_txt(stack: IsceStack, reference: str, date: str) -> Path | None:
    pair = f"{reference}_{date}"
    for base in (stack.root / "baselines", stack.merged / "baselines"):
        path = base / pair / f"{pair}.txt"
        if path.is_file():
            return path
    return None


def read_bperp(stack: IsceStack, reference: str) -> dict[str, float]:
    """Perpendicular baseline (m, ISCE sign) of every date relative to ``reference`` (0 there).

    Read from the topsStack text files ``baselines/REF_SEC/REF_SEC.txt`` beside ``merged/`` (or,
    failing that, from the same files under ``merged/baselines/``).
    """
    out: dict[str, float] = {}
    for date in stack.dates:
        if date == reference:
            out[date] = 0.0
            continue
        path = _baseline_txt(stack, reference, date)
        if path is None:
            raise StampsError(
                f"{stack.root / 'baselines' / f'{reference}_{date}'}: baseline file "
                f"{reference}_{date}.txt not found (looked beside and inside {stack.merged})"
            )
        out[date] = read_baseline_txt(path)
    return out


def baseline_grid_path(stack: IsceStack, date: str) -> Path | None:
    """The topsStack gridded baseline ``merged/baselines/DATE/DATE`` of ``date``, if present."""
    return _gdal_path(stack.merged / "baselines" / date / date)


def sample_grids(
    grids: np.ndarray, rows: np.ndarray, cols: np.ndarray, length: int, width: int
) -> np.ndarray:
    """Grids (k, ny, nx) interpolated bilinearly at full-resolution pixels: an (n, k) array.

    As StaMPS (ps_load_initial_isce) does for topsStack baseline grids, the grid nodes are spread
    evenly over [0, length] x [0, width]. Full-size grids are sampled directly.
    """
    grids = np.asarray(grids)
    rows = np.asarray(rows)
    cols = np.asarray(cols)
    k, ny, nx = grids.shape
    if (ny, nx) == (length, width):
        return grids[:, rows.astype(np.int64), cols.astype(np.int64)].T.astype(np.float64)
    if ny < 2 or nx < 2:
        return np.repeat(grids.reshape(k, -1).mean(axis=1)[None, :], rows.size, axis=0)
    return bilinear_stack(grids, rows * (ny - 1) / length, cols * (nx - 1) / width)


# ----------------------------------------------------------------------------- metadata
def read_isce_xml(path: Path) -> dict[str, str]:
    """Properties of an ISCE XML file as name -> text (first occurrence of each name)."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise StampsError(f"{path}: unreadable ISCE XML ({exc})") from None
    props: dict[str, str] = {}
    for prop in root.iter("property"):
        name = (prop.get("name") or "").lower()
        value = prop.findtext("value")
        if name and value is not None and name not in props:
            props[name] = value.strip()
    return props


def reference_xml(stack: IsceStack) -> Path:
    """The first ``reference/IW*.xml`` of the stack (the reference swath metadata)."""
    ref_dir = stack.root / "reference"
    files = sorted(ref_dir.glob("IW*.xml")) if ref_dir.is_dir() else []
    if not files:
        raise StampsError(f"{ref_dir}: no IW*.xml (topsStack reference metadata) found")
    return files[0]


def _xml_float(props: dict[str, str], name: str, path: Path) -> float:
    try:
        return float(props[name])
    except KeyError:
        raise StampsError(f"{path}: property '{name}' missing") from None
    except ValueError:
        raise StampsError(f"{path}: property '{name}' is not a number ({props[name]!r})") from None


def heading_from_latlon(stack: IsceStack) -> float:
    """Direction of increasing line number (deg clockwise from north) from the lat/lon rasters.

    Measured at the centre column between lines L/4 and 3L/4 (a local spherical bearing). Terrain
    shifts geolocated pixels across track, so on hilly scenes this is off by up to a few degrees;
    :func:`heading_from_los` is preferred.
    """
    c = stack.width // 2
    r0, r1 = stack.length // 4, (3 * stack.length) // 4
    lat = read_raster(stack.geometry_raster("lat"), cols=(c, c + 1)).ravel().astype(np.float64)
    lon = read_raster(stack.geometry_raster("lon"), cols=(c, c + 1)).ravel().astype(np.float64)
    dlat = lat[r1] - lat[r0]
    dlon = (lon[r1] - lon[r0]) * math.cos(math.radians(0.5 * (lat[r0] + lat[r1])))
    if dlat == 0 and dlon == 0:
        raise StampsError(f"{stack.geometry_raster('lat')}: lat/lon do not change along azimuth")
    return math.degrees(math.atan2(dlon, dlat))


def heading_from_los(stack: IsceStack) -> float | None:
    """Satellite heading (deg clockwise from north) from the LOS azimuth (los band 2), or None.

    ISCE's los band 2 is the azimuth of the target-to-satellite vector, anticlockwise from north.
    For a right-looking SAR (Sentinel-1) the heading is 90 deg minus it, wrapped to (-180, 180].
    """
    mid = stack.length // 2
    az = read_raster(stack.geometry_raster("los"), band=2, rows=(mid, mid + 1)).astype(np.float64)
    az = az[np.isfinite(az) & (az != 0)]
    if az.size == 0:
        return None
    # average as unit vectors so that azimuths on both sides of +-180 deg do not cancel
    mean = math.degrees(
        math.atan2(np.mean(np.sin(np.radians(az))), np.mean(np.cos(np.radians(az))))
    )
    heading = (90.0 - mean + 180.0) % 360.0 - 180.0
    return heading if heading != -180.0 else 180.0


def _valid_mean(values: np.ndarray) -> float:
    values = values[np.isfinite(values) & (values != 0)]
    return float(values.mean()) if values.size else float("nan")


def bootstrap_metadata(stack: IsceStack, reference: str) -> dict:
    """Stack metadata for StaMPS from the ISCE2 XML and geometry rasters.

    Returns wavelength (m), heading (deg), range/azimuth pixel spacing (m), slant range (m, near,
    centre, far), incidence and look angle (deg, scene means), dates and the reference date.
    """
    xml = reference_xml(stack)
    props = read_isce_xml(xml)
    wavelength = _xml_float(props, "radarwavelength", xml)
    range_pixel = _xml_float(props, "rangepixelsize", xml)
    starting_range = _xml_float(props, "startingrange", xml)
    heading = heading_from_los(stack)
    heading_source = "los.rdr.full band 2 (LOS azimuth), right-looking"
    if heading is None:
        heading = heading_from_latlon(stack)
        heading_source = "lat/lon.rdr.full along azimuth at the centre column"

    c = stack.width // 2
    lat_col = read_raster(stack.geometry_raster("lat"), cols=(c, c + 1)).ravel().astype(np.float64)
    lon_col = read_raster(stack.geometry_raster("lon"), cols=(c, c + 1)).ravel().astype(np.float64)
    good = np.isfinite(lat_col) & (lat_col != 0)
    idx = np.flatnonzero(good)
    if idx.size >= 2:
        i0, i1 = idx[0], idx[-1]
        dn = math.radians(lat_col[i1] - lat_col[i0]) * 6371000.0
        de = (
            math.radians(lon_col[i1] - lon_col[i0])
            * 6371000.0
            * math.cos(math.radians(lat_col[i0]))
        )
        azimuth_pixel = math.hypot(dn, de) / (i1 - i0)
    else:
        azimuth_pixel = float("nan")

    mid = stack.length // 2
    los_row = read_raster(stack.geometry_raster("los"), rows=(mid, mid + 1)).ravel()
    inc_row = read_raster(stack.geometry_raster("incLocal"), rows=(mid, mid + 1)).ravel()
    return {
        "processor": "isce",
        "merged_dir": str(stack.merged.resolve()),
        "reference_xml": str(xml.resolve()),
        "dates": list(stack.dates),
        "reference_date": reference,
        "n_dates": len(stack.dates),
        "length": stack.length,
        "width": stack.width,
        "wavelength": wavelength,
        "heading": heading,
        "heading_source": heading_source,
        "pass_direction": props.get("passdirection", ""),
        "range_pixel_spacing": range_pixel,
        "azimuth_pixel_spacing": azimuth_pixel,
        "slant_range_near": starting_range,
        "slant_range_centre": starting_range + range_pixel * (stack.width - 1) / 2.0,
        "slant_range_far": starting_range + range_pixel * (stack.width - 1),
        "incidence_angle": _valid_mean(los_row.astype(np.float64)),
        "look_angle": _valid_mean(inc_row.astype(np.float64)),
        "units": {
            "wavelength": "m",
            "heading": "deg clockwise from north",
            "range_pixel_spacing": "m (slant)",
            "azimuth_pixel_spacing": "m (ground)",
            "slant_range_near": "m",
            "incidence_angle": "deg",
            "look_angle": "deg",
        },
    }


def infer_reference(stack: IsceStack) -> str:
    """The reference date named by the topsStack baseline folders (REF_SEC)."""
    refs = set()
    for base in (stack.root / "baselines", stack.merged / "baselines"):
        if base.is_dir():
            refs.update(p.name.split("_")[0] for p in base.iterdir() if "_" in p.name)
    if len(refs) != 1:
        raise StampsError(f"{stack.merged}: cannot tell the reference date; pass --reference-date")
    return refs.pop()

"""What ``cr_insar`` reads: the CR list (CSV), the ISCE2 stack (a topsStack ``merged/`` folder,
its parent, or a prep_isce run directory), the CR positions in the radar image, SLC windows
around them, their geometry and baselines, the pair network and the optional GNSS file."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stamps_python import rundir
from stamps_python.io import isce
from stamps_python.io.sb_list import read_sb_list
from stamps_python.numerics import cr_search as cs
from stamps_python.utils import StampsError, datenum, parse_yyyymmdd

EARTH_RADIUS_M = 6371000.0
LATLON_BLOCK_LINES = 256
MAX_LOOKUP_M = 100.0  # a listed position farther than this from every pixel is outside


@dataclass
class CrList:
    """The CR list: names, listed lon/lat (deg) or line/sample (pixels), the reference CR's
    index and the optional surveyed height (m)."""

    path: Path
    names: list[str]
    lon: np.ndarray | None
    lat: np.ndarray | None
    line: np.ndarray | None
    sample: np.ndarray | None
    ref_ix: int
    height: np.ndarray | None


def _floats(rows: list[dict], key: str, path: Path) -> np.ndarray:
    out = []
    for number, row in enumerate(rows, start=2):
        text = (row.get(key) or "").strip()
        try:
            value = float(text)
        except ValueError:
            raise StampsError(f"{path}, line {number}: {key} {text!r} is not a number") from None
        if not math.isfinite(value):
            raise StampsError(f"{path}, line {number}: {key} {text!r} is not finite")
        out.append(value)
    return np.array(out)


def read_cr_list(path: str | Path, reference: str | None = None) -> CrList:
    """Read the CR list: columns ``name``, ``lon`` and ``lat`` (or ``line`` and ``sample``),
    ``reference`` (1 on the reference CR; not needed when ``reference`` names it), optional
    ``height``. Every defect is a one-line StampsError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise StampsError(f"{path}: CR list not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [c.strip().lower() for c in (reader.fieldnames or [])]
            rows = [
                {k.strip().lower(): v for k, v in r.items() if k is not None}
                for r in reader
                if any((v or "").strip() for v in r.values() if isinstance(v, str))
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StampsError(f"{path}: unreadable CR list ({exc})") from None
    missing = []
    if "name" not in fields:
        missing.append("name")
    lonlat = {"lon", "lat"} <= set(fields)
    pixel = {"line", "sample"} <= set(fields)
    if not (lonlat or pixel):
        missing.append("lon, lat (or line, sample)")
    if reference is None and "reference" not in fields:
        missing.append("reference (or pass --reference-cr NAME)")
    if missing:
        raise StampsError(
            f"{path}: missing column(s) {'; '.join(missing)} (has: {', '.join(fields) or 'none'})"
        )
    if len(rows) < 2:
        raise StampsError(f"{path}: {len(rows)} CR(s); need a reference CR and at least one more")
    names = [(r.get("name") or "").strip() for r in rows]
    for number, name in enumerate(names, start=2):
        if not name:
            raise StampsError(f"{path}, line {number}: empty name")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise StampsError(f"{path}: CR name(s) {', '.join(dup)} appear more than once")
    if reference is not None:
        if reference not in names:
            raise StampsError(
                f"--reference-cr {reference}: not in {path} ({', '.join(names[:10])})"
            )
        ref_ix = names.index(reference)
    else:
        flags = []
        for number, row in enumerate(rows, start=2):
            text = (row.get("reference") or "").strip().lower()
            if text not in ("", "0", "1", "true", "false", "yes", "no"):
                raise StampsError(f"{path}, line {number}: reference {text!r} is not 0 or 1")
            flags.append(text in ("1", "true", "yes"))
        refs = [i for i, f in enumerate(flags) if f]
        if not refs:
            raise StampsError(
                f"{path}: no reference CR (set reference to 1 on the stable CR, or pass "
                "--reference-cr NAME)"
            )
        if len(refs) > 1:
            raise StampsError(
                f"{path}: {len(refs)} reference CRs ({', '.join(names[i] for i in refs)}); "
                "mark exactly one"
            )
        ref_ix = refs[0]
    height = _floats(rows, "height", path) if "height" in fields else None
    if lonlat:
        return CrList(path, names, _floats(rows, "lon", path), _floats(rows, "lat", path),
                      None, None, ref_ix, height)  # fmt: skip
    return CrList(path, names, None, None, _floats(rows, "line", path),
                  _floats(rows, "sample", path), ref_ix, height)  # fmt: skip


@dataclass
class StackInputs:
    """The stack and what is known about it: ``dates``, ``days`` (MATLAB datenums), the
    time-series reference date and its index, the stack's reference date (of its baselines),
    the bootstrapped metadata (wavelength m, slant range m, ...) and the run directory when one
    was given."""

    stack: isce.IsceStack
    dates: list[str]
    days: np.ndarray
    reference: str
    ref_ix: int
    stack_reference: str
    meta: dict
    run_dir: Path | None


def open_inputs(path: str | Path, reference_date: str | None = None) -> StackInputs:
    """Open an ISCE2 topsStack ``merged/`` folder (or the stack folder holding it, or a
    prep_isce run directory, whose ``metadata.json`` names it) and bootstrap its metadata;
    ``reference_date`` (default: the stack's) is the date the time series are 0 on."""
    path = Path(path)
    run_dir = None
    stack_reference = None
    if rundir.metadata_path(path).is_file():
        meta = rundir.read_metadata(path, require=("merged_dir",))
        run_dir = path
        merged = Path(meta["merged_dir"])
        stack_reference = meta.get("reference_date")
    elif (path / "merged").is_dir() and not (path / "SLC").is_dir():
        merged = path / "merged"
    else:
        merged = path
    stack = isce.open_stack(merged)
    if reference_date is not None:
        parse_yyyymmdd(reference_date, "--reference-date")
        if reference_date not in stack.dates:
            raise StampsError(
                f"--reference-date {reference_date}: not in the stack {merged / 'SLC'} "
                f"({stack.dates[0]}..{stack.dates[-1]}, {len(stack.dates)} dates)"
            )
    if stack_reference is None:
        try:
            stack_reference = isce.infer_reference(stack)
        except StampsError:
            if reference_date is None:
                raise
            stack_reference = reference_date
    reference = reference_date or stack_reference
    meta = isce.bootstrap_metadata(stack, stack_reference)
    days = np.array([datenum(d) for d in stack.dates], dtype=np.float64)
    return StackInputs(stack, list(stack.dates), days, reference, stack.dates.index(reference),
                       stack_reference, meta, run_dir)  # fmt: skip


def network(kind: str, inputs: StackInputs, sb_list: str | Path | None = None) -> np.ndarray:
    """The pairs (P, 2) of the ``single``, ``all`` or ``sb`` network (``sb``: the pairs of
    ``sb_list``, by default the run directory's small_baselines.list), checked connected."""
    n = len(inputs.dates)
    if kind in ("single", "all"):
        if sb_list is not None:
            raise StampsError(f"--sb-list: only used with --network sb (not {kind})")
        pairs = cs.network_pairs(kind, n, inputs.ref_ix)
    elif kind == "sb":
        if sb_list is None:
            if inputs.run_dir is None:
                raise StampsError("--network sb: pass --sb-list FILE (small_baselines.list)")
            sb_list = inputs.run_dir / rundir.SB_LIST
        listed = read_sb_list(sb_list)
        unknown = sorted({d for pair in listed for d in pair if d not in inputs.dates})
        if unknown:
            raise StampsError(
                f"{sb_list}: date(s) {', '.join(unknown[:5])} not in the stack "
                f"({inputs.dates[0]}..{inputs.dates[-1]})"
            )
        pairs = np.array([[inputs.dates.index(a), inputs.dates.index(b)] for a, b in listed])
    else:
        raise StampsError(f"--network {kind}: choose single, all or sb")
    cs.check_network(pairs, inputs.dates, inputs.ref_ix)
    return pairs.astype(np.int64).reshape(-1, 2)


def _nearest_pixels(
    stack: isce.IsceStack, lon: np.ndarray, lat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest pixel (line, sample) of each lon/lat on the lat/lon rasters, and its distance
    (m), reading the rasters in blocks of lines."""
    n = lon.size
    best = np.full(n, np.inf)
    bl = np.zeros(n, dtype=np.int64)
    bs = np.zeros(n, dtype=np.int64)
    coslat = np.cos(np.radians(lat))
    lat_path, lon_path = stack.geometry_raster("lat"), stack.geometry_raster("lon")
    for r0 in range(0, stack.length, LATLON_BLOCK_LINES):
        r1 = min(r0 + LATLON_BLOCK_LINES, stack.length)
        la = isce.read_raster(lat_path, rows=(r0, r1)).astype(np.float64)
        lo = isce.read_raster(lon_path, rows=(r0, r1)).astype(np.float64)
        for i in range(n):
            d2 = (la - lat[i]) ** 2 + ((lo - lon[i]) * coslat[i]) ** 2
            k = int(np.argmin(d2))
            if d2.flat[k] < best[i]:
                best[i] = d2.flat[k]
                bl[i], bs[i] = divmod(k, stack.width)
                bl[i] += r0
    return bl, bs, np.radians(np.sqrt(best)) * EARTH_RADIUS_M


def lonlat_to_radar(
    stack: isce.IsceStack, names: list[str], lon: np.ndarray, lat: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel (line, sample) of each lon/lat: the nearest pixel of the geometry rasters
    (at the DEM height), refined with the local derivatives of lat/lon; a position farther
    than MAX_LOOKUP_M from every pixel is outside the scene (StampsError)."""
    line, sample, dist = _nearest_pixels(stack, lon, lat)
    out_l = line.astype(np.float64)
    out_s = sample.astype(np.float64)
    for i in range(lon.size):
        if not np.isfinite(dist[i]) or dist[i] > MAX_LOOKUP_M:
            raise StampsError(
                f"CR {names[i]} at lon {lon[i]:.6f}, lat {lat[i]:.6f}: outside the scene "
                f"(the nearest pixel is {dist[i]:.0f} m away)"
            )
        r0 = int(np.clip(line[i] - 1, 0, stack.length - 3))
        c0 = int(np.clip(sample[i] - 1, 0, stack.width - 3))
        la = isce.read_raster(stack.geometry_raster("lat"), rows=(r0, r0 + 3), cols=(c0, c0 + 3))
        lo = isce.read_raster(stack.geometry_raster("lon"), rows=(r0, r0 + 3), cols=(c0, c0 + 3))
        la, lo = la.astype(np.float64), lo.astype(np.float64)
        jac = np.array(
            [
                [(la[2, 1] - la[0, 1]) / 2, (la[1, 2] - la[1, 0]) / 2],
                [(lo[2, 1] - lo[0, 1]) / 2, (lo[1, 2] - lo[1, 0]) / 2],
            ]
        )
        rr, cc = line[i] - r0, sample[i] - c0
        d = np.array([lat[i] - la[rr, cc], lon[i] - lo[rr, cc]])
        try:
            step = np.linalg.solve(jac, d)
        except np.linalg.LinAlgError:
            step = np.zeros(2)
        out_l[i] += float(np.clip(step[0], -1.0, 1.0))
        out_s[i] += float(np.clip(step[1], -1.0, 1.0))
    return out_l, out_s


def check_inside(
    stack: isce.IsceStack, names: list[str], line: np.ndarray, sample: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """First line and sample of the ``window`` x ``window`` SLC chip around each CR; a chip
    not wholly inside the image is a StampsError naming the CR."""
    half = window // 2
    r0 = np.round(line).astype(np.int64) - half
    c0 = np.round(sample).astype(np.int64) - half
    for i in range(len(names)):
        if not (0 <= line[i] <= stack.length - 1 and 0 <= sample[i] <= stack.width - 1):
            raise StampsError(
                f"CR {names[i]} at line {line[i]:.1f}, sample {sample[i]:.1f}: outside the scene "
                f"({stack.length} lines x {stack.width} samples)"
            )
        if r0[i] < 0 or c0[i] < 0 or r0[i] + window > stack.length or c0[i] + window > stack.width:
            raise StampsError(
                f"CR {names[i]} at line {line[i]:.1f}, sample {sample[i]:.1f}: its {window}-pixel "
                f"window leaves the scene ({stack.length} x {stack.width}); use a smaller --window"
            )
    return r0, c0


def read_chips(
    inputs: StackInputs, names: list[str], r0: np.ndarray, c0: np.ndarray, window: int
) -> np.ndarray:
    """SLC chips (n_cr, n_dates, window, window) complex64 with first pixel (r0, c0); a chip
    reaching the zero-filled border of invalid burst data is a StampsError."""
    k = np.arange(window)
    shape = (r0.size, window, window)
    rows = np.broadcast_to(r0[:, None, None] + k[None, :, None], shape)
    cols = np.broadcast_to(c0[:, None, None] + k[None, None, :], shape)
    out = np.empty((r0.size, len(inputs.dates), window, window), dtype=np.complex64)
    for j, date in enumerate(inputs.dates):
        values = isce.sample_raster(inputs.stack.slc[date], rows.ravel(), cols.ravel())
        out[:, j] = values.reshape(shape).astype(np.complex64)
    zero = np.all(out == 0, axis=1)
    for i in range(r0.size):
        if zero[i].any():
            raise StampsError(
                f"CR {names[i]}: its {window}-pixel window reaches the zero-filled border of the "
                "SLCs (no valid burst data there); use a smaller --window"
            )
    return out


@dataclass
class CrGeometry:
    """Per CR: lon, lat (deg), DEM height (m), incidence and LOS azimuth (deg, los.rdr.full
    bands 1 and 2), slant range (m) and Bperp (m, per date, ISCE sign, 0 at the reference)."""

    lon: np.ndarray
    lat: np.ndarray
    hgt: np.ndarray
    inc_deg: np.ndarray
    los_az_deg: np.ndarray
    slant_range_m: np.ndarray
    bperp_m: np.ndarray


def _bilinear_raster(
    path: Path, line: np.ndarray, sample: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Band 1 of ``path`` interpolated bilinearly at sub-pixel positions inside ``shape``."""
    r0 = np.clip(np.floor(line).astype(np.int64), 0, shape[0] - 2)
    c0 = np.clip(np.floor(sample).astype(np.int64), 0, shape[1] - 2)
    fy, fx = line - r0, sample - c0
    v = [
        isce.sample_raster(path, r0 + dr, c0 + dc).astype(np.float64)
        for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1))
    ]
    return (1 - fy) * ((1 - fx) * v[0] + fx * v[1]) + fy * ((1 - fx) * v[2] + fx * v[3])


def cr_geometry(inputs: StackInputs, line: np.ndarray, sample: np.ndarray) -> CrGeometry:
    """Geometry and baselines at the CRs' sub-pixel positions."""
    stack = inputs.stack
    shape = (stack.length, stack.width)
    ri = np.round(line).astype(np.int64)
    ci = np.round(sample).astype(np.int64)
    lon = _bilinear_raster(stack.geometry_raster("lon"), line, sample, shape)
    lat = _bilinear_raster(stack.geometry_raster("lat"), line, sample, shape)
    hgt = isce.sample_raster(stack.geometry_raster("hgt"), ri, ci).astype(np.float64)
    inc = isce.sample_raster(stack.geometry_raster("los"), ri, ci, band=1).astype(np.float64)
    az = isce.sample_raster(stack.geometry_raster("los"), ri, ci, band=2).astype(np.float64)
    meta = inputs.meta
    rng = meta["slant_range_near"] + meta["range_pixel_spacing"] * sample
    bperp = np.zeros((line.size, len(inputs.dates)))
    secondaries = [d for d in inputs.dates if d != inputs.stack_reference]
    grids = [isce.baseline_grid_path(stack, d) for d in secondaries]
    if all(grids) and grids:
        values = isce.sample_grids(
            np.stack([isce.read_raster(p) for p in grids]), line, sample, stack.length, stack.width
        )
        for j, d in enumerate(secondaries):
            bperp[:, inputs.dates.index(d)] = values[:, j]
    else:
        text = isce.read_bperp(stack, inputs.stack_reference)
        for j, d in enumerate(inputs.dates):
            bperp[:, j] = text[d]
    return CrGeometry(lon, lat, hgt, inc, az, rng, bperp)


@dataclass
class Gnss:
    """GNSS cumulative displacement per CR: ``start``, ``end`` (YYYYMMDD) and east, north, up
    (mm) keyed by CR name."""

    path: Path
    rows: dict[str, tuple[str, str, float, float, float]]


def read_gnss(path: str | Path, names: list[str]) -> Gnss:
    """Read ``--gnss``: columns name, start, end (YYYYMMDD), east, north, up (mm)."""
    path = Path(path)
    if not path.is_file():
        raise StampsError(f"--gnss {path}: file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields = [c.strip().lower() for c in (reader.fieldnames or [])]
            rows = [
                {k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise StampsError(f"--gnss {path}: unreadable ({exc})") from None
    need = ("name", "start", "end", "east", "north", "up")
    missing = [c for c in need if c not in fields]
    if missing:
        raise StampsError(f"--gnss {path}: missing column(s) {', '.join(missing)}")
    out: dict[str, tuple[str, str, float, float, float]] = {}
    for number, row in enumerate(rows, start=2):
        if row["name"] not in names:
            raise StampsError(f"--gnss {path}, line {number}: CR {row['name']!r} not in the list")
        where = f"--gnss {path}, line {number}"
        start, end = row["start"], row["end"]
        if parse_yyyymmdd(start, where) >= parse_yyyymmdd(end, where):
            raise StampsError(f"{where}: start {start} is not before end {end}")
        try:
            enu = tuple(float(row[c]) for c in ("east", "north", "up"))
        except ValueError:
            raise StampsError(f"{where}: east, north and up must be numbers (mm)") from None
        out[row["name"]] = (start, end, *enu)
    return Gnss(path, out)

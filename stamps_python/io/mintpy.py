"""MintPy-readable HDF5 of exported PS results, on the stack's radar grid.

Writes the files MintPy's readers and viewers (``readfile``, ``view.py``, ``tsview.py``,
``save_qgis.py``, ``save_kmz.py``) open, as MintPy's own ``prep_fringe`` / ``timeseries2velocity``
lay them out::

    DIR/timeseries.h5            /date (S8 YYYYMMDD), /bperp (m), /timeseries (m, dates x lines x
                                 samples; 0 on REF_DATE)
    DIR/velocity.h5              /velocity, /velocityStd (m/year)
    DIR/temporalCoherence.h5     /temporalCoherence (0-1)
    DIR/maskTempCoh.h5           /mask (bool, True at the points' pixels)
    DIR/inputs/geometryRadar.h5  /height (m), /latitude, /longitude (deg), /incidenceAngle,
                                 /azimuthAngle (deg, ISCE los bands 1 and 2),
                                 /slantRangeDistance (m)

Data are NaN away from the points; points are at their pixels (line, sample of ps2 ``ij``), or
averaged over ``looks`` (azimuth, range) pixels when multilooked. Displacements and velocities
are positive toward the satellite, in metres, as MintPy's. The root attributes are MintPy's
(ROI_PAC names, docs/api/attributes.md); the orbit-derived ones (HEIGHT, EARTH_RADIUS, HEADING,
AZIMUTH_PIXEL_SIZE, CENTER_LINE_UTC) are computed from the reference XML as MintPy's
``isce_utils.extract_tops_metadata`` does (first burst's mid time, Hermite orbit, WGS84).
"""

from __future__ import annotations

import datetime as _dt
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stamps_python.io.isce import raster_shape, read_raster
from stamps_python.utils import StampsError, atomic_output

WGS84_A = 6378137.0
WGS84_E2 = 6.69437999014e-3
GEOMETRY_DIR = "inputs"
GEOMETRY_FILE = "geometryRadar.h5"
DATA_FILES = ("timeseries.h5", "velocity.h5", "temporalCoherence.h5", "maskTempCoh.h5")
# geometry dataset -> (ISCE raster in geom_reference, band)
GEOMETRY_RASTERS = {
    "height": ("hgt", 1),
    "latitude": ("lat", 1),
    "longitude": ("lon", 1),
    "incidenceAngle": ("los", 1),
    "azimuthAngle": ("los", 2),
}
GEOMETRY_UNITS = {
    "height": "m",
    "latitude": "degree",
    "longitude": "degree",
    "incidenceAngle": "degree",
    "azimuthAngle": "degree",
    "slantRangeDistance": "m",
}
COMPRESSION = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


# --------------------------------------------------------------------------------------------
# the radar grid


@dataclass
class RadarGeometry:
    """The stack's full-resolution radar grid: size, MintPy root attributes common to every
    file, and the ISCE geometry rasters (dataset name -> (path, band))."""

    length: int
    width: int
    attrs: dict[str, str]
    rasters: dict[str, tuple[Path, int]] = field(default_factory=dict)


def _gdal_path(base: Path) -> Path | None:
    vrt = base.with_name(base.name + ".vrt")
    if vrt.is_file():
        return vrt
    return base if base.is_file() and base.with_name(base.name + ".xml").is_file() else None


def _read(path: Path, band: int = 1) -> np.ndarray:
    try:
        return read_raster(path, band)
    except IndexError:
        raise StampsError(f"{path}: has no band {band}") from None


def _parse_time(text: str, path: Path) -> _dt.datetime:
    try:
        return _dt.datetime.fromisoformat(text.strip().replace("T", " "))
    except ValueError:
        raise StampsError(f"{path}: time {text!r} is not YYYY-MM-DD HH:MM:SS[.ffffff]") from None


def _xml_values(
    path: Path,
) -> tuple[dict[str, str], list[tuple[_dt.datetime, np.ndarray, np.ndarray]]]:
    """First value of every property (lower-case names) and the orbit state vectors (time,
    position m, velocity m/s, ECEF) of an ISCE reference XML."""
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
    vectors = []
    for comp in root.iter("component"):
        if not (comp.get("name") or "").lower().startswith("statevector"):
            continue
        sv = {
            (p.get("name") or "").lower(): p.findtext("value") or "" for p in comp.iter("property")
        }
        try:
            pos = np.array([float(v) for v in sv["position"].strip("[] ").split(",")])
            vel = np.array([float(v) for v in sv["velocity"].strip("[] ").split(",")])
        except (KeyError, ValueError):
            raise StampsError(f"{path}: orbit state vector without position/velocity") from None
        vectors.append((_parse_time(sv.get("time", ""), path), pos, vel))
    vectors.sort(key=lambda v: v[0])
    return props, vectors


def _hermite(
    vectors: Sequence[tuple[_dt.datetime, np.ndarray, np.ndarray]], t: _dt.datetime, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Position (m) and velocity (m/s) at ``t``: cubic Hermite between the two state vectors
    around it."""
    times = [v[0] for v in vectors]
    k = int(np.searchsorted(np.array(times, dtype="datetime64[us]"), np.datetime64(t)))
    if not vectors or k == 0 or k == len(vectors):
        raise StampsError(f"{path}: the orbit state vectors do not cover {t}")
    (t0, p0, v0), (t1, p1, v1) = vectors[k - 1], vectors[k]
    h = (t1 - t0).total_seconds()
    s = (t - t0).total_seconds() / h
    pos = (
        (2 * s**3 - 3 * s**2 + 1) * p0
        + (s**3 - 2 * s**2 + s) * h * v0
        + (-2 * s**3 + 3 * s**2) * p1
        + (s**3 - s**2) * h * v1
    )
    vel = (
        (6 * s**2 - 6 * s) * p0
        + (3 * s**2 - 4 * s + 1) * h * v0
        + (-6 * s**2 + 6 * s) * p1
        + (3 * s**2 - 2 * s) * h * v1
    ) / h
    return pos, vel


def ecef_to_llh(xyz: np.ndarray) -> tuple[float, float, float]:
    """WGS84 latitude, longitude (deg) and ellipsoidal height (m) of an ECEF point (m)."""
    x, y, z = (float(v) for v in xyz)
    lon = math.atan2(y, x)
    p = math.hypot(x, y)
    lat = math.atan2(z, p * (1 - WGS84_E2))
    h = 0.0
    for _ in range(10):
        n = WGS84_A / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
        h = p / math.cos(lat) - n
        lat = math.atan2(z, p * (1 - WGS84_E2 * n / (n + h)))
    return math.degrees(lat), math.degrees(lon), h


def enu_heading(lat: float, lon: float, vel: np.ndarray) -> float:
    """Heading (deg clockwise from north) of the ECEF velocity ``vel`` at ``lat``, ``lon`` (deg),
    as ISCE's ``Orbit.getENUHeading``."""
    la, lo = math.radians(lat), math.radians(lon)
    east = np.array([-math.sin(lo), math.cos(lo), 0.0])
    north = np.array([-math.sin(la) * math.cos(lo), -math.sin(la) * math.sin(lo), math.cos(la)])
    return math.degrees(math.atan2(float(vel @ east), float(vel @ north)))


def radius_of_curvature(lat: float, heading: float) -> float:
    """WGS84 radius of curvature (m) at ``lat`` along ``heading`` (deg), as ISCE's
    ``Ellipsoid.radiusOfCurvature`` (MintPy's EARTH_RADIUS)."""
    s2 = math.sin(math.radians(lat)) ** 2
    east = WGS84_A / math.sqrt(1 - WGS84_E2 * s2)
    north = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 1.5
    h = math.radians(heading)
    return east * north / (east * math.cos(h) ** 2 + north * math.sin(h) ** 2)


def _corners(data: np.ndarray, buffer: int = 2) -> tuple[float, float, float, float]:
    """Values at the first/last all-valid lines (``buffer`` lines in) and first/last samples, as
    MintPy's ``extract_geometry_metadata`` takes LAT_REF1..4 / LON_REF1..4."""
    if np.all(data):
        r0, r1 = buffer, data.shape[0] - 1 - buffer
    else:
        rows = np.flatnonzero(np.all(data != 0, axis=1))
        if rows.size == 0:
            raise StampsError("geometry raster has no line without zeros (no valid corners)")
        r0, r1 = int(rows[0]) + buffer, int(rows[-1]) - buffer
    r0, r1 = min(max(r0, 0), data.shape[0] - 1), min(max(r1, 0), data.shape[0] - 1)
    return (
        float(data[r0, 0]),
        float(data[r0, -1]),
        float(data[r1, 0]),
        float(data[r1, -1]),
    )


def _platform(props: Mapping[str, str]) -> str | None:
    name = f"{props.get('spacecraftname', '')} {props.get('mission', '')}".lower()
    return "sen" if "sentinel" in name or name.split()[:1] == ["s1"] else None


def read_radar_geometry(meta: Mapping[str, Any], wavelength: float) -> RadarGeometry:
    """The radar grid of a run from its ``metadata.json`` (``meta``): the stack's geometry
    rasters (``merged_dir``/geom_reference) and MintPy's root attributes from them and the
    reference XML (``reference_xml``). A run without them is a one-line StampsError."""
    merged = meta.get("merged_dir")
    xml = meta.get("reference_xml")
    if not merged or not xml:
        raise StampsError(
            "--format mintpy needs the ISCE2 stack geometry: metadata.json has no "
            "merged_dir/reference_xml (run prep_isce --bootstrap-metadata)"
        )
    geom_dir = Path(merged) / "geom_reference"
    rasters: dict[str, tuple[Path, int]] = {}
    for name, (base, band) in GEOMETRY_RASTERS.items():
        path = _gdal_path(geom_dir / f"{base}.rdr.full")
        if path is None:
            raise StampsError(
                f"{geom_dir / (base + '.rdr.full')}: not found; --format mintpy needs the "
                f"stack's geometry rasters (metadata.json merged_dir)"
            )
        rasters[name] = (path, band)
    xml_path = Path(xml)
    if not xml_path.is_file():
        raise StampsError(f"{xml_path}: reference XML not found (metadata.json reference_xml)")
    length, width, _ = raster_shape(rasters["height"][0])
    props, vectors = _xml_values(xml_path)
    for key in ("sensingstart", "sensingstop", "azimuthtimeinterval"):
        if key not in props:
            raise StampsError(f"{xml_path}: property '{key}' missing")
    start = _parse_time(props["sensingstart"], xml_path)
    mid = start + (_parse_time(props["sensingstop"], xml_path) - start) / 2
    pos, vel = _hermite(vectors, mid, xml_path)
    sat_lat, sat_lon, altitude = ecef_to_llh(pos)
    heading = enu_heading(sat_lat, sat_lon, vel)
    lat_ref = _corners(_read(*rasters["latitude"]))
    lon_ref = _corners(_read(*rasters["longitude"]))
    inc = _read(*rasters["incidenceAngle"]).astype(np.float64)
    inc[inc == 0] = np.nan
    direction = str(props.get("passdirection", meta.get("pass_direction", ""))).lower()
    if direction not in ("ascending", "descending"):
        direction = "ascending" if abs(heading) < 90 else "descending"
    range_pixel = float(meta.get("range_pixel_spacing", props.get("rangepixelsize", "nan")))
    starting_range = float(meta.get("slant_range_near", props.get("startingrange", "nan")))
    attrs: dict[str, Any] = {
        "PROCESSOR": "isce",
        "LENGTH": length,
        "WIDTH": width,
        "WAVELENGTH": wavelength,
        "ORBIT_DIRECTION": direction,
        "HEADING": heading,
        "ANTENNA_SIDE": -1,
        "STARTING_RANGE": starting_range,
        "RANGE_PIXEL_SIZE": range_pixel,
        "AZIMUTH_PIXEL_SIZE": float(np.linalg.norm(vel)) * float(props["azimuthtimeinterval"]),
        "EARTH_RADIUS": radius_of_curvature(sat_lat, heading),
        "HEIGHT": altitude,
        "CENTER_LINE_UTC": mid.hour * 3600.0 + mid.minute * 60.0 + mid.second,
        "ALOOKS": 1,
        "RLOOKS": 1,
        "CENTER_INCIDENCE_ANGLE": float(inc[length // 2, width // 2]),
    }
    if "pulserepetitionfrequency" in props:
        attrs["PRF"] = props["pulserepetitionfrequency"]
    platform = _platform(props)
    if platform:
        attrs["PLATFORM"] = platform
    for k in range(4):
        attrs[f"LAT_REF{k + 1}"] = lat_ref[k]
        attrs[f"LON_REF{k + 1}"] = lon_ref[k]
    for key in ("STARTING_RANGE", "RANGE_PIXEL_SIZE"):
        if not math.isfinite(float(attrs[key])):
            raise StampsError(f"{xml_path}: no {key} (startingrange / rangepixelsize)")
    return RadarGeometry(length, width, {k: str(v) for k, v in attrs.items()}, rasters)


# --------------------------------------------------------------------------------------------
# the points


@dataclass
class MintpyPoints:
    """One correction's points for MintPy: pixels, dates and values in MintPy's units.

    ``line``, ``sample`` (n,) 0-based radar pixel; ``disp_m`` (n, m) LOS displacement, m, +
    toward the satellite, 0 on ``ref_date``; ``bperp`` (m,) m; ``vel_m``, ``vel_std_m`` (n,)
    m/year; ``tcoh`` (n,) 0-1; ``ref_point`` the index of the point whose pixel is REF_Y/REF_X
    (None: no reference); ``attrs`` extra root attributes (STAMPS_*).
    """

    line: np.ndarray
    sample: np.ndarray
    lonlat: np.ndarray
    dates: list[str]
    ref_date: str
    disp_m: np.ndarray
    bperp: np.ndarray
    vel_m: np.ndarray
    vel_std_m: np.ndarray
    tcoh: np.ndarray
    ref_point: int | None = None
    attrs: dict[str, str] = field(default_factory=dict)


def check_looks(looks: Sequence[int], geometry: RadarGeometry) -> tuple[int, int]:
    """(azimuth, range) looks checked against the grid: positive and at most its size."""
    a, r = (int(v) for v in looks)
    if a < 1 or r < 1 or a > geometry.length or r > geometry.width:
        raise StampsError(
            f"--mintpy-looks {a} {r}: looks must be >= 1 and at most the grid "
            f"({geometry.length} lines x {geometry.width} samples)"
        )
    return a, r


def _cells(
    line: np.ndarray, sample: np.ndarray, looks: tuple[int, int], shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Multilooked cell of every point (-1 outside the grid), the cells holding points (sorted)
    and each point's index among them (-1 outside)."""
    a, r = looks
    cl, cs = np.asarray(line) // a, np.asarray(sample) // r
    inside = (cl >= 0) & (cl < shape[0]) & (cs >= 0) & (cs < shape[1])
    cell = np.where(inside, cl * shape[1] + cs, -1)
    cells, inverse = np.unique(cell[inside], return_inverse=True)
    where = np.full(cell.shape, -1, dtype=np.int64)
    where[inside] = inverse
    return cell, cells, where


def _cell_mean(values: np.ndarray, where: np.ndarray, n_cells: int) -> np.ndarray:
    """NaN-skipping mean of ``values`` (n,) or (n, m) over the points of each cell."""
    vals = np.asarray(values, dtype=np.float64)
    keep = where >= 0
    vals, idx = vals[keep], where[keep]
    flat = vals.reshape(vals.shape[0], -1)
    good = np.isfinite(flat)
    out = np.empty((n_cells, flat.shape[1]))
    for j in range(flat.shape[1]):
        g = good[:, j]
        total = np.bincount(idx[g], weights=flat[g, j], minlength=n_cells)
        count = np.bincount(idx[g], minlength=n_cells)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out if vals.ndim > 1 else out[:, 0]


def _grid(cells: np.ndarray, values: np.ndarray, shape: tuple[int, int], dtype: Any) -> np.ndarray:
    out = np.full(shape[0] * shape[1], np.nan if np.dtype(dtype).kind == "f" else 0, dtype=dtype)
    out[cells] = values
    return out.reshape(shape)


def _block_mean(data: np.ndarray, looks: tuple[int, int]) -> np.ndarray:
    """Mean over ``looks`` (azimuth, range) blocks (remainder lines/samples dropped, as MintPy's
    multilook); NaN-skipping."""
    a, r = looks
    if a == 1 and r == 1:
        return data
    lm, wm = data.shape[0] // a, data.shape[1] // r
    blocks = data[: lm * a, : wm * r].astype(np.float64).reshape(lm, a, wm, r)
    with np.errstate(invalid="ignore"):
        good = np.isfinite(blocks)
        total = np.where(good, blocks, 0.0).sum(axis=(1, 3))
        count = good.sum(axis=(1, 3))
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def grid_attrs(geometry: RadarGeometry, looks: tuple[int, int]) -> dict[str, str]:
    """Root attributes of the (multilooked) grid, as MintPy's ``update_attribute4multilook``."""
    a, r = looks
    attrs = dict(geometry.attrs)
    attrs["LENGTH"] = str(geometry.length // a)
    attrs["WIDTH"] = str(geometry.width // r)
    attrs["ALOOKS"] = str(int(attrs["ALOOKS"]) * a)
    attrs["RLOOKS"] = str(int(attrs["RLOOKS"]) * r)
    for key, n in (("AZIMUTH_PIXEL_SIZE", a), ("RANGE_PIXEL_SIZE", r)):
        attrs[key] = str(float(attrs[key]) * n)
    return attrs


def _write_h5(
    path: Path,
    attrs: Mapping[str, str],
    datasets: Mapping[str, np.ndarray],
    units: Mapping[str, str] | None = None,
) -> Path:
    """An HDF5 file with string root ``attrs`` and 2-D ``datasets`` (gzip), written atomically."""
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        for name, data in datasets.items():
            ds = f.create_dataset(name, data=data, chunks=True, **COMPRESSION)
            if units and name in units:
                ds.attrs["UNIT"] = units[name]
        for key, value in attrs.items():
            f.attrs[key] = str(value)
    return path


def write_geometry(
    path: str | Path,
    geometry: RadarGeometry,
    looks: tuple[int, int] = (1, 1),
    overrides: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> Path:
    """``geometryRadar.h5``: the geometry rasters (multilooked by block means) and
    ``slantRangeDistance`` (STARTING_RANGE + RANGE_PIXEL_SIZE x sample). ``overrides`` maps a
    dataset name to (line, sample, value) set at full resolution first (the points' own
    coordinates and heights, so MintPy shows the export's)."""
    shape = (geometry.length // looks[0], geometry.width // looks[1])
    attrs = dict(grid_attrs(geometry, looks), FILE_TYPE="geometry")
    datasets: dict[str, np.ndarray] = {}
    for name, (raster, band) in geometry.rasters.items():
        data = _read(raster, band)
        is_coord = name in ("latitude", "longitude")
        data = data.astype(np.float64 if is_coord else np.float32)
        if overrides and name in overrides:
            line, sample, value = overrides[name]
            data[np.asarray(line), np.asarray(sample)] = value
        datasets[name] = _block_mean(data, looks).astype(data.dtype)
    near, step = float(geometry.attrs["STARTING_RANGE"]), float(geometry.attrs["RANGE_PIXEL_SIZE"])
    rng = near + step * np.arange(shape[1] * looks[1]).reshape(shape[1], looks[1]).mean(axis=1)
    datasets["slantRangeDistance"] = np.broadcast_to(rng.astype(np.float32), shape).copy()
    return _write_h5(Path(path), attrs, datasets, GEOMETRY_UNITS)


def reference_attrs(points: MintpyPoints, looks: tuple[int, int]) -> dict[str, str]:
    """REF_DATE and, when there is a reference point, REF_Y/REF_X (its multilooked pixel) and
    REF_LAT/REF_LON (its coordinates)."""
    out = {"REF_DATE": points.ref_date}
    if points.ref_point is not None:
        k = points.ref_point
        out["REF_Y"] = str(int(points.line[k]) // looks[0])
        out["REF_X"] = str(int(points.sample[k]) // looks[1])
        out["REF_LAT"] = str(float(points.lonlat[k, 1]))
        out["REF_LON"] = str(float(points.lonlat[k, 0]))
    return out


def write_mintpy(
    out_dir: str | Path,
    points: MintpyPoints,
    geometry: RadarGeometry,
    looks: Sequence[int] = (1, 1),
    geometry_overrides: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> list[Path]:
    """Write the MintPy files of ``points`` into ``out_dir`` (each file atomically); returns
    their paths (timeseries, velocity, temporalCoherence, maskTempCoh, inputs/geometryRadar)."""
    lk = check_looks(looks, geometry)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shape = (geometry.length // lk[0], geometry.width // lk[1])
    _, cells, where = _cells(points.line, points.sample, lk, shape)
    if cells.size == 0:
        raise StampsError("no point lies on the radar grid of the stack (ps2 ij outside it)")
    n_cells = cells.size
    common = dict(grid_attrs(geometry, lk), **reference_attrs(points, lk), **points.attrs)
    written = []

    path = out_dir / "timeseries.h5"
    disp = _cell_mean(points.disp_m, where, n_cells).astype(np.float32)
    attrs = dict(common, FILE_TYPE="timeseries", UNIT="m")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("date", data=np.array(points.dates, dtype="S8"))
        f.create_dataset("bperp", data=np.asarray(points.bperp, dtype=np.float32))
        ts = f.create_dataset(
            "timeseries",
            shape=(len(points.dates), *shape),
            dtype=np.float32,
            chunks=(1, min(shape[0], 256), min(shape[1], 256)),
            fillvalue=np.nan,
            **COMPRESSION,
        )
        ts.attrs["UNIT"] = "m"
        for j in range(len(points.dates)):
            ts[j] = _grid(cells, disp[:, j], shape, np.float32)
        for key, value in attrs.items():
            f.attrs[key] = str(value)
    written.append(path)

    vel = _cell_mean(points.vel_m, where, n_cells)
    vel_std = _cell_mean(points.vel_std_m, where, n_cells)
    vel_attrs = dict(
        common,
        FILE_TYPE="velocity",
        UNIT="m/year",
        START_DATE=points.dates[0],
        END_DATE=points.dates[-1],
        DATE12=f"{points.dates[0]}_{points.dates[-1]}",
    )
    written.append(
        _write_h5(
            out_dir / "velocity.h5",
            vel_attrs,
            {
                "velocity": _grid(cells, vel, shape, np.float32),
                "velocityStd": _grid(cells, vel_std, shape, np.float32),
            },
            {"velocity": "m/year", "velocityStd": "m/year"},
        )
    )
    tcoh = _cell_mean(points.tcoh, where, n_cells)
    written.append(
        _write_h5(
            out_dir / "temporalCoherence.h5",
            dict(common, FILE_TYPE="temporalCoherence", UNIT="1"),
            {"temporalCoherence": _grid(cells, tcoh, shape, np.float32)},
        )
    )
    written.append(
        _write_h5(
            out_dir / "maskTempCoh.h5",
            dict(common, FILE_TYPE="mask", UNIT="1"),
            {"mask": _grid(cells, np.ones(n_cells, dtype=bool), shape, bool)},
        )
    )
    written.append(
        write_geometry(out_dir / GEOMETRY_DIR / GEOMETRY_FILE, geometry, lk, geometry_overrides)
    )
    return written

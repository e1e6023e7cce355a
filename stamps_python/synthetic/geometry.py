"""Scene geometry: the Gaussian-hill DEM and the synthetic topo (height, lat/lon, incidence, look
angle, LOS azimuth, local incidence, shadow/layover of every pixel), written to
``merged/geom_reference`` and ``truth.h5``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import numba
import numpy as np

from stamps_python.synthetic.constants import (
    AZIMUTH_TIME_INTERVAL_S,
    EARTH_RADIUS_M,
    RANGE_PIXEL_M,
)
from stamps_python.synthetic.fields import _rng
from stamps_python.synthetic.isce_xml import _write_geometry_layer
from stamps_python.synthetic.orbit import (
    _azimuth_heading,
    _look_angle,
    _make_orbit,
    _Orbit,
    _slant_range_at_incidence,
)
from stamps_python.synthetic.profiles import Profile
from stamps_python.synthetic.truth import _h5_write


@dataclass
class _Terrain:
    """DEM: base + tilt + Gaussian hills, as a function of local east/north (m)."""

    base: float
    tilt_e: float
    tilt_n: float
    amp: np.ndarray
    ce: np.ndarray
    cn: np.ndarray
    s2: np.ndarray  # hill sigma squared (m^2)


def _make_terrain(rng: np.random.Generator, extent_m: float, relief_m: float) -> _Terrain:
    """Ten hills over a region of at least 6 km (small scenes see part of it); a hill of
    sigma s is at most ``relief_m * min(1, s / 2 km)`` high, which keeps slopes gentle."""
    n = 10
    span = max(extent_m, 6000.0)
    sigma = rng.uniform(0.05, 0.2, n) * span
    return _Terrain(
        base=float(rng.uniform(80.0, 150.0)),
        tilt_e=float(rng.normal(0.0, 2e-3)),
        tilt_n=float(rng.normal(0.0, 2e-3)),
        amp=rng.uniform(0.25, 1.0, n) * relief_m * np.minimum(1.0, sigma / 2000.0),
        ce=rng.uniform(-0.6, 0.6, n) * span,
        cn=rng.uniform(-0.6, 0.6, n) * span,
        s2=sigma**2,
    )


@numba.njit(cache=True)
def _dem(e, n, base, tilt_e, tilt_n, amp, ce, cn, s2):
    """Height (m) and its east/north gradients at local east/north ``e``, ``n`` (m)."""
    h = base + tilt_e * e + tilt_n * n
    he = tilt_e
    hn = tilt_n
    for k in range(amp.size):
        de = e - ce[k]
        dn = n - cn[k]
        g = amp[k] * math.exp(-(de * de + dn * dn) / (2.0 * s2[k]))
        h += g
        he -= g * de / s2[k]
        hn -= g * dn / s2[k]
    return h, he, hn


@numba.njit(cache=True)
def _geometry_kernel(
    t_rows, ranges, s0, a, side, omega, rs, re, lat0, lon0,
    base, tilt_e, tilt_n, amp, ce, cn, s2,
    hgt, lat, lon, east, north, inc, look, los_az, inc_local, shadow,
):  # fmt: skip
    """Topo: for every (line, sample) find the DEM point at that zero-Doppler time and slant
    range (fixed-point iteration on the height, started from the previous pixel's height, to
    1 mm), then its angles. Angles in degrees."""
    rows = t_rows.size
    cols = ranges.size
    coslat0 = math.cos(lat0)
    for i in range(rows):
        wt = omega * t_rows[i]
        cw = math.cos(wt)
        sw = math.sin(wt)
        sx = cw * s0[0] + sw * a[0]
        sy = cw * s0[1] + sw * a[1]
        sz = cw * s0[2] + sw * a[2]
        h = hgt[i - 1, 0] if i > 0 else 0.0
        for j in range(cols):
            r = ranges[j]
            he = 0.0
            hn = 0.0
            done = False
            for _ in range(12):
                rh = re + h
                cg = (rs * rs + rh * rh - r * r) / (2.0 * rs * rh)
                g = math.acos(min(1.0, max(-1.0, cg)))
                cgg = math.cos(g)
                sgg = math.sin(g)
                ux = cgg * sx + sgg * side[0]
                uy = cgg * sy + sgg * side[1]
                uz = cgg * sz + sgg * side[2]
                la = math.asin(uz)
                lo = math.atan2(uy, ux)
                dlon = (lo - lon0 + math.pi) % (2.0 * math.pi) - math.pi
                e = re * coslat0 * dlon
                n = re * (la - lat0)
                if done:
                    break
                h_new, he, hn = _dem(e, n, base, tilt_e, tilt_n, amp, ce, cn, s2)
                done = abs(h_new - h) < 1e-3
                h = h_new
            rh = re + h
            cth = (rs * rs + r * r - rh * rh) / (2.0 * rs * r)
            th = math.acos(min(1.0, max(-1.0, cth)))
            incid = th + g
            slo = math.sin(lo)
            clo = math.cos(lo)
            sla = math.sin(la)
            cla = math.cos(la)
            ee = rs * (-sx * slo + sy * clo)
            nn = rs * (-sx * sla * clo - sy * sla * slo + sz * cla)
            uu = rs * cgg - rh
            hgt[i, j] = h
            lat[i, j] = math.degrees(la)
            lon[i, j] = math.degrees(lo)
            east[i, j] = e
            north[i, j] = n
            inc[i, j] = math.degrees(incid)
            look[i, j] = math.degrees(th)
            los_az[i, j] = math.degrees(math.atan2(-ee, nn))
            norm = math.sqrt(he * he + hn * hn + 1.0)
            cl = (-he * ee - hn * nn + uu) / (r * norm)
            inc_local[i, j] = math.degrees(math.acos(min(1.0, max(-1.0, cl))))
            hor = math.sqrt(ee * ee + nn * nn)
            facing = math.degrees(math.atan((he * ee + hn * nn) / hor))
            inc_deg = math.degrees(incid)
            m = 0
            if -facing > 90.0 - inc_deg:
                m += 1
            if facing > inc_deg:
                m += 2
            shadow[i, j] = m


@dataclass
class _Geometry:
    """Radar geometry of the scene; per-pixel fields are float32 (rows, cols)."""

    orbit: _Orbit
    ranges: np.ndarray  # slant range of each sample (m)
    t_rows: np.ndarray  # zero-Doppler time of each line from the scene centre (s)
    r_center: float
    theta_center: float  # look angle at the scene centre (rad)
    az_spacing: float  # azimuth ground pixel spacing (m)
    rg_ground: float  # ground-range pixel spacing at the centre, flat terrain (m)
    extent: float  # longer scene side (m)
    short_side: float
    heading_deg: float


def _build_geometry(
    outdir: Path, rows: int, cols: int, seed: int, prof: Profile, heading_deg: float,
    center_lat: float, center_lon: float, multilooked: bool, h5: h5py.File,
) -> tuple[_Geometry, dict[str, np.ndarray]]:  # fmt: skip
    """Run the synthetic topo, write ``merged/geom_reference`` and the geometry truth.

    Returns the geometry and the float32 per-pixel fields ``hgt`` (m), ``inc_deg``,
    ``look_deg`` (deg), ``east`` and ``north`` (m from the scene centre).
    """
    center_inc_deg = 39.0
    orbit = _make_orbit(center_lat, center_lon, heading_deg, center_inc_deg)
    r_center = _slant_range_at_incidence(center_inc_deg)
    r0 = round(r_center - 0.5 * (cols - 1) * RANGE_PIXEL_M, 3)
    ranges = r0 + np.arange(cols) * RANGE_PIXEL_M
    t_rows = (np.arange(rows) - 0.5 * (rows - 1)) * AZIMUTH_TIME_INTERVAL_S
    theta_c = float(_look_angle(np.array([r_center]))[0])
    gamma_c = math.radians(center_inc_deg) - theta_c
    az_spacing = orbit.omega * EARTH_RADIUS_M * math.cos(gamma_c) * AZIMUTH_TIME_INTERVAL_S
    rg_ground = RANGE_PIXEL_M / math.sin(math.radians(center_inc_deg))
    sides = (rows * az_spacing, cols * rg_ground)
    terrain = _make_terrain(_rng(seed, "terrain"), max(sides), prof.terrain_relief_m)

    hgt, lat, lon = (np.empty((rows, cols), dtype=np.float64) for _ in range(3))
    east, north, inc_deg, look_deg, los_az, inc_local = (
        np.empty((rows, cols), dtype=np.float32) for _ in range(6)
    )
    shadow = np.empty((rows, cols), dtype=np.uint8)
    _geometry_kernel(
        t_rows, ranges, orbit.s0, orbit.a, orbit.side, orbit.omega, orbit.radius, EARTH_RADIUS_M,
        math.radians(center_lat), math.radians(center_lon),
        terrain.base, terrain.tilt_e, terrain.tilt_n,
        terrain.amp, terrain.ce, terrain.cn, terrain.s2,
        hgt, lat, lon, east, north, inc_deg, look_deg, los_az, inc_local, shadow,
    )  # fmt: skip
    geom_dir = outdir / "merged" / "geom_reference"
    _write_geometry_layer(geom_dir, "hgt", hgt, multilooked)
    _write_geometry_layer(geom_dir, "lat", lat, multilooked)
    _write_geometry_layer(geom_dir, "lon", lon, multilooked)
    _write_geometry_layer(geom_dir, "los", np.stack([inc_deg, los_az]), multilooked)
    _write_geometry_layer(geom_dir, "incLocal", np.stack([look_deg, inc_local]), multilooked)
    _write_geometry_layer(geom_dir, "shadowMask", shadow, multilooked)
    _h5_write(h5, "lat", lat, "deg", "latitude (lat.rdr.full)")
    _h5_write(h5, "lon", lon, "deg", "longitude (lon.rdr.full)")
    del lat, lon, los_az, inc_local, shadow
    h32 = hgt.astype(np.float32)
    del hgt
    _h5_write(h5, "hgt", h32, "m", "DEM height (hgt.rdr.full)")
    _h5_write(h5, "incidence_deg", inc_deg, "deg", "incidence angle at the target (los band 1)")
    _h5_write(h5, "look_angle_deg", look_deg, "deg", "look angle at the sensor (incLocal band 1)")
    _h5_write(h5, "east_m", east, "m", "local east of the scene centre")
    _h5_write(h5, "north_m", north, "m", "local north of the scene centre")
    _h5_write(h5, "slant_range_m", ranges, "m", "slant range of each range sample")
    geom = _Geometry(
        orbit=orbit,
        ranges=ranges,
        t_rows=t_rows,
        r_center=r_center,
        theta_center=theta_c,
        az_spacing=az_spacing,
        rg_ground=rg_ground,
        extent=max(sides),
        short_side=min(sides),
        heading_deg=_azimuth_heading(orbit, t_rows, r_center),
    )
    return geom, {
        "hgt": h32,
        "inc_deg": inc_deg,
        "look_deg": look_deg,
        "east": east,
        "north": north,
    }

"""Circular orbit around a non-rotating spherical Earth, zero-Doppler: orbit, slant range and
look angle at the sensor, heading of the scene's azimuth direction."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from stamps_python.synthetic.constants import EARTH_RADIUS_M, GM_M3_S2, SATELLITE_ALTITUDE_M


@dataclass
class _Orbit:
    """Circular orbit around a non-rotating spherical Earth, in ECEF metres and seconds.

    At time ``t`` (s from the scene centre line) the satellite unit vector is
    ``cos(w t) s0 + sin(w t) a``; targets seen at that time lie in the zero-Doppler plane
    spanned by that vector and ``side`` (the unit normal of the orbit plane on the look side).
    """

    s0: np.ndarray
    a: np.ndarray
    side: np.ndarray
    omega: float
    radius: float

    def unit(self, t: np.ndarray) -> np.ndarray:
        """Satellite unit position vector(s) at times ``t`` (s), shape (..., 3)."""
        t = np.asarray(t, dtype=np.float64)[..., None]
        return np.cos(self.omega * t) * self.s0 + np.sin(self.omega * t) * self.a

    def position(self, t: np.ndarray) -> np.ndarray:
        """ECEF position(s) (m) at times ``t`` (s)."""
        return self.radius * self.unit(t)

    def velocity(self, t: np.ndarray) -> np.ndarray:
        """ECEF velocity (m/s) at times ``t`` (s)."""
        t = np.asarray(t, dtype=np.float64)[..., None]
        wt = self.omega * t
        return self.radius * self.omega * (-np.sin(wt) * self.s0 + np.cos(wt) * self.a)


def _make_orbit(lat0_deg: float, lon0_deg: float, heading_deg: float, inc_deg: float) -> _Orbit:
    """Orbit whose zero-Doppler plane at t=0 sees (lat0, lon0) at incidence ``inc_deg``, with the
    scene's azimuth direction at that point along ``heading_deg`` (right-looking)."""
    lat0, lon0, hd = np.radians([lat0_deg, lon0_deg, heading_deg])
    up = np.array([np.cos(lat0) * np.cos(lon0), np.cos(lat0) * np.sin(lon0), np.sin(lat0)])
    east = np.array([-np.sin(lon0), np.cos(lon0), 0.0])
    north = np.array([-np.sin(lat0) * np.cos(lon0), -np.sin(lat0) * np.sin(lon0), np.cos(lat0)])
    along = np.sin(hd) * east + np.cos(hd) * north
    look = np.cos(hd) * east - np.sin(hd) * north  # horizontal, to the right of ``along``
    rs = EARTH_RADIUS_M + SATELLITE_ALTITUDE_M
    inc = np.radians(inc_deg)
    theta = np.arcsin(EARTH_RADIUS_M * np.sin(inc) / rs)
    gamma = inc - theta
    s0 = np.cos(gamma) * up - np.sin(gamma) * look
    side = np.sin(gamma) * up + np.cos(gamma) * look
    return _Orbit(s0=s0, a=along, side=side, omega=math.sqrt(GM_M3_S2 / rs) / rs, radius=rs)


def _slant_range_at_incidence(inc_deg: float) -> float:
    """Slant range (m) to a point on the sphere seen at incidence ``inc_deg``."""
    rs = EARTH_RADIUS_M + SATELLITE_ALTITUDE_M
    inc = math.radians(inc_deg)
    theta = math.asin(EARTH_RADIUS_M * math.sin(inc) / rs)
    gamma = inc - theta
    return math.sqrt(rs**2 + EARTH_RADIUS_M**2 - 2 * rs * EARTH_RADIUS_M * math.cos(gamma))


def _look_angle(ranges: np.ndarray, height: float | np.ndarray = 0.0) -> np.ndarray:
    """Look angle at the sensor (rad) of slant ranges ``ranges`` (m) to height ``height`` (m)."""
    rs = EARTH_RADIUS_M + SATELLITE_ALTITUDE_M
    rh = EARTH_RADIUS_M + np.asarray(height, dtype=np.float64)
    r = np.asarray(ranges, dtype=np.float64)
    return np.arccos(np.clip((rs * rs + r * r - rh * rh) / (2 * rs * r), -1.0, 1.0))


def _azimuth_heading(orbit: _Orbit, t_rows: np.ndarray, r_mid: float) -> float:
    """Heading (deg clockwise from north) of the scene's azimuth direction: from the first to
    the last line at mid range on the zero-height sphere, as a lat/lon grid shows it."""
    rs, re = orbit.radius, EARTH_RADIUS_M
    g = math.acos((rs * rs + re * re - r_mid * r_mid) / (2 * rs * re))
    u = math.cos(g) * orbit.unit(np.array([t_rows[0], t_rows[-1]])) + math.sin(g) * orbit.side
    lat = np.arcsin(u[:, 2])
    lon = np.arctan2(u[:, 1], u[:, 0])
    d_north = lat[1] - lat[0]
    d_east = (lon[1] - lon[0]) * math.cos(0.5 * (lat[0] + lat[1]))
    return math.degrees(math.atan2(d_east, d_north))

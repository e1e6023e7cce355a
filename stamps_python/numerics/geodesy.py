"""Geodesy helpers: StaMPS' local east/north projection of lon/lat (``llh2local``)."""

from __future__ import annotations

import numpy as np

# StaMPS llh2local uses these constants (its eccentricity is not WGS84's 0.0818...; kept as is
# so that local coordinates, and everything gridded on them, match StaMPS).
_A = 6378137.0
_E = 0.08209443794970


def _meridian_arc(lat: np.ndarray) -> np.ndarray:
    """Meridian arc length (m) from the equator to latitude ``lat`` (radians), series form."""
    e2, e4, e6 = _E**2, _E**4, _E**6
    return _A * (
        (1 - e2 / 4 - 3 * e4 / 64 - 5 * e6 / 256) * lat
        - (3 * e2 / 8 + 3 * e4 / 32 + 45 * e6 / 1024) * np.sin(2 * lat)
        + (15 * e4 / 256 + 45 * e6 / 1024) * np.sin(4 * lat)
        - (35 * e6 / 3072) * np.sin(6 * lat)
    )


def llh2local(lonlat: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Local x (east) and y (north) in **metres** of points ``lonlat`` (n, 2; degrees).

    Polyconic projection about ``origin`` (lon, lat in degrees), as StaMPS ``llh2local`` (which
    returns km; this returns m). Returns an (n, 2) float64 array.
    """
    ll = np.radians(np.asarray(lonlat, dtype=np.float64).reshape(-1, 2))
    lon0, lat0 = np.radians(np.asarray(origin, dtype=np.float64).ravel()[:2])
    lon, lat = ll[:, 0], ll[:, 1]
    out = np.empty_like(ll)
    m0 = _meridian_arc(np.asarray(lat0))
    nz = lat != 0
    dlon = lon[nz] - lon0
    latn = lat[nz]
    n = _A / np.sqrt(1 - _E**2 * np.sin(latn) ** 2)
    e = dlon * np.sin(latn)
    cot = 1.0 / np.tan(latn)
    out[nz, 0] = n * cot * np.sin(e)
    out[nz, 1] = _meridian_arc(latn) - m0 + n * cot * (1 - np.cos(e))
    out[~nz, 0] = _A * (lon[~nz] - lon0)
    out[~nz, 1] = -m0
    return out


def rotate_to_scene_axes(xy: np.ndarray, heading_deg: float) -> tuple[np.ndarray, float]:
    """Rotate local xy (n, 2; m) by the heading so scene axes roughly align with x and y.

    As StaMPS: the rotation angle is (180 - heading) deg, wrapped to (-pi, pi]; the rotation is
    kept only if it shrinks the extent along both axes. Returns (xy, angle in degrees applied).
    """
    theta = np.radians(180.0 - heading_deg)
    if theta > np.pi:
        theta -= 2 * np.pi
    c, s = np.cos(theta), np.sin(theta)
    rotated = np.column_stack([c * xy[:, 0] + s * xy[:, 1], -s * xy[:, 0] + c * xy[:, 1]])
    span = np.ptp(xy, axis=0) if len(xy) else np.zeros(2)
    span_rot = np.ptp(rotated, axis=0) if len(xy) else np.zeros(2)
    if span_rot[0] < span[0] and span_rot[1] < span[1]:
        return rotated, float(np.degrees(theta))
    return xy, 0.0

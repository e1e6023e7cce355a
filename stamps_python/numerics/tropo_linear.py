"""TRAIN's linear phase-topography tropospheric estimate (``aps_linear``), as pure functions.

Per interferogram k the unwrapped phase is fitted as ``phi = K_k * h + c_k`` (least squares over
the points of the fit: all PS, or those inside a non-deforming polygon, never NaN phase), and
the estimate ``K_k * h + c_k`` is the tropospheric phase of every point. Heights are in km when
the largest is above 10 (TRAIN's rule: then they were metres).
"""

from __future__ import annotations

import numpy as np

from stamps_python.utils import StampsError

HEIGHT_KM_RULE_M = 10.0  # TRAIN: heights whose maximum exceeds this are metres, used as km
MIN_HEIGHT_VAR_KM2 = 1e-12  # heights varying by less than 1 mm (std) give no slope


def heights_km(hgt: np.ndarray) -> np.ndarray:
    """Heights as aps_linear uses them: metres / 1000 when their maximum is above 10, else as
    they are (already km)."""
    h = np.asarray(hgt, dtype=np.float64).ravel()
    finite = h[np.isfinite(h)]
    if finite.size and finite.max() > HEIGHT_KM_RULE_M:
        return h / 1000.0
    return h


def dem_error_removed(ph_uw: np.ndarray, bperp: np.ndarray) -> np.ndarray:
    """``ph_uw`` (n_ps, n_ifg, rad) minus each point's least-squares fit to ``bperp`` (n_ifg, m):
    the DEM-error term TRAIN removes first when ``powerlaw_DEM_corr`` is 'y'."""
    b = np.asarray(bperp, dtype=np.float64).ravel()
    if b.size != ph_uw.shape[1]:
        raise StampsError(
            f"bperp has {b.size} values for {ph_uw.shape[1]} interferograms (DEM correction)"
        )
    ph = np.array(ph_uw, dtype=np.float64)
    bb = float(b @ b)
    if bb > 0.0:
        ph -= ((ph @ b) / bb)[:, None] * b[None, :]
    return ph


def linear_tropo(
    ph_uw: np.ndarray, h_km: np.ndarray, fit_mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear tropospheric phase of every point and interferogram.

    ``ph_uw`` (n_ps, n_ifg) unwrapped phase (rad), ``h_km`` (n_ps,) heights (km), ``fit_mask``
    (n_ps,) the points the fit may use (None: all). Returns ``ph_tropo`` (n_ps, n_ifg, float32
    rad; NaN where the phase is NaN), ``K`` (n_ifg,) rad/km and ``c`` (n_ifg,) rad. An
    interferogram with fewer than two usable points, or their heights within 1 mm (std) of one
    another, gets NaN K and c.
    """
    ph = np.asarray(ph_uw)
    n_ps, n_ifg = ph.shape
    h = np.asarray(h_km, dtype=np.float64).ravel()
    if h.size != n_ps:
        raise StampsError(f"heights: {h.size} values for {n_ps} points")
    use = np.isfinite(h)
    if fit_mask is not None:
        if np.size(fit_mask) != n_ps:
            raise StampsError(f"fit mask: {np.size(fit_mask)} values for {n_ps} points")
        use = use & np.asarray(fit_mask, dtype=bool).ravel()
    K = np.full(n_ifg, np.nan)
    c = np.full(n_ifg, np.nan)
    out = np.empty((n_ps, n_ifg), dtype=np.float32)
    for k in range(n_ifg):
        col = np.asarray(ph[:, k], dtype=np.float64)
        good = use & np.isfinite(col)
        hg, pg = h[good], col[good]
        if hg.size >= 2:
            hm, pm = hg.mean(), pg.mean()
            dh = hg - hm
            ss = float(dh @ dh)
            if ss > hg.size * MIN_HEIGHT_VAR_KM2:
                K[k] = float(dh @ (pg - pm)) / ss
                c[k] = pm - K[k] * hm
        est = K[k] * h + c[k]
        est[~np.isfinite(col)] = np.nan
        out[:, k] = est
    return out, K, c


def points_in_polygon(lonlat: np.ndarray, polygon: object) -> np.ndarray:
    """Points (n, 2: lon, lat in deg) inside or on the edge of ``polygon`` (a shapely polygon
    or multipolygon in lon/lat), as MATLAB ``inpolygon``."""
    import shapely

    ll = np.asarray(lonlat, dtype=np.float64)
    return np.asarray(shapely.intersects_xy(polygon, ll[:, 0], ll[:, 1]), dtype=bool)


def polygon_from_vertices(vertices: np.ndarray, source: str) -> object:
    """A shapely polygon from (m, 2) lon/lat vertices (closed or not); fewer than three distinct
    vertices or a zero area is a StampsError naming ``source``."""
    import shapely

    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 2:
        raise StampsError(f"{source}: the polygon must be lon/lat pairs, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise StampsError(f"{source}: the polygon has non-finite vertices")
    if len(np.unique(v, axis=0)) < 3:
        raise StampsError(f"{source}: a polygon needs at least three distinct vertices")
    poly = shapely.Polygon(v)
    if poly.area == 0.0:
        raise StampsError(f"{source}: the polygon has no area")
    return poly

"""Builders of hand-made StaMPS workspaces shared by the step tests.

Only the bookkeeping lives here (ids, counts, dates, coordinates, file names); each test module
keeps its own truth model. Nothing here draws random numbers except :func:`scene_points`, which
draws exactly what the tests drew before, so seeded tests keep their numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io.products import save_product
from stamps_python.numerics.geodesy import llh2local
from stamps_python.utils import datenum, datestr

DEFAULT_LL0 = np.array([-120.5, 37.0])  # lon, lat of the scene centre when none is given, deg


def days(first: str | float, n: int, spacing: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """``n`` acquisition datenums from ``first`` (``YYYYMMDD`` or a datenum): ``spacing`` days
    apart, or, given ``n - 1`` gaps in days, separated by those."""
    start = datenum(first) if isinstance(first, str) else first
    if np.ndim(spacing) == 0:
        return start + spacing * np.arange(n)
    gaps = np.asarray(spacing, dtype=float)
    assert gaps.shape == (n - 1,), f"{n} days need {n - 1} gaps, got {gaps.shape}"
    return start + np.concatenate([[0.0], np.cumsum(gaps)])


def scene_points(
    rng: np.random.Generator, n: int, extent_m: float | tuple[float, float]
) -> np.ndarray:
    """(n, 2) x, y, m, uniform over [0, extent) (one extent or x, y extents), sorted by y then
    x like StaMPS orders PS; x is drawn before y."""
    ex, ey = (extent_m, extent_m) if np.ndim(extent_m) == 0 else extent_m
    x = rng.uniform(0, ex, n)
    y = rng.uniform(0, ey, n)
    order = np.lexsort((x, y))
    return np.column_stack([x[order], y[order]])


def local2llh(xy_m: np.ndarray, ll0: np.ndarray) -> np.ndarray:
    """(n, 2) lon, lat, deg, of local x, y (m) around ``ll0``: the inverse of ``llh2local``, by
    fixed-point iteration from a spherical first guess (to well under a millimetre)."""
    xy_m = np.asarray(xy_m, dtype=float)
    ll0 = np.asarray(ll0, dtype=float)
    m_per_deg = np.array([111_320.0 * np.cos(np.radians(ll0[1])), 110_570.0])  # lon, lat
    lonlat = ll0 + xy_m / m_per_deg
    for _ in range(8):
        lonlat = lonlat + (xy_m - llh2local(lonlat, ll0)) / m_per_deg
    return lonlat


def ps_product(
    xy_m: np.ndarray,
    day: np.ndarray,
    master_ix: int,
    bperp: np.ndarray | None,
    *,
    ij: np.ndarray | None = None,
    lonlat: np.ndarray | None = None,
    ll0: np.ndarray | None = None,
    ifgday_ix: np.ndarray | None = None,
    dates: Sequence[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A ``psN.h5`` product of the PS at local ``xy_m`` (n, 2), m, imaged on ``day`` (datenums).

    ``bperp`` (m) is per interferogram (``None``: not stored). Derived fields: PS ids 1..n in
    ``ij``/``xy``, ``n_ps``, ``n_image``, ``n_ifg`` (interferograms of ``ifgday_ix`` for a small
    baseline run, else images), ``master_day``, ``ifgday``, ``dates`` (``YYYYMMDD`` of ``day``),
    ``ij`` (rows y / 4 m, columns x / 20 m), ``ll0`` (centre of ``lonlat`` when that is given,
    else :data:`DEFAULT_LL0`) and ``lonlat`` (``xy_m`` around ``ll0``). ``extra`` fields are
    added as they are.
    """
    xy_m = np.asarray(xy_m)
    day = np.asarray(day)
    n_ps = len(xy_m)
    ids = np.arange(1, n_ps + 1)
    if ij is None:
        ij = np.column_stack([ids, xy_m[:, 1] // 4, xy_m[:, 0] // 20])
    if ll0 is None:
        ll0 = DEFAULT_LL0 if lonlat is None else (lonlat.min(axis=0) + lonlat.max(axis=0)) / 2
    if lonlat is None:
        lonlat = local2llh(xy_m, ll0)
    ps: dict[str, Any] = {
        "ij": np.asarray(ij).astype(np.int32),
        "xy": np.column_stack([ids, xy_m]).astype(np.float32),
        "lonlat": lonlat,
        "ll0": np.asarray(ll0),
        "day": day,
        "dates": list(dates) if dates is not None else [datestr(d) for d in day],
        "master_ix": master_ix,
        "master_day": day[master_ix],
        "n_ifg": len(day),
        "n_image": len(day),
        "n_ps": n_ps,
    }
    if bperp is not None:
        ps["bperp"] = bperp
    if ifgday_ix is not None:
        ps |= {"ifgday_ix": ifgday_ix, "ifgday": day[ifgday_ix], "n_ifg": len(ifgday_ix)}
    return ps | extra


def write_workspace(directory: Path, **products: dict[str, Any] | None) -> Path:
    """Save each product as ``directory/<name>.h5`` (``None`` skipped); returns ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in products.items():
        if data is not None:
            save_product(directory / f"{name}.h5", data)
    return directory

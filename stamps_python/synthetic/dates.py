"""Acquisition dates on the Sentinel-1 12-day grid, and decimal years."""

from __future__ import annotations

import datetime as _dt

import numpy as np

from stamps_python.synthetic.profiles import Profile


def make_dates(
    n_dates: int,
    start: _dt.date,
    profile: Profile,
    rng: np.random.Generator,
    interval_days: int = 12,
) -> list[_dt.date]:
    """Acquisition dates on a 12-day grid from ``start`` covering at least ``span_years``.

    Slots of the grid are skipped at random (never the first or the last) when the profile's
    span needs more slots than ``n_dates``, or to skip ``min_skipped`` acquisitions.
    """
    n_slots = max(
        n_dates + profile.min_skipped,
        int(round(profile.span_years * 365.25 / interval_days)) + 1,
    )
    if n_slots == n_dates:
        slots = np.arange(n_dates)
    else:
        inner = rng.choice(np.arange(1, n_slots - 1), size=n_dates - 2, replace=False)
        slots = np.sort(np.concatenate([[0, n_slots - 1], inner]))
    return [start + _dt.timedelta(days=int(interval_days * s)) for s in slots]


def decimal_year(date: _dt.date) -> float:
    """Year + (day of year - 1) / days in that year."""
    days = (_dt.date(date.year + 1, 1, 1) - _dt.date(date.year, 1, 1)).days
    return date.year + (date.timetuple().tm_yday - 1) / days

"""Azimuth misregistration of chosen dates of a synthetic stack (``generate_stack(...,
azimuth_misreg={date: shift_px})``).

A secondary resampled ``V`` lines (pixels) late holds, in every burst, its signal times
``exp(j 2 pi Kt eta V dt)``: ``eta`` is the time from the burst's centre line (the TOPS Doppler
centroid ``Kt eta`` sweeps a few kHz over a burst), so its interferograms get a phase ramp in
each burst and a jump where the merged lines pass from one burst to the next. Only that phase is
applied (the amplitude effect of a few thousandths of a pixel is far below the noise). The burst
geometry is read back from the ``reference/IW1.xml`` the generator wrote, with the same code as
``esd_misreg --seam-check`` (:mod:`stamps_python.esd.geometry`): the XML carries no FM-rate
polynomial, so ``Ka`` is the spherical-Earth one of
:func:`stamps_python.numerics.esd.fm_rate_spherical`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np

from stamps_python.esd.geometry import merged_layout, read_swath_xml
from stamps_python.numerics.esd import burst_azimuth_time, burst_of_line, misreg_phase_per_pixel
from stamps_python.synthetic.truth import _h5_write
from stamps_python.utils import StampsError

MAX_SHIFT_PX = 0.05  # beyond this the ESD phase of a Sentinel-1 overlap wraps


def check_azimuth_misreg(
    azimuth_misreg: Mapping[str, float] | None, dates: Sequence[str], reference: str
) -> dict[int, float]:
    """{date index: shift (pixels)} of ``azimuth_misreg`` {YYYYMMDD: shift}; a date not in the
    stack, the reference date (the datum of the shifts) or a shift not finite or beyond
    +-0.05 pixel is a one-line StampsError."""
    out: dict[int, float] = {}
    for date, shift in (azimuth_misreg or {}).items():
        date = str(date)
        if date not in dates:
            raise StampsError(
                f"azimuth misreg: {date} is not an acquisition date ({dates[0]}..{dates[-1]})"
            )
        if date == reference:
            raise StampsError(
                f"azimuth misreg: {date} is the reference date (shifts are relative to it)"
            )
        v = float(shift)
        if not (np.isfinite(v) and abs(v) <= MAX_SHIFT_PX):
            raise StampsError(f"azimuth misreg: {date}: {shift} px is not within +-{MAX_SHIFT_PX}")
        if v != 0.0:
            out[dates.index(date)] = v
    return out


class MisregHook:
    """Applies the misregistration phase to the SLC of each misregistered date."""

    def __init__(self, shifts: dict[int, float], reference_xml: Path, rows: int, cols: int):
        swath = read_swath_xml(reference_xml)
        mb = merged_layout({swath.number: swath})[swath.number]
        lines = np.arange(rows)
        burst = burst_of_line(lines, mb.yoff, mb.first_valid, mb.n_valid)
        eta = burst_azimuth_time(lines, burst, mb.yoff, mb.n_lines, mb.dt)
        c = np.arange(cols)
        kt = np.stack([mb.kt_of_columns(c, np.full(cols, k)) for k in range(len(swath.bursts))])
        self.shifts = shifts
        self._ok = burst >= 0
        # rad per pixel of shift, (rows, cols); 0 on lines no burst owns
        self._u = np.where(
            self._ok[:, None],
            misreg_phase_per_pixel(kt[np.maximum(burst, 0)], np.nan_to_num(eta)[:, None], mb.dt),
            0.0,
        )

    def phase(self, shift_px: float) -> np.ndarray:
        """SLC phase (rad, (rows, cols)) of a shift of ``shift_px`` pixels."""
        return shift_px * self._u

    def __call__(self, k: int, slc: np.ndarray) -> None:
        """Multiply date ``k``'s SLC (rows, cols) in place by ``exp(j u V)``."""
        v = self.shifts.get(k)
        if v:
            slc *= np.exp(1j * v * self._u).astype(np.complex64)

    def write_truth(self, h5: h5py.File, n_dates: int) -> None:
        """``azimuth_misreg_px`` (n_dates,) in ``truth.h5``."""
        a = np.zeros(n_dates)
        for k, v in self.shifts.items():
            a[k] = v
        _h5_write(
            h5, "azimuth_misreg_px", a, "pixel",
            "azimuth misregistration of each date (SLC sampled that many lines late), relative "
            "to the reference; SLC phase += 2 pi dt Kt eta x shift in each burst",
        )  # fmt: skip


def misreg_hook(
    shifts: dict[int, float], reference_xml: Path, rows: int, cols: int
) -> MisregHook | None:
    """The hook for ``shifts`` (from :func:`check_azimuth_misreg`), None when there is none."""
    return MisregHook(shifts, reference_xml, rows, cols) if shifts else None

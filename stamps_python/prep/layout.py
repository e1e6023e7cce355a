"""Patch windows laid out as mt_prep does: range-major numbering, cores plus overlap."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stamps_python import rundir
from stamps_python.utils import StampsError


@dataclass
class Patch:
    """A patch window, 1-based inclusive like StaMPS' patch.in (range start/end, azimuth)."""

    name: str
    rg: tuple[int, int]
    az: tuple[int, int]
    rg_core: tuple[int, int]
    az_core: tuple[int, int]

    def inside(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Indices of the pixels at 0-based lines ``rows`` and samples ``cols`` in the window."""
        (rg1, rg2), (az1, az2) = self.rg, self.az
        return np.flatnonzero(
            (cols >= rg1 - 1) & (cols <= rg2 - 1) & (rows >= az1 - 1) & (rows <= az2 - 1)
        )


def patch_layout(
    width: int,
    length: int,
    n_rg: int,
    n_az: int,
    overlap_rg: int,
    overlap_az: int,
    first_sample: int = 0,
    first_line: int = 0,
) -> list[Patch]:
    """Patches as mt_prep lays them out: range-major numbering, cores plus overlap.

    ``width`` x ``length`` is the area laid out (a crop window), starting at the 0-based
    ``first_sample`` / ``first_line`` of the merged grid; the windows are in merged-grid pixels.
    Differs from mt_prep in one way: mt_prep sizes cores with integer division, so when the
    width (length) is not a multiple of the patch count the last columns (lines) belong to no
    core. Here the last core runs to the image edge, so the cores tile the image exactly once.
    """
    if n_rg < 1 or n_az < 1:
        raise StampsError("--range-patches/--azimuth-patches: must be at least 1")
    if n_rg > width or n_az > length:
        raise StampsError(
            f"more patches ({n_rg}x{n_az}) than image columns/lines ({width}x{length})"
        )
    if overlap_rg < 0 or overlap_az < 0:
        raise StampsError("--range-overlap/--azimuth-overlap: must not be negative")
    width_p, length_p = width // n_rg, length // n_az
    ds, dl = first_sample, first_line
    patches = []
    for irg in range(1, n_rg + 1):
        rg1 = width_p * (irg - 1) + 1
        rg2 = width if irg == n_rg else width_p * irg
        for iaz in range(1, n_az + 1):
            az1 = length_p * (iaz - 1) + 1
            az2 = length if iaz == n_az else length_p * iaz
            patches.append(
                Patch(
                    name=rundir.patch_name(len(patches) + 1),
                    rg=(max(rg1 - overlap_rg, 1) + ds, min(rg2 + overlap_rg, width) + ds),
                    az=(max(az1 - overlap_az, 1) + dl, min(az2 + overlap_az, length) + dl),
                    rg_core=(rg1 + ds, rg2 + ds),
                    az_core=(az1 + dl, az2 + dl),
                )
            )
    return patches

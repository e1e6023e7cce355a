"""The rasters read for the candidates besides the SLCs: geometry (lon, lat, height, angles)
and the topsStack baseline grids (Bperp per secondary)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stamps_python.io import isce
from stamps_python.utils import StampsError, get_logger


def geometry_readers(
    stack: isce.IsceStack, inc_angle: bool, bperp_grids: Sequence[Path] = ()
) -> tuple[list[str], list[isce.RasterRows]]:
    """Names and line readers of the geometry values pscands.h5 holds per candidate.

    lon/lat/hgt, and look (incidence) angles in degrees: ``la`` is incLocal band 1 (the angle
    between the ray to the target and the vertical at the sensor), ``inc`` is los band 1 (the
    incidence angle at the target, from the vertical). Stored as float32, like mt_prep.
    Their sizes were checked against the SLCs by :func:`isce.open_stack`. Readers of the
    full-resolution baseline grids ``bperp_grids`` (m, one per secondary) follow the named
    ones.
    """
    wanted = [("lon", "lon"), ("lat", "lat"), ("hgt", "hgt"), ("la", "incLocal")]
    if inc_angle:
        wanted.append(("inc", "los"))
    paths = [stack.geometry_raster(raster) for _, raster in wanted] + list(bperp_grids)
    readers: list[isce.RasterRows] = []
    try:
        for path in paths:
            readers.append(isce.RasterRows(path, band=1))
            if (readers[-1].length, readers[-1].width) != (stack.length, stack.width):
                raise StampsError(
                    f"{path}: {readers[-1].length}x{readers[-1].width} differs "
                    f"from the SLCs' {stack.length}x{stack.width}"
                )
    except BaseException:
        for reader in readers:
            reader.close()
        raise
    return [name for name, _ in wanted], readers


def baseline_grid_paths(stack: isce.IsceStack, reference: str) -> tuple[list[Path] | None, bool]:
    """The topsStack baseline grids of the secondaries, or None when some or all are missing
    (a warning when only some are), and whether they are full-resolution (the image's size)."""
    secondaries = [d for d in stack.dates if d != reference]
    paths = [isce.baseline_grid_path(stack, d) for d in secondaries]
    if not any(paths):
        return None, False
    if not all(paths):
        missing = [d for d, p in zip(secondaries, paths) if p is None]
        get_logger().warning(
            "baseline grids missing for %s: using the per-date averages", ", ".join(missing[:5])
        )
        return None, False
    return paths, isce.raster_shape(paths[0])[:2] == (stack.length, stack.width)


def load_bperp_grids(paths: Sequence[Path], stack: isce.IsceStack) -> np.ndarray:
    """Coarse baseline grids ``paths`` as one (k, ny, nx) array (m)."""
    grids = [isce.read_raster(p) for p in paths]
    if len({g.shape for g in grids}) != 1:
        raise StampsError(f"{stack.merged / 'baselines'}: baseline grids differ in size")
    return np.stack(grids)

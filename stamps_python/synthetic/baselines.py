"""Orbit baselines: the secondary orbits' offsets, ISCE-signed Bperp/Bpar, and their samples for
the text baselines (``computeBaseline.py``) and the gridded ones (``baselineGrid.py``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stamps_python.synthetic.constants import AZIMUTH_TIME_INTERVAL_S, RANGE_PIXEL_M
from stamps_python.synthetic.fields import _rng
from stamps_python.synthetic.geometry import _Geometry
from stamps_python.synthetic.isce_xml import _Burst, _write_baseline_grid, _write_baseline_text
from stamps_python.synthetic.orbit import _look_angle
from stamps_python.synthetic.profiles import Profile

BASELINE_GRID_SPACING_M = 7000.0  # baselineGrid.py: one range sample per 7 km of slant range


@dataclass
class _Baselines:
    """Secondary orbit offsets in the zero-Doppler plane and the ISCE text baselines."""

    b_cross0: np.ndarray  # offset toward the look side, horizontal (m), per date
    b_up0: np.ndarray  # vertical offset (m), per date
    rate_cross: np.ndarray  # orbit convergence (m/s)
    rate_up: np.ndarray
    bperp_txt: np.ndarray  # 'Bperp (average)' of baselines/*.txt, 0 at the reference
    bpar_txt: np.ndarray

    def components(self, k: int, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cross-track and vertical offsets (m) of date ``k`` at times ``t`` (s)."""
        return self.b_cross0[k] + self.rate_cross[k] * t, self.b_up0[k] + self.rate_up[k] * t

    def at(self, k: int, t: np.ndarray, look: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ISCE-signed (Bperp, Bpar) in m of date ``k`` at times ``t`` (s), look angles (rad).

        ISCE: Bperp = sign(((T - M) x (S - M)) . v_M) |perp part of S - M|, Bpar = (S - M) . l.
        With the offset split into cross (toward the look side) and up components, that is
        Bperp = -(cross cos(look) + up sin(look)), Bpar = cross sin(look) - up cos(look).
        """
        bc, bu = self.components(k, t)
        return -(bc * np.cos(look) + bu * np.sin(look)), bc * np.sin(look) - bu * np.cos(look)


def _write_baselines(
    outdir: Path, seed: int, prof: Profile, geom: _Geometry, bursts: list[_Burst],
    date_str: list[str], ref_ix: int, text_copies: bool,
) -> _Baselines:  # fmt: skip
    """Draw the baselines and write ``baselines/REF_SEC/REF_SEC.txt`` (computeBaseline.py) and
    ``merged/baselines/SEC/SEC`` grids with ``.xml``, ``.vrt`` and ``.full.vrt``
    (baselineGrid.py)."""
    n_dates = len(date_str)
    rows, cols = geom.t_rows.size, geom.ranges.size
    brng = _rng(seed, "baselines")
    bperp_c = brng.normal(0.0, prof.bperp_std_m, n_dates)
    bpar_c = brng.normal(0.0, prof.bpar_std_m, n_dates)
    rate_cross = brng.normal(0.0, 0.02, n_dates)
    rate_up = brng.normal(0.0, 0.02, n_dates)
    bperp_c[ref_ix] = bpar_c[ref_ix] = rate_cross[ref_ix] = rate_up[ref_ix] = 0.0
    th = geom.theta_center
    base = _Baselines(
        b_cross0=-bperp_c * math.cos(th) + bpar_c * math.sin(th),
        b_up0=-bperp_c * math.sin(th) - bpar_c * math.cos(th),
        rate_cross=rate_cross,
        rate_up=rate_up,
        bperp_txt=np.zeros(n_dates),
        bpar_txt=np.zeros(n_dates),
    )
    r0, r_far = float(geom.ranges[0]), float(geom.ranges[-1])
    t0 = float(geom.t_rows[0])
    burst_mid_t = np.array(
        [t0 + (b.start_line + 0.5 * (b.n_lines - 1)) * AZIMUTH_TIME_INTERVAL_S for b in bursts]
    )
    mid_look = _look_angle(np.array([r0 + 0.5 * (cols - 1) * RANGE_PIXEL_M]))
    # baselineGrid.py: ceil(range span / 7 km) samples x ceil(duration in s) lines, corners
    # included; ISCE divides by (n - 1), so at least 2 of each here (small scenes)
    n_grid_r = max(2, math.ceil((r_far - r0) / BASELINE_GRID_SPACING_M))
    n_grid_a = max(2, math.ceil((rows - 1) * AZIMUTH_TIME_INTERVAL_S))
    grid_look = _look_angle(np.linspace(r0, r_far, n_grid_r))
    grid_t = np.linspace(t0, float(geom.t_rows[-1]), n_grid_a)
    ref_str = date_str[ref_ix]
    for k in range(n_dates):
        bp, bq = base.at(k, burst_mid_t, mid_look)
        base.bperp_txt[k] = float(np.mean(bp))
        base.bpar_txt[k] = float(np.mean(bq))
        if k == ref_ix:
            continue
        _write_baseline_text(
            outdir, ref_str, date_str[k], base.bperp_txt[k], base.bpar_txt[k], text_copies
        )
        grid_bperp, _ = base.at(k, grid_t[:, None], grid_look[None, :])
        _write_baseline_grid(outdir, date_str[k], grid_bperp, rows, cols)
    return base

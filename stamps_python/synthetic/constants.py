"""Sentinel-1 IW1 radar, Earth and orbit constants of the synthetic stack (m, s, Hz)."""

from __future__ import annotations

import math

# Sentinel-1 IW1 constants (m, s, Hz)
WAVELENGTH_M = 0.05546576
RANGE_PIXEL_M = 2.329562114715323
AZIMUTH_TIME_INTERVAL_S = 0.002055556
PRF_HZ = 1717.128973
RANGE_SAMPLING_RATE_HZ = 64345238.12571428
EARTH_RADIUS_M = 6371000.0
SATELLITE_ALTITUDE_M = 693000.0
GM_M3_S2 = 3.986004418e14

_FOUR_PI_OVER_LAMBDA = 4.0 * math.pi / WAVELENGTH_M

"""Synthetic Sentinel-1 stack in the ISCE2 topsStack layout, with its ground truth.

``generate_stack(outdir, ...)`` writes, date by date, what ISCE2 ``stackSentinel.py -W slc``
leaves for StaMPS:

- ``merged/SLC/<date>/<date>.slc.full`` (complex64, BIP) + ``.vrt``/``.xml``/``.hdr``, for every
  date (the reference too), coregistered and flattened to the reference geometry;
- ``merged/geom_reference/{hgt,lat,lon}.rdr.full`` (float64), ``los``/``incLocal`` (2-band
  float32 BIL), ``shadowMask`` (byte), and their 3x9-look ``.rdr`` versions;
- ``baselines/<ref>_<sec>/<ref>_<sec>.txt`` (``computeBaseline.py`` text) and
  ``merged/baselines/<sec>/<sec>`` gridded perpendicular baselines (``baselineGrid.py``);
- ``reference/IW1.xml`` (radar wavelength, pixel sizes, starting range, bursts, orbit);
- ``truth.h5`` beside the stack (never inside ``merged/``).

Physics: spherical Earth, circular orbit, zero-Doppler geometry, Gaussian-hill DEM, persistent
scatterers (a few %, some with sidelobes), distributed scatterers with temporal decorrelation
(optionally patches of short-lived ones, ``ds_short_fraction``), noise/water pixels, per-date
calibration gains, LOS deformation (subsidence bowl + seasonal term), DEM errors coupled
through the perpendicular baseline, power-law atmosphere, stratified delay, orbital ramps and
thermal noise. ``docs/synthetic.md`` has the full model and the conventions.
Interferogram convention: ``ref * conj(sec)`` has phase
``-4 pi/lambda * D_mm/1000 + 4 pi/lambda * bperp * dem_error / (R sin inc) + nuisance + noise``.

Modules, lowest first (each imports only modules listed before it): ``constants`` (Sentinel-1,
Earth and orbit constants), ``profiles`` (the stack profiles), ``dates`` (acquisition dates),
``fields`` (seeded random streams, smooth random fields), ``orbit`` (circular orbit, look
angle), ``truth`` (truth.h5 datasets), ``isce_xml`` (the ISCE2 files: bursts, IW1.xml, SLCs,
geometry layers, baselines), ``geometry`` (DEM and topo), ``scatterers`` (pixel classes,
amplitudes, coherence), ``deformation`` (LOS deformation, DEM errors), ``baselines`` (orbit
baselines), ``atmosphere`` (nuisance phase, per-date scalars), ``slc`` (per-date SLCs),
``stack`` (``generate_stack``). The command line is ``stamps_python/stamps_synthetic.py``.
"""

from stamps_python.synthetic.baselines import BASELINE_GRID_SPACING_M
from stamps_python.synthetic.constants import (
    AZIMUTH_TIME_INTERVAL_S,
    EARTH_RADIUS_M,
    GM_M3_S2,
    PRF_HZ,
    RANGE_PIXEL_M,
    RANGE_SAMPLING_RATE_HZ,
    SATELLITE_ALTITUDE_M,
    WAVELENGTH_M,
)
from stamps_python.synthetic.dates import decimal_year, make_dates
from stamps_python.synthetic.isce_xml import AZIMUTH_LOOKS, ISCE_ROOT, RANGE_LOOKS
from stamps_python.synthetic.profiles import PROFILES, Profile
from stamps_python.synthetic.scatterers import (
    CLASS_NAMES,
    S1_AZIMUTH_SAMPLING,
    S1_HAMMING,
    S1_RANGE_SAMPLING,
    SHORT_DS_BETA,
    SHORT_DS_PATCH_M,
)
from stamps_python.synthetic.slc import PHASE_CUBES
from stamps_python.synthetic.stack import generate_stack
from stamps_python.synthetic.truth import TRUTH_CUBE_AUTO_MAX

__all__ = [
    "AZIMUTH_LOOKS",
    "AZIMUTH_TIME_INTERVAL_S",
    "BASELINE_GRID_SPACING_M",
    "CLASS_NAMES",
    "EARTH_RADIUS_M",
    "GM_M3_S2",
    "ISCE_ROOT",
    "PHASE_CUBES",
    "PRF_HZ",
    "PROFILES",
    "RANGE_LOOKS",
    "RANGE_PIXEL_M",
    "RANGE_SAMPLING_RATE_HZ",
    "S1_AZIMUTH_SAMPLING",
    "S1_HAMMING",
    "S1_RANGE_SAMPLING",
    "SATELLITE_ALTITUDE_M",
    "SHORT_DS_BETA",
    "SHORT_DS_PATCH_M",
    "TRUTH_CUBE_AUTO_MAX",
    "WAVELENGTH_M",
    "Profile",
    "decimal_year",
    "generate_stack",
    "make_dates",
]

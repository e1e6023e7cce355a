"""Steps 5, 7 and 8 on the golden stack, each against what MATLAB StaMPS (Octave) produced.

StaMPS' run (tests/data/golden_small, a copy of shared/golden/stamps_octave_small) saved no
``.mat`` workspaces after Step 4: what it left of Steps 5-8 are the two ps_plot exports
``ps_vdo`` and ``ps_vdso`` (one row per final PS, in ps2 order). Each step is read out of them:

- Step 5 (merge): the PS set and order, ``lonlat``, ``hgt2`` (HEIGHT) and ``pm2`` ``coh_ps``
  (COHERENCE) are fields of the exports.
- Step 7 (ps_calc_scla): ps_plot's v-do series is -lambda/4pi (deramp(ph_uw - ph_scla) - C_ps_uw
  - reference), and deramping is linear, so our deramped Step-6 ``ph_uw`` minus StaMPS' v-do
  phase is StaMPS' deramped ``ph_scla + C_ps_uw`` (up to a constant per interferogram), as long
  as our Step 6 put the PS on StaMPS' cycle; PS where it did not (a whole cycle apart) are counted
  and left out.
- Step 8 (ps_scn_filt): v-dso subtracts ``ph_scn_slave`` as well, so v-dso minus v-do is StaMPS'
  deramped, referenced Step-8 term, independent of Steps 6 and 7 of either side.

Our steps run on our own Steps 1-4 (which match StaMPS' sets to 0.999, tests/test_stamps_main.py)
in the session's golden chain (tests/conftest.py). Tolerances are about 3x the measured
differences, given beside each.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest

from stamps_python.io.products import load_product
from stamps_python.numerics.deramp import ps_deramp

LAMBDA = 0.05546576  # m, the golden run's wavelength
MM_PER_RAD = LAMBDA / (4 * math.pi) * 1000


@pytest.fixture(scope="module")
def matched(golden_chain: dict[str, Path], golden_gpkg: dict[str, Path]) -> dict:
    """Our merged PS matched by (azimuth, range) to StaMPS' exported ones."""
    run = golden_chain["run"]
    ps = load_product(run / "ps2.h5")
    vdo = gpd.read_file(golden_gpkg["ps_vdo"])
    vdso = gpd.read_file(golden_gpkg["ps_vdso"])
    assert np.array_equal(vdo[["AZ", "RG"]].values, vdso[["AZ", "RG"]].values)
    where = {(a, r): k for k, (a, r) in enumerate(vdo[["AZ", "RG"]].values.tolist())}
    m = np.array([where.get((a, r), -1) for a, r in ps["ij"][:, 1:].tolist()])
    dcols = [c for c in vdo.columns if c.startswith("D") and c[1:].isdigit()]
    assert dcols == [f"D{d}" for d in ps["dates"]]
    master = int(ps["master_ix"])
    return {
        "run": run,
        "export": golden_chain,
        "ps": ps,
        "vdo": vdo,
        "vdso": vdso,
        "i": np.flatnonzero(m >= 0),
        "j": m[m >= 0],
        "dcols": dcols,
        "master": master,
        "use": np.arange(len(dcols)) != master,
    }


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def _per_ifg_centred(x: np.ndarray) -> np.ndarray:
    """``x`` minus its mean over the PS, per interferogram (the reference is a free constant)."""
    return x - x.mean(axis=0)


def test_step5_merged_ps_match_stamps(matched):
    ps, vdo, i, j = matched["ps"], matched["vdo"], matched["i"], matched["j"]
    n_ours, n_theirs = len(ps["ij"]), len(vdo)
    jaccard = len(i) / (n_ours + n_theirs - len(i))
    hgt = load_product(matched["run"] / "hgt2.h5", ["hgt"])["hgt"]
    coh = load_product(matched["run"] / "pm2.h5", ["coh_ps"])["coh_ps"]
    d_ll = np.abs(ps["lonlat"][i] - vdo[["LON", "LAT"]].values[j]).max()
    d_hgt = np.abs(hgt[i] - vdo.HEIGHT.values[j]).max()
    d_coh = coh[i] - vdo.COHERENCE.values[j]
    print(
        f"Step 5: {n_ours} PS vs StaMPS' {n_theirs}, {len(i)} common (Jaccard {jaccard:.5f}); "
        f"max |d lonlat| {d_ll:.2g} deg, max |d hgt| {d_hgt:.2g} m; coh_ps RMS "
        f"{_rms(d_coh):.3g}, max {np.abs(d_coh).max():.3g}"
    )
    assert n_ours == ps["n_ps"]
    assert jaccard >= 0.996  # measured 0.99869 (6081 of 6089, none of ours missing in StaMPS')
    assert len(i) >= 0.998 * n_ours  # measured all
    assert np.all(np.diff(j) > 0)  # same order as StaMPS' ps2
    assert d_ll <= 1e-9  # measured 0 (both float32 samples of lon/lat.rdr.full)
    assert d_hgt <= 1e-6  # m; measured 0
    assert _rms(d_coh) <= 4e-4  # measured 1.4e-4
    assert np.abs(d_coh).max() <= 0.017  # measured 0.0056


def test_step7_scla_matches_stamps(matched):
    run, ps, i, j, use = matched["run"], matched["ps"], matched["i"], matched["j"], matched["use"]
    uw = load_product(run / "phuw2.h5", ["ph_uw"])["ph_uw"].astype(np.float64)
    scla = load_product(run / "scla2.h5", ["ph_scla", "C_ps_uw"])
    vdo_phase = -matched["vdo"][matched["dcols"]].values[j] / MM_PER_RAD  # StaMPS' v-do, rad
    theirs = ps_deramp({"xy": ps["xy"]}, uw)[0][i] - vdo_phase
    ours = (
        ps_deramp({"xy": ps["xy"]}, scla["ph_scla"].astype(np.float64))[0]
        + scla["C_ps_uw"].reshape(-1, 1)
    )[i]
    theirs, ours = _per_ifg_centred(theirs[:, use]), _per_ifg_centred(ours[:, use])
    d = ours - theirs
    other_cycle = (np.abs(d) > np.pi).any(axis=1)  # Step 6 put the PS on another cycle
    good = ~other_cycle
    d = _per_ifg_centred(d[good])
    rms_mm, max_mm = _rms(d) * MM_PER_RAD, np.abs(d).max() * MM_PER_RAD
    print(
        f"Step 7: StaMPS' deramped SCLA + AOE term RMS {_rms(theirs) * MM_PER_RAD:.3f} mm; ours "
        f"minus StaMPS' RMS {rms_mm:.4f} mm, max {max_mm:.4f} mm over {good.sum()} PS "
        f"({other_cycle.sum()} left out: Step 6 on another cycle)"
    )
    assert _rms(theirs) * MM_PER_RAD > 1.0  # the term is there (measured 3.98 mm)
    assert other_cycle.sum() <= 6  # measured 2
    assert rms_mm <= 0.022  # measured 0.0074 mm
    assert max_mm <= 0.14  # measured 0.045 mm


def test_step8_scn_matches_stamps(matched):
    run, ps, i, j, use = matched["run"], matched["ps"], matched["i"], matched["j"], matched["use"]
    vdo, vdso, dcols = matched["vdo"], matched["vdso"], matched["dcols"]
    scn = load_product(run / "scn2.h5", ["ph_scn_slave"])["ph_scn_slave"].astype(np.float64)
    ours_mm = ps_deramp({"xy": ps["xy"]}, scn)[0][i] * MM_PER_RAD
    theirs_mm = (vdso[dcols].values - vdo[dcols].values)[j]  # +lambda/4pi (deramped scn - ref)
    ours_mm, theirs_mm = _per_ifg_centred(ours_mm[:, use]), _per_ifg_centred(theirs_mm[:, use])
    d = ours_mm - theirs_mm
    dv_theirs = (vdso.VEL.values - vdo.VEL.values)[j]
    ours_vdo, ours_vdso = (gpd.read_file(matched["export"][c]) for c in ("v-do", "v-dso"))
    assert np.array_equal(ours_vdo.CODE.values, ps["ij"][:, 0])
    dv_ours = (ours_vdso.VEL.values - ours_vdo.VEL.values)[i]
    print(
        f"Step 8: StaMPS' deramped SCN term RMS {_rms(theirs_mm):.3f} mm; ours minus StaMPS' "
        f"RMS {_rms(d):.4f} mm, max {np.abs(d).max():.3f} mm; its velocity RMS "
        f"{_rms(dv_theirs):.2f} mm/yr, ours minus StaMPS' RMS {_rms(dv_ours - dv_theirs):.4f}"
    )
    assert _rms(theirs_mm) > 1.0  # the term is there (measured 3.85 mm)
    assert _rms(d) <= 0.07  # mm; measured 0.024
    assert np.abs(d).max() <= 2.1  # mm; measured 0.69
    assert _rms(dv_ours - dv_theirs) <= 0.15  # mm/yr; measured 0.051 (term RMS 8.7)

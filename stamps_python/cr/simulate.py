"""Phase-level simulation of the paper's test case (Fan et al. 2015): an Envisat-like stack of
9 images 35 days apart, all 36 pairs, 10 corner reflectors (one the stable reference), and the
CR method scored beside its two baselines.

CR 1 has the paper's values, v = -0.4 mm/day and dh = 50 m, with a sinusoidal nonlinear motion;
the others move between -0.5 and +0.05 mm/day, with sinusoids of 1-5 mm. The phase of CR i at
date k relative to the reference CR and the reference date is::

    psi_ik = 4 pi / lambda * D_ik / 1000 - 4 pi / lambda * Bperp_k dh_i / (R sin inc)
             + atmosphere_ik + noise_ik - noise_0k

with D_ik = v_i t_k + nonlinear_ik (mm). The nonlinear term is a sinusoid minus its
least-squares line over the dates, so that v_i is also the least-squares rate of D_i (the
"linear rate" a method can be asked for). Atmosphere is the differential delay between CRs a few
hundred metres apart, white in time; the noise is the clutter phase noise of a CR of 25 dB
signal-to-clutter ratio, 1 / sqrt(2 SCR) rad. Everything random comes from
``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stamps_python.numerics import cr_search as cs

ENVISAT_WAVELENGTH_M = 0.0563
ENVISAT_REPEAT_DAYS = 35
ENVISAT_SLANT_RANGE_M = 850_000.0
ENVISAT_INCIDENCE_DEG = 23.0
# perpendicular baselines (m) of the 9 images relative to the 5th (the reference date), spread
# as ENVISAT IS2 stacks are: one draw of N(0, 350 m), the median of 60 draws by the highest
# sidelobe of its (v, dh) ambiguity function (0.67)
ENVISAT_BPERP_M = np.array([-486.0, -200.0, 45.0, 189.0, 0.0, -304.0, -220.0, 283.0, -28.0])
PAPER_V_MM_DAY = -0.4
PAPER_DH_M = 50.0
V_RANGE_MM_YR = (-250.0, 40.0)  # prior: the slope moves away from the satellite, < 0.7 mm/day
DH_RANGE_M = (-100.0, 100.0)
LOWPASS_DAYS = 70.0


@dataclass
class EnvisatCase:
    """The simulated stack: ``days`` (N,), ``bperp_m`` (N,), ``ref_ix``, ``pairs`` (P, 2); per
    CR (M, the reference CR first): ``v_mm_yr``, ``dh_m``, ``nonlinear_mm`` (M, N),
    ``atmosphere_rad`` (M, N), ``date_phase`` (M, N) wrapped phase relative to the reference
    CR and date, ``pair_phase`` (M, P) wrapped."""

    days: np.ndarray
    bperp_m: np.ndarray
    ref_ix: int
    pairs: np.ndarray
    v_mm_yr: np.ndarray
    dh_m: np.ndarray
    nonlinear_mm: np.ndarray
    atmosphere_rad: np.ndarray
    date_phase: np.ndarray
    pair_phase: np.ndarray
    wavelength_m: float = ENVISAT_WAVELENGTH_M
    slant_range_m: float = ENVISAT_SLANT_RANGE_M
    inc_rad: float = float(np.radians(ENVISAT_INCIDENCE_DEG))
    dates: list[str] = field(default_factory=list)

    @property
    def displacement_mm(self) -> np.ndarray:
        """True LOS displacement (mm, 0 at the reference date), (M, N)."""
        t = (self.days - self.days[self.ref_ix]) / cs.DAYS_PER_YEAR
        return self.v_mm_yr[:, None] * t + self.nonlinear_mm


def nonlinear_sine(
    days: np.ndarray, bperp_m: np.ndarray, ref_ix: int, amp_mm: float, period_days: float,
    phase: float,
) -> np.ndarray:  # fmt: skip
    """A sinusoid (mm) minus its least-squares fit by [1, t, Bperp] over the dates, 0 at the
    reference date: the part of a nonlinear motion that 9 images can tell from v and dh."""
    s = amp_mm * np.sin(2 * np.pi * days / period_days + phase)
    g = np.column_stack([np.ones_like(days), days, bperp_m])
    s -= g @ np.linalg.lstsq(g, s, rcond=None)[0]
    return s - s[ref_ix]


def envisat_case(
    seed: int = 0, n_cr: int = 10, atmosphere_rad: float = 0.1, scr_db: float = 25.0
) -> EnvisatCase:
    """The paper's case: CR 0 the stable reference, CR 1 at v = -0.4 mm/day, dh = 50 m, with a
    5 mm one-year sinusoid; ``atmosphere_rad`` the differential atmosphere std per date."""
    rng = np.random.default_rng(seed)
    n = ENVISAT_BPERP_M.size
    days = np.arange(n, dtype=np.float64) * ENVISAT_REPEAT_DAYS
    ref_ix = n // 2
    v = np.zeros(n_cr)
    dh = np.zeros(n_cr)
    nl = np.zeros((n_cr, n))
    v[1], dh[1] = PAPER_V_MM_DAY * cs.DAYS_PER_YEAR, PAPER_DH_M
    nl[1] = nonlinear_sine(days, ENVISAT_BPERP_M, ref_ix, 5.0, cs.DAYS_PER_YEAR, 0.6)
    for i in range(2, n_cr):
        v[i] = rng.uniform(-0.5, 0.05) * cs.DAYS_PER_YEAR
        dh[i] = rng.uniform(-30.0, 60.0)
        nl[i] = nonlinear_sine(
            days, ENVISAT_BPERP_M, ref_ix, rng.uniform(1.0, 5.0), rng.uniform(200.0, 500.0),
            rng.uniform(0, 2 * np.pi),
        )  # fmt: skip
    atm = rng.normal(0.0, atmosphere_rad, (n_cr, n))
    atm[0] = 0.0
    sigma_n = 1.0 / np.sqrt(2.0 * 10 ** (scr_db / 10.0))
    noise = rng.normal(0.0, sigma_n, (n_cr, n))
    inc = np.radians(ENVISAT_INCIDENCE_DEG)
    a, b = cs.date_coefficients(
        ENVISAT_WAVELENGTH_M, days, np.tile(ENVISAT_BPERP_M, (n_cr, 1)),
        np.full(n_cr, ENVISAT_SLANT_RANGE_M), np.full(n_cr, inc), ref_ix,
    )  # fmt: skip
    t = (days - days[ref_ix]) / cs.DAYS_PER_YEAR
    disp = v[:, None] * t + nl
    psi = disp / cs.mm_per_rad(ENVISAT_WAVELENGTH_M) + b * dh[:, None] + atm + noise - noise[0]
    psi -= psi[:, [ref_ix]]
    psi[0] = 0.0
    pairs = cs.network_pairs("all", n, ref_ix)
    dates = [f"D{k}" for k in range(n)]
    return EnvisatCase(
        days=days, bperp_m=ENVISAT_BPERP_M.copy(), ref_ix=ref_ix, pairs=pairs, v_mm_yr=v,
        dh_m=dh, nonlinear_mm=nl, atmosphere_rad=atm, date_phase=cs.wrap(psi),
        pair_phase=cs.wrap(cs.pair_values(psi, pairs)), dates=dates,
    )  # fmt: skip


@dataclass
class CaseScore:
    """Per CR (the reference CR excluded): estimates and errors of the CR method and of the two
    baselines. Velocities mm/yr, heights m, RMS errors mm (after removing the mean offset)."""

    v_true: np.ndarray
    dh_true: np.ndarray
    v: dict[str, np.ndarray]
    dh: dict[str, np.ndarray]
    nonlinear_rmse_mm: dict[str, np.ndarray]
    series_rmse_mm: dict[str, np.ndarray]
    fits: list[cs.CoherenceFit]


METHODS = ("coherence", "periodogram", "unwrapping")


def score_case(case: EnvisatCase, lowpass_days: float = LOWPASS_DAYS) -> CaseScore:
    """Run the CR method and both baselines on every CR but the reference."""
    n_cr = case.v_mm_yr.size
    a, b = cs.date_coefficients(
        case.wavelength_m, case.days, np.tile(case.bperp_m, (n_cr, 1)),
        np.full(n_cr, case.slant_range_m), np.full(n_cr, case.inc_rad), case.ref_ix,
    )  # fmt: skip
    pa = cs.pair_values(a, case.pairs)
    pb = cs.pair_values(b, case.pairs)
    inc = cs.pair_incidence(case.pairs, case.days.size)
    k = cs.mm_per_rad(case.wavelength_m)
    t = (case.days - case.days[case.ref_ix]) / cs.DAYS_PER_YEAR
    out = {m: {"v": [], "dh": [], "nl": [], "ts": []} for m in METHODS}
    fits = []
    for i in range(1, n_cr):
        fit = cs.coherence_search(
            case.pair_phase[i], pa, pb[i], V_RANGE_MM_YR, DH_RANGE_M, incidence=inc
        )
        fits.append(fit)
        nl = cs.network_solve(cs.pair_residuals(case.pair_phase[i], pa, pb[i], fit), case.pairs,
                              case.dates, case.ref_ix)  # fmt: skip
        per = cs.periodogram_lowpass(fit, case.pair_phase[i], pa, pb[i], case.pairs, case.dates,
                                     case.days, case.ref_ix, lowpass_days)  # fmt: skip
        unw = cs.unwrap_in_time(case.date_phase[i], case.days, a, b[i], case.ref_ix)
        for name, (v, dh, nl_rad) in {
            "coherence": (fit.v, fit.dh, nl),
            "periodogram": (per.v, per.dh, per.nonlinear_rad),
            "unwrapping": (unw.v, unw.dh, unw.nonlinear_rad),
        }.items():
            out[name]["v"].append(v)
            out[name]["dh"].append(dh)
            out[name]["nl"].append(cs.rms_error(k * nl_rad, case.nonlinear_mm[i]))
            out[name]["ts"].append(cs.rms_error(v * t + k * nl_rad, case.displacement_mm[i]))
    return CaseScore(
        v_true=case.v_mm_yr[1:], dh_true=case.dh_m[1:],
        v={m: np.array(out[m]["v"]) for m in METHODS},
        dh={m: np.array(out[m]["dh"]) for m in METHODS},
        nonlinear_rmse_mm={m: np.array(out[m]["nl"]) for m in METHODS},
        series_rmse_mm={m: np.array(out[m]["ts"]) for m in METHODS},
        fits=fits,
    )  # fmt: skip

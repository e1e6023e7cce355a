"""ps_plot's value types beyond the velocities: parsing, re-referencing, colour limits and the
drop-one velocities of 'vdrop' (pure functions; the workspaces are read by
:mod:`stamps_python.plot_types`).

A value type is a base (``w``, ``u``, ``usb``, ``rsb``, ``asb``, ``a``, ``s``, ``o``, ``m``,
``d``, ``D``, ``dsb``, ``hgt``, ``vdrop``) optionally followed by ``-`` and correction letters,
as StaMPS' ``ps_plot(value_type)``: ``w-dmo``, ``u-do``, ``usb-dao``, ``vdrop-do`` ...
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from stamps_python.numerics.lscov import lscov_operator
from stamps_python.numerics.timeseries import DAYS_PER_YEAR, MM_PER_M
from stamps_python.utils import StampsError

# base -> (letters it takes, units, what it shows)
BASES: dict[str, tuple[str, str, str]] = {
    "w": ("dmoa", "rad", "wrapped phase (rc2 ph_rc)"),
    "u": ("dmosa", "rad", "unwrapped phase (phuw2 ph_uw)"),
    "usb": ("doa", "rad", "unwrapped small-baseline phase (phuw_sb2 ph_uw)"),
    "rsb": ("o", "rad", "residual of the small-baseline inversion (phuw_sb2 - phuw_sb_res2)"),
    "asb": ("o", "rad", "TRAIN tropospheric phase of the small baselines (tca_sb2)"),
    "a": ("o", "rad", "TRAIN tropospheric phase (tca2)"),
    "s": ("", "rad", "spatially correlated noise, SCN (scn2 ph_scn_slave)"),
    "o": ("", "rad", "orbital ramps of Step 7 (scla2 ph_ramp)"),
    "m": ("", "rad", "reference-date atmosphere and orbit error, AOE (scla2 C_ps_uw)"),
    "d": ("", "rad/m", "spatially correlated look-angle (DEM) error K (scla2 K_ps_uw)"),
    "dsb": ("", "rad/m", "look-angle (DEM) error K of the small baselines (scla_sb2 K_ps_uw)"),
    "hgt": ("", "m", "DEM height (hgt2)"),
    "vdrop": ("dosa", "mm/yr", "mean LOS velocity with each interferogram left out in turn"),
}
SMALL_BASELINE_ONLY = ("usb", "rsb", "asb", "dsb")
_TYPE_RE = re.compile(r"^(usb|rsb|asb|dsb|hgt|vdrop|[wuasomd])(?:-([a-z]+))?$")


@dataclass(frozen=True)
class ValueType:
    """A parsed ps_plot value type.

    ``text`` as given in lower case (``w-dmo``), ``base`` and ``letters`` (the corrections);
    ``single_master`` for an upper-case ``D`` / ``Vdrop``: in a small-baseline run the term of
    the single-master series inverted from the small baselines (in a PS run both are the same).
    """

    text: str
    base: str
    letters: frozenset[str]
    single_master: bool = False

    def has(self, letter: str) -> bool:
        """Whether the type removes the term named by ``letter``."""
        return letter in self.letters

    @property
    def name(self) -> str:
        """Output name: ``text``, with ``_sm`` for an upper-case type (as Correction.name)."""
        return self.text + ("_sm" if self.single_master else "")

    @property
    def wrapped(self) -> bool:
        """True for the wrapped-phase types (complex values, cyclic colours on [-pi, pi])."""
        return self.base == "w"

    @property
    def units(self) -> str:
        return BASES[self.base][1]

    def describe(self) -> str:
        """What the type shows, in words."""
        return BASES[self.base][2]


def parse_value_type(text: str) -> ValueType:
    """Parse a ps_plot value type (``w-dmo``, ``u-do``, ``usb-d``, ``rsb``, ``D``, ``vdrop-do``).

    Letters: d (DEM error), m (reference-date AOE), o (ramps), s (SCN), a (TRAIN troposphere),
    each allowed where StaMPS has it; 'm' with 'a' is refused as in ps_plot ("you cannot remove
    atmosphere twice"). Upper-case ``D`` and ``Vdrop`` set ``single_master``.
    """
    raw = str(text).strip()
    single_master = raw[:1] in ("D", "V")
    value = raw.lower()
    match = _TYPE_RE.match(value)
    if not match or (raw[:1] == "V" and match.group(1) != "vdrop"):
        raise StampsError(
            f"value type '{text}': expected one of {', '.join(BASES)} optionally followed by "
            f"'-' and letters, like w-dmo, u-do, usb-do or vdrop-do"
        )
    if raw[:1] == "D" and value != "d":
        raise StampsError(f"value type '{text}': upper-case 'D' takes no letters")
    base, letters = match.group(1), match.group(2) or ""
    allowed = BASES[base][0]
    bad = sorted(set(letters) - set(allowed))
    if bad:
        takes = f"takes {', '.join(allowed)}" if allowed else "takes no letters"
        raise StampsError(
            f"value type '{text}': unknown letter(s) {', '.join(bad)}; '{base}' {takes}"
        )
    if len(set(letters)) != len(letters):
        raise StampsError(f"value type '{text}': a letter is repeated")
    if "m" in letters and "a" in letters:
        raise StampsError(
            f"value type '{text}': 'm' and 'a' both remove the atmosphere of the reference "
            f"date (ps_plot: you cannot remove atmosphere twice); drop one"
        )
    return ValueType(value, base, frozenset(letters), single_master)


def matlab_limits(values: np.ndarray) -> tuple[float, float]:
    """ps_plot's default colour limits: the values at 0.1 % and 99.9 % of the sorted finite
    values (``phsort(ceil(n * .001))`` and ``phsort(round(n * .999))``); (-1, 1) without any."""
    finite = np.sort(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
    n = finite.size
    if n == 0:
        return -1.0, 1.0
    lo = finite[min(max(math.ceil(n * 0.001), 1), n) - 1]
    hi = finite[min(max(round(n * 0.999), 1), n) - 1]
    if hi <= lo:
        pad = 0.5 * max(abs(float(lo)), 1.0)
        return float(lo) - pad, float(hi) + pad
    return float(lo), float(hi)


def rereference(values: np.ndarray, shown: np.ndarray, ref_ifg: int) -> np.ndarray:
    """Columns ``shown`` (0-based) of real ``values`` (n_ps, n) re-referenced as ps_plot's
    REF_IFG: 0 leaves them, k > 0 subtracts column k (1-based, of all columns), -1 subtracts
    from each shown column the shown column before it (the first becomes 0: incremental)."""
    out = np.asarray(values, dtype=np.float64)[:, shown]
    if ref_ifg == -1:
        out = out - np.column_stack([out[:, :1], out[:, :-1]])
    elif ref_ifg > 0:
        out = out - np.asarray(values, dtype=np.float64)[:, [ref_ifg - 1]]
    return out


def rereference_wrapped(values: np.ndarray, shown: np.ndarray, ref_ifg: int) -> np.ndarray:
    """Columns ``shown`` of complex ``values``; with REF_IFG -1 each times the conjugate of the
    shown column before it (the first becomes 1)."""
    out = np.asarray(values, dtype=np.complex128)[:, shown]
    if ref_ifg == -1:
        out = out * np.conj(np.column_stack([out[:, :1], out[:, :-1]]))
    return out


def drop_one_operator(G: np.ndarray, cov: np.ndarray | None = None) -> np.ndarray:
    """(n, n) matrix whose column i gives, applied to data (.., n), the slope (second model
    parameter) of ``lscov(G, data, cov)`` fitted without sample i (its row is 0 there).

    ``G`` (n, p) is the design, ``cov`` (n, n) the data covariance (identity when None).
    """
    G = np.asarray(G, dtype=np.float64)
    n = G.shape[0]
    V = np.eye(n) if cov is None else np.asarray(cov, dtype=np.float64)
    out = np.zeros((n, n))
    for i in range(n):
        keep = np.r_[0:i, i + 1 : n]
        out[keep, i] = lscov_operator(G[keep], V[np.ix_(keep, keep)])[1]
    return out


def drop_one_velocities(
    ph: np.ndarray,
    t_days: np.ndarray,
    wavelength: float,
    cov: np.ndarray | None = None,
    chunk: int = 20000,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean LOS velocity (mm/yr, + toward the satellite) with each sample left out in turn, as
    ps_plot's 'vdrop': per PS the line ``ph = c + rate t`` (``t_days`` (n,) days, ``ph`` (n_ps,
    n) rad, already referenced) by ``lscov`` with ``cov`` without sample i, velocity ``-rate x
    365.25 x lambda x 1000 / (4 pi)``. Returns (drop (n_ps, n), all samples (n_ps,)).
    """
    t = np.asarray(t_days, dtype=np.float64).ravel()
    spans, inverse, counts = np.unique(t, return_inverse=True, return_counts=True)
    if t.size < 3 or np.any(spans.size - (counts[inverse] == 1) < 2):
        raise StampsError(
            f"vdrop: {t.size} interferograms with {spans.size} different time spans; leaving "
            f"one out must keep at least 2 different ones (add interferograms to ifg_list)"
        )
    G = np.column_stack([np.ones_like(t), t])
    scale = -DAYS_PER_YEAR * wavelength * MM_PER_M / (4.0 * math.pi)
    ops = np.column_stack([drop_one_operator(G, cov), lscov_operator(G, cov)[1]]) * scale
    ph = np.asarray(ph, dtype=np.float64)
    out = np.empty((ph.shape[0], t.size + 1))
    for r0 in range(0, ph.shape[0], chunk):
        out[r0 : r0 + chunk] = ph[r0 : r0 + chunk] @ ops
    return out[:, :-1], out[:, -1]


def _rms(values: np.ndarray) -> np.ndarray:
    """Root mean square over the rows (NaNs skipped), per column."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    n = ok.sum(axis=0)
    total = np.where(ok, v * v, 0.0).sum(axis=0)
    return np.sqrt(np.divide(total, n, out=np.full(v.shape[1], np.nan), where=n > 0))


def vdrop_rms(v_drop: np.ndarray, v_all: np.ndarray) -> dict[str, np.ndarray]:
    """Per left-out interferogram: the RMS over the PS of the velocity without it, its change
    from the RMS with every interferogram, and the RMS of the change of velocity (mm/yr)."""
    v_drop = np.asarray(v_drop, dtype=np.float64)
    rms_all = _rms(np.asarray(v_all, dtype=np.float64).reshape(-1, 1))[0]
    rms = _rms(v_drop)
    return {
        "rms_velocity_mm_yr": rms,
        "delta_rms_mm_yr": rms - rms_all,
        "rms_change_mm_yr": _rms(v_drop - np.asarray(v_all, dtype=np.float64).reshape(-1, 1)),
    }

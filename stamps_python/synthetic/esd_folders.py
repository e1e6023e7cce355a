"""Synthetic topsStack ESD folders with a known azimuth shift per date.

Writes what ``overlap_withDEM.py`` leaves in a topsStack work folder run with ``-C NESD``:
``ESD/<ref>_<sec>/IW<n>/overlap_NN.<a>alks_<r>rlks.int`` / ``.cor`` and
``freq_NN.<a>alks_<r>rlks.bin`` (each with its ISCE ``.xml``), for the pairs stackSentinel.py
makes (every date with its next ``n_connections`` dates), plus ``reference/IW<n>.xml`` with the
burst geometry (Sentinel-1 IW-like: 9 bursts of 1500 lines, a burst every 1342 lines).

Physics, per overlap pixel (after ``alks`` x ``rlks`` looks):
- frequency file ``2 pi dt x (Kt_m1 t_m1 - Kt_m2 t_m2 + Kt_s1 t_s1 - Kt_s2 t_s2)`` as ISCE's
  ``overlapSpectralSeparation`` computes it for reference and secondary of the same geometry,
  ``Kt = Ks / (1 - Ks / Ka)`` with ``Ks = 2 v k_psi / lambda`` and the spherical-Earth
  ``Ka = -2 v_s v_g / (lambda R)`` (written to the XML as its ``azimuthfmrate`` polynomial);
- ESD phase ``freq x (shift(sec) - shift(ref) + ground motion)``, i.e. topsStack's convention
  ``shift = angle(ifg) / freq``;
- noise of an ``L = alks x rlks``-look interferogram of coherence ``gamma^2`` (two burst
  interferograms of coherence ``gamma``): ``S = g G + sqrt(1 - g^2) sqrt(G) n``,
  ``G ~ Gamma(L)``, ``n ~ CN(0, 1)``; ``gamma`` is high on a spatially clustered fraction of
  point-like pixels (``coherent_fraction``, per overlap if wanted), low elsewhere;
- ``.cor`` as ISCE's ``createCoherence``: |5 x 5 mean of the unit phasors|, 4 border lines and
  columns zeroed;
- an azimuth ground displacement confined to chosen overlaps (and a range interval of them),
  added to the pairs spanning its date.
Everything random is drawn from ``numpy.random.default_rng(SeedSequence([seed, ...]))``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter

from stamps_python.io.isce_sidecars import Comp, Prop, render_isce_xml, write_raster
from stamps_python.numerics.esd import (
    doppler_centroid_rate,
    fm_rate_spherical,
    steering_rate_hz_per_s,
)
from stamps_python.synthetic.constants import AZIMUTH_TIME_INTERVAL_S, RANGE_PIXEL_M, WAVELENGTH_M
from stamps_python.utils import StampsError, atomic_output, parse_yyyymmdd

LIGHT_SPEED = 299792458.0


@dataclass(frozen=True)
class BurstGeometry:
    """A Sentinel-1 IW-like sub-swath (lines and samples at full resolution)."""

    n_bursts: int = 9
    burst_lines: int = 1500
    cycle_lines: int = 1342  # lines between burst starts (2.758 s)
    n_samples: int = 4500
    first_valid_line: int = 30
    starting_range: float = 800000.0  # m, of IW1; later swaths start further
    range_pixel: float = RANGE_PIXEL_M
    dt: float = AZIMUTH_TIME_INTERVAL_S
    wavelength: float = WAVELENGTH_M
    steering_rate: float = 0.02775  # rad/s (1.59 deg/s, IW1)
    v_sat: float = 7590.0  # m/s
    r_sat: float = 7071000.0  # m

    @property
    def overlap_lines(self) -> int:
        """Valid lines of an overlap: the burst overlap less both bursts' invalid lines."""
        return self.burst_lines - self.cycle_lines - 2 * self.first_valid_line


@dataclass(frozen=True)
class GroundMotion:
    """An azimuth ground displacement (pixels) at ``date`` confined to one overlap: pairs
    with first date < ``date`` <= second date see ``+shift_px`` there."""

    swath: int
    overlap: int
    date: str
    shift_px: float
    range_fraction: tuple[float, float] = (0.0, 1.0)


def stack_pairs(dates: Sequence[str], n_connections: int = 3) -> list[tuple[str, str]]:
    """stackSentinel.py's ESD pairs: every date with its next ``n_connections`` dates."""
    d = sorted(dates)
    n = len(d)
    return [(d[i], d[j]) for i in range(n) for j in range(i + 1, min(i + 1 + n_connections, n))]


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 0xE5D, *keys]))


def _ranges(geom: BurstGeometry, swath: int) -> tuple[float, np.ndarray]:
    r0 = geom.starting_range + (swath - 1) * 0.9 * geom.n_samples * geom.range_pixel
    return r0, r0 + np.arange(geom.n_samples) * geom.range_pixel


def _ka_poly(geom: BurstGeometry, swath: int) -> tuple[list[float], float, float]:
    """Quadratic in slant-range time of the spherical FM rate, as the XML stores Ka."""
    r0, r = _ranges(geom, swath)
    ka = fm_rate_spherical(r, geom.v_sat, geom.r_sat, geom.wavelength)
    x = (r - r0) / (0.5 * LIGHT_SPEED)
    coeffs = np.polynomial.polynomial.polyfit(x, ka, 2)
    return [float(c) for c in coeffs], r0, 0.5 * LIGHT_SPEED


def _isce_time(t: _dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def swath_xml(geom: BurstGeometry, swath: int, first_burst_utc: _dt.datetime) -> str:
    """``reference/IW<swath>.xml``: a TOPSSwathSLCProduct with the burst fields esd_misreg
    and ISCE's overlap code read (times, lines, valid region, ranges, steering and FM rates)."""
    r0, _ = _ranges(geom, swath)
    coeffs, mean, scale = _ka_poly(geom, swath)
    pos = [geom.r_sat, 0.0, 0.0]
    vel = [0.0, geom.v_sat, 0.0]
    stagger = _dt.timedelta(seconds=(swath - 1) * geom.cycle_lines * geom.dt / 3.0)
    bursts = []
    for k in range(geom.n_bursts):
        start = first_burst_utc + stagger + _dt.timedelta(seconds=k * geom.cycle_lines * geom.dt)
        stop = start + _dt.timedelta(seconds=(geom.burst_lines - 1) * geom.dt)
        sv = Comp(
            "statevector1",
            [Prop("position", str(pos)), Prop("time", _isce_time(start)),
             Prop("velocity", str(vel))],
        )  # fmt: skip
        orbit = Comp("orbit", [Comp("state_vectors", [sv])])
        fm = Comp(
            "azimuthfmrate",
            [Prop("coeffs", str(coeffs)), Prop("mean", mean), Prop("norm", scale),
             Prop("order", 2)],
            factorymodule="isceobj.Util.PolyFactory", factoryname="createPoly",
        )  # fmt: skip
        props = [
            Prop("azimuthsteeringrate", geom.steering_rate),
            Prop("azimuthtimeinterval", geom.dt),
            Prop("burstnumber", k + 1),
            Prop("firstvalidline", geom.first_valid_line),
            Prop("firstvalidsample", 20),
            fm,
            Prop("numberoflines", geom.burst_lines),
            Prop("numberofsamples", geom.n_samples),
            Prop("numberofvalidlines", geom.burst_lines - 2 * geom.first_valid_line),
            Prop("numberofvalidsamples", geom.n_samples - 40),
            orbit,
            Prop("radarwavelength", geom.wavelength),
            Prop("rangepixelsize", geom.range_pixel),
            Prop("sensingstart", _isce_time(start)),
            Prop("sensingstop", _isce_time(stop)),
            Prop("startingrange", r0),
            Prop("swathnumber", swath),
        ]
        bursts.append(
            Comp(f"burst{k + 1}", props, factorymodule="isceobj.Sensor.TOPS",
                 factoryname="createBurstSLC")
        )  # fmt: skip
    inst = Comp(
        "instance",
        [Comp("bursts", bursts), Prop("numberofbursts", geom.n_bursts)],
        factorymodule="isceobj.Sensor.TOPS",
        factoryname="createTOPSSwathSLCProduct",
    )
    return render_isce_xml("productmanager_name", [inst])


def frequency_map(geom: BurstGeometry, swath: int, alks: int, rlks: int) -> np.ndarray:
    """Frequency file row (rad per pixel of shift) at the multilooked samples of an overlap."""
    _, r = _ranges(geom, swath)
    n = geom.n_samples // rlks
    r_ml = r[: n * rlks].reshape(n, rlks).mean(axis=1)
    ka = fm_rate_spherical(r_ml, geom.v_sat, geom.r_sat, geom.wavelength)
    ks = steering_rate_hz_per_s(geom.v_sat, geom.steering_rate, geom.wavelength)
    kt = doppler_centroid_rate(ks, ka)
    separation = 2.0 * kt * geom.cycle_lines * geom.dt  # reference and secondary terms, Hz
    return (2.0 * np.pi * geom.dt * separation).astype(np.float32)


def isce_coherence(ifg: np.ndarray, win: int = 5) -> np.ndarray:
    """ISCE ``createCoherence``: |win x win mean of exp(j angle(ifg))|, win - 1 border lines and
    columns zeroed."""
    ph = np.exp(1j * np.angle(ifg))
    re = uniform_filter(ph.real, win, mode="constant")
    im = uniform_filter(ph.imag, win, mode="constant")
    cor = np.hypot(re, im)
    e = win - 1
    cor[:e], cor[-e:], cor[:, :e], cor[:, -e:] = 0.0, 0.0, 0.0, 0.0
    return cor.astype(np.float32)


def _coherence_map(rng: np.random.Generator, shape, fraction: float, coh, incoh) -> np.ndarray:
    field = uniform_filter(rng.standard_normal(shape), 9, mode="wrap")
    if fraction <= 0:
        good = np.zeros(shape, dtype=bool)
    else:
        good = field > (np.quantile(field, 1.0 - fraction) if fraction < 1 else -np.inf)
    return np.where(good, rng.uniform(*coh, shape), rng.uniform(*incoh, shape))


def write_esd_folders(
    workdir: str | Path,
    dates: Sequence[str],
    shifts_px: Mapping[str, float],
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    n_connections: int = 3,
    swaths: Sequence[int] = (1,),
    geometry: BurstGeometry | None = None,
    alks: int = 5,
    rlks: int = 15,
    coherent_fraction: float | Mapping[tuple[int, int], float] = 0.3,
    coherent_gamma: tuple[float, float] = (0.55, 0.95),
    incoherent_gamma: tuple[float, float] = (0.0, 0.2),
    ground_motion: Sequence[GroundMotion] = (),
    invalid_columns: int = 3,
    seed: int = 0,
) -> dict:
    """Write ``workdir/ESD/...`` and ``workdir/reference/IW<n>.xml`` (see the module docstring).

    ``shifts_px`` {date: shift} (pixels, topsStack convention; missing dates 0);
    ``coherent_fraction`` a number or {(swath, overlap): fraction} (others 0.3). Returns the
    truth: pairs, per-pair shift, overlap numbers, the frequency (rad/pixel) per swath.
    """
    geom = geometry or BurstGeometry()
    dates = sorted(dates)
    for d in dates:
        parse_yyyymmdd(d, "date")
    pairs = list(pairs) if pairs is not None else stack_pairs(dates, n_connections)
    workdir = Path(workdir)
    first = _dt.datetime.combine(parse_yyyymmdd(dates[0], "date"), _dt.time(14, 1, 12, 345678))
    for sw in swaths:
        with atomic_output(workdir / "reference" / f"IW{sw}.xml") as tmp:
            tmp.write_text(swath_xml(geom, sw, first), encoding="utf-8")
    n_ov = geom.n_bursts - 1
    length = geom.overlap_lines // alks
    if length < 10:
        raise StampsError(f"overlap of {geom.overlap_lines} lines is too short for {alks} looks")
    looks = alks * rlks
    suffix = f"{alks}alks_{rlks}rlks"
    index = {d: k for k, d in enumerate(dates)}
    truth = {"pairs": [], "pair_shift_px": {}, "overlaps": list(range(1, n_ov + 1)), "freq": {}}
    for sw in swaths:
        freq_row = frequency_map(geom, sw, alks, rlks)
        width = freq_row.size
        freq = np.broadcast_to(freq_row, (length, width)).copy()
        truth["freq"][sw] = float(freq_row.mean())
        gammas = {}
        for nn in range(1, n_ov + 1):
            frac = (
                coherent_fraction.get((sw, nn), 0.3)
                if isinstance(coherent_fraction, Mapping)
                else float(coherent_fraction)
            )
            gammas[nn] = _coherence_map(
                _rng(seed, sw, nn), (length, width), frac, coherent_gamma, incoherent_gamma
            )
        for p, (a, b) in enumerate(pairs):
            pair = f"{a}_{b}"
            d = float(shifts_px.get(b, 0.0)) - float(shifts_px.get(a, 0.0))
            truth["pair_shift_px"][pair] = d
            for nn in range(1, n_ov + 1):
                rng = _rng(seed, sw, nn, 1000 + p)
                g = gammas[nn] ** 2
                G = rng.gamma(looks, 1.0, (length, width))
                n = (rng.standard_normal((length, width))
                     + 1j * rng.standard_normal((length, width))) / np.sqrt(2.0)  # fmt: skip
                S = g * G + np.sqrt(1.0 - g**2) * np.sqrt(G) * n
                shift = np.full((length, width), d)
                for gm in ground_motion:
                    spans = index[a] < index[gm.date] <= index[b]
                    if gm.swath == sw and gm.overlap == nn and spans:
                        c0, c1 = (int(round(f * width)) for f in gm.range_fraction)
                        shift[:, c0:c1] += gm.shift_px
                amp = rng.lognormal(0.0, 0.5, (length, width))
                ifg = (amp * np.exp(1j * (np.angle(S) + freq * shift))).astype(np.complex64)
                ifg[:, :invalid_columns] = 0
                cor = isce_coherence(ifg)
                sdir = workdir / "ESD" / pair / f"IW{sw}"
                write_raster(sdir / f"overlap_{nn:02d}.{suffix}.int", ifg, scheme="BIP",
                             image_type="cpx", envi=False)  # fmt: skip
                write_raster(sdir / f"overlap_{nn:02d}.{suffix}.cor", cor, envi=False)
                write_raster(sdir / f"freq_{nn:02d}.{suffix}.bin", freq, envi=False)
    truth["pairs"] = [f"{a}_{b}" for a, b in pairs]
    return truth

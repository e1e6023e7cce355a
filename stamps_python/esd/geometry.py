"""Burst geometry of a topsStack sub-swath from its ISCE ``TOPSSwathSLCProduct`` XML
(``reference/IW1.xml``...): burst numbers and times, lines, valid regions, ranges, the TOPS
Doppler-centroid rate; and where each burst lies in the merged (``merged/SLC``) rasters."""

from __future__ import annotations

import ast
import datetime as _dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stamps_python.numerics.esd import (
    doppler_centroid_rate,
    fm_rate_spherical,
    steering_rate_hz_per_s,
)
from stamps_python.utils import StampsError

NOMINAL_BURST_CYCLE_S = 2.758  # Sentinel-1 IW burst repetition, used when no XML is found


@dataclass
class Burst:
    """One burst of a sub-swath (ISCE ``BurstSLC`` fields; times in UTC)."""

    number: int
    sensing_start: _dt.datetime
    sensing_stop: _dt.datetime
    n_lines: int
    n_samples: int
    first_valid_line: int
    n_valid_lines: int
    first_valid_sample: int
    n_valid_samples: int
    starting_range: float  # m
    range_pixel: float  # m
    dt: float  # s, azimuth time interval
    wavelength: float  # m
    steering_rate: float  # rad/s
    v_sat: float  # m/s, platform speed
    r_sat: float  # m, platform distance from the Earth centre
    fm_rate: tuple[list[float], float, float] | None  # (coeffs, mean, norm) of Ka(range), Hz/s

    def ka(self, ranges: np.ndarray) -> np.ndarray:
        """Azimuth FM rate (Hz/s) at slant ranges (m): the XML polynomial, else spherical."""
        r = np.asarray(ranges, dtype=np.float64)
        if self.fm_rate is None:
            return fm_rate_spherical(r, self.v_sat, self.r_sat, self.wavelength)
        coeffs, mean, scale = self.fm_rate
        x = (r - mean) / scale
        return sum(c * x**i for i, c in enumerate(coeffs))

    def kt(self, ranges: np.ndarray) -> np.ndarray:
        """Doppler-centroid rate of the focused burst (Hz/s) at slant ranges (m)."""
        ks = steering_rate_hz_per_s(self.v_sat, self.steering_rate, self.wavelength)
        return doppler_centroid_rate(ks, self.ka(ranges))


@dataclass
class Swath:
    """A sub-swath: its number (1..3), XML path and bursts in order."""

    number: int
    path: Path
    bursts: list[Burst]

    def overlap_times(self, t_ref: _dt.datetime) -> dict[int, float]:
        """Mid time (s after ``t_ref``) of overlap NN, between bursts NN and NN + 1."""
        out = {}
        by_number = {b.number: b for b in self.bursts}
        for b in self.bursts:
            nxt = by_number.get(b.number + 1)
            if nxt is not None:
                mid = nxt.sensing_start + (b.sensing_stop - nxt.sensing_start) / 2
                out[b.number] = (mid - t_ref).total_seconds()
        return out


def _key(name: str | None) -> str:
    return re.sub(r"[\s_]", "", (name or "").lower())


def _props(comp: ET.Element) -> dict[str, str]:
    return {
        _key(p.get("name")): (p.findtext("value") or "").strip() for p in comp.findall("property")
    }


def _child(comp: ET.Element, name: str) -> ET.Element | None:
    for c in comp.findall("component"):
        if _key(c.get("name")) == name:
            return c
    return None


def parse_time(text: str) -> _dt.datetime:
    """ISCE UTC time text (``YYYY-MM-DD HH:MM:SS[.ffffff]``)."""
    return _dt.datetime.fromisoformat(text.strip().replace("T", " "))


def _orbit_speed_radius(burst: ET.Element) -> tuple[float, float]:
    orbit = _child(burst, "orbit")
    svs = _child(orbit, "statevectors") if orbit is not None else None
    if svs is None:
        return np.nan, np.nan
    vecs = [_props(c) for c in svs.findall("component")]
    vecs = [v for v in vecs if "position" in v and "velocity" in v]
    if not vecs:
        return np.nan, np.nan
    mid = vecs[len(vecs) // 2]
    pos = np.array(ast.literal_eval(mid["position"]), dtype=float)
    vel = np.array(ast.literal_eval(mid["velocity"]), dtype=float)
    return float(np.linalg.norm(vel)), float(np.linalg.norm(pos))


def _poly(burst: ET.Element, name: str) -> tuple[list[float], float, float] | None:
    comp = _child(burst, name)
    if comp is None:
        return None
    p = _props(comp)
    try:
        coeffs = [float(c) for c in ast.literal_eval(p["coeffs"])]
        return coeffs, float(p.get("mean", 0.0) or 0.0), float(p.get("norm", 1.0) or 1.0)
    except (KeyError, ValueError, SyntaxError):
        return None


def read_swath_xml(path: str | Path) -> Swath:
    """The bursts of ``reference/IW<n>.xml`` (an ISCE ``TOPSSwathSLCProduct``)."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise StampsError(f"{path}: unreadable ISCE XML ({exc})") from None
    bursts_comp = next((c for c in root.iter("component") if _key(c.get("name")) == "bursts"), None)
    if bursts_comp is None:
        raise StampsError(f"{path}: no bursts (not a topsStack swath product)")
    m = re.search(r"IW(\d)", path.name)
    number = int(m.group(1)) if m else 1
    bursts = []
    for k, comp in enumerate(bursts_comp.findall("component")):
        p = _props(comp)
        try:
            v_sat, r_sat = _orbit_speed_radius(comp)
            bursts.append(
                Burst(
                    number=int(p.get("burstnumber", k + 1)),
                    sensing_start=parse_time(p["sensingstart"]),
                    sensing_stop=parse_time(p["sensingstop"]),
                    n_lines=int(p["numberoflines"]),
                    n_samples=int(p["numberofsamples"]),
                    first_valid_line=int(p.get("firstvalidline", 0)),
                    n_valid_lines=int(p.get("numberofvalidlines", p["numberoflines"])),
                    first_valid_sample=int(p.get("firstvalidsample", 0)),
                    n_valid_samples=int(p.get("numberofvalidsamples", p["numberofsamples"])),
                    starting_range=float(p["startingrange"]),
                    range_pixel=float(p["rangepixelsize"]),
                    dt=float(p["azimuthtimeinterval"]),
                    wavelength=float(p["radarwavelength"]),
                    steering_rate=float(p.get("azimuthsteeringrate", "nan")),
                    v_sat=v_sat,
                    r_sat=r_sat,
                    fm_rate=_poly(comp, "azimuthfmrate"),
                )
            )
        except (KeyError, ValueError) as exc:
            raise StampsError(f"{path}: burst {k + 1}: missing or bad field {exc}") from None
    if not bursts:
        raise StampsError(f"{path}: no bursts (not a topsStack swath product)")
    return Swath(number, path, sorted(bursts, key=lambda b: b.sensing_start))


def read_reference_swaths(stack_dir: str | Path) -> dict[int, Swath]:
    """Every ``STACK/reference/IW*.xml`` as {swath number: Swath}; {} when there is none."""
    ref = Path(stack_dir) / "reference"
    files = sorted(ref.glob("IW[1-3].xml")) if ref.is_dir() else []
    return {s.number: s for s in (read_swath_xml(f) for f in files)}


@dataclass
class MergedBursts:
    """The bursts of one sub-swath placed in the merged rasters (0-based lines / samples)."""

    swath: Swath
    yoff: np.ndarray  # merged line of each burst's first line
    xoff: int  # merged sample of the swath's first sample
    dt: float

    @property
    def first_valid(self) -> np.ndarray:
        return np.array([b.first_valid_line for b in self.swath.bursts])

    @property
    def n_valid(self) -> np.ndarray:
        return np.array([b.n_valid_lines for b in self.swath.bursts])

    @property
    def n_lines(self) -> np.ndarray:
        return np.array([b.n_lines for b in self.swath.bursts])

    def columns(self) -> tuple[int, int]:
        """Merged samples [lo, hi) of the swath's valid data (widest over its bursts)."""
        lo = min(b.first_valid_sample for b in self.swath.bursts)
        hi = max(b.first_valid_sample + b.n_valid_samples for b in self.swath.bursts)
        return self.xoff + lo, self.xoff + hi

    def kt_of_columns(self, cols: np.ndarray, burst: np.ndarray) -> np.ndarray:
        """Doppler-centroid rate (Hz/s) at merged samples ``cols`` of ``burst`` (0-based)."""
        out = np.full(np.shape(cols), np.nan)
        for k, b in enumerate(self.swath.bursts):
            sel = burst == k
            if sel.any():
                rng = b.starting_range + (np.asarray(cols)[sel] - self.xoff) * b.range_pixel
                out[sel] = b.kt(rng)
        return out


def merged_layout(swaths: dict[int, Swath]) -> dict[int, MergedBursts]:
    """Where each swath's bursts lie in the merged rasters, as topsStack's mergeBursts.py
    (VRTManager) places them: line ``round((sensingStart - t_ref) / dt)`` and sample
    ``round((startingRange - r_ref) / dr)`` from the earliest burst and the nearest range."""
    if not swaths:
        return {}
    first = [b for s in swaths.values() for b in s.bursts]
    t_ref = min(b.sensing_start for b in first)
    r_ref = min(b.starting_range for b in first)
    out = {}
    for n, s in sorted(swaths.items()):
        b0 = s.bursts[0]
        yoff = np.array(
            [int(round((b.sensing_start - t_ref).total_seconds() / b0.dt)) for b in s.bursts]
        )
        xoff = int(round((b0.starting_range - r_ref) / b0.range_pixel))
        out[n] = MergedBursts(s, yoff, xoff, b0.dt)
    return out

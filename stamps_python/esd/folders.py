"""Readers of topsStack's ESD products (``WORKDIR/ESD/<ref>_<sec>/IW<n>/``).

As ``overlap_withDEM.py`` writes them, for overlap NN (between bursts NN and NN + 1):
``overlap_NN.<a>alks_<r>rlks.int`` (complex64, the double-difference interferogram
top x conj(bottom), multilooked), ``overlap_NN.<a>alks_<r>rlks.cor`` (float32, |5 x 5 mean of
its unit phasors|) and ``freq_NN.<a>alks_<r>rlks.bin`` (float32, ``2 pi dt`` x the frequency
separation: rad per pixel of azimuth shift), each with an ISCE ``.xml`` giving its width.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stamps_python.io.isce import read_isce_xml
from stamps_python.utils import StampsError, parse_yyyymmdd

PAIR_RE = re.compile(r"^(\d{8})_(\d{8})$")
OVERLAP_RE = re.compile(r"^overlap_(\d+)\.(\d+)alks_(\d+)rlks\.int$")
SWATH_RE = re.compile(r"^IW([1-3])$")


@dataclass
class OverlapFiles:
    """The three rasters of one overlap and their size."""

    number: int
    ifg: Path
    cor: Path
    freq: Path
    width: int
    length: int

    @property
    def label(self) -> str:
        return f"{self.ifg.parent.parent.name}/{self.ifg.parent.name}/overlap_{self.number:02d}"

    def read(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(interferogram complex64, coherence float32, frequency float32), each (length, width)."""
        out = []
        for path, dtype in ((self.ifg, "<c8"), (self.cor, "<f4"), (self.freq, "<f4")):
            n = self.width * self.length
            size = path.stat().st_size
            if size != n * np.dtype(dtype).itemsize:
                raise StampsError(
                    f"{path}: {size} bytes, expected {self.length} x {self.width} {dtype} "
                    f"({n * np.dtype(dtype).itemsize} bytes)"
                )
            out.append(np.fromfile(path, dtype=dtype).reshape(self.length, self.width))
        return out[0], out[1], out[2]


@dataclass
class PairFolder:
    """``ESD/<reference>_<secondary>``: its overlaps per sub-swath."""

    reference: str
    secondary: str
    path: Path
    swaths: dict[int, dict[int, OverlapFiles]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.reference}_{self.secondary}"


@dataclass
class EsdFolders:
    """Every pair folder of ``WORKDIR/ESD`` and the looks of their products."""

    workdir: Path
    pairs: list[PairFolder]
    looks: tuple[int, int]  # azimuth, range


def _raster_size(path: Path, itemsize: int) -> tuple[int, int]:
    xml = path.with_name(path.name + ".xml")
    if not xml.is_file():
        raise StampsError(f"{xml}: missing (the ISCE description giving the width of {path.name})")
    props = read_isce_xml(xml)
    try:
        width = int(float(props["width"]))
    except (KeyError, ValueError):
        raise StampsError(f"{xml}: no width") from None
    if width <= 0:
        raise StampsError(f"{xml}: width {width} is not positive")
    length = path.stat().st_size // (itemsize * width)
    return width, length


def scan_esd(workdir: str | Path, looks: tuple[int, int] | None = None) -> EsdFolders:
    """The ESD folders of a topsStack work folder; a one-line StampsError when there is no
    ``ESD`` folder, no pair folder, an overlap lacks its ``.cor``/``freq`` file, the looks are
    ambiguous, or some pairs lack overlaps that others have."""
    workdir = Path(workdir)
    esd = workdir / "ESD"
    if not esd.is_dir():
        raise StampsError(
            f"{esd}: no ESD folder (not a topsStack work folder run with -C NESD, or its "
            "run_*_pairs_misreg step has not run)"
        )
    pair_dirs = sorted(p for p in esd.iterdir() if p.is_dir() and PAIR_RE.match(p.name))
    if not pair_dirs:
        raise StampsError(f"{esd}: no pair folder YYYYMMDD_YYYYMMDD")
    found: dict[Path, list[tuple[int, int, tuple[int, int], Path]]] = {}
    all_looks: set[tuple[int, int]] = set()
    for pdir in pair_dirs:
        a, b = PAIR_RE.match(pdir.name).groups()
        parse_yyyymmdd(a, f"{pdir}")
        parse_yyyymmdd(b, f"{pdir}")
        items = []
        for sdir in sorted(s for s in pdir.iterdir() if s.is_dir() and SWATH_RE.match(s.name)):
            sw = int(SWATH_RE.match(sdir.name).group(1))
            for f in sorted(sdir.iterdir()):
                m = OVERLAP_RE.match(f.name)
                if m:
                    lk = (int(m.group(2)), int(m.group(3)))
                    all_looks.add(lk)
                    items.append((sw, int(m.group(1)), lk, f))
        found[pdir] = items
    if looks is None:
        if len(all_looks) > 1:
            listed = ", ".join(f"{a}x{r}" for a, r in sorted(all_looks))
            raise StampsError(f"{esd}: overlaps with several looks ({listed}); choose with --looks")
        if not all_looks:
            raise StampsError(f"{esd}: no overlap_NN.*alks_*rlks.int in any pair folder")
        looks = next(iter(all_looks))
    alks, rlks = looks
    pairs = []
    for pdir, items in found.items():
        a, b = PAIR_RE.match(pdir.name).groups()
        pf = PairFolder(a, b, pdir)
        for sw, nn, lk, f in items:
            if lk != (alks, rlks):
                continue
            suffix = f"{alks}alks_{rlks}rlks"
            cor = f.with_name(f"overlap_{nn:02d}.{suffix}.cor")
            freq = f.with_name(f"freq_{nn:02d}.{suffix}.bin")
            for g in (cor, freq):
                if not g.is_file():
                    raise StampsError(f"{g}: missing (needed with {f.name})")
            width, length = _raster_size(f, 8)
            pf.swaths.setdefault(sw, {})[nn] = OverlapFiles(nn, f, cor, freq, width, length)
        pairs.append(pf)
    _check_complete(esd, pairs, alks, rlks)
    return EsdFolders(workdir, pairs, (alks, rlks))


def _check_complete(esd: Path, pairs: list[PairFolder], alks: int, rlks: int) -> None:
    every = {(sw, nn) for p in pairs for sw, ov in p.swaths.items() for nn in ov}
    gaps = []
    for p in pairs:
        have = {(sw, nn) for sw, ov in p.swaths.items() for nn in ov}
        miss = sorted(every - have)
        if miss:
            text = " ".join(f"IW{sw}:{nn:02d}" for sw, nn in miss[:6])
            more = f" +{len(miss) - 6}" if len(miss) > 6 else ""
            gaps.append(f"{p.name} ({text}{more})")
    if gaps:
        shown = "; ".join(gaps[:4]) + (f"; +{len(gaps) - 4} pairs" if len(gaps) > 4 else "")
        raise StampsError(
            f"{esd}: overlaps ({alks}alks_{rlks}rlks) missing for {len(gaps)} of {len(pairs)} "
            f"pairs: {shown}; rerun their run_*_pairs_misreg configs"
        )

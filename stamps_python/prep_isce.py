"""prep_isce: prepare a StaMPS PS run directory from an ISCE2 topsStack ``merged/`` stack.

What StaMPS' ``mt_prep`` (calamp, selpsc_patch, mt_extract_cands) does for ISCE2, in one tool:

1. amplitude calibration constant per SLC (calamp: mean amplitude over pixels above 0.001);
2. amplitude dispersion D_A of every pixel over all SLCs (calibrated), in one streaming pass;
3. PS candidates: D_A below ``--amp-dispersion`` (0.4) and no empty image;
4. patches with StaMPS overlap (``patch.list``, ``PATCH_n/patch.in``, ``patch_noover.in``);
5. per patch ``pscands.h5``: candidate position, phase (reference x conj(secondary)), lon/lat,
   DEM height, look and incidence angles, D_A, Bperp; with ``--write-step1`` the Step-1
   workspaces (ps1.h5, ph1.h5, ...) exactly as ps_load_initial_isce builds them.

With ``--small-baseline`` (what mt_prep does in a SMALL_BASELINES folder, with selsbc_patch) the
candidates are chosen on the amplitude-difference dispersion over the pairs of
``small_baselines.list`` (threshold 0.6 by default) and ``pscands.h5`` holds no phase:
``build_sb_phase RUN`` forms the pair interferograms and the SB Step-1 workspaces afterwards.

Usage::

    prep_isce STACK/merged --output RUN --reference-date 20210529 --bootstrap-metadata \
        --range-patches 2 --azimuth-patches 2 --write-step1
    prep_isce STACK/merged --output RUN --bootstrap-metadata --small-baseline
"""

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from stamps_python import __version__, rundir
from stamps_python.io import isce
from stamps_python.io.products import PRODUCT_FORMAT, load_product
from stamps_python.io.sb_list import read_sb_list
from stamps_python.numerics.amplitude import (
    MAYBE,
    SURE,
    accumulate_amplitudes,
    amplitude_dispersion,
    block_pass,
    gather_pixels,
    interferograms,
    load_kernels,
    sb_block_pass,
    sb_dispersion,
    subset_threshold,
    superset_threshold,
    weight_error,
)
from stamps_python.steps import ps_load_initial
from stamps_python.utils import (
    LOG_FILE,
    HelpFormatter,
    StampsError,
    check_output_dir,
    get_logger,
    parse_yyyymmdd,
    peak_memory_mb,
    run_cli,
    setup_logging,
)

CALAMP_FILE = "calamp.txt"
PS_AMP_DISPERSION = 0.4
SB_AMP_DISPERSION = 0.6
# Provisional calibration constants come from 1/SAMPLE_EVERY of the lines. Their error (between
# images, up to a common factor) is estimated from two interleaved halves of that sample, and the
# superset threshold is widened for it (within these bounds); the exact constants found by the
# pass are checked against the margin afterwards.
SAMPLE_EVERY = 32
SAMPLE_RUN = 16
# Superset pixels of the amplitude pass are kept in memory up to this many bytes, then spilled.
SPILL_AFTER_BYTES = 768 * 2**20
MIN_MARGIN = 0.002
MAX_MARGIN = 0.02


@dataclass
class Patch:
    """A patch window, 1-based inclusive like StaMPS' patch.in (range start/end, azimuth)."""

    name: str
    rg: tuple[int, int]
    az: tuple[int, int]
    rg_core: tuple[int, int]
    az_core: tuple[int, int]


def patch_layout(
    width: int, length: int, n_rg: int, n_az: int, overlap_rg: int, overlap_az: int
) -> list[Patch]:
    """Patches as mt_prep lays them out: range-major numbering, cores plus overlap.

    Differs from mt_prep in one way: mt_prep sizes cores with integer division, so when the
    width (length) is not a multiple of the patch count the last columns (lines) belong to no
    core. Here the last core runs to the image edge, so the cores tile the image exactly once.
    """
    if n_rg < 1 or n_az < 1:
        raise StampsError("--range-patches/--azimuth-patches: must be at least 1")
    if n_rg > width or n_az > length:
        raise StampsError(
            f"more patches ({n_rg}x{n_az}) than image columns/lines ({width}x{length})"
        )
    if overlap_rg < 0 or overlap_az < 0:
        raise StampsError("--range-overlap/--azimuth-overlap: must not be negative")
    width_p, length_p = width // n_rg, length // n_az
    patches = []
    for irg in range(1, n_rg + 1):
        rg1 = width_p * (irg - 1) + 1
        rg2 = width if irg == n_rg else width_p * irg
        for iaz in range(1, n_az + 1):
            az1 = length_p * (iaz - 1) + 1
            az2 = length if iaz == n_az else length_p * iaz
            patches.append(
                Patch(
                    name=rundir.patch_name(len(patches) + 1),
                    rg=(max(rg1 - overlap_rg, 1), min(rg2 + overlap_rg, width)),
                    az=(max(az1 - overlap_az, 1), min(az2 + overlap_az, length)),
                    rg_core=(rg1, rg2),
                    az_core=(az1, az2),
                )
            )
    return patches


def _block_rows(n_images: int, width: int, block_mb: float) -> int:
    """Lines per block so that one block of every SLC takes ``block_mb`` MiB (two are in use)."""
    return max(1, int(block_mb * 2**20 // (n_images * width * 8)))


def calamp_sample(stack: isce.IsceStack, direct_io: bool = True) -> tuple[np.ndarray, float]:
    """Provisional calamp constants from 1/SAMPLE_EVERY of the lines, and their error margin.

    The sample is runs of SAMPLE_RUN lines spread over the image, read as the pass reads
    (:class:`isce.BlockStack`). The margin is the relative disagreement (between images, up to a
    common factor) of the constants from the two interleaved halves of the sample (odd and even
    runs), clipped to [MIN_MARGIN, MAX_MARGIN].
    """
    length, width = stack.length, stack.width
    starts = np.arange(0, length, SAMPLE_RUN * SAMPLE_EVERY) + (SAMPLE_RUN * SAMPLE_EVERY) // 2
    runs = [np.arange(r, min(r + SAMPLE_RUN, length)) for r in starts if r < length]
    if not runs:  # a short image: one run in its middle
        first = max(0, (length - SAMPLE_RUN) // 2)
        runs = [np.arange(first, min(first + SAMPLE_RUN, length))]
    lines = max(len(run) for run in runs)
    s1 = np.zeros((lines, width))
    s2 = np.zeros_like(s1)
    totals = np.zeros((len(stack.dates), 2))
    counts = np.zeros((len(stack.dates), 2))
    with isce.BlockStack(
        [stack.slc[d] for d in stack.dates], lines, n_buffers=1, direct=direct_io
    ) as slcs:
        for j, run in enumerate(runs):
            block = slcs.read(int(run[0]), int(run[-1]) + 1)
            for i in range(block.shape[0]):
                t, c = accumulate_amplitudes(block[i], 1.0, s1[: len(run)], s2[: len(run)])
                totals[i, j % 2] += t
                counts[i, j % 2] += c
    with np.errstate(invalid="ignore", divide="ignore"):
        provisional = totals.sum(axis=1) / counts.sum(axis=1)
        halves = totals / counts
    good = np.isfinite(provisional) & (provisional > 0)
    fill = np.median(provisional[good]) if good.any() else 1.0
    provisional = np.where(good, provisional, fill)
    if np.all(np.isfinite(halves) & (halves > 0)):
        margin = float(np.clip(weight_error(halves[:, 0], halves[:, 1]), MIN_MARGIN, MAX_MARGIN))
    else:
        margin = MAX_MARGIN
    return provisional, margin


# What one block of the pass keeps, in memory or spilled to .npy files under one stem: the SURE
# candidates (rows, cols, complex values; their phase, geometry and baselines were handed to
# ``on_sure`` already) and the MAYBE pixels (rows, cols, complex values or float32 amplitudes,
# geometry (n_geometry, k) float32), decided after the pass with the exact constants.
SPILL_PARTS = ("sure_rows", "sure_cols", "sure_values", "rows", "cols", "values", "geometry")
# Blocks of sure candidates waiting for the writer thread, at most.
WRITES_IN_FLIGHT = 2
# Relative weight error allowed for in a pass with the exact constants (float32 amplitudes).
EXACT_SLACK = 1e-5

OnSure = Callable[[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]
Select = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _scan(
    stack: isce.IsceStack,
    slcs: isce.BlockStack,
    criterion: Callable[[], tuple[np.ndarray, Select]],
    block_rows: int,
    spill: Path,
    label: str,
    amplitudes_only: bool = False,
    geometry: Sequence[isce.RasterRows] = (),
    on_sure: OnSure | None = None,
) -> tuple[list, np.ndarray, np.ndarray]:
    """One streaming pass: calamp sums, and the pixels a criterion keeps.

    ``criterion()`` gives (weights, select), called once the first block is being read (so that
    waiting for the calamp sample overlaps that read); ``select(block, weights)`` returns
    (state, calamp sums, counts) of one block of lines of every image, the state of each pixel
    DROP, MAYBE or SURE (:func:`block_pass`).

    A reader thread fills one block buffer (lines of every SLC, from ``slcs``, and of every
    ``geometry`` raster) while the previous block is processed, so reading and computing
    overlap. SURE pixels go to ``on_sure(block index, rows, cols, values (n_images, k),
    geometry (n_geometry, k))`` at once, so their output is written while the disk is busy.
    What each block keeps (see SPILL_PARTS)
    stays in memory up to SPILL_AFTER_BYTES in all, later blocks are spilled to ``spill``; with
    ``amplitudes_only`` (small baselines, whose criterion needs no phase) only the float32
    amplitudes of MAYBE pixels are kept, half the bytes. Returns (per block the kept arrays or
    the spill file stem, amplitude sums, counts per image).
    """
    n, length, width = len(slcs.readers), stack.length, stack.width
    bufs: list[np.ndarray | None] = [None, None]
    geo_bufs = [[np.empty((block_rows, width), dtype=g.dtype) for g in geometry] for _ in range(2)]
    sums = np.zeros(n)
    counts = np.zeros(n, dtype=np.int64)
    blocks: list[Path | tuple[np.ndarray, ...]] = []
    in_memory = 0
    spill.mkdir(parents=True, exist_ok=True)
    starts = list(range(0, length, block_rows))

    def load(k: int, r0: int) -> None:
        r1 = min(r0 + block_rows, length)
        bufs[k] = slcs.read(r0, r1)
        for reader, buf in zip(geometry, geo_bufs[k]):
            reader.read(r0, r1, out=buf[: r1 - r0])

    def gather(geo_buf: list[np.ndarray], rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        out = np.empty((len(geo_buf), rr.size), dtype=np.float32)
        for j, g in enumerate(geo_buf):
            out[j] = g[rr, cc]
        return out

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, 0, starts[0])
        weights, select = criterion()
        for b, r0 in enumerate(tqdm(starts, desc=label, unit="block", leave=False)):
            pending.result()
            buf, geo_buf = bufs[b % 2], geo_bufs[b % 2]
            if b + 1 < len(starts):
                pending = pool.submit(load, (b + 1) % 2, starts[b + 1])
            state, t, c = select(buf, weights)
            sums += t
            counts += c
            sr, sc = np.nonzero(state == SURE)
            sure = ((sr + r0).astype(np.int32), sc.astype(np.int32), gather_pixels(buf, sr, sc))
            if sr.size and on_sure is not None:
                on_sure(b, *sure, gather(geo_buf, sr, sc))
            rr, cc = np.nonzero(state == MAYBE)
            values = gather_pixels(buf, rr, cc)
            if amplitudes_only:
                values = np.abs(values)
            kept = (
                *sure,
                (rr + r0).astype(np.int32),
                cc.astype(np.int32),
                values,
                gather(geo_buf, rr, cc),
            )
            in_memory += sure[2].nbytes + values.nbytes
            if in_memory <= SPILL_AFTER_BYTES:
                blocks.append(kept)
                continue
            path = spill / f"{label.replace(' ', '_')}_{b:06d}"
            for part, value in zip(SPILL_PARTS, kept):
                np.save(path.with_suffix(f".{part}.npy"), value)
            blocks.append(path)
    return blocks, sums, counts


class CandidateBlocks:
    """The exact candidates of an amplitude pass, block by block.

    Built from what the pass kept and the exact calibration constants. The SURE candidates'
    exact D_A (D_a_sb with ``pairs``) is computed (:attr:`sure_d_a`, per block) and checked:
    :attr:`sure_ok` is False should any of them not be a candidate after all (then the pass must
    be redone). The MAYBE pixels are reduced to the candidates; iterating yields them once per
    block, in row-major order, as (block index, rows, cols, D_A, values (n_images, k), geometry
    (n_geometry, k)). Spilled blocks keep only positions, D_A and the keep mask in memory and
    are read back from disk when iterated.
    """

    def __init__(
        self, items: list, calconst: np.ndarray, d_thresh: float, pairs: np.ndarray | None
    ) -> None:
        self.calconst = calconst
        self.n_checked = 0
        self.sure_ok = True
        self.sure_d_a: list[np.ndarray] = []
        self._blocks: list[Any] = []
        for k, item in enumerate(items):
            items[k] = None
            if isinstance(item, Path):
                sure_values, rows, cols, values = (
                    self._load(item, part) for part in ("sure_values", "rows", "cols", "values")
                )
                for part in SPILL_PARTS[:3]:
                    item.with_suffix(f".{part}.npy").unlink()
                geo = None
            else:
                _, _, sure_values, rows, cols, values, geo = item
            sure_d_a, sure_zero = self._exact(sure_values, pairs)
            self.sure_ok &= bool(np.all((sure_d_a < d_thresh) & ~sure_zero))
            self.sure_d_a.append(sure_d_a)
            d_a, has_zero = self._exact(values, pairs)
            keep = (d_a < d_thresh) & ~has_zero
            self.n_checked += len(d_a) + len(sure_d_a)
            if geo is None:
                self._blocks.append((k, rows[keep], cols[keep], d_a[keep], item, keep))
            else:
                self._blocks.append(
                    (k, rows[keep], cols[keep], d_a[keep], values[:, keep], geo[:, keep])
                )

    def _exact(self, values: np.ndarray, pairs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if pairs is None:
            return amplitude_dispersion(values, self.calconst)
        return sb_dispersion(values, self.calconst, pairs)

    @staticmethod
    def _load(stem: Path, part: str) -> np.ndarray:
        return np.load(stem.with_suffix(f".{part}.npy"))

    @property
    def n_candidates(self) -> int:
        """Number of candidates, SURE and confirmed MAYBE, in all blocks."""
        return sum(len(d) for d in self.sure_d_a) + sum(
            len(b[1]) for b in self._blocks if b is not None
        )

    def __iter__(
        self,
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        for k, block in enumerate(self._blocks):
            self._blocks[k] = None
            b, rows, cols, d_a, values, geo = block
            if isinstance(values, Path):
                stem, keep = values, geo
                values = self._load(stem, "values")[:, keep]
                geo = self._load(stem, "geometry")[:, keep]
                for part in SPILL_PARTS[3:]:
                    stem.with_suffix(f".{part}.npy").unlink()
            yield b, rows, cols, d_a, values, geo


def candidate_blocks(
    stack: isce.IsceStack,
    d_thresh: float,
    spill: Path,
    block_mb: float = 128.0,
    pairs: np.ndarray | None = None,
    geometry: Sequence[isce.RasterRows] = (),
    sample: Future | None = None,
    on_sure: OnSure | None = None,
    on_discard: Callable[[], None] | None = None,
    direct_io: bool = True,
) -> tuple[np.ndarray, CandidateBlocks]:
    """calamp + selpsc over the whole stack, reading every SLC byte once (plus a 1/32 sample).

    Returns the exact calibration constants (one per date) and the :class:`CandidateBlocks`.
    With ``pairs`` ((n_pairs, 2) 0-based indices into ``stack.dates``) the criterion is selsbc's
    (:func:`sb_dispersion`, D_A is then D_a_sb) instead of selpsc's.

    Provisional constants from a sample of lines (:func:`calamp_sample`, or the result of
    ``sample`` when it was started earlier) and their error margin bound every pixel's exact D_A
    during the single full pass: pixels surely below the threshold (:func:`subset_threshold`)
    go to ``on_sure`` during the pass (PS only; without ``on_sure`` there are none), pixels that
    may be below it (:func:`superset_threshold`) are kept and decided after the pass with the
    exact constants. Should the sample be off by more than its margin, or a SURE pixel turn out
    not to be a candidate (both checked), ``on_discard()`` is called and a second pass with the
    exact constants is made.
    """
    log = get_logger()
    t0 = time.perf_counter()
    first: dict[str, Any] = {}
    block_rows = _block_rows(len(stack.dates), stack.width, block_mb)
    slcs = isce.BlockStack(
        [stack.slc[d] for d in stack.dates], block_rows, n_buffers=2, direct=direct_io
    )

    def select(e: float) -> Select:
        if pairs is not None:

            def sb_select(
                buf: np.ndarray, w: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                keep, t, c = sb_block_pass(buf, w, pairs, d_thresh, e)
                return keep.astype(np.uint8) * np.uint8(MAYBE), t, c

            return sb_select
        maybe = superset_threshold(d_thresh, e)
        sure = subset_threshold(d_thresh, e) if on_sure is not None else 0.0
        return lambda buf, w: block_pass(buf, w, maybe, sure)

    def scan(
        criterion: Callable[[], tuple[np.ndarray, Select]], label: str
    ) -> tuple[list, np.ndarray, np.ndarray]:
        return _scan(
            stack, slcs, criterion, block_rows, spill, label, pairs is not None, geometry, on_sure
        )

    def sampled() -> tuple[np.ndarray, Select]:
        provisional, margin = (
            sample.result() if sample is not None else calamp_sample(stack, direct_io)
        )
        first.update(provisional=provisional, margin=margin, waited=time.perf_counter() - t0)
        return 1.0 / provisional, select(margin)

    try:
        files, sums, counts = scan(sampled, "amplitude pass")
        provisional, margin, t_sample = first["provisional"], first["margin"], first["waited"]
        for date, count in zip(stack.dates, counts):
            if count == 0:
                raise StampsError(f"{stack.slc[date]}: SLC is all zero (no amplitude above 0.001)")
        calconst = sums / counts
        err = weight_error(provisional, calconst)
        log.info(
            "calamp: %d SLCs, constants %.4g..%.4g (line sample within %.2g%%, margin "
            "%.2g%%); waited %.1f s for the sample, amplitude pass %.1f s",
            len(calconst),
            calconst.min(),
            calconst.max(),
            100 * err,
            100 * margin,
            t_sample,
            time.perf_counter() - t0 - t_sample,
        )
        cands = CandidateBlocks(files, calconst, d_thresh, pairs) if err <= margin else None
        if cands is None or not cands.sure_ok:
            log.warning(
                "calamp sample off by %.2g%% (margin %.2g%%)%s: second pass with the "
                "exact constants",
                100 * err,
                100 * margin,
                "" if cands is None else ", a pixel taken as sure is no candidate",
            )
            if on_discard is not None:
                on_discard()
            shutil.rmtree(spill, ignore_errors=True)
            files, _, _ = scan(lambda: (1.0 / calconst, select(EXACT_SLACK)), "amplitude pass 2")
            cands = CandidateBlocks(files, calconst, d_thresh, pairs)
            if not cands.sure_ok:
                raise RuntimeError(
                    "a pixel below the sure threshold with the exact constants is no candidate"
                )
    finally:
        slcs.close()
    log.info(
        "%s: %d candidates with %s < %g (of %d pixels; %d pixels checked exactly)",
        "selpsc" if pairs is None else "selsbc",
        cands.n_candidates,
        "D_A" if pairs is None else "D_a_sb",
        d_thresh,
        stack.length * stack.width,
        cands.n_checked,
    )
    return calconst, cands


def _chunk_rows(row_bytes: int) -> int:
    """Rows per HDF5 chunk of about 1 MiB."""
    return max(1, (1 << 20) // max(row_bytes, 1))


class PatchWriter:
    """Appends one patch's candidates to ``PATCH_n/pscands.h5`` block by block.

    Rows come in two kinds: candidates whose D_A is known when they are appended, and SURE
    candidates appended during the amplitude pass, whose exact D_A is only known afterwards
    (``d_a=None`` with their pass block index; :meth:`finish` takes them from ``sure_d_a``).
    With ``with_phase=False`` (small baselines) no phase is written and the file is marked with
    the attribute ``small_baseline``. ``geometry`` names the rows of the geometry array each
    block carries (lon, lat, hgt, la and optionally inc).
    """

    def __init__(
        self,
        directory: Path,
        patch: Patch,
        n_sec: int,
        geometry: Sequence[str],
        n_bperp: int = 0,
        with_phase: bool = True,
    ) -> None:
        self.directory = directory
        self.patch = patch
        self.n_sec = n_sec
        self.geometry = list(geometry)
        self.n_bperp = n_bperp
        self.with_phase = with_phase
        self.n = 0
        self._file: h5py.File | None = None
        self._d_a: list[np.ndarray | tuple[int, np.ndarray]] = []

    def _open(self) -> h5py.File:
        self.directory.mkdir(parents=True, exist_ok=True)
        rundir.write_patch_bounds(
            self.directory,
            (*self.patch.rg, *self.patch.az),
            (*self.patch.rg_core, *self.patch.az_core),
        )
        f = h5py.File(self.directory / ps_load_initial.PSCANDS, "w", rdcc_nbytes=4 << 20)
        f.attrs["format"] = PRODUCT_FORMAT
        if not self.with_phase:
            f.attrs["small_baseline"] = 1
        shapes: dict[str, tuple[tuple[int, ...], Any]] = {"ij": ((2,), np.int32)}
        if self.with_phase:
            shapes["ph"] = ((self.n_sec,), np.complex64)
        shapes["lonlat"] = ((2,), np.float32)
        shapes.update({g: ((), np.float32) for g in self.geometry if g not in ("lon", "lat")})
        if self.n_bperp:
            shapes["bperp_mat"] = ((self.n_bperp,), np.float32)
        for name, (tail, dtype) in shapes.items():
            rows = _chunk_rows(int(np.prod(tail, dtype=np.int64)) * np.dtype(dtype).itemsize)
            f.create_dataset(
                name, shape=(0, *tail), maxshape=(None, *tail), dtype=dtype, chunks=(rows, *tail)
            )
        return f

    def append(
        self,
        rows: np.ndarray,
        cols: np.ndarray,
        d_a: np.ndarray | None,
        ifg: np.ndarray | None,
        geo: np.ndarray,
        block: int = -1,
    ) -> None:
        """Append the candidates of one block that fall inside the patch window.

        ``d_a`` (k,) or None for SURE candidates of pass block ``block``; ``ifg`` (k, n_sec)
        complex64, or None without phase; ``geo`` (n_geometry + n_bperp, k) float32: the named
        geometry rows, then Bperp (m) per secondary from full-resolution baseline grids.
        """
        (rg1, rg2), (az1, az2) = self.patch.rg, self.patch.az
        inside = np.flatnonzero(
            (cols >= rg1 - 1) & (cols <= rg2 - 1) & (rows >= az1 - 1) & (rows <= az2 - 1)
        )
        if inside.size == 0:
            return
        if self._file is None:
            self._file = self._open()
        g = dict(zip(self.geometry, geo[:, inside]))
        values = {
            "ij": np.column_stack([rows[inside], cols[inside]]),
            "lonlat": np.column_stack([g["lon"], g["lat"]]),
        }
        if self.with_phase:
            values["ph"] = ifg[inside]
        values.update({k: v for k, v in g.items() if k not in ("lon", "lat")})
        if self.n_bperp:
            values["bperp_mat"] = geo[len(self.geometry) :, inside].T
        stop = self.n + inside.size
        for name, value in values.items():
            ds = self._file[name]
            ds.resize(stop, axis=0)
            ds[self.n : stop] = value
        self.n = stop
        self._d_a.append(d_a[inside] if d_a is not None else (block, inside))

    def discard(self) -> None:
        """Forget everything appended (the pass is being redone)."""
        self.close()
        (self.directory / ps_load_initial.PSCANDS).unlink(missing_ok=True)
        self.n = 0
        self._d_a = []

    def finish(self, data: dict[str, Any], sure_d_a: Sequence[np.ndarray]) -> bool:
        """Write D_A and the stack datasets and close; False (and nothing written) when empty."""
        if self._file is None:
            return False
        d_a = np.concatenate(
            [p if isinstance(p, np.ndarray) else sure_d_a[p[0]][p[1]] for p in self._d_a]
        )
        self._file.create_dataset("D_A", data=d_a.astype(np.float32))
        for name, value in data.items():
            if value is None:
                continue
            if isinstance(value, str):
                self._file.create_dataset(name, data=value, dtype=h5py.string_dtype())
            elif isinstance(value, list):
                self._file.create_dataset(
                    name, data=np.array(value, dtype=object), dtype=h5py.string_dtype()
                )
            else:
                self._file.create_dataset(name, data=np.asarray(value))
        self._file.close()
        self._file = None
        return True

    def close(self) -> None:
        """Close the file if still open (after an error)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _check_output(
    output: Path, merged: Path, reference: str, small_baseline: bool = False
) -> dict | None:
    """An existing output must be empty or a run of the same stack, reference date and kind.

    For small baselines it may also hold just what define_sb_pairs wrote (the pair list and
    its plot).
    """
    if not output.exists():
        return None
    if not output.is_dir():
        raise StampsError(f"{output}: exists and is not a directory")
    meta_path = rundir.metadata_path(output)
    if not meta_path.is_file():
        allowed = {LOG_FILE, rundir.SB_LIST, rundir.SB_PLOT} if small_baseline else {LOG_FILE}
        if any(p for p in output.iterdir() if p.name not in allowed):
            raise StampsError(
                f"{output}: not empty and holds no {rundir.METADATA}; choose a new --output"
            )
        return None
    old = rundir.read_metadata(output)
    if (
        Path(old.get("merged_dir", "")).resolve() != merged.resolve()
        or old.get("reference_date") != reference
    ):
        raise StampsError(
            f"{output}: holds a different run ({old.get('merged_dir')}, reference "
            f"{old.get('reference_date')}); choose a new --output"
        )
    if ("small_baseline" in old) != small_baseline:
        kinds = (
            ("a small-baseline", "a PS")
            if "small_baseline" in old
            else ("a PS", "a small-baseline")
        )
        raise StampsError(
            f"{output}: holds {kinds[0]} run; choose a new --output for {kinds[1]} run"
        )
    return old


def _read_pairs(
    path: Path, stack: isce.IsceStack
) -> tuple[list[tuple[str, str]], np.ndarray, bytes]:
    """Pairs of a small_baselines.list checked against the stack.

    Returns the pairs (dates), their (n_pairs, 2) 0-based indices into ``stack.dates`` and the
    file's bytes (copied into the run).
    """
    if not path.is_file():
        raise StampsError(
            f"{path}: small baseline list not found; run define_sb_pairs first (or pass --sb-list)"
        )
    pairs = read_sb_list(path)
    index = {d: i for i, d in enumerate(stack.dates)}
    for a, b in pairs:
        for date in (a, b):
            if date not in index:
                raise StampsError(
                    f"{path}: date {date} (pair {a} {b}) is not in the stack {stack.merged / 'SLC'}"
                    f" ({stack.dates[0]}..{stack.dates[-1]}, {len(stack.dates)} dates)"
                )
    if len(pairs) < 2:
        raise StampsError(
            f"{path}: {len(pairs)} pair; a small baseline network needs at least 2 "
            f"(rerun define_sb_pairs with wider limits)"
        )
    return (
        pairs,
        np.array([[index[a], index[b]] for a, b in pairs], dtype=np.int64),
        path.read_bytes(),
    )


def _geometry_readers(
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


def _baseline_grid_paths(stack: isce.IsceStack, reference: str) -> tuple[list[Path] | None, bool]:
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


def _load_bperp_grids(paths: Sequence[Path], stack: isce.IsceStack) -> np.ndarray:
    """Coarse baseline grids ``paths`` as one (k, ny, nx) array (m)."""
    grids = [isce.read_raster(p) for p in paths]
    if len({g.shape for g in grids}) != 1:
        raise StampsError(f"{stack.merged / 'baselines'}: baseline grids differ in size")
    return np.stack(grids)


def _commit(staging: Path, output: Path, patch_names: list[str]) -> None:
    """Move the staged run into ``output``, keeping a user's parms.json/localparms.json."""
    if not output.exists():
        os.replace(staging, output)
        return
    for old in rundir.patch_folders(output):
        if old.name not in patch_names:
            shutil.rmtree(old)
    for stale in output.glob("*.h5"):
        stale.unlink()
    for item in staging.iterdir():
        target = output / item.name
        if item.name == LOG_FILE:
            with open(target, "a", encoding="utf-8") as f:
                f.write(item.read_text(encoding="utf-8"))
            continue
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(item, target)
    shutil.rmtree(staging, ignore_errors=True)


def prepare(
    merged: str | Path,
    output: str | Path,
    reference_date: str | None = None,
    bootstrap_metadata: bool = True,
    wavelength: float | None = None,
    heading: float | None = None,
    range_patches: int = 1,
    azimuth_patches: int = 1,
    range_overlap: int = 50,
    azimuth_overlap: int = 50,
    amp_dispersion: float | None = None,
    write_step1: bool = False,
    inc_angle: bool = True,
    block_mb: float = 128.0,
    small_baseline: bool = False,
    sb_list: str | Path | None = None,
    direct_io: bool = True,
) -> dict[str, Any]:
    """Prepare run directory ``output`` from ISCE2 ``merged``; returns a summary dict.

    Everything is built in a staging folder beside ``output`` and moved in at the end, so a
    failure leaves ``output`` as it was. Rerunning on the same stack and reference date replaces
    the patches and keeps the user's parms.json. ``amp_dispersion`` defaults to 0.4 (PS) or 0.6
    (small baselines). With ``small_baseline`` the candidates are selected on the pairs of
    ``sb_list`` (default ``output/small_baselines.list``, written by define_sb_pairs), whose copy
    is kept in ``output``; pscands.h5 then holds no phase (build_sb_phase adds it).
    ``direct_io=False`` reads the SLCs through the page cache instead of with O_DIRECT.
    """
    from stamps_python import parms as parms_mod

    start = time.perf_counter()
    merged, output = Path(merged), Path(output)
    if amp_dispersion is None:
        amp_dispersion = SB_AMP_DISPERSION if small_baseline else PS_AMP_DISPERSION
    if not 0 < amp_dispersion < 2:
        raise StampsError(f"--amp-dispersion: {amp_dispersion} is outside (0, 2)")
    if small_baseline and write_step1:
        raise StampsError(
            "--write-step1 does not apply with --small-baseline: run "
            "build_sb_phase on the run directory after prep_isce"
        )
    if sb_list is not None and not small_baseline:
        raise StampsError("--sb-list: only used with --small-baseline")
    check_output_dir(output, "--output")
    if output.is_dir():  # the staging folder is made beside it
        check_output_dir(output.parent, f"--output {output}: its parent")
    stack = isce.open_stack(merged)
    reference = reference_date or isce.infer_reference(stack)
    parse_yyyymmdd(reference, "--reference-date")
    if reference not in stack.dates:
        raise StampsError(
            f"--reference-date {reference}: not in the stack {merged / 'SLC'} "
            f"({stack.dates[0]}..{stack.dates[-1]}, {len(stack.dates)} dates)"
        )
    previous = _check_output(output, merged, reference, small_baseline)
    pairs: list[tuple[str, str]] = []
    pair_ix = None
    if small_baseline:
        list_path = Path(sb_list) if sb_list is not None else output / rundir.SB_LIST
        pairs, pair_ix, list_bytes = _read_pairs(list_path, stack)
    patches = patch_layout(
        stack.width, stack.length, range_patches, azimuth_patches, range_overlap, azimuth_overlap
    )

    staging = output.parent / f".{output.name}.prep-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    log = setup_logging(staging)
    # the calamp line sample, the baseline grids, the metadata's raster samples and numba's
    # kernels load in the background, side by side
    background = ThreadPoolExecutor(max_workers=4)
    try:
        sample = background.submit(calamp_sample, stack, direct_io)
        # coarse topsStack grids go into pscands.h5 whole (Step 1 interpolates them at the PS)
        # and are only needed after the pass; full-resolution ones are read with the geometry,
        # line block by line block, into bperp_mat per candidate
        grid_paths, full_grids = _baseline_grid_paths(stack, reference)
        grids_future = (
            background.submit(_load_bperp_grids, grid_paths, stack)
            if grid_paths and not full_grids
            else None
        )
        background.submit(load_kernels, small_baseline)
        meta_future = (
            background.submit(isce.bootstrap_metadata, stack, reference)
            if bootstrap_metadata
            else None
        )
        log.info(
            "prep_isce %s: %s, %d dates %s..%s, %d lines x %d samples, reference %s",
            __version__,
            merged,
            len(stack.dates),
            stack.dates[0],
            stack.dates[-1],
            stack.length,
            stack.width,
            reference,
        )

        def checked(meta: dict[str, Any]) -> dict[str, Any]:
            if wavelength is not None:
                meta["wavelength"] = float(wavelength)
            if heading is not None:
                meta["heading"] = float(heading)
            for key in ("wavelength", "heading"):
                if not np.isfinite(meta.get(key, np.nan)):
                    raise StampsError(f"{key} unknown: pass --bootstrap-metadata or --{key}")
            return meta

        if meta_future is not None:
            # a missing or unreadable XML fails now; the rest of the metadata is read during the
            # pass and checked after it
            isce.read_isce_xml(isce.reference_xml(stack))
        elif previous is not None:
            meta = checked(previous)
        else:
            meta = checked(
                {
                    "processor": "isce",
                    "merged_dir": str(merged.resolve()),
                    "dates": list(stack.dates),
                    "reference_date": reference,
                    "n_dates": len(stack.dates),
                    "length": stack.length,
                    "width": stack.width,
                }
            )
        bperp = isce.read_bperp(stack, reference)
        if small_baseline:
            in_pairs = set(pair_ix.ravel().tolist())
            unused = [d for i, d in enumerate(stack.dates) if i not in in_pairs]
            log.info(
                "small baselines: %d pairs from %s, D_a_sb threshold %g",
                len(pairs),
                list_path,
                amp_dispersion,
            )
            if unused:
                log.warning(
                    "%d date(s) in no pair of %s: %s", len(unused), list_path, ", ".join(unused)
                )

        ref_i = stack.dates.index(reference)
        sec_i = [i for i, d in enumerate(stack.dates) if d != reference]
        geo_names, geo_readers = _geometry_readers(
            stack, inc_angle, grid_paths if full_grids else ()
        )
        writers = [
            PatchWriter(
                staging / p.name,
                p,
                len(sec_i),
                geo_names,
                len(sec_i) if full_grids else 0,
                with_phase=not small_baseline,
            )
            for p in patches
        ]

        # the sure candidates are appended to the patch files by a writer thread (h5py releases
        # the GIL while it writes), at most WRITES_IN_FLIGHT blocks behind the pass
        write_pool = ThreadPoolExecutor(max_workers=1)
        pending_writes: deque[Future] = deque()

        def append_all(*args: Any) -> None:
            for writer in writers:
                writer.append(*args)

        def writes_done() -> None:
            while pending_writes:
                pending_writes.popleft().result()

        def on_sure(
            block: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, geo: np.ndarray
        ) -> None:
            ifg = interferograms(values, ref_i)
            while len(pending_writes) >= WRITES_IN_FLIGHT:
                pending_writes.popleft().result()
            pending_writes.append(write_pool.submit(append_all, rows, cols, None, ifg, geo, block))

        def on_discard() -> None:
            writes_done()
            for writer in writers:
                writer.discard()

        try:
            try:
                calconst, cands = candidate_blocks(
                    stack,
                    amp_dispersion,
                    staging / "_spill",
                    block_mb,
                    pairs=pair_ix,
                    geometry=geo_readers,
                    sample=sample,
                    on_sure=None if small_baseline else on_sure,
                    on_discard=on_discard,
                    direct_io=direct_io,
                )
                writes_done()
            finally:
                for reader in geo_readers:
                    reader.close()
            after_pass = time.perf_counter()
            if meta_future is not None:
                meta = checked(meta_future.result())
            grids = None if grids_future is None else grids_future.result()
            n_cand = cands.n_candidates
            for _, rows, cols, d_a, values, geo in cands:
                ifg = None if small_baseline else interferograms(values, ref_i)
                for writer in writers:
                    writer.append(rows, cols, d_a, ifg, geo)
            shutil.rmtree(staging / "_spill", ignore_errors=True)
            common = {
                "dates": list(stack.dates),
                "master_date": reference,
                "bperp": np.array([bperp[d] for d in stack.dates]),
                "calconst": calconst,
                "heading": float(meta["heading"]),
                "lambda": float(meta["wavelength"]),
                "image_size": np.array([stack.length, stack.width]),
            }
            if grids is not None:
                common["bperp_grids"] = grids
            patch_names = []
            for writer in writers:
                if not writer.finish(common, cands.sure_d_a):
                    log.warning(
                        "%s has no candidates: left out of %s", writer.patch.name, rundir.PATCH_LIST
                    )
                    continue
                patch_names.append(writer.patch.name)
                log.info(
                    "%s: range %d-%d, azimuth %d-%d: %d candidates",
                    writer.patch.name,
                    *writer.patch.rg,
                    *writer.patch.az,
                    writer.n,
                )
            log.info("candidates finished %.1f s after the pass", time.perf_counter() - after_pass)
        finally:
            write_pool.shutdown(wait=True, cancel_futures=True)
            for writer in writers:
                writer.close()
        if write_step1:
            for name in patch_names:
                pdir = staging / name
                ps_load_initial.write_step1(pdir, load_product(pdir / ps_load_initial.PSCANDS))
        if not patch_names:
            raise StampsError(
                f"no pixel of {merged} has {'D_a_sb' if small_baseline else 'D_A'}"
                f" < {amp_dispersion}: no candidates"
            )

        meta.update(
            {
                "prep": {
                    "amp_dispersion": amp_dispersion,
                    "range_patches": range_patches,
                    "azimuth_patches": azimuth_patches,
                    "range_overlap": range_overlap,
                    "azimuth_overlap": azimuth_overlap,
                    "n_candidates": n_cand,
                    "inc_angle": inc_angle,
                    "bperp_grids": grid_paths is not None,
                    "stamps_python_version": __version__,
                },
                "bperp": {d: bperp[d] for d in stack.dates},
                "calconst": dict(zip(stack.dates, map(float, calconst))),
            }
        )
        if small_baseline:
            meta["small_baseline"] = {
                "list": rundir.SB_LIST,
                "n_pairs": len(pairs),
                "amp_dispersion": amp_dispersion,
                "source": str(list_path.resolve()),
                "pairs": [f"{a}_{b}" for a, b in pairs],
            }
            (staging / rundir.SB_LIST).write_bytes(list_bytes)
        rundir.write_metadata(staging, meta)
        rundir.write_patch_list(staging, patch_names)
        (staging / CALAMP_FILE).write_text(
            "".join(f"{stack.slc[d]} {c:.6f}\n" for d, c in zip(stack.dates, calconst))
        )
        values = {"lambda": float(meta["wavelength"]), "heading": float(meta["heading"])}
        if not (output / parms_mod.PARMS_FILE).is_file():
            parms_mod.write_parms(staging, small_baseline=small_baseline, overrides=values)
        log.info(
            "prep_isce wrote %d patches, %d candidates in %.1f s (peak memory %.0f MiB)",
            len(patch_names),
            n_cand,
            time.perf_counter() - start,
            peak_memory_mb(),
        )
    except BaseException:
        background.shutdown(wait=True, cancel_futures=True)
        setup_logging(None)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    background.shutdown(wait=True)
    setup_logging(None)
    _commit(staging, output, patch_names)
    if (output / parms_mod.PARMS_FILE).is_file():
        for name, value in values.items():
            parms_mod.set_parm(output, name, value)
    setup_logging(output)
    get_logger().info("run directory: %s", output)
    summary = {
        "output": output,
        "n_candidates": n_cand,
        "patches": patch_names,
        "calconst": calconst,
        "metadata": meta,
    }
    if small_baseline:
        summary["small_baseline"] = meta["small_baseline"]
    return summary


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of prep_isce."""
    p = argparse.ArgumentParser(
        prog="prep_isce", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("merged", help="ISCE2 topsStack merged/ folder (with SLC/ and geom_reference/)")
    p.add_argument("--output", "-o", required=True, help="run directory to create (or refresh)")
    p.add_argument(
        "--reference-date",
        help="reference (master) date YYYYMMDD; default: the one named by the baselines/ folders",
    )
    p.add_argument(
        "--bootstrap-metadata",
        action="store_true",
        help="read wavelength, heading, spacing, slant range, angles from the ISCE2 "
        "XML and geometry into metadata.json",
    )
    p.add_argument(
        "--wavelength", type=float, help="radar wavelength in m (default: from the reference XML)"
    )
    p.add_argument(
        "--heading", type=float, help="satellite heading in deg (default: from the lat/lon grids)"
    )
    p.add_argument(
        "--range-patches", type=int, default=1, help="number of patches across range (mt_prep prg)"
    )
    p.add_argument(
        "--azimuth-patches",
        type=int,
        default=1,
        help="number of patches along azimuth (mt_prep paz)",
    )
    p.add_argument(
        "--range-overlap",
        type=int,
        default=50,
        help="overlap of neighbouring patches in range, pixels",
    )
    p.add_argument(
        "--azimuth-overlap",
        type=int,
        default=50,
        help="overlap of neighbouring patches in azimuth, lines",
    )
    p.add_argument(
        "--amp-dispersion",
        type=float,
        default=None,
        help="amplitude dispersion threshold for candidates: D_A for PS (default "
        "0.4), the amplitude-difference dispersion D_a_sb with --small-baseline "
        "(default 0.6)",
    )
    p.add_argument(
        "--small-baseline",
        action="store_true",
        help="small-baseline run: select candidates on the pairs of the list (no "
        "phase extracted; run build_sb_phase afterwards)",
    )
    p.add_argument(
        "--sb-list",
        help="small_baselines.list to use (copied into the run); "
        "default: OUTPUT/small_baselines.list written by define_sb_pairs",
    )
    p.add_argument(
        "--write-step1",
        action="store_true",
        help="also write the Step-1 workspaces (ps1.h5, ph1.h5, ...) per patch (PS only)",
    )
    p.add_argument(
        "--no-inc-angle",
        action="store_true",
        help="give StaMPS only the look angle (la1), no incidence angle (inc1)",
    )
    p.add_argument(
        "--block-mb",
        type=float,
        default=128.0,
        help="memory for one block of lines of all SLCs, MiB (two blocks are used)",
    )
    p.add_argument(
        "--buffered-io",
        action="store_true",
        help="read the SLCs through the page cache instead of with O_DIRECT (which "
        "is used where the file system allows it); may be faster on network file "
        "systems",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="more detail on the console")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run prep_isce with command-line arguments ``argv``."""
    args = build_parser().parse_args(argv)
    setup_logging(None, verbose=args.verbose)
    prepare(
        args.merged,
        args.output,
        reference_date=args.reference_date,
        bootstrap_metadata=args.bootstrap_metadata,
        wavelength=args.wavelength,
        heading=args.heading,
        range_patches=args.range_patches,
        azimuth_patches=args.azimuth_patches,
        range_overlap=args.range_overlap,
        azimuth_overlap=args.azimuth_overlap,
        amp_dispersion=args.amp_dispersion,
        write_step1=args.write_step1,
        inc_angle=not args.no_inc_angle,
        block_mb=args.block_mb,
        small_baseline=args.small_baseline,
        sb_list=args.sb_list,
        direct_io=not args.buffered_io,
    )
    return 0


def cli() -> int:
    """Console-script entry point."""
    return run_cli(main)


if __name__ == "__main__":
    raise SystemExit(cli())

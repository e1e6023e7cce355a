"""The amplitude pass of StaMPS' selpsc (selsbc for small baselines): every pixel's amplitude
dispersion over the stack, reading each SLC byte once, and the exact candidates.

With provisional calibration constants and their error margin (:mod:`.calamp`), each pixel of
the single pass is DROP, MAYBE or SURE: SURE candidates are handed over during the pass, MAYBE
pixels are kept (in memory, then spilled to disk) and decided with the exact constants after
it. Should the margin not hold, a second pass with the exact constants decides.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.io import isce
from stamps_python.numerics.amplitude import (
    MAYBE,
    SURE,
    amplitude_dispersion,
    block_pass,
    gather_pixels,
    sb_block_pass,
    sb_dispersion,
    subset_threshold,
    superset_threshold,
    weight_error,
)
from stamps_python.prep.calamp import calamp_sample
from stamps_python.prep.window import CropWindow, blank_excluded, whole_grid
from stamps_python.utils import StampsError, get_logger, progress_bar

# Superset pixels of the amplitude pass are kept in memory up to this many bytes, then spilled.
SPILL_AFTER_BYTES = 768 * 2**20
# What one block of the pass keeps, in memory or spilled to .npy files under one stem: the SURE
# candidates (rows, cols, complex values; their phase, geometry and baselines were handed to
# ``on_sure`` already) and the MAYBE pixels (rows, cols, complex values or float32 amplitudes,
# geometry (n_geometry, k) float32), decided after the pass with the exact constants.
SPILL_PARTS = ("sure_rows", "sure_cols", "sure_values", "rows", "cols", "values", "geometry")
# Relative weight error allowed for in a pass with the exact constants (float32 amplitudes).
EXACT_SLACK = 1e-5


def _block_rows(n_images: int, width: int, block_mb: float) -> int:
    """Lines per block so that one block of every SLC takes ``block_mb`` MiB (two are in use)."""
    return max(1, int(block_mb * 2**20 // (n_images * width * 8)))


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
    window: CropWindow | None = None,
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
    amplitudes of MAYBE pixels are kept, half the bytes. Only the lines of ``window`` are read
    (whole lines), only its samples are looked at, and its masked pixels are zeroed first (so
    they are in no calamp sum and never candidates). Returns (per block the kept arrays or the
    spill file stem, amplitude sums, counts per image); rows and columns are the merged grid's.
    """
    window = window or whole_grid(stack)
    n, width = len(slcs.readers), stack.width
    cols, c0 = window.columns(), window.sample0
    bufs: list[np.ndarray | None] = [None, None]
    geo_full = [[np.empty((block_rows, width), dtype=g.dtype) for g in geometry] for _ in range(2)]
    geo_bufs: list[list[np.ndarray]] = [[], []]
    sums = np.zeros(n)
    counts = np.zeros(n, dtype=np.int64)
    blocks: list[Path | tuple[np.ndarray, ...]] = []
    in_memory = 0
    spill.mkdir(parents=True, exist_ok=True)
    starts = list(range(window.line0, window.line1, block_rows))

    def load(k: int, r0: int) -> None:
        r1 = min(r0 + block_rows, window.line1)
        block = slcs.read(r0, r1)[:, :, cols]
        blank_excluded(block, window.excluded_rows(r0, r1))
        bufs[k] = block
        for reader, buf in zip(geometry, geo_full[k]):
            reader.read(r0, r1, out=buf[: r1 - r0])
        geo_bufs[k] = [buf[: r1 - r0, cols] for buf in geo_full[k]]

    def gather(geo_buf: list[np.ndarray], rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
        out = np.empty((len(geo_buf), rr.size), dtype=np.float32)
        for j, g in enumerate(geo_buf):
            out[j] = g[rr, cc]
        return out

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(load, 0, starts[0])
        weights, select = criterion()
        for b, r0 in enumerate(progress_bar(starts, desc=label, unit="block", leave=False)):
            pending.result()
            buf, geo_buf = bufs[b % 2], geo_bufs[b % 2]
            if b + 1 < len(starts):
                pending = pool.submit(load, (b + 1) % 2, starts[b + 1])
            state, t, c = select(buf, weights)
            sums += t
            counts += c
            sr, sc = np.nonzero(state == SURE)
            sure = (
                (sr + r0).astype(np.int32),
                (sc + c0).astype(np.int32),
                gather_pixels(buf, sr, sc),
            )
            if sr.size and on_sure is not None:
                on_sure(b, *sure, gather(geo_buf, sr, sc))
            rr, cc = np.nonzero(state == MAYBE)
            values = gather_pixels(buf, rr, cc)
            if amplitudes_only:
                values = np.abs(values)
            kept = (
                *sure,
                (rr + r0).astype(np.int32),
                (cc + c0).astype(np.int32),
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
    window: CropWindow | None = None,
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
    exact constants is made. With ``window`` only its lines and samples take part, its masked
    pixels in neither calamp nor the selection (mt_prep's maskfile).
    """
    log = get_logger()
    window = window or whole_grid(stack)
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
            stack,
            slcs,
            criterion,
            block_rows,
            spill,
            label,
            pairs is not None,
            geometry,
            on_sure,
            window,
        )

    def sampled() -> tuple[np.ndarray, Select]:
        provisional, margin = (
            sample.result() if sample is not None else calamp_sample(stack, direct_io, window)
        )
        first.update(provisional=provisional, margin=margin, waited=time.perf_counter() - t0)
        return 1.0 / provisional, select(margin)

    try:
        files, sums, counts = scan(sampled, "amplitude pass")
        provisional, margin, t_sample = first["provisional"], first["margin"], first["waited"]
        for date, count in zip(stack.dates, counts):
            if count == 0 and window.full:
                raise StampsError(f"{stack.slc[date]}: SLC is all zero (no amplitude above 0.001)")
            if count == 0:
                raise StampsError(
                    f"{stack.slc[date]}: no amplitude above 0.001 in {window.describe()}; "
                    f"choose another --crop-box / --crop-window / --mask"
                )
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
        window.lines * window.samples - window.n_excluded,
        cands.n_checked,
    )
    return calconst, cands

"""Amplitude calibration (StaMPS' calamp): provisional constants from a line sample, and
``calamp.txt``.

The exact constants (mean amplitude over pixels above 0.001, per SLC) come out of the amplitude
pass (:mod:`.candidates`). The provisional ones come from 1/SAMPLE_EVERY of the lines; their
error (between images, up to a common factor) is estimated from two interleaved halves of that
sample, and the pass widens its superset threshold for it (within [MIN_MARGIN, MAX_MARGIN]).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stamps_python.io import isce
from stamps_python.numerics.amplitude import accumulate_amplitudes, weight_error
from stamps_python.prep.window import CropWindow, blank_excluded, whole_grid

CALAMP_FILE = "calamp.txt"
SAMPLE_EVERY = 32
SAMPLE_RUN = 16
MIN_MARGIN = 0.002
MAX_MARGIN = 0.02


def calamp_sample(
    stack: isce.IsceStack, direct_io: bool = True, window: CropWindow | None = None
) -> tuple[np.ndarray, float]:
    """Provisional calamp constants from 1/SAMPLE_EVERY of the lines, and their error margin.

    The sample is runs of SAMPLE_RUN lines spread over the image (over ``window``, its masked
    pixels left out), read as the pass reads (:class:`isce.BlockStack`). The margin is the
    relative disagreement (between images, up to a common factor) of the constants from the
    two interleaved halves of the sample (odd and even runs), clipped to [MIN_MARGIN,
    MAX_MARGIN].
    """
    window = window or whole_grid(stack)
    line0, line1, width = window.line0, window.line1, window.samples
    step = SAMPLE_RUN * SAMPLE_EVERY
    starts = np.arange(line0, line1, step) + step // 2
    runs = [np.arange(r, min(r + SAMPLE_RUN, line1)) for r in starts if r < line1]
    if not runs:  # a short image: one run in its middle
        first = max(line0, (line0 + line1 - SAMPLE_RUN) // 2)
        runs = [np.arange(first, min(first + SAMPLE_RUN, line1))]
    lines = max(len(run) for run in runs)
    s1 = np.zeros((lines, width))
    s2 = np.zeros_like(s1)
    totals = np.zeros((len(stack.dates), 2))
    counts = np.zeros((len(stack.dates), 2))
    with isce.BlockStack(
        [stack.slc[d] for d in stack.dates], lines, n_buffers=1, direct=direct_io
    ) as slcs:
        for j, run in enumerate(runs):
            r0, r1 = int(run[0]), int(run[-1]) + 1
            block = slcs.read(r0, r1)[:, :, window.columns()]
            excluded = window.excluded_rows(r0, r1)
            if excluded is not None:
                block = block.copy()
                blank_excluded(block, excluded)
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


def write_calamp(directory: Path, stack: isce.IsceStack, calconst: np.ndarray) -> None:
    """``directory/calamp.txt`` as calamp writes it: per date the SLC path and its constant."""
    (directory / CALAMP_FILE).write_text(
        "".join(f"{stack.slc[d]} {c:.6f}\n" for d, c in zip(stack.dates, calconst))
    )

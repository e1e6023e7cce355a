"""prep_isce's options and the checks made before anything is written: the stack, the
reference date, the run directory, the patch layout, the small-baseline pair list and the
metadata that is not read from the stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python import rundir
from stamps_python.io import isce
from stamps_python.io.sb_list import read_sb_list
from stamps_python.prep.layout import Patch, patch_layout
from stamps_python.prep.window import CropWindow, crop_window
from stamps_python.utils import LOG_FILE, StampsError, check_output_dir, parse_yyyymmdd

PS_AMP_DISPERSION = 0.4
SB_AMP_DISPERSION = 0.6


@dataclass(frozen=True)
class PrepOptions:
    """The options of :func:`stamps_python.prep.prepare.prepare` (prep_isce's, same names).

    ``reference_date`` YYYYMMDD (default: the one the baselines/ folders name); with
    ``bootstrap_metadata`` wavelength, heading, spacings and angles are read from the ISCE2 XML
    and geometry, ``wavelength`` (m) and ``heading`` (deg) override them; patches and their
    overlaps in pixels; ``amp_dispersion`` defaults to 0.4 (PS) or 0.6 (small baselines);
    ``write_step1`` writes the Step-1 workspaces too (PS only); ``inc_angle=False`` gives only
    the look angle; ``block_mb`` MiB for one block of lines of all SLCs; with
    ``small_baseline`` the candidates are selected on the pairs of ``sb_list`` (default
    ``output/small_baselines.list``); ``direct_io=False`` reads the SLCs through the page cache.
    ``crop_box`` (S, N, W, E deg) or ``crop_window`` (line0, line1, sample0, sample1, 0-based,
    ends exclusive) restrict the run to part of the merged grid; ``mask`` names a raster on the
    merged grid (non-zero = excluded) or a polygon layer in lon/lat (inside = excluded).
    """

    reference_date: str | None = None
    bootstrap_metadata: bool = True
    wavelength: float | None = None
    heading: float | None = None
    range_patches: int = 1
    azimuth_patches: int = 1
    range_overlap: int = 50
    azimuth_overlap: int = 50
    amp_dispersion: float | None = None
    write_step1: bool = False
    inc_angle: bool = True
    block_mb: float = 128.0
    small_baseline: bool = False
    sb_list: str | Path | None = None
    direct_io: bool = True
    crop_box: tuple[float, float, float, float] | None = None
    crop_window: tuple[int, int, int, int] | None = None
    mask: str | Path | None = None


@dataclass(frozen=True)
class SbPairs:
    """The pairs of a small_baselines.list checked against the stack: dates, their (n_pairs, 2)
    0-based indices into the stack's dates, the list's path and bytes (copied into the run)."""

    dates: list[tuple[str, str]]
    index: np.ndarray
    path: Path
    data: bytes


@dataclass(frozen=True)
class PrepInputs:
    """What a prep_isce run works on, checked (:func:`check_inputs`).

    ``amp_dispersion`` is the threshold in use; ``meta`` the metadata known before the pass
    (the previous run's, or the stack's dates and size) with the wavelength and heading in it,
    None when they are bootstrapped during the pass; ``pairs`` only for small baselines;
    ``window`` the part of the merged grid the run covers (:mod:`.window`).
    """

    merged: Path
    output: Path
    options: PrepOptions
    stack: isce.IsceStack
    reference: str
    amp_dispersion: float
    patches: list[Patch]
    meta: dict[str, Any] | None
    pairs: SbPairs | None
    window: CropWindow


def check_inputs(merged: str | Path, output: str | Path, options: PrepOptions) -> PrepInputs:
    """Check ``options`` and open the stack ``merged`` for a run into ``output``, writing nothing.

    A bad input is a one-line StampsError naming the file or option.
    """
    merged, output = Path(merged), Path(output)
    small_baseline = options.small_baseline
    amp_dispersion = options.amp_dispersion
    if amp_dispersion is None:
        amp_dispersion = SB_AMP_DISPERSION if small_baseline else PS_AMP_DISPERSION
    if not 0 < amp_dispersion < 2:
        raise StampsError(f"--amp-dispersion: {amp_dispersion} is outside (0, 2)")
    if small_baseline and options.write_step1:
        raise StampsError(
            "--write-step1 does not apply with --small-baseline: run "
            "build_sb_phase on the run directory after prep_isce"
        )
    if options.sb_list is not None and not small_baseline:
        raise StampsError("--sb-list: only used with --small-baseline")
    check_output_dir(output, "--output")
    if output.is_dir():  # the staging folder is made beside it
        check_output_dir(output.parent, f"--output {output}: its parent")
    stack = isce.open_stack(merged)
    reference = options.reference_date or isce.infer_reference(stack)
    parse_yyyymmdd(reference, "--reference-date")
    if reference not in stack.dates:
        raise StampsError(
            f"--reference-date {reference}: not in the stack {merged / 'SLC'} "
            f"({stack.dates[0]}..{stack.dates[-1]}, {len(stack.dates)} dates)"
        )
    previous = check_output(output, merged, reference, small_baseline)
    pairs = None
    if small_baseline:
        sb_list = options.sb_list
        pairs = read_pairs(Path(sb_list) if sb_list is not None else output / rundir.SB_LIST, stack)
    window = crop_window(stack, options.crop_box, options.crop_window, options.mask)
    patches = patch_layout(
        window.samples,
        window.lines,
        options.range_patches,
        options.azimuth_patches,
        options.range_overlap,
        options.azimuth_overlap,
        window.sample0,
        window.line0,
    )
    meta = None
    if not options.bootstrap_metadata:
        if previous is None:
            previous = {
                "processor": "isce",
                "merged_dir": str(merged.resolve()),
                "dates": list(stack.dates),
                "reference_date": reference,
                "n_dates": len(stack.dates),
                "length": stack.length,
                "width": stack.width,
            }
        meta = checked_metadata(previous, options)
    return PrepInputs(
        merged, output, options, stack, reference, amp_dispersion, patches, meta, pairs, window
    )


def checked_metadata(meta: dict[str, Any], options: PrepOptions) -> dict[str, Any]:
    """``meta`` with the ``wavelength`` and ``heading`` options in it; both must be known."""
    if options.wavelength is not None:
        meta["wavelength"] = float(options.wavelength)
    if options.heading is not None:
        meta["heading"] = float(options.heading)
    for key in ("wavelength", "heading"):
        if not np.isfinite(meta.get(key, np.nan)):
            raise StampsError(f"{key} unknown: pass --bootstrap-metadata or --{key}")
    return meta


def check_output(
    output: Path, merged: Path, reference: str, small_baseline: bool = False
) -> dict | None:
    """An existing output must be empty or a run of the same stack, reference date and kind.

    It may hold the run's log alone (prep_isce's CLI starts it before the run), and for small
    baselines also what define_sb_pairs wrote (the pair list and its plot). Returns the
    previous run's metadata, None for a new run.
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


def read_pairs(path: Path, stack: isce.IsceStack) -> SbPairs:
    """The pairs of the small_baselines.list ``path``, checked against the stack."""
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
    return SbPairs(
        pairs,
        np.array([[index[a], index[b]] for a, b in pairs], dtype=np.int64),
        path,
        path.read_bytes(),
    )

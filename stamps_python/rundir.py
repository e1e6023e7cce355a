"""The run directory prep_isce makes: its file names, its patch folders and their readers.

A run directory holds ``metadata.json`` (what prep_isce read from the ISCE2 stack),
``patch.list`` (the patch folders, one per line, as mt_prep writes it), the folders
``PATCH_1``, ``PATCH_2``, ... each with ``patch.in`` (the patch with its overlap) and
``patch_noover.in`` (its core), and for a Small Baseline run ``small_baselines.list``.
``parms.json`` and ``localparms.json`` belong to :mod:`stamps_python.parms`.

Every script and step reads and writes these files through this module only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from stamps_python.utils import StampsError, atomic_output

METADATA = "metadata.json"
PATCH_LIST = "patch.list"
PATCH_IN = "patch.in"
PATCH_NOOVER = "patch_noover.in"
SB_LIST = "small_baselines.list"
SB_PLOT = "small_baselines.png"
PATCH_PREFIX = "PATCH_"


def patch_name(number: int) -> str:
    """Folder name of the 1-based patch ``number`` (``PATCH_3``)."""
    return f"{PATCH_PREFIX}{number}"


def patch_folders(run_dir: str | Path) -> list[Path]:
    """Every ``PATCH_*`` folder present in ``run_dir`` (listed or not), sorted by name."""
    return sorted(p for p in Path(run_dir).glob(f"{PATCH_PREFIX}*") if p.is_dir())


# ---------------------------------------------------------------------------- metadata.json


def metadata_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / METADATA


def read_metadata(run_dir: str | Path, require: Sequence[str] = (), hint: str = "") -> dict:
    """``metadata.json`` of ``run_dir`` as a dict; keys in ``require`` must be present.

    A missing or unreadable file, or a missing key, is a one-line StampsError; ``hint`` says
    what to run to make one (default: prep_isce).
    """
    path = metadata_path(run_dir)
    todo = hint or "run prep_isce first"
    if not path.is_file():
        raise StampsError(f"{Path(run_dir)}: no {METADATA}; not a run directory ({todo})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StampsError(f"{path}: unreadable ({exc})") from None
    if not isinstance(meta, dict):
        raise StampsError(f"{path}: not a JSON object; run prep_isce again")
    missing = [k for k in require if k not in meta]
    if missing:
        raise StampsError(f"{path}: has no {', '.join(missing)}; run prep_isce again")
    return meta


def write_metadata(directory: str | Path, meta: Mapping[str, Any]) -> Path:
    """Write ``meta`` as ``directory/metadata.json`` (atomic)."""
    path = metadata_path(directory)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return path


def nearest_metadata(directory: str | Path, levels: int = 2) -> Path | None:
    """``metadata.json`` of ``directory`` or of up to ``levels`` parents (a patch, or a folder
    inside a patch, finds its run's); None when there is none."""
    here = Path(directory)
    for d in (here, *here.parents[:levels]):
        path = d / METADATA
        if path.is_file():
            return path
    return None


# ------------------------------------------------------------------------------ patch.list


def read_patch_list(run_dir: str | Path) -> list[Path]:
    """Patch folders named in ``run_dir/patch.list`` in its order (all ``PATCH_*`` folders when
    there is no list); none is a StampsError."""
    run_dir = Path(run_dir)
    plist = run_dir / PATCH_LIST
    if plist.is_file():
        names = [line.strip() for line in plist.read_text().splitlines() if line.strip()]
    else:
        names = [p.name for p in patch_folders(run_dir)]
    if not names:
        raise StampsError(
            f"{run_dir}: no patches ({PATCH_LIST} empty and no {PATCH_PREFIX}* folders)"
        )
    return [run_dir / n for n in names]


def write_patch_list(directory: str | Path, names: Iterable[str]) -> Path:
    """Write ``directory/patch.list``, one patch folder name per line (atomic)."""
    path = Path(directory) / PATCH_LIST
    with atomic_output(path) as tmp:
        tmp.write_text("".join(f"{n}\n" for n in names))
    return path


def select_patches(run_dir: str | Path, wanted: Sequence[str] | None = None) -> list[Path]:
    """Folders of the patches in ``patch.list`` (all, or those named in ``wanted`` by folder
    name or path, in the list's order); an unknown name or a missing folder is a StampsError."""
    listed = read_patch_list(run_dir)
    if wanted:
        names = [p.name for p in listed]
        chosen = {Path(p).name for p in wanted}
        unknown = [p for p in wanted if Path(p).name not in names]
        if unknown:
            raise StampsError(
                f"--patches: {', '.join(map(str, unknown))} not in "
                f"{Path(run_dir) / PATCH_LIST} ({', '.join(names)})"
            )
        listed = [p for p in listed if p.name in chosen]
    for d in listed:
        if not d.is_dir():
            raise StampsError(f"{d}: patch folder not found (check {PATCH_LIST} / --patches)")
    return listed


# ------------------------------------------------------------------ patch.in, patch_noover.in


def write_patch_bounds(
    patch_dir: str | Path,
    full: tuple[int, int, int, int],
    core: tuple[int, int, int, int],
) -> None:
    """Write ``patch.in`` (``full``) and ``patch_noover.in`` (``core``): range first, last, then
    azimuth first, last; 1-based inclusive pixel numbers, one per line, as mt_prep writes them."""
    for name, bounds in ((PATCH_IN, full), (PATCH_NOOVER, core)):
        (Path(patch_dir) / name).write_text("".join(f"{int(v)}\n" for v in bounds))


def read_patch_core(patch_dir: str | Path) -> tuple[int, int, int, int]:
    """(range first, range last, azimuth first, azimuth last) of ``patch_noover.in``, 1-based
    inclusive; a missing file or one without four integers is a StampsError."""
    path = Path(patch_dir) / PATCH_NOOVER
    try:
        rg1, rg2, az1, az2 = (int(v) for v in path.read_text().split()[:4])
    except (OSError, ValueError):
        raise StampsError(f"{path}: missing or not four integers") from None
    return rg1, rg2, az1, az2


# -------------------------------------------------------------------- small_baselines.list


def sb_list_path(run_dir: str | Path, meta: Mapping[str, Any] | None = None) -> Path:
    """``small_baselines.list`` of a run (the name recorded in its metadata, if any)."""
    name = SB_LIST
    if meta is not None and isinstance(meta.get("small_baseline"), Mapping):
        name = str(meta["small_baseline"].get("list", SB_LIST))
    return Path(run_dir) / name

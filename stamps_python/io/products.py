"""HDF5 workspace products, named as the StaMPS MATLAB workspaces (``ps1.h5``, ``ph1.h5``, ...).

Each product holds one dataset per MATLAB variable. Index conventions differ from MATLAB in one
way only: indices *into arrays* (``sort_ix``, ``day_ix``, ``master_ix``, ``ifgday_ix``...) are
0-based, while pixel coordinates in ``ij`` keep StaMPS' meaning (column 0 is a 1-based point id,
columns 1 and 2 are the 0-based azimuth line and range sample).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stamps_python.utils import StampsError, atomic_output

PRODUCT_FORMAT = "stamps_python-1"


def product_path(directory: str | Path, name: str, version: int | str = "") -> Path:
    """Path of product ``name`` (e.g. ``ps``) and version (e.g. 1): ``directory/ps1.h5``."""
    return Path(directory) / f"{name}{version}.h5"


def require(path: str | Path, step: str) -> Path:
    """``path`` if the product exists, else a StampsError saying which step makes it."""
    path = Path(path)
    if not path.is_file():
        raise StampsError(f"{path}: not found; run {step} first")
    return path


@contextmanager
def _new_product(path: Path, attrs: Mapping[str, Any] | None) -> Iterator[h5py.File]:
    """An HDF5 product open for writing under a temporary name, renamed to ``path`` on success."""
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = PRODUCT_FORMAT
        for key, value in (attrs or {}).items():
            f.attrs[key] = value
        yield f


def save_product(
    path: str | Path, data: Mapping[str, Any], attrs: Mapping[str, Any] | None = None
) -> Path:
    """Write ``data`` (name -> array, scalar or string) to the HDF5 product ``path`` atomically.

    The file is written under a temporary name and renamed when complete, so an interrupted step
    leaves no half-written product. ``None`` values are skipped.
    """
    path = Path(path)
    with _new_product(path, attrs) as f:
        for name, value in data.items():
            if value is not None:
                write_dataset(f, name, value)
    return path


def write_dataset(group: h5py.Group, name: str, value: Any, chunk_large: bool = True) -> None:
    """Dataset ``name`` of ``group`` holding ``value``: a string or a list of strings (UTF-8),
    else an array, chunked when it has more than 4096 elements and ``chunk_large``."""
    if isinstance(value, str):
        group.create_dataset(name, data=value, dtype=h5py.string_dtype())
    elif isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        group.create_dataset(name, data=np.array(value, dtype=object), dtype=h5py.string_dtype())
    else:
        arr = np.asarray(value)
        group.create_dataset(name, data=arr, chunks=_chunks(arr.shape, chunk_large))


def _chunks(shape: tuple[int, ...], chunk_large: bool = True) -> bool | None:
    """h5py ``chunks`` argument of a dataset of ``shape``: automatic when it has more than 4096
    elements and ``chunk_large``, else contiguous."""
    return True if chunk_large and len(shape) >= 1 and int(np.prod(shape)) > 4096 else None


@contextmanager
def new_products(
    paths: Sequence[str | Path], attrs: Mapping[str, Any] | None = None
) -> Iterator[list[h5py.File]]:
    """Products ``paths`` open for writing under temporary names, all renamed only if the block
    succeeds (the first path renamed last); on failure none is written and no temporary is left.
    """
    with ExitStack() as stack:
        yield [stack.enter_context(_new_product(Path(p), attrs)) for p in paths]


def create_rows_dataset(
    group: h5py.Group, name: str, shape: tuple[int, ...], dtype: Any
) -> h5py.Dataset:
    """Empty dataset ``name`` of final ``shape`` and ``dtype``, chunked exactly as
    :func:`write_dataset` would chunk an array of that shape, to be filled by row ranges."""
    return group.create_dataset(name, shape=shape, dtype=dtype, chunks=_chunks(shape))


def save_product_rows(
    path: str | Path,
    name: str,
    shape: tuple[int, int],
    dtype: Any,
    row_blocks: Iterable[tuple[int, np.ndarray]],
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write one large 2-D dataset ``name`` of product ``path`` block of rows by block, atomically.

    ``row_blocks`` yields (first row, rows array); only one block is in memory at a time.
    """
    path = Path(path)
    with _new_product(path, attrs) as f:
        chunk_rows = max(1, min(shape[0], (1 << 20) // max(1, shape[1] * np.dtype(dtype).itemsize)))
        ds = f.create_dataset(
            name,
            shape=shape,
            dtype=dtype,
            chunks=(chunk_rows, shape[1]) if shape[0] and shape[1] else None,
        )
        for start, block in row_blocks:
            ds[start : start + len(block)] = block
    return path


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    return value


def load_product(path: str | Path, names: Iterable[str] | None = None) -> dict[str, Any]:
    """Read datasets ``names`` (all when None) of product ``path`` into a dict.

    A missing file or dataset is a :class:`StampsError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise StampsError(f"{path}: product not found")
    try:
        with h5py.File(path, "r") as f:
            keys = list(f.keys()) if names is None else list(names)
            out: dict[str, Any] = {}
            for key in keys:
                if key not in f:
                    raise StampsError(f"{path}: dataset '{key}' missing")
                out[key] = _decode(f[key][()])
            return out
    except OSError as exc:
        raise StampsError(f"{path}: not a readable HDF5 product ({exc})") from None


def product_attrs(path: str | Path) -> dict[str, Any]:
    """File-level attributes of product ``path``."""
    with h5py.File(path, "r") as f:
        return {k: _decode(v) for k, v in f.attrs.items()}


def check_rows(path: Path, values: np.ndarray, n_ps: int, step: str) -> np.ndarray:
    """``values`` if it has one row per PS, else a StampsError (a product from another PS set)."""
    if np.shape(values)[0] != n_ps:
        raise StampsError(
            f"{path}: has {np.shape(values)[0]} PS but ps2.h5 has {n_ps}; run {step} again"
        )
    return values


def ifg_label(ps: Mapping[str, Any], k: int, small_baseline: bool) -> str:
    """Name of 0-based interferogram ``k`` for log messages: its date (PS) or its number (SB)."""
    if not small_baseline and "dates" in ps and k < len(ps["dates"]):
        return str(ps["dates"][k])
    return f"interferogram {k + 1}"


def load_phase_inputs(
    directory: Path, step: str, ps_keys: list[str] | None = None
) -> tuple[dict[str, Any], np.ndarray, dict[str, Any], np.ndarray]:
    """ps2 (``ps_keys`` or all), ph2 ``ph``, pm2 (``ph_patch``, ``K_ps``, ``C_ps``) and bp2
    ``bperp_mat`` of ``directory``; a missing one says to run ``step``."""
    for name in ("ps2", "ph2", "pm2", "bp2"):
        require(product_path(directory, name), step)
    ps = load_product(product_path(directory, "ps2"), ps_keys)
    ph = load_product(product_path(directory, "ph2"), ["ph"])["ph"]
    pm = load_product(product_path(directory, "pm2"), ["K_ps", "C_ps", "ph_patch"])
    bperp_mat = load_product(product_path(directory, "bp2"), ["bperp_mat"])["bperp_mat"]
    return ps, ph, pm, bperp_mat

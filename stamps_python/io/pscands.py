"""``PATCH_n/pscands.h5``, the candidates of one patch: written by prep_isce
(:class:`PscandsWriter`), read into the Step-1 layout shared by ``ps_load_initial`` and
``sb_load_initial``: ps1 and its sort orders, candidate baselines and the per-candidate vectors
(la1, da1, hgt1, inc1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stamps_python.io.isce import sample_grids
from stamps_python.io.products import PRODUCT_FORMAT, write_dataset
from stamps_python.numerics.geodesy import llh2local, rotate_to_scene_axes
from stamps_python.utils import StampsError, datenum

PSCANDS = "pscands.h5"
# geometry rows stored together as the (k, 2) dataset lonlat
LONLAT = ("lon", "lat")


def _chunk_rows(row_bytes: int) -> int:
    """Rows per HDF5 chunk of about 1 MiB."""
    return max(1, (1 << 20) // max(row_bytes, 1))


class PscandsWriter:
    """Writes one ``pscands.h5`` block of candidates by block; the file is made at the first block.

    Per candidate (one row each): ``ij`` (k, 2) int32, the 0-based azimuth line and range
    sample; ``ph`` (k, n_sec) complex64, reference x conj(secondary), unless ``with_phase`` is
    False (small baselines: the file then has the attribute ``small_baseline``); ``lonlat`` (k,
    2) float32 deg; one (k,) float32 dataset per other ``geometry`` name (``hgt`` m, ``la`` and
    ``inc`` deg); ``bperp_mat`` (k, n_bperp) float32 m when ``n_bperp``. :meth:`finish` adds
    ``D_A`` (k,) float32 and the stack's datasets.
    """

    def __init__(
        self,
        path: Path,
        n_sec: int,
        geometry: Sequence[str],
        n_bperp: int = 0,
        with_phase: bool = True,
    ) -> None:
        self.path = path
        self.n_sec = n_sec
        self.geometry = list(geometry)
        self.n_bperp = n_bperp
        self.with_phase = with_phase
        self.n = 0
        self._file: h5py.File | None = None

    @property
    def is_open(self) -> bool:
        """Whether the file was made (a block was appended) and is not finished or discarded."""
        return self._file is not None

    def _open(self) -> h5py.File:
        f = h5py.File(self.path, "w", rdcc_nbytes=4 << 20)
        f.attrs["format"] = PRODUCT_FORMAT
        if not self.with_phase:
            f.attrs["small_baseline"] = 1
        shapes: dict[str, tuple[tuple[int, ...], Any]] = {"ij": ((2,), np.int32)}
        if self.with_phase:
            shapes["ph"] = ((self.n_sec,), np.complex64)
        shapes["lonlat"] = ((2,), np.float32)
        shapes.update({g: ((), np.float32) for g in self.geometry if g not in LONLAT})
        if self.n_bperp:
            shapes["bperp_mat"] = ((self.n_bperp,), np.float32)
        for name, (tail, dtype) in shapes.items():
            rows = _chunk_rows(int(np.prod(tail, dtype=np.int64)) * np.dtype(dtype).itemsize)
            f.create_dataset(
                name, shape=(0, *tail), maxshape=(None, *tail), dtype=dtype, chunks=(rows, *tail)
            )
        return f

    def append(
        self, rows: np.ndarray, cols: np.ndarray, ifg: np.ndarray | None, geo: np.ndarray
    ) -> None:
        """Append k candidates at 0-based lines ``rows`` and samples ``cols``.

        ``ifg`` (k, n_sec) complex64, or None without phase; ``geo`` (n_geometry + n_bperp, k)
        float32: the named geometry rows, then Bperp (m) per secondary.
        """
        if self._file is None:
            self._file = self._open()
        g = dict(zip(self.geometry, geo))
        values = {
            "ij": np.column_stack([rows, cols]),
            "lonlat": np.column_stack([g["lon"], g["lat"]]),
        }
        if self.with_phase:
            values["ph"] = ifg
        values.update({k: v for k, v in g.items() if k not in LONLAT})
        if self.n_bperp:
            values["bperp_mat"] = geo[len(self.geometry) :].T
        stop = self.n + len(rows)
        for name, value in values.items():
            ds = self._file[name]
            ds.resize(stop, axis=0)
            ds[self.n : stop] = value
        self.n = stop

    def finish(self, d_a: np.ndarray, data: Mapping[str, Any]) -> None:
        """Write ``D_A`` (one per row appended) and the stack's datasets ``data`` (None values
        skipped: dates, master_date, bperp, calconst, heading, lambda, image_size,
        bperp_grids), and close."""
        if self._file is None:
            raise ValueError(f"{self.path}: no candidates were appended")
        self._file.create_dataset("D_A", data=d_a.astype(np.float32))
        for name, value in data.items():
            if value is not None:
                write_dataset(self._file, name, value, chunk_large=False)
        self.close()

    def discard(self) -> None:
        """Delete the file and forget every row appended."""
        self.close()
        self.path.unlink(missing_ok=True)
        self.n = 0

    def close(self) -> None:
        """Close the file if still open (after an error)."""
        if self._file is not None:
            self._file.close()
            self._file = None


def step1_layout(cands: Mapping[str, Any]) -> dict[str, Any]:
    """Everything of Step 1 except the (n_ps, n_ifg) matrices: ps1 and the orders to apply
    (also the base of the small-baseline ps1, see ``sb_load_initial``)."""
    dates = [str(d) for d in cands["dates"]]
    master = str(cands["master_date"])
    if master not in dates:
        raise StampsError(f"reference date {master} is not among the stack dates")
    sec_dates = [d for d in dates if d != master]
    bperp_all = dict(zip(dates, np.asarray(cands["bperp"], dtype=np.float64)))
    cal_all = dict(zip(dates, np.asarray(cands["calconst"], dtype=np.float64)))

    slave_day = np.array([datenum(d) for d in sec_dates], dtype=np.float64)
    day_ix = np.argsort(slave_day, kind="stable")
    slave_day = slave_day[day_ix]
    master_day = float(datenum(master))
    master_ix = int(np.sum(slave_day < master_day))
    day = np.insert(slave_day, master_ix, master_day)
    sec_sorted = [sec_dates[i] for i in day_ix]
    all_sorted = sec_sorted[:master_ix] + [master] + sec_sorted[master_ix:]
    bperp = np.insert(np.array([bperp_all[d] for d in sec_sorted]), master_ix, 0.0)
    calconst = np.array([cal_all[d] for d in sec_sorted])

    ij_in = np.asarray(cands["ij"], dtype=np.int64).reshape(-1, 2)
    n_ps = len(ij_in)
    if n_ps == 0:
        raise StampsError("no PS candidates in this patch")
    lonlat = np.asarray(cands["lonlat"], dtype=np.float64).reshape(-1, 2)
    ll0 = (lonlat.max(axis=0) + lonlat.min(axis=0)) / 2.0
    xy, rotation = rotate_to_scene_axes(llh2local(lonlat, ll0), float(cands["heading"]))
    xy = xy.astype(np.float32)
    sort_ix = np.lexsort((xy[:, 0], xy[:, 1]))
    xy = xy[sort_ix]
    xy = np.round(xy * np.float32(1000)) / np.float32(1000)
    ps1 = {
        "ij": np.column_stack([np.arange(1, n_ps + 1), ij_in[sort_ix]]).astype(np.int32),
        "lonlat": lonlat[sort_ix],
        "xy": np.column_stack([np.arange(1, n_ps + 1, dtype=np.float32), xy]).astype(np.float32),
        "bperp": bperp,
        "day": day,
        "dates": all_sorted,
        "master_day": master_day,
        "master_date": master,
        "master_ix": master_ix,
        "n_ifg": len(day),
        "n_image": len(day),
        "n_ps": n_ps,
        "sort_ix": sort_ix.astype(np.int64),
        "ll0": ll0,
        "calconst": calconst,
        "day_ix": day_ix.astype(np.int64),
        "xy_rotation_deg": rotation,
    }
    return ps1


def candidate_bperp(cands: Mapping[str, Any], rows: np.ndarray) -> np.ndarray | None:
    """Bperp (m) of pscands rows ``rows`` for each secondary in ``cands['dates']`` order,
    (k, n_sec) float32, from the topsStack baseline grids; None when the stack has none.

    pscands.h5 holds either the coarse grids whole (``bperp_grids``, interpolated here at the
    candidates as ps_load_initial_isce does) or full-resolution values per candidate
    (``bperp_mat``).
    """
    if cands.get("bperp_mat") is not None:
        return np.asarray(cands["bperp_mat"], dtype=np.float32)[rows]
    if cands.get("bperp_grids") is None:
        return None
    ij = np.asarray(cands["ij"], dtype=np.int64).reshape(-1, 2)[rows]
    length, width = (int(v) for v in cands["image_size"])
    return sample_grids(np.asarray(cands["bperp_grids"]), ij[:, 0], ij[:, 1], length, width).astype(
        np.float32
    )


def step1_vectors(cands: Mapping[str, Any], ps1: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-candidate workspaces la1, da1, hgt1 (and inc1) in ps1's sort order (angles in
    radians, heights in m)."""
    sort_ix = ps1["sort_ix"]
    out: dict[str, dict[str, Any]] = {
        "la1": {"la": np.radians(np.asarray(cands["la"], dtype=np.float64)[sort_ix])},
        "da1": {"D_A": np.asarray(cands["D_A"], dtype=np.float64)[sort_ix]},
        "hgt1": {"hgt": np.asarray(cands["hgt"], dtype=np.float64)[sort_ix]},
    }
    if cands.get("inc") is not None:
        out["inc1"] = {"inc": np.radians(np.asarray(cands["inc"], dtype=np.float64)[sort_ix])}
    return out

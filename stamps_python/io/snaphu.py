"""Finding and running the snaphu phase-unwrapping program as StaMPS Step 6 does.

StaMPS (``uw_stat_costs.m``) unwraps each gridded interferogram with ``snaphu -d -f snaphu.conf
NCOL`` in deformation cost mode, giving snaphu its own statistical costs through ``COSTINFILE``.
The executable is ``$SNAPHU_BIN`` when that variable is set, otherwise the program shipped inside
the PyPI ``snaphu`` package, otherwise ``snaphu`` on the PATH.

Files (all native little-endian, row-major, in a working folder):

- ``snaphu.in``: complex64 interferogram (nrow, ncol), real/imaginary interleaved;
- ``snaphu.costinfile``: int16 cost records of 4 values [offset, sigsq, dzmax, laycost] per arc,
  first the (nrow-1, ncol) arcs between rows i and i+1, then the (nrow, ncol-1) arcs between
  columns j and j+1 (snaphu's ``costT`` layout, read by ``Read2DRowColFile``);
- ``snaphu.out``: float32 unwrapped phase (nrow, ncol), radians;
- ``snaphu.log``: snaphu's standard output and error.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.numerics.unwrap_costs import cost_setup, grid_msd, ifg_costs
from stamps_python.utils import StampsError, get_logger, progress_bar

SNAPHU_ENV = "SNAPHU_BIN"
CONF_NAME = "snaphu.conf"
IN_NAME = "snaphu.in"
OUT_NAME = "snaphu.out"
COST_NAME = "snaphu.costinfile"
LOG_NAME = "snaphu.log"


def find_snaphu() -> Path:
    """Path of the snaphu executable: ``$SNAPHU_BIN``, the PyPI package's, or the PATH's."""
    env = os.environ.get(SNAPHU_ENV)
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise StampsError(
                f"snaphu not found: {SNAPHU_ENV}={env} is not an executable file; "
                f"point {SNAPHU_ENV} at the snaphu program or unset it"
            )
        return path
    spec = importlib.util.find_spec("snaphu")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "snaphu"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return bundled
    which = shutil.which("snaphu")
    if which:
        return Path(which)
    raise StampsError(
        f"snaphu not found: install the PyPI 'snaphu' package or set {SNAPHU_ENV} "
        f"to the snaphu program"
    )


def conf_text() -> str:
    """The snaphu.conf StaMPS writes: complex input, float output, costs from COSTINFILE, DEFO."""
    return (
        f"INFILE  {IN_NAME}\nOUTFILE {OUT_NAME}\nCOSTINFILE {COST_NAME}\n"
        "STATCOSTMODE  DEFO\nINFILEFORMAT  COMPLEX_DATA\nOUTFILEFORMAT FLOAT_DATA\n"
    )


def write_cost_file(path: str | Path, rowcost: np.ndarray, colcost: np.ndarray) -> None:
    """Write snaphu cost records: ``rowcost`` (nrow-1, ncol, 4), then ``colcost`` (nrow, ncol-1, 4).

    Each record is [offset, sigsq, dzmax, laycost] as int16 (offset in 1/nshortcycle cycles).
    """
    rowcost = np.asarray(rowcost)
    colcost = np.asarray(colcost)
    if rowcost.ndim != 3 or colcost.ndim != 3 or rowcost.shape[2] != 4 or colcost.shape[2] != 4:
        raise ValueError("cost arrays must have shape (rows, cols, 4)")
    nrow, ncol = colcost.shape[0], rowcost.shape[1]
    if rowcost.shape[:2] != (nrow - 1, ncol) or colcost.shape[:2] != (nrow, ncol - 1):
        raise ValueError(f"cost arrays {rowcost.shape} / {colcost.shape} do not fit one grid")
    with open(path, "wb") as f:
        f.write(np.ascontiguousarray(rowcost, dtype="<i2").tobytes())
        f.write(np.ascontiguousarray(colcost, dtype="<i2").tobytes())


def _log_tail(path: Path, n_lines: int = 6) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no snaphu log)"
    return " | ".join(lines[-n_lines:]) if lines else "(empty snaphu log)"


class Snaphu:
    """Runs snaphu repeatedly in ``work_dir`` with StaMPS' configuration (one grid at a time)."""

    def __init__(self, work_dir: str | Path, executable: str | Path | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.executable = Path(executable) if executable is not None else find_snaphu()
        (self.work_dir / CONF_NAME).write_text(conf_text())

    def unwrap(
        self, ifg: np.ndarray, rowcost: np.ndarray, colcost: np.ndarray, label: str = "grid"
    ) -> np.ndarray:
        """Unwrapped phase (nrow, ncol) float32 radians of complex ``ifg`` with the given costs.

        A failing run (non-zero exit, no or short output) is a :class:`StampsError` quoting the
        end of snaphu's log; ``label`` names the interferogram in that message.
        """
        ifg = np.asarray(ifg)
        nrow, ncol = ifg.shape
        out_path = self.work_dir / OUT_NAME
        log_path = self.work_dir / LOG_NAME
        if out_path.exists():
            out_path.unlink()
        np.ascontiguousarray(ifg, dtype="<c8").tofile(self.work_dir / IN_NAME)
        write_cost_file(self.work_dir / COST_NAME, rowcost, colcost)
        cmd = [str(self.executable), "-d", "-f", CONF_NAME, str(ncol)]
        try:
            with open(log_path, "wb") as log:
                proc = subprocess.run(
                    cmd, cwd=self.work_dir, stdout=log, stderr=subprocess.STDOUT, check=False
                )
        except OSError as exc:
            raise StampsError(f"snaphu could not be started ({self.executable}): {exc}") from None
        expected = nrow * ncol * 4
        size = out_path.stat().st_size if out_path.exists() else 0
        if proc.returncode != 0 or size != expected:
            what = (
                f"exit code {proc.returncode}"
                if proc.returncode != 0
                else f"output has {size} bytes, expected {expected}"
            )
            raise StampsError(f"snaphu failed on {label} ({what}); log ends: {_log_tail(log_path)}")
        return np.fromfile(out_path, dtype="<f4").reshape(nrow, ncol)


SNAPHU_TMP_PREFIX = ".snaphu_"  # snaphu's temporary working folders inside the run directory
IN_FLIGHT_PER_WORKER = 2  # interferograms handed to an executor ahead of the results


def unwrap_one(
    ifg: np.ndarray,
    rowcost: np.ndarray,
    colcost: np.ndarray,
    label: str,
    work_dir: str | None = None,
    executable: str | Path | None = None,
) -> np.ndarray:
    """One snaphu run in a folder of its own (inside ``work_dir``, else the system's temporary
    folder), removed afterwards: the task an executor runs for one interferogram. snaphu is
    looked up where the task runs when ``executable`` is None."""
    tmp = Path(tempfile.mkdtemp(prefix=SNAPHU_TMP_PREFIX, dir=work_dir))
    try:
        return Snaphu(tmp, executable).unwrap(ifg, rowcost, colcost, label=label)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def uw_stat_costs(
    unwrap_method: str,
    uw_grid: dict[str, Any],
    uw_interp: dict[str, Any],
    uw_space_time: dict[str, Any],
    work_dir: str | Path,
    variance: np.ndarray | None = None,
    subset_ifg_index: np.ndarray | None = None,
    snaphu_exe: str | Path | None = None,
    progress: bool = True,
    executor: Any = None,
    n_workers: int = 1,
) -> dict[str, np.ndarray]:
    """Unwrap every gridded interferogram with snaphu and StaMPS' statistical costs.

    snaphu runs in a temporary folder created inside ``work_dir`` and removed afterwards. With a
    :class:`concurrent.futures.Executor` (``n_workers`` of them) the interferograms are unwrapped
    side by side, each in a folder of its own; the results are the same.
    Returns the ``uw_phaseuw`` workspace: ``ph_uw`` (n_nodes, n_ifg) float32 radians and
    ``msd`` (n_ifg,) mean square neighbour difference of each unwrapped grid (rad^2).
    """

    log = get_logger()
    setup = cost_setup(unwrap_method, uw_grid, uw_interp, uw_space_time, variance)
    ph = uw_grid["ph"]
    n_nodes, n_ifg = ph.shape
    nzix = np.asarray(uw_grid["nzix"], dtype=bool)
    nz_j, nz_i = np.nonzero(nzix.T)
    Z = np.asarray(uw_interp["Z"], dtype=np.int64)
    subset = np.arange(n_ifg) if subset_ifg_index is None else np.asarray(subset_ifg_index)
    ph_uw = np.zeros((n_nodes, n_ifg), dtype=np.float32)
    msd = np.zeros(n_ifg)

    def store(i1: int, ifguw: np.ndarray) -> None:
        msd[i1] = grid_msd(ifguw)
        ph_uw[:, i1] = ifguw[nz_i, nz_j]
        log.debug("   snaphu: interferogram %d of %d, msd %.3f", i1 + 1, n_ifg, msd[i1])

    bar = progress_bar(subset, desc="snaphu", unit="ifg", hide=not progress, leave=False)
    # serially snaphu runs inside work_dir with the given executable; an executor's task finds
    # snaphu, and a folder, where it runs
    where, exe = (str(work_dir), snaphu_exe) if executor is None else (None, None)
    limit = max(1, n_workers) * IN_FLIGHT_PER_WORKER
    pending: dict[cf.Future, int] = {}
    todo = [int(i) for i in subset]
    try:
        while todo or pending:
            while todo and len(pending) < limit:
                i1 = todo.pop(0)
                rowcost, colcost = ifg_costs(setup, i1)
                args = (ph[Z, i1], rowcost, colcost, f"interferogram {i1 + 1}", where, exe)
                if executor is None:
                    store(i1, unwrap_one(*args))
                    bar.update(1)
                else:
                    pending[executor.submit(unwrap_one, *args)] = i1
            if pending:
                done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
                for future in done:
                    store(pending.pop(future), future.result())
                    bar.update(1)
    finally:
        for future in pending:
            future.cancel()
        bar.close()
    return {"ph_uw": ph_uw, "msd": msd}


def remove_stale_snaphu_dirs(work_dir: str | Path) -> list[Path]:
    """Remove the ``.snaphu_*`` folders a killed earlier Step 6 left in ``work_dir``; returns
    them. Only directories of that name directly inside ``work_dir`` are touched."""
    stale = sorted(
        p for p in Path(work_dir).glob(SNAPHU_TMP_PREFIX + "*") if p.is_dir() and not p.is_symlink()
    )
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale

"""Each patch's share of the candidate stream: ``PATCH_n/patch.in``, ``patch_noover.in`` and
``pscands.h5`` (:class:`stamps_python.io.pscands.PscandsWriter`), the SURE candidates written by
a thread during the amplitude pass."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python import rundir
from stamps_python.io.pscands import PSCANDS, PscandsWriter
from stamps_python.numerics.amplitude import interferograms
from stamps_python.prep.layout import Patch

# Blocks of sure candidates waiting for the writer thread, at most.
WRITES_IN_FLIGHT = 2


class PatchWriter:
    """Appends one patch's candidates to ``PATCH_n/pscands.h5`` block by block.

    Rows come in two kinds: candidates whose D_A is known when they are appended, and SURE
    candidates appended during the amplitude pass, whose exact D_A is only known afterwards
    (``d_a=None`` with their pass block index; :meth:`finish` takes them from ``sure_d_a``).
    With ``with_phase=False`` (small baselines) no phase is written and the file is marked with
    the attribute ``small_baseline``. ``geometry`` names the rows of the geometry array each
    block carries (lon, lat, hgt, la and optionally inc). The patch folder, with ``patch.in``
    and ``patch_noover.in``, is made with the first candidate.
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
        self._pscands = PscandsWriter(directory / PSCANDS, n_sec, geometry, n_bperp, with_phase)
        self._d_a: list[np.ndarray | tuple[int, np.ndarray]] = []

    @property
    def n(self) -> int:
        """Number of candidates appended."""
        return self._pscands.n

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
        inside = self.patch.inside(rows, cols)
        if inside.size == 0:
            return
        if not self._pscands.is_open:
            self.directory.mkdir(parents=True, exist_ok=True)
            rundir.write_patch_bounds(
                self.directory,
                (*self.patch.rg, *self.patch.az),
                (*self.patch.rg_core, *self.patch.az_core),
            )
        self._pscands.append(
            rows[inside], cols[inside], None if ifg is None else ifg[inside], geo[:, inside]
        )
        self._d_a.append(d_a[inside] if d_a is not None else (block, inside))

    def discard(self) -> None:
        """Forget everything appended (the pass is being redone)."""
        self._pscands.discard()
        self._d_a = []

    def finish(self, data: dict[str, Any], sure_d_a: Sequence[np.ndarray]) -> bool:
        """Write D_A and the stack datasets and close; False (and nothing written) when empty."""
        if not self._pscands.is_open:
            return False
        d_a = np.concatenate(
            [p if isinstance(p, np.ndarray) else sure_d_a[p[0]][p[1]] for p in self._d_a]
        )
        self._pscands.finish(d_a, data)
        return True

    def close(self) -> None:
        """Close the file if still open (after an error)."""
        self._pscands.close()


class PatchWriters:
    """The writers of all patches, and the thread that appends the SURE candidates to them
    during the amplitude pass (h5py releases the GIL while it writes), at most
    WRITES_IN_FLIGHT blocks behind the pass.

    ``ref_index`` is the reference date's index in the stack (the interferograms of the SURE
    candidates are formed against it).
    """

    def __init__(self, writers: list[PatchWriter], ref_index: int) -> None:
        self.writers = writers
        self.ref_index = ref_index
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending: deque[Future] = deque()

    def append(self, *args: Any) -> None:
        """:meth:`PatchWriter.append` of every patch (in the calling thread)."""
        for writer in self.writers:
            writer.append(*args)

    def on_sure(
        self, block: int, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, geo: np.ndarray
    ) -> None:
        """The SURE candidates of pass block ``block`` (values (n_images, k)), queued for the
        writer thread (:data:`stamps_python.prep.candidates.OnSure`)."""
        ifg = interferograms(values, self.ref_index)
        while len(self._pending) >= WRITES_IN_FLIGHT:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self.append, rows, cols, None, ifg, geo, block))

    def wait(self) -> None:
        """Until the writer thread has written everything queued (its errors are raised)."""
        while self._pending:
            self._pending.popleft().result()

    def discard(self) -> None:
        """Forget everything written (the pass is being redone)."""
        self.wait()
        for writer in self.writers:
            writer.discard()

    def close(self) -> None:
        """Stop the writer thread (dropping what it has not started) and close every file."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        for writer in self.writers:
            writer.close()

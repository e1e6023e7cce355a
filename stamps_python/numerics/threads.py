"""Blocks of a loop on a few threads of this process (numpy and scipy.fft release the GIL).

Every block is computed exactly as it would be in one thread and written to its own rows or
columns of a preallocated output, so the result does not depend on the number of threads.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable

ROW_BLOCK = 65536  # rows per block of the row-wise loops (a few MB per column)


def run_blocks(fn: Callable[[int, int], None], n: int, n_threads: int, block: int) -> None:
    """Call ``fn(start, stop)`` for consecutive blocks of ``block`` items covering [0, n): in
    order in this thread when ``n_threads`` <= 1, else on ``n_threads`` threads. The first
    exception a block raises is raised here once every block has ended."""
    spans = [(s, min(s + block, n)) for s in range(0, n, max(1, block))]
    if n_threads <= 1 or len(spans) <= 1:
        for s, e in spans:
            fn(s, e)
        return
    with cf.ThreadPoolExecutor(min(n_threads, len(spans))) as pool:
        futures = [pool.submit(fn, s, e) for s, e in spans]
    for f in futures:
        f.result()


def run_rows(fn: Callable[[slice], None], n_rows: int, n_threads: int) -> None:
    """Call ``fn(rows)`` for slices of :data:`ROW_BLOCK` rows covering ``n_rows``."""
    run_blocks(lambda s, e: fn(slice(s, e)), n_rows, n_threads, ROW_BLOCK)

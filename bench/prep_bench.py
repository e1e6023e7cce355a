"""Benchmark prep_isce on a large synthetic ISCE2 stack (default 60 dates x 2000 x 4000).

Prints: generation time, the time to read every SLC byte once (row blocks through GDAL, as
prep_isce reads them), prep_isce wall time and peak memory (run in a child process), and the ratio
prep time / read time, measured in the same run. Targets: ratio <= 1.5, peak memory < 2 GB.

    python bench/prep_bench.py [--rows 2000 --cols 4000 --dates 60] [--workdir bench/out]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamps_python.io import isce  # noqa: E402
from stamps_python.synthetic import generate_stack  # noqa: E402


def read_every_byte(merged: Path, block_mb: float = 256.0) -> tuple[float, int]:
    """Seconds to read every SLC once in row blocks (same reader and block size as prep_isce)."""
    stack = isce.open_stack(merged)
    import numpy as np

    rows = max(1, int(block_mb * 2**20 // (len(stack.dates) * stack.width * 8)))
    buf = np.empty((rows, stack.width), dtype=np.complex64)
    nbytes = 0
    start = time.perf_counter()
    readers = [isce.RasterRows(stack.slc[d]) for d in stack.dates]
    for r0 in range(0, stack.length, rows):
        r1 = min(r0 + rows, stack.length)
        for reader in readers:
            nbytes += reader.read(r0, r1, out=buf[: r1 - r0]).nbytes
    for reader in readers:
        reader.close()
    return time.perf_counter() - start, nbytes


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--cols", type=int, default=4000)
    p.add_argument("--dates", type=int, default=60)
    p.add_argument("--profile", default="easy")
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "prep")
    p.add_argument("--keep", action="store_true", help="keep the generated stack")
    args = p.parse_args()

    stack_dir = args.workdir / "stack"
    run_dir = args.workdir / "run"
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)

    t0 = time.perf_counter()
    generate_stack(stack_dir, profile=args.profile, rows=args.rows, cols=args.cols,
                   n_dates=args.dates, seed=1, truth_cube="no")
    t_gen = time.perf_counter() - t0
    merged = stack_dir / "merged"

    t_read, nbytes = read_every_byte(merged)
    cmd = [sys.executable, str(ROOT / "stamps_python" / "prep_isce.py"), str(merged), "--output",
           str(run_dir), "--bootstrap-metadata", "--range-patches", "2", "--azimuth-patches", "2",
           "--write-step1"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    t_prep = time.perf_counter() - t0
    if res.returncode != 0:
        print(res.stderr, file=sys.stderr)
        return 1
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    t_read2, _ = read_every_byte(merged)
    t_read_best = min(t_read, t_read2)
    n_cand = next((line for line in res.stderr.splitlines() if "selpsc:" in line), "")

    print(f"stack: {args.dates} dates x {args.rows} lines x {args.cols} samples "
          f"({nbytes / 2**30:.2f} GiB of SLC), profile {args.profile}")
    print(f"generate:          {t_gen:8.1f} s")
    print(f"read every byte:   {t_read:8.1f} s (again after prep: {t_read2:.1f} s)")
    print(f"prep_isce:         {t_prep:8.1f} s  (incl. Python start-up, Step-1 products, 2x2 patches)")
    print(f"prep peak memory:  {peak_mb:8.0f} MiB  (target < 2048)")
    print(f"ratio prep/read:   {t_prep / t_read_best:8.2f}    (target <= 1.5)")
    print(f"  {n_cand.strip()}")
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

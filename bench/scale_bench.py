"""Frame-scale benchmark (issue 12): a whole PS run on a frame-sized synthetic stack.

It generates once, and keeps in ``--cache`` (default ``runs/bench_scale/``), a synthetic stack
of 40 dates x 2500 lines x 10000 samples (the "frame", ~8 GB of SLC) and a reference stack of
800 x 1600 with the same profile and date count. On each, serially and each in a fresh run
folder, it runs prep_isce (8 x 2 patches), Steps 1-8 and export_results (v-do), every stage in
its own process, and prints per stage: wall time, time per candidate, peak RSS of the driver
(RUSAGE_SELF) and of its children (RUSAGE_CHILDREN: snaphu), and the peak of the process tree
(the summed RSS of the process and all its descendants, sampled with psutil every 0.2 s), and
its CPU time (user + system, of the process and its waited-for children: more than the wall
time when a serial stage already runs on several cores, numba prange or BLAS threads). Then
the number of candidates and of PS (after Step 4, summed over the patches, and in the merged
ps2.h5), the time per candidate of the frame over that of the reference stack, the total time
and the peak of the tree.

Unless ``--skip-parallel``, on the frame it runs Steps 1-4 again from a fresh copy of the
prepared run folder with ``n_cores`` local processes and with a Dask LocalCluster, and Step 6
from a copy taken after Step 5, prints the speed-up over the serial run (Steps 1-4: patch_wall;
Step 6: its step time), the peak RSS of every worker, and whether the HDF5 datasets the parallel
run wrote are byte-identical to the serial run's.

Targets: time per candidate within 1.25x of the reference stack's; prep + Steps 1-8 + export
under 20 min on 2 cores; the process tree under 8 GB; speed-up on 2 workers >= 1.7x (Steps 1-4)
and >= 1.6x (Step 6). Nothing is asserted.

Profile: ``realistic`` by default. At the default amp_dispersion 0.4, ``easy`` makes about
19 % of the pixels candidates (3 % PS, 13 % PS sidelobes, a few stable distributed scatterers),
~4.7 million on the frame, while ``realistic`` makes ~12.6 %, ~3.2 million, the closer of the
two to the ~2 million a frame of this size is meant to have (the generator has no option that
changes the candidate density).

unwrap_grid_size: StaMPS' 200 m default needs a PS area of at least unwrap_gold_n_win (32)
cells on each side. The synthetic pixels are Sentinel-1's (13.9 m azimuth x 3.70 m ground
range), so the frame (~35 x 37 km) takes 200 m but the reference stack (800 x 1600: 11.1 x 5.9
km) needs at most ~180 m. Both stacks use the same size, so that their times per candidate
compare: the largest of 200, 150, 100, 75, 50, 25 m that fits the reference stack (150 m), or
``--unwrap-grid-size``.

    python bench/scale_bench.py [--quick] [--skip-parallel] [--keep] [--regenerate]
        [--cache runs/bench_scale] [--profile realistic] [--workers 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import run_child_tree  # noqa: E402

from stamps_python.numerics.unwrap_grid import check_grid  # noqa: E402
from stamps_python.parms import load_parms, set_parm  # noqa: E402
from stamps_python.utils import StampsError  # noqa: E402

GRID_SIZES_M = (200.0, 150.0, 100.0, 75.0, 50.0, 25.0)
STAGES = ("prep", *(f"step{k}" for k in range(1, 9)), "export")
HASH_BLOCK_BYTES = 64 << 20

CHILD = """
import json, resource, sys, time
from stamps_python.utils import setup_logging
setup_logging(None)
kind, args = sys.argv[1], sys.argv[2:]
out = {}
t = time.perf_counter()
if kind == "generate":
    from stamps_python.synthetic import generate_stack
    spec = json.loads(args[1])
    r = generate_stack(args[0], profile=spec["profile"], rows=spec["rows"], cols=spec["cols"],
                       n_dates=spec["dates"], seed=spec["seed"], truth_cube="no", progress=False)
    out["n_ps"] = int(r["n_ps"])
elif kind == "prep":
    from stamps_python.prep_isce import prepare
    r = prepare(args[0], args[1], bootstrap_metadata=True, range_patches=int(args[2]),
                azimuth_patches=int(args[3]))
    out["n_candidates"] = int(r["n_candidates"])
elif kind == "steps":
    from stamps_python.parallel import ParallelOptions
    from stamps_python.pipeline import run_steps
    out["timings"] = run_steps(args[0], int(args[1]), int(args[2]),
                               parallel=ParallelOptions(**json.loads(args[3])))
else:
    from stamps_python.export_results import main
    main(["--input-path", args[0], "--output-dir", args[1], "--correction", "v-do"])
out["wall"] = time.perf_counter() - t
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["children_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
out["cpu"] = sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))
print(json.dumps(out))
"""


@dataclass(frozen=True)
class StackSpec:
    """One synthetic stack: profile, dates x rows (lines) x cols (samples), seed."""

    profile: str
    dates: int
    rows: int
    cols: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.profile}_{self.dates}x{self.rows}x{self.cols}_s{self.seed}"

    @property
    def slc_gib(self) -> float:
        return self.dates * self.rows * self.cols * 8 / 2**30


def _child(log: Path, kind: str, *args: str) -> dict:
    return run_child_tree(CHILD, kind, *args, log=log)


# --------------------------------------------------------------------------------------------
# stacks and run folders


def ensure_stack(cache: Path, spec: StackSpec, regenerate: bool) -> Path:
    """The stack of ``spec`` under ``cache/stacks``, generated unless present and complete (its
    ``complete.json`` is written last and holds the spec)."""
    stack = cache / "stacks" / spec.name
    marker = stack / "complete.json"
    if not regenerate and marker.is_file() and json.loads(marker.read_text()) == asdict(spec):
        print(f"stack {spec.name}: kept from an earlier run ({stack})")
        return stack
    shutil.rmtree(stack, ignore_errors=True)
    stack.parent.mkdir(parents=True, exist_ok=True)
    log = cache / "logs" / f"generate_{spec.name}.log"
    res = _child(log, "generate", str(stack), json.dumps(asdict(spec)))
    marker.write_text(json.dumps(asdict(spec)))
    print(
        f"stack {spec.name}: generated in {res['wall']:.0f} s ({spec.slc_gib:.1f} GiB of SLC, "
        f"{res['n_ps']} PS, peak {res['peak_mb']:.0f} MiB)"
    )
    return stack


def link_copy(src: Path, dst: Path) -> None:
    """Copy run folder ``src`` to ``dst``, hard-linking the HDF5 products (every step writes
    them under a temporary name and renames it, so the copy never changes the original) and
    copying the rest (text files some steps rewrite in place)."""

    def copy(s: str, d: str) -> None:
        if s.endswith(".h5"):
            os.link(s, d)
        else:
            shutil.copy2(s, d)

    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, copy_function=copy)


def _hash_dataset(d: h5py.Dataset) -> str:
    h = hashlib.sha256(f"{d.dtype.str}{d.shape}".encode())
    if d.shape == () or d.dtype.kind == "O" or d.size == 0:
        value = d[()]
        h.update(repr(value.tolist() if isinstance(value, np.ndarray) else value).encode())
        return h.hexdigest()
    step = max(1, HASH_BLOCK_BYTES // max(1, d.dtype.itemsize * d.size // d.shape[0]))
    for r0 in range(0, d.shape[0], step):
        h.update(np.ascontiguousarray(d[r0 : r0 + step]).tobytes())
    return h.hexdigest()


def h5_manifest(run: Path, pattern: str) -> dict[str, str]:
    """sha256 of every dataset (dtype, shape and bytes) of the HDF5 files ``run/pattern``,
    keyed ``relative/path.h5:dataset``."""
    out: dict[str, str] = {}
    for path in sorted(run.glob(pattern)):
        rel = path.relative_to(run).as_posix()
        with h5py.File(path, "r") as f:

            def visit(name: str, obj: object, rel: str = rel) -> None:
                if isinstance(obj, h5py.Dataset):
                    out[f"{rel}:{name}"] = _hash_dataset(obj)

            f.visititems(visit)
    return out


def compare_manifests(serial: dict[str, str], parallel: dict[str, str]) -> str:
    """'identical', or the datasets that differ or are only in one run."""
    diff = sorted(k for k in serial.keys() & parallel.keys() if serial[k] != parallel[k])
    diff += [f"{k} (serial only)" for k in sorted(serial.keys() - parallel.keys())]
    diff += [f"{k} (parallel only)" for k in sorted(parallel.keys() - serial.keys())]
    if not diff:
        return f"identical ({len(serial)} datasets)"
    shown = ", ".join(diff[:12]) + (f", ... ({len(diff)} in all)" if len(diff) > 12 else "")
    return f"DIFFER: {shown}"


def merged_xy(run: Path) -> np.ndarray:
    with h5py.File(run / "ps2.h5", "r") as f:
        return np.asarray(f["xy"][()], dtype=np.float64)[:, 1:3]


def fitting_grid_size(run: Path) -> float | None:
    """The largest of :data:`GRID_SIZES_M` Step 6 accepts on the merged PS of ``run``."""
    win = int(float(load_parms(run).get("unwrap_gold_n_win", 32)))
    xy = merged_xy(run)
    for size in GRID_SIZES_M:
        try:
            check_grid(xy, size, win)
        except StampsError:
            continue
        return size
    return None


def grid_fits(run: Path, size: float) -> bool:
    try:
        check_grid(merged_xy(run), size, int(float(load_parms(run).get("unwrap_gold_n_win", 32))))
    except StampsError:
        return False
    return True


def disk_used_gib(root: Path) -> float:
    """GiB of the files under ``root``, each hard-linked file once."""
    seen: dict[tuple[int, int], int] = {}
    for f in root.rglob("*"):
        if f.is_file() and not f.is_symlink():
            st = f.stat()
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values()) / 2**30


def n_ps_after_step4(run: Path) -> int:
    total = 0
    for path in sorted(run.glob("PATCH_*/ps2.h5")):
        with h5py.File(path, "r") as f:
            total += int(f["n_ps"][()])
    return total


def n_ps_merged(run: Path) -> int:
    with h5py.File(run / "ps2.h5", "r") as f:
        return int(f["n_ps"][()])


# --------------------------------------------------------------------------------------------
# runs


SERIAL = json.dumps({"n_cores": 1})


def serial_run(
    name: str, stack: Path, work: Path, args: argparse.Namespace, grid: float | None, frame: bool
) -> dict:
    """prep_isce, Steps 1-8 and export on ``stack`` in a fresh ``work/name``, every stage in its
    own process; on the frame also the snapshots and HDF5 manifests the parallel runs need."""
    run = work / name
    logs = work / "logs" / name
    shutil.rmtree(run, ignore_errors=True)
    res: dict = {"name": name, "stages": {}}
    st = res["stages"]
    st["prep"] = _child(
        logs / "prep.log",
        "prep",
        str(stack / "merged"),
        str(run),
        str(args.range_patches),
        str(args.azimuth_patches),
    )
    res["n_candidates"] = st["prep"]["n_candidates"]
    if frame:
        link_copy(run, work / f"{name}_prepared")
    for step in range(1, 9):
        if step == 6:
            if grid is None:
                grid = fitting_grid_size(run)
                if grid is None:
                    raise SystemExit(f"{name}: no unwrap_grid_size of {GRID_SIZES_M} fits")
            elif not grid_fits(run, grid):
                raise SystemExit(f"{name}: unwrap_grid_size {grid:g} m does not fit this stack")
            res["grid"] = grid
            res["grid_200_fits"] = grid_fits(run, 200.0)
            set_parm(run, "unwrap_grid_size", grid)
            if frame:
                link_copy(run, work / f"{name}_after5")
        st[f"step{step}"] = _child(
            logs / f"step{step}.log", "steps", str(run), str(step), str(step), SERIAL
        )
        if step == 4:
            res["n_ps_step4"] = n_ps_after_step4(run)
            if frame:
                res["manifest4"] = h5_manifest(run, "PATCH_*/*.h5")
        elif step == 5:
            res["n_ps_merged"] = n_ps_merged(run)
        elif step == 6 and frame:
            res["manifest6"] = h5_manifest(run, "*.h5")
    st["export"] = _child(logs / "export.log", "export", str(run), str(work / f"{name}_export"))
    return res


def parallel_variants(work: Path, frame: dict, workers: int) -> list[dict]:
    """Steps 1-4 from a fresh copy of the prepared frame run and Step 6 from a copy taken after
    Step 5, with ``workers`` local processes and with a Dask LocalCluster of ``workers``."""
    name = frame["name"]
    options = {
        f"--n-cores {workers}": {"n_cores": workers},
        f"Dask LocalCluster {workers} workers": {"cluster": "local", "num_workers": workers},
    }
    out = []
    for label, opts in options.items():
        tag = "ncores" if "n_cores" in opts else "dask"
        for start, end, source, pattern, key in (
            (1, 4, f"{name}_prepared", "PATCH_*/*.h5", "manifest4"),
            (6, 6, f"{name}_after5", "*.h5", "manifest6"),
        ):
            run = work / f"{name}_{tag}_{start}{end}"
            link_copy(work / source, run)
            res = _child(
                work / "logs" / f"{name}_{tag}_{start}{end}.log",
                "steps",
                str(run),
                str(start),
                str(end),
                json.dumps(opts),
            )
            t = res["timings"]
            res.update(
                label=label,
                steps=f"{start}-{end}" if start != end else str(start),
                steps_label=f"Steps {start}-{end}" if start != end else f"Step {start}",
                seconds=t["patch_wall"] if end <= 5 else t[f"step{start}"],
                identity=compare_manifests(frame[key], h5_manifest(run, pattern)),
            )
            out.append(res)
            shutil.rmtree(run, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------------
# report


def total_s(res: dict) -> float:
    return sum(res["stages"][s]["wall"] for s in STAGES)


def print_stack(res: dict, spec: StackSpec) -> None:
    n = res["n_candidates"]
    st = res["stages"]
    print(
        f"\n== {res['name']}: {spec.dates} dates x {spec.rows} x {spec.cols}, profile "
        f"{spec.profile}: {n} candidates, {res['n_ps_step4']} PS after Step 4 (patches), "
        f"{res['n_ps_merged']} PS in ps2.h5 (merged) =="
    )
    print(
        f"  {'stage':<8} {'wall s':>8} {'us/cand':>8} {'CPU s':>8} {'driver MiB':>11} "
        f"{'snaphu MiB':>11} {'tree MiB':>9} {'process s':>10}"
    )
    for s in STAGES:
        r = st[s]
        print(
            f"  {s:<8} {r['wall']:8.1f} {1e6 * r['wall'] / n:8.1f} {r['cpu']:8.1f} "
            f"{r['peak_mb']:11.0f} "
            f"{r['children_peak_mb']:11.0f} {r['tree_peak_mb']:9.0f} {r['process_wall']:10.1f}"
        )
    tot = total_s(res)
    print(
        f"  {'total':<8} {tot:8.1f} {1e6 * tot / n:8.1f} "
        f"{sum(st[s]['cpu'] for s in STAGES):8.1f} "
        f"{max(st[s]['peak_mb'] for s in STAGES):11.0f} "
        f"{max(st[s]['children_peak_mb'] for s in STAGES):11.0f} "
        f"{max(st[s]['tree_peak_mb'] for s in STAGES):9.0f} "
        f"{sum(st[s]['process_wall'] for s in STAGES):10.1f}"
    )
    patch = sum(st[f"step{k}"]["timings"]["patch_wall"] for k in range(1, 5))
    print(f"  Steps 1-4 serial patch_wall {patch:.1f} s; unwrap_grid_size {res['grid']:g} m")


def print_comparison(frame: dict, ref: dict) -> None:
    nf, nr = frame["n_candidates"], ref["n_candidates"]
    print(f"\n== time per candidate, frame / reference ({nf / nr:.1f}x the candidates) ==")
    for s in (*STAGES, "total"):
        tf = total_s(frame) if s == "total" else frame["stages"][s]["wall"]
        tr = total_s(ref) if s == "total" else ref["stages"][s]["wall"]
        print(
            f"  {s:<8} frame {1e6 * tf / nf:8.1f} us  reference {1e6 * tr / nr:8.1f} us  "
            f"ratio {(tf / nf) / (tr / nr):5.2f}"
        )
    print("  target: total ratio within 1.25x")


def print_parallel(frame: dict, par: list[dict], workers: int) -> None:
    st = frame["stages"]
    serial = {
        "1-4": sum(st[f"step{k}"]["timings"]["patch_wall"] for k in range(1, 5)),
        "6": st["step6"]["timings"]["step6"],
    }
    cpu14 = sum(st[f"step{k}"]["cpu"] for k in range(1, 5))
    print(
        f"\n== parallel on the frame ({workers} workers; serial: the run above, whose Steps 1-4 "
        f"took {cpu14:.0f} s CPU in {serial['1-4']:.0f} s) =="
    )
    for r in par:
        sp = serial[r["steps"]] / r["seconds"]
        target = 1.7 if r["steps"] == "1-4" else 1.6
        peaks = sorted(r["timings"].get("worker_peak_mb", {}).items())
        workers_mb = ", ".join(f"{w} {mb:.0f}" for w, mb in peaks) or "-"
        print(
            f"  {r['steps_label']:<10} {r['label']:<30} {r['seconds']:8.1f} s (serial "
            f"{serial[r['steps']]:.1f} s): speed-up {sp:4.2f}x (target {target}x); process "
            f"{r['process_wall']:.1f} s, CPU {r['cpu']:.1f} s"
        )
        print(
            f"    driver {r['peak_mb']:.0f} MiB, largest child {r['children_peak_mb']:.0f} MiB, "
            f"tree {r['tree_peak_mb']:.0f} MiB; workers (MiB): {workers_mb}"
        )
        print(f"    products vs serial: {r['identity']}")
    by_label: dict[str, dict[str, float]] = {}
    for r in par:
        by_label.setdefault(r["label"], {})[r["steps"]] = r["seconds"]
    base = total_s(frame) - serial["1-4"] - serial["6"]
    for label, secs in by_label.items():
        t = base + secs["1-4"] + secs["6"]
        print(
            f"  total prep + Steps 1-8 + export with {label} for Steps 1-4 and 6 (the rest "
            f"serial, as measured): {t:.0f} s = {t / 60:.1f} min (target < 20 min)"
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache", type=Path, default=ROOT / "runs" / "bench_scale")
    p.add_argument("--profile", default="realistic", choices=["easy", "realistic"])
    p.add_argument("--dates", type=int, default=40)
    p.add_argument("--rows", type=int, default=2500, help="lines of the frame")
    p.add_argument("--cols", type=int, default=10000, help="samples of the frame")
    p.add_argument("--ref-rows", type=int, default=800)
    p.add_argument("--ref-cols", type=int, default=1600)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--range-patches", type=int, default=8)
    p.add_argument("--azimuth-patches", type=int, default=2)
    p.add_argument("--workers", type=int, default=2, help="processes / Dask workers (default 2)")
    p.add_argument(
        "--unwrap-grid-size",
        type=float,
        help="unwrap_grid_size (m) of both stacks (default: the largest of 200, 150, 100, 75, "
        "50, 25 that fits the reference stack)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small stacks (10 dates, frame 500 x 2000, reference 200 x 800) to smoke-test",
    )
    p.add_argument("--skip-parallel", action="store_true", help="serial runs only")
    p.add_argument("--regenerate", action="store_true", help="generate the stacks again")
    p.add_argument("--keep", action="store_true", help="keep the run folders")
    args = p.parse_args()
    if args.quick:
        args.dates, args.rows, args.cols, args.ref_rows, args.ref_cols = 10, 500, 2000, 200, 800
    frame_spec = StackSpec(args.profile, args.dates, args.rows, args.cols, args.seed)
    ref_spec = StackSpec(args.profile, args.dates, args.ref_rows, args.ref_cols, args.seed)
    args.cache.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(args.cache).free / 2**30
    print(
        f"cache {args.cache}: {free:.0f} GiB free; the frame needs {frame_spec.slc_gib:.1f} GiB "
        "of SLC, its run folders about as much again"
    )
    t0 = time.perf_counter()
    frame_stack = ensure_stack(args.cache, frame_spec, args.regenerate)
    ref_stack = ensure_stack(args.cache, ref_spec, args.regenerate)
    work = args.cache / "runs"
    shutil.rmtree(work, ignore_errors=True)

    ref = serial_run("reference", ref_stack, work, args, args.unwrap_grid_size, frame=False)
    frame = serial_run("frame", frame_stack, work, args, ref["grid"], frame=not args.skip_parallel)
    print(
        f"\nunwrap_grid_size {ref['grid']:g} m on both stacks (synthetic pixels 13.9 m azimuth x "
        f"3.70 m ground range; the largest of {', '.join(f'{g:g}' for g in GRID_SIZES_M)} m that "
        f"fits the reference stack{'' if args.unwrap_grid_size is None else ', as asked'}); "
        f"StaMPS' 200 m default {'fits' if frame['grid_200_fits'] else 'does not fit'} the "
        f"frame, {'fits' if ref['grid_200_fits'] else 'does not fit'} the reference stack"
    )
    print_stack(ref, ref_spec)
    print_stack(frame, frame_spec)
    print_comparison(frame, ref)
    tree = max(r["tree_peak_mb"] for r in frame["stages"].values())
    print(
        f"\nframe, serial: prep + Steps 1-8 + export {total_s(frame):.0f} s = "
        f"{total_s(frame) / 60:.1f} min on 1 core (in-process walls; target < 20 min on 2 "
        f"cores); process tree peak {tree:.0f} MiB = {tree / 1024:.2f} GiB (target < 8 GiB; "
        "summed RSS of each stage's process and its descendants, psutil every 0.2 s)"
    )
    if not args.skip_parallel:
        par = parallel_variants(work, frame, args.workers)
        print_parallel(frame, par, args.workers)
        tree = max([tree, *(r["tree_peak_mb"] for r in par)])
        print(f"  process tree peak over every run {tree:.0f} MiB = {tree / 1024:.2f} GiB")
    used = disk_used_gib(args.cache)
    print(
        f"\nbenchmark wall {(time.perf_counter() - t0) / 60:.1f} min; cache {used:.1f} GiB "
        f"(hard links counted once each); this script's own peak "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

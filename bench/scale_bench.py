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

Unless ``--skip-parallel``, on the frame it runs Step 6 again from a copy of the run folder
taken after Step 5, and Steps 1-4 (after the serial run) from a fresh copy of the prepared run
folder, with ``--workers`` local processes (``n_cores``) and with a Dask LocalCluster of as many
workers, and prints the speed-up over the serial run (Steps 1-4: patch_wall; Step 6: its step
time), the peak RSS of every worker, and whether the HDF5 datasets the parallel run wrote are
byte-identical to those of the serial run ("identical" or the differing datasets). The copies
hard-link the HDF5 products (every step writes its products under a temporary name and renames
it, so a copy never changes the original).

Disk: the frame's stack takes ~11 GB (SLC, geometry, truth.h5) and a run folder that deletes
nothing ~22 GB, so unless ``--no-prune`` the bench deletes the patch products no later stage
reads: those of Steps 1-3 and the candidates after Step 4, every patch product after Step 5
(the merge). This changes no time; the "HDF5 products written" figure is the size of a run
folder that deletes nothing. The peak, ~23 GB with the stack, is the end of Steps 1-4 (serial or
parallel), when every patch product exists. A stage does not start with less than 2 GiB free.

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
if kind == "generate":
    from stamps_python.synthetic import generate_stack
elif kind == "prep":
    from stamps_python.prep_isce import prepare
elif kind == "steps":
    from stamps_python.parallel import ParallelOptions
    from stamps_python.pipeline import run_steps
else:
    from stamps_python.export_results import main
t = time.perf_counter()
if kind == "generate":
    spec = json.loads(args[1])
    r = generate_stack(args[0], profile=spec["profile"], rows=spec["rows"], cols=spec["cols"],
                       n_dates=spec["dates"], seed=spec["seed"], truth_cube="no", progress=False)
    out["n_ps"] = int(r["n_ps"])
elif kind == "prep":
    r = prepare(args[0], args[1], bootstrap_metadata=True, range_patches=int(args[2]),
                azimuth_patches=int(args[3]))
    out["n_candidates"] = int(r["n_candidates"])
elif kind == "steps":
    out["timings"] = run_steps(args[0], int(args[1]), int(args[2]),
                               parallel=ParallelOptions(**json.loads(args[3])))
else:
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


# --------------------------------------------------------------------------------------------
# stacks and run folders


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


SERIAL = {"n_cores": 1}
# Patch products no step after Step 4 reads (Step 5 reads ps2/ph2/pm2/bp2/la2/inc2/hgt2, Steps
# 6-8 and the export only the merged products of the run folder).
DEAD_AFTER_STEP4 = ("pscands", "ps1", "ph1", "bp1", "pm1", "select1", "la1", "inc1", "hgt1", "da1")
MIN_FREE_GIB = 2.0


def n_patch_candidates(run: Path) -> int:
    """Candidates summed over the patches (a pixel in an overlap counts in each patch)."""
    total = 0
    for path in sorted(run.glob("PATCH_*/pscands.h5")):
        with h5py.File(path, "r") as f:
            total += int(f["ij"].shape[0])
    return total


def h5_sizes(run: Path) -> dict[str, int]:
    return {p.relative_to(run).as_posix(): p.stat().st_size for p in run.rglob("*.h5")}


def prune(run: Path, names: tuple[str, ...] | None) -> None:
    """Delete the patch products ``names`` (None: every patch product) of ``run``."""
    for path in run.glob("PATCH_*/*.h5"):
        if names is None or path.stem in names:
            path.unlink()


def others_cores(res: dict) -> float:
    """Cores other processes of the machine kept busy, on average, while ``res`` ran."""
    return max(0.0, res["machine_cpu"] - res["cpu"]) / max(res["process_wall"], 1e-9)


class Bench:
    """The options, the cache and the disk figures of one invocation."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cache: Path = args.cache
        self.work = self.cache / "runs"
        self.logs = self.cache / "logs"
        self.min_free_gib = float("inf")
        self.peak_cache_gib = 0.0

    def child(self, label: str, kind: str, *args: str) -> dict:
        """Stage ``kind`` in a child process, its log in ``logs/label.log``; prints a line."""
        free = shutil.disk_usage(self.cache).free / 2**30
        if free < MIN_FREE_GIB:
            raise SystemExit(f"{self.cache}: only {free:.1f} GiB free; stopped before {label}")
        res = run_child_tree(CHILD, kind, *args, log=self.logs / f"{label}.log", disk=self.cache)
        self.min_free_gib = min(self.min_free_gib, res["min_free_gib"])
        res["cache_gib"] = disk_used_gib(self.cache)
        self.peak_cache_gib = max(self.peak_cache_gib, res["cache_gib"])
        print(
            f"  [{label}] {res['wall']:.1f} s, CPU {res['cpu']:.0f} s, driver "
            f"{res['peak_mb']:.0f} MiB, tree {res['tree_peak_mb']:.0f} MiB, cache "
            f"{res['cache_gib']:.1f} GiB, other work {others_cores(res):.1f} cores",
            flush=True,
        )
        return res

    def variants(self) -> list[tuple[str, str, dict]]:
        """(label, tag, ParallelOptions fields) of the parallel runs."""
        w = self.args.workers
        return [
            (f"--n-cores {w}", "ncores", {"n_cores": w}),
            (f"Dask LocalCluster {w} workers", "dask", {"cluster": "local", "num_workers": w}),
        ]


def ensure_stack(bench: Bench, spec: StackSpec) -> Path:
    """The stack of ``spec`` under ``cache/stacks``, generated unless present and complete (its
    ``complete.json`` is written last and holds the spec)."""
    stack = bench.cache / "stacks" / spec.name
    marker = stack / "complete.json"
    if (
        not bench.args.regenerate
        and marker.is_file()
        and json.loads(marker.read_text()) == asdict(spec)
    ):
        print(f"stack {spec.name}: kept from an earlier run ({stack})")
        return stack
    shutil.rmtree(stack, ignore_errors=True)
    stack.parent.mkdir(parents=True, exist_ok=True)
    res = bench.child(f"generate_{spec.name}", "generate", str(stack), json.dumps(asdict(spec)))
    marker.write_text(json.dumps(asdict(spec)))
    print(
        f"stack {spec.name}: generated in {res['wall']:.0f} s ({spec.slc_gib:.1f} GiB of SLC, "
        f"{res['n_ps']} PS, peak {res['peak_mb']:.0f} MiB)"
    )
    return stack


def parallel_run(
    bench: Bench,
    name: str,
    variant: tuple[str, str, dict],
    steps: tuple[int, int],
    source: Path,
    pattern: str,
    manifest: dict[str, str],
) -> dict:
    """Steps ``steps`` with ``variant`` in a copy of ``source``; compared with ``manifest``."""
    label, tag, opts = variant
    start, end = steps
    run = bench.work / f"{name}_{tag}_{start}{end}"
    link_copy(source, run)
    label_log = f"{name}_{tag}_steps{start}-{end}"
    res = bench.child(label_log, "steps", str(run), str(start), str(end), json.dumps(opts))
    t = res["timings"]
    res.update(
        label=label,
        steps=f"{start}-{end}" if start != end else str(start),
        steps_label=f"Steps {start}-{end}" if start != end else f"Step {start}",
        seconds=t["patch_wall"] if end <= 5 else t[f"step{start}"],
        identity=compare_manifests(manifest, h5_manifest(run, pattern)),
    )
    shutil.rmtree(run, ignore_errors=True)
    return res


def serial_run(bench: Bench, name: str, stack: Path, grid: float | None, parallel: bool) -> dict:
    """prep_isce, Steps 1-8 and export on ``stack`` in a fresh ``runs/name``, every stage in its
    own process. With ``parallel`` it also keeps the prepared run folder (for the parallel Steps
    1-4, run later) and the HDF5 manifests after Steps 4 and 6, and runs the parallel Step 6
    variants from a copy taken after Step 5. Unless ``--no-prune``, patch products no later
    stage reads are deleted after Steps 4 and 5 (the times are unchanged; the disk is not)."""
    args = bench.args
    run = bench.work / name
    shutil.rmtree(run, ignore_errors=True)
    res: dict = {"name": name, "stages": {}, "parallel": []}
    written: dict[str, int] = {}

    def stage(key: str, kind: str, *a: str) -> None:
        res["stages"][key] = bench.child(f"{name}_{key}", kind, *a)
        written.update(h5_sizes(run))

    patches = (str(args.range_patches), str(args.azimuth_patches))
    stage("prep", "prep", str(stack / "merged"), str(run), *patches)
    res["n_candidates"] = res["stages"]["prep"]["n_candidates"]
    res["n_patch_candidates"] = n_patch_candidates(run)
    if parallel:
        link_copy(run, bench.work / f"{name}_prepared")
    after5 = bench.work / f"{name}_after5"
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
            if parallel:
                link_copy(run, after5)
        stage(f"step{step}", "steps", str(run), str(step), str(step), json.dumps(SERIAL))
        if step == 4:
            res["n_ps_step4"] = n_ps_after_step4(run)
            if parallel:
                res["manifest4"] = h5_manifest(run, "PATCH_*/*.h5")
            if args.prune:
                prune(run, DEAD_AFTER_STEP4)
        elif step == 5:
            res["n_ps_merged"] = n_ps_merged(run)
            if args.prune:
                prune(run, None)
        elif step == 6 and parallel:
            res["manifest6"] = h5_manifest(run, "*.h5")
            for variant in bench.variants():
                res["parallel"].append(
                    parallel_run(bench, name, variant, (6, 6), after5, "*.h5", res["manifest6"])
                )
            shutil.rmtree(after5, ignore_errors=True)
    stage("export", "export", str(run), str(bench.work / f"{name}_export"))
    res["written_gib"] = sum(written.values()) / 2**30
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(bench.work / f"{name}_export", ignore_errors=True)
    return res


def parallel_steps_1_4(bench: Bench, res: dict) -> None:
    """Steps 1-4 of every variant from a fresh copy of the prepared run folder of ``res``."""
    prepared = bench.work / f"{res['name']}_prepared"
    for variant in bench.variants():
        res["parallel"].append(
            parallel_run(
                bench, res["name"], variant, (1, 4), prepared, "PATCH_*/*.h5", res["manifest4"]
            )
        )
    shutil.rmtree(prepared, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# report


def total_s(res: dict) -> float:
    return sum(res["stages"][s]["wall"] for s in STAGES)


def print_stack(res: dict, spec: StackSpec) -> None:
    n, npc = res["n_candidates"], res["n_patch_candidates"]
    st = res["stages"]
    print(
        f"\n== {res['name']}: {spec.dates} dates x {spec.rows} x {spec.cols}, profile "
        f"{spec.profile}: {n} candidates ({npc} in the patches, overlaps counted in each: "
        f"{npc / n:.2f}x), {res['n_ps_step4']} PS after Step 4 (in the patches), "
        f"{res['n_ps_merged']} PS in ps2.h5 (merged) =="
    )
    print(
        f"  {'stage':<8} {'wall s':>8} {'us/cand':>8} {'us/pcand':>8} {'CPU s':>8} "
        f"{'driver MiB':>10} {'snaphu MiB':>10} {'tree MiB':>9} {'process s':>9}"
    )
    for s in (*STAGES, "total"):
        if s == "total":
            r = {
                "wall": total_s(res),
                "cpu": sum(st[k]["cpu"] for k in STAGES),
                **{
                    k: max(st[x][k] for x in STAGES)
                    for k in ("peak_mb", "children_peak_mb", "tree_peak_mb")
                },
                "process_wall": sum(st[k]["process_wall"] for k in STAGES),
            }
        else:
            r = st[s]
        print(
            f"  {s:<8} {r['wall']:8.1f} {1e6 * r['wall'] / n:8.1f} {1e6 * r['wall'] / npc:8.1f} "
            f"{r['cpu']:8.1f} {r['peak_mb']:10.0f} {r['children_peak_mb']:10.0f} "
            f"{r['tree_peak_mb']:9.0f} {r['process_wall']:9.1f}"
        )
    patch = sum(st[f"step{k}"]["timings"]["patch_wall"] for k in range(1, 5))
    print(
        f"  Steps 1-4 serial patch_wall {patch:.1f} s; unwrap_grid_size {res['grid']:g} m; "
        f"HDF5 products written {res['written_gib']:.2f} GiB (a run folder that deletes nothing)"
    )


def print_comparison(frame: dict, ref: dict) -> None:
    nf, nr = frame["n_candidates"], ref["n_candidates"]
    pf, pr = frame["n_patch_candidates"], ref["n_patch_candidates"]
    print(
        f"\n== time per candidate, frame / reference ({nf / nr:.1f}x the candidates, "
        f"{pf / pr:.1f}x the patch candidates) =="
    )
    for s in (*STAGES, "total"):
        tf = total_s(frame) if s == "total" else frame["stages"][s]["wall"]
        tr = total_s(ref) if s == "total" else ref["stages"][s]["wall"]
        print(
            f"  {s:<8} frame {1e6 * tf / nf:8.1f} us  reference {1e6 * tr / nr:8.1f} us  "
            f"ratio {(tf / nf) / (tr / nr):5.2f}   per patch candidate: ratio "
            f"{(tf / pf) / (tr / pr):5.2f}"
        )
    print(
        "  target: total ratio within 1.25x (per patch candidate: Steps 1-5a work on the "
        "candidates of every patch, so the overlaps weigh more on the smaller stack)"
    )


def print_parallel(frame: dict, workers: int) -> None:
    st = frame["stages"]
    serial = {
        "1-4": sum(st[f"step{k}"]["timings"]["patch_wall"] for k in range(1, 5)),
        "6": st["step6"]["timings"]["step6"],
    }
    steps14 = [st[f"step{k}"] for k in range(1, 5)]
    cpu14 = sum(r["cpu"] for r in steps14)
    other14 = sum(max(0.0, r["machine_cpu"] - r["cpu"]) for r in steps14)
    print(
        f"\n== parallel on the frame ({workers} workers; serial: the run above, whose Steps 1-4 "
        f"took {cpu14:.0f} s CPU in {serial['1-4']:.0f} s while other work on the machine took "
        f"{other14 / sum(r['process_wall'] for r in steps14):.1f} cores) =="
    )
    par = sorted(frame["parallel"], key=lambda r: (r["steps"] != "1-4", r["label"]))
    for r in par:
        sp = serial[r["steps"]] / r["seconds"]
        target = 1.7 if r["steps"] == "1-4" else 1.6
        peaks = sorted(r["timings"].get("worker_peak_mb", {}).items())
        workers_mb = ", ".join(f"{w} {mb:.0f}" for w, mb in peaks) or "-"
        print(
            f"  {r['steps_label']:<10} {r['label']:<30} {r['seconds']:8.1f} s (serial "
            f"{serial[r['steps']]:.1f} s): speed-up {sp:4.2f}x (target {target}x); process "
            f"{r['process_wall']:.1f} s, CPU {r['cpu']:.1f} s; other work on the machine "
            f"{others_cores(r):.1f} cores"
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
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the serial run folders and exports (the frame's stays on disk while the "
        "parallel Steps 1-4 run)",
    )
    p.add_argument(
        "--no-prune",
        dest="prune",
        action="store_false",
        help="keep every patch product (default: delete those no later stage reads, after "
        "Steps 4 and 5, so the frame fits in ~25 GB with its stack)",
    )
    args = p.parse_args()
    if args.quick:
        args.dates, args.rows, args.cols, args.ref_rows, args.ref_cols = 10, 500, 2000, 200, 800
    frame_spec = StackSpec(args.profile, args.dates, args.rows, args.cols, args.seed)
    ref_spec = StackSpec(args.profile, args.dates, args.ref_rows, args.ref_cols, args.seed)
    args.cache.mkdir(parents=True, exist_ok=True)
    bench = Bench(args)
    print(
        f"cache {args.cache}: {shutil.disk_usage(args.cache).free / 2**30:.0f} GiB free; the "
        f"frame has {frame_spec.slc_gib:.1f} GiB of SLC",
        flush=True,
    )
    t0 = time.perf_counter()
    frame_stack = ensure_stack(bench, frame_spec)
    ref_stack = ensure_stack(bench, ref_spec)
    shutil.rmtree(bench.work, ignore_errors=True)

    parallel = not args.skip_parallel
    ref = serial_run(bench, "reference", ref_stack, args.unwrap_grid_size, parallel=False)
    frame = serial_run(bench, "frame", frame_stack, ref["grid"], parallel=parallel)
    if parallel:
        parallel_steps_1_4(bench, frame)
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
    if parallel:
        print_parallel(frame, args.workers)
        tree = max([tree, *(r["tree_peak_mb"] for r in frame["parallel"])])
        print(f"  process tree peak over every run {tree:.0f} MiB = {tree / 1024:.2f} GiB")
    print(
        f"\nbenchmark wall {(time.perf_counter() - t0) / 60:.1f} min; cache at most "
        f"{bench.peak_cache_gib:.1f} GiB after a stage (hard links counted once; "
        f"{'patch products pruned' if args.prune else 'nothing pruned'}), least free space "
        f"seen {bench.min_free_gib:.1f} GiB; this script's own peak "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    if not args.keep:
        shutil.rmtree(bench.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

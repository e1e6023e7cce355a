"""Frame-scale benchmark (issue 12): a whole PS run on a frame-sized synthetic stack.

It generates once, and keeps in ``--cache`` (default ``runs/bench_scale/``), a synthetic stack
of 40 dates x 2500 lines x 10000 samples (the "frame", ~8 GB of SLC) and a reference stack of
800 x 1600 with the same profile and date count. On each, in a fresh run folder and with
``n_cores`` ``--chain-cores`` (default 2: the target machine), it runs prep_isce (8 x 2
patches), Steps 1-4, 5, 6, 7, 8 and export_results (v-do), every stage in its own process as a
user runs them, and prints per stage: wall time, time per candidate, peak RSS of the driver
(RUSAGE_SELF) and of its largest child (RUSAGE_CHILDREN: a worker process or snaphu), the peak
of the process tree (the summed RSS of the process and all its descendants, sampled with
psutil every 0.2 s) and the CPU time (user + system, of the process and its waited-for
children), with the peak RSS of every worker of Steps 1-4. Then the number of candidates and
of PS (after Step 4, summed over the patches, and in the merged ps2.h5), the time per
candidate of the frame over that of the reference stack, the total time and the peak of the
tree.

Unless ``--skip-parallel``, on the frame it then measures the speed-ups: Steps 1-4 of the
first ``--speedup-patches`` patches (default 4) from a copy of the prepared run folder, and
Step 6 from a copy of the run folder after Step 5, each serially, on ``--workers`` local
processes (n_cores) and on a Dask LocalCluster of as many workers. It prints the speed-up over
the serial run (Steps 1-4: patch_wall; Step 6: its step time), the peak RSS of every worker,
and whether the HDF5 datasets each run wrote are byte-identical to those of the serial run and
of the chain ("identical" or the differing datasets). The copies hard-link the HDF5 products
(every step writes its products under a temporary name and renames it, so a copy never
changes the original).

Disk: the frame's stack takes ~11 GB (SLC, geometry, truth.h5) and a run folder that deletes
nothing ~22 GB, so unless ``--no-prune`` the bench deletes the patch products no later stage
reads: those of Steps 1-3 and the candidates after Step 4, every patch product after Step 5
(the merge). This changes no time; the "HDF5 products written" figure is the size of a run
folder that deletes nothing. The peak, ~23 GB with the stack, is the end of Steps 1-4, when
every patch product exists. A stage does not start with less than 2 GiB free.

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
        [--cache runs/bench_scale] [--profile realistic] [--chain-cores 2] [--workers 2]
        [--speedup-patches 4] [--speedups all|1-4|6]
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
from stamps_python.rundir import select_patches  # noqa: E402
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
    opts = json.loads(args[3])
    patches = opts.pop("patches", None)
    out["timings"] = run_steps(args[0], int(args[1]), int(args[2]), patches=patches,
                               parallel=ParallelOptions(**opts))
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


def warm_cache(folder: Path, pattern: str) -> float:
    """Read every file ``pattern`` of ``folder`` once (GiB read), so that each timed variant
    starts with its inputs in the page cache, as a step does in a chain right after the step
    that wrote them (otherwise the first variant pays the disk reads the later ones skip)."""
    total = 0
    for path in sorted(folder.glob(pattern)):
        with open(path, "rb") as f:
            while chunk := f.read(64 << 20):
                total += len(chunk)
    return total / 2**30


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


def opts_of(cores: int, patches: list[str] | None = None, dask: bool = False) -> dict:
    """ParallelOptions fields (plus ``patches``) of a run on ``cores`` processes or Dask workers."""
    out: dict = {"cluster": "local", "num_workers": cores} if dask else {"n_cores": cores}
    if patches:
        out["patches"] = patches
    return out


def restrict(manifest: dict[str, str], patches: list[str]) -> dict[str, str]:
    """The entries of ``manifest`` in the folders ``patches``."""
    return {k: v for k, v in manifest.items() if k.split("/", 1)[0] in patches}


def timed_run(
    bench: Bench,
    name: str,
    label: str,
    tag: str,
    opts: dict,
    steps: tuple[int, int],
    source: Path,
    pattern: str,
) -> tuple[dict, dict[str, str]]:
    """Steps ``steps`` with ``opts`` in a hard-linked copy of ``source`` (then deleted); the
    result (``seconds``: patch_wall for Steps 1-4, the step time for Step 6) and the manifest
    of the HDF5 files ``pattern`` it leaves."""
    start, end = steps
    run = bench.work / f"{name}_{tag}_{start}{end}"
    link_copy(source, run)
    warm_cache(source, pattern)
    res = bench.child(
        f"{name}_{tag}_steps{start}-{end}",
        "steps",
        str(run),
        str(start),
        str(end),
        json.dumps(opts),
    )
    t = res["timings"]
    res.update(label=label, seconds=t["patch_wall"] if end <= 4 else t[f"step{start}"])
    manifest = h5_manifest(run, pattern)
    shutil.rmtree(run, ignore_errors=True)
    return res, manifest


def chain_run(bench: Bench, name: str, stack: Path, grid: float | None, speedup: bool) -> dict:
    """prep_isce, Steps 1-8 and export on ``stack`` in a fresh ``runs/name`` on
    ``--chain-cores`` (n_cores: Steps 1-5a patch by patch in that many processes, Step 6's
    snaphu calls on as many), as a user runs it: prep, Steps 1-4, 5, 6, 7, 8 and the export
    each in its own process. With ``speedup`` it keeps copies of the prepared run folder and of
    the run folder after Step 5 and the HDF5 manifests after Steps 4 and 6, for
    :func:`speedups`. Unless ``--no-prune``, patch products no later stage reads are deleted
    after Steps 4 and 5 (the times are unchanged; the disk is not)."""
    args = bench.args
    cores = opts_of(args.chain_cores)
    run = bench.work / name
    shutil.rmtree(run, ignore_errors=True)
    res: dict = {"name": name, "stages": {}}
    written: dict[str, int] = {}

    def stage(key: str, kind: str, *a: str) -> dict:
        res["stages"][key] = bench.child(f"{name}_{key}", kind, *a)
        written.update(h5_sizes(run))
        return res["stages"][key]

    patches = (str(args.range_patches), str(args.azimuth_patches))
    stage("prep", "prep", str(stack / "merged"), str(run), *patches)
    res["n_candidates"] = res["stages"]["prep"]["n_candidates"]
    res["n_patch_candidates"] = n_patch_candidates(run)
    res["patches"] = [p.name for p in select_patches(run)]
    if speedup:
        link_copy(run, bench.work / f"{name}_prepared")
    stage("steps1-4", "steps", str(run), "1", "4", json.dumps(cores))
    res["n_ps_step4"] = n_ps_after_step4(run)
    if speedup:
        res["manifest4"] = h5_manifest(run, "PATCH_*/*.h5")
    if args.prune:
        prune(run, DEAD_AFTER_STEP4)
    stage("step5", "steps", str(run), "5", "5", json.dumps(cores))
    res["n_ps_merged"] = n_ps_merged(run)
    if args.prune:
        prune(run, None)
    if grid is None:
        grid = fitting_grid_size(run)
        if grid is None:
            raise SystemExit(f"{name}: no unwrap_grid_size of {GRID_SIZES_M} fits")
    elif not grid_fits(run, grid):
        raise SystemExit(f"{name}: unwrap_grid_size {grid:g} m does not fit this stack")
    res["grid"] = grid
    res["grid_200_fits"] = grid_fits(run, 200.0)
    set_parm(run, "unwrap_grid_size", grid)
    if speedup:
        link_copy(run, bench.work / f"{name}_after5")
    for step in (6, 7, 8):
        stage(f"step{step}", "steps", str(run), str(step), str(step), json.dumps(cores))
        if step == 6 and speedup:
            res["manifest6"] = h5_manifest(run, "*.h5")
    stage("export", "export", str(run), str(bench.work / f"{name}_export"))
    res["written_gib"] = sum(written.values()) / 2**30
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)
        shutil.rmtree(bench.work / f"{name}_export", ignore_errors=True)
    return res


def speedups(bench: Bench, res: dict) -> None:
    """Steps 1-4 of the first ``--speedup-patches`` patches from the prepared run folder, and
    Step 6 from the run folder after Step 5: serially, on ``--workers`` processes (n_cores) and
    on a Dask LocalCluster of as many workers. Each run's products are compared with the
    serial run's and with the chain's (which ran on ``--chain-cores``)."""
    args, name, w = bench.args, res["name"], bench.args.workers
    subset = res["patches"][: args.speedup_patches]
    variants = [
        ("serial", "serial", False, 1),
        (f"--n-cores {w}", "ncores", False, w),
        (f"Dask LocalCluster {w} workers", "dask", True, w),
    ]
    res["speedup"] = {}
    jobs = (
        (
            "1-4",
            (1, 4),
            f"{name}_prepared",
            "PATCH_*/*.h5",
            subset,
            restrict(res["manifest4"], subset),
        ),
        ("6", (6, 6), f"{name}_after5", "*.h5", None, res["manifest6"]),
    )
    for key, steps, source, pattern, patches, chain_manifest in jobs:
        if args.speedups not in ("all", key):
            shutil.rmtree(bench.work / source, ignore_errors=True)
            continue
        runs = []
        for label, tag, dask, cores in variants:
            r, manifest = timed_run(
                bench,
                name,
                label,
                tag,
                opts_of(cores, patches, dask),
                steps,
                bench.work / source,
                pattern,
            )
            if patches:
                manifest = restrict(manifest, patches)
            r["vs_chain"] = compare_manifests(chain_manifest, manifest)
            r["vs_serial"] = compare_manifests(runs[0]["manifest"], manifest) if runs else "-"
            r["manifest"] = manifest
            runs.append(r)
        for r in runs:
            del r["manifest"]
        res["speedup"][key] = {"patches": patches or res["patches"], "runs": runs}
        shutil.rmtree(bench.work / source, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# report


def total_s(res: dict) -> float:
    return sum(r["wall"] for r in res["stages"].values())


def tree_peak_mb(res: dict) -> float:
    runs = [*res["stages"].values()]
    for job in res.get("speedup", {}).values():
        runs += job["runs"]
    return max(r["tree_peak_mb"] for r in runs)


def print_stack(res: dict, spec: StackSpec, cores: int) -> None:
    n, npc = res["n_candidates"], res["n_patch_candidates"]
    st = res["stages"]
    print(
        f"\n== {res['name']}: {spec.dates} dates x {spec.rows} x {spec.cols}, profile "
        f"{spec.profile}, n_cores {cores}: {n} candidates ({npc} in the patches, overlaps "
        f"counted in each: {npc / n:.2f}x), {res['n_ps_step4']} PS after Step 4 (in the "
        f"patches), {res['n_ps_merged']} PS in ps2.h5 (merged) =="
    )
    print(
        f"  {'stage':<9} {'wall s':>8} {'us/cand':>8} {'us/pcand':>8} {'CPU s':>8} "
        f"{'driver MiB':>10} {'child MiB':>10} {'tree MiB':>9} {'process s':>9}"
    )
    rows = list(st.items())
    rows.append(
        (
            "total",
            {
                "wall": total_s(res),
                "cpu": sum(r["cpu"] for r in st.values()),
                **{
                    k: max(r[k] for r in st.values())
                    for k in ("peak_mb", "children_peak_mb", "tree_peak_mb")
                },
                "process_wall": sum(r["process_wall"] for r in st.values()),
            },
        )
    )
    for s, r in rows:
        print(
            f"  {s:<9} {r['wall']:8.1f} {1e6 * r['wall'] / n:8.1f} {1e6 * r['wall'] / npc:8.1f} "
            f"{r['cpu']:8.1f} {r['peak_mb']:10.0f} {r['children_peak_mb']:10.0f} "
            f"{r['tree_peak_mb']:9.0f} {r['process_wall']:9.1f}"
        )
    t = st["steps1-4"]["timings"]
    peaks = sorted(t.get("worker_peak_mb", {}).items())
    print(
        "  Steps 1-4 per step, summed over the patches' tasks: "
        + ", ".join(f"Step {k} {t[f'step{k}']:.1f} s" for k in range(1, 5))
        + f"; patch_wall {t['patch_wall']:.1f} s; workers (MiB): "
        + (", ".join(f"{w} {mb:.0f}" for w, mb in peaks) or "-")
    )
    print(
        f"  unwrap_grid_size {res['grid']:g} m; HDF5 products written {res['written_gib']:.2f} "
        "GiB (a run folder that deletes nothing)"
    )


def print_comparison(frame: dict, ref: dict) -> None:
    nf, nr = frame["n_candidates"], ref["n_candidates"]
    pf, pr = frame["n_patch_candidates"], ref["n_patch_candidates"]
    print(
        f"\n== time per candidate, frame / reference ({nf / nr:.1f}x the candidates, "
        f"{pf / pr:.1f}x the patch candidates) =="
    )
    for s in (*frame["stages"], "total"):
        tf = total_s(frame) if s == "total" else frame["stages"][s]["wall"]
        tr = total_s(ref) if s == "total" else ref["stages"][s]["wall"]
        print(
            f"  {s:<9} frame {1e6 * tf / nf:8.1f} us  reference {1e6 * tr / nr:8.1f} us  "
            f"ratio {(tf / nf) / (tr / nr):5.2f}   per patch candidate: ratio "
            f"{(tf / pf) / (tr / pr):5.2f}"
        )
    print(
        "  target: total ratio within 1.25x (per patch candidate: Steps 1-5a work on the "
        "candidates of every patch, so the overlaps weigh more on the smaller stack)"
    )


def print_speedups(frame: dict, workers: int) -> None:
    print(f"\n== speed-up on the frame, {workers} workers ==")
    for key, target in (("1-4", 1.7), ("6", 1.6)):
        if key not in frame["speedup"]:
            continue
        job = frame["speedup"][key]
        runs = job["runs"]
        what = (
            f"Steps 1-4 of {len(job['patches'])} patches ({', '.join(job['patches'])}), patch_wall"
            if key == "1-4"
            else "Step 6, its step time"
        )
        print(f"  {what}:")
        for r in runs:
            sp = runs[0]["seconds"] / r["seconds"]
            peaks = sorted(r["timings"].get("worker_peak_mb", {}).items())
            print(
                f"    {r['label']:<28} {r['seconds']:8.1f} s  speed-up {sp:4.2f}x"
                + ("" if r is runs[0] else f" (target {target}x)")
                + f"; process {r['process_wall']:.1f} s, CPU {r['cpu']:.1f} s, other work "
                f"{others_cores(r):.1f} cores; driver {r['peak_mb']:.0f} MiB, tree "
                f"{r['tree_peak_mb']:.0f} MiB; workers (MiB): "
                + (", ".join(f"{w} {mb:.0f}" for w, mb in peaks) or "-")
            )
            print(f"      products vs serial: {r['vs_serial']}; vs the chain: {r['vs_chain']}")


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
    p.add_argument(
        "--chain-cores",
        type=int,
        default=2,
        help="n_cores of the chains on both stacks (default 2, the target machine's cores)",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="processes / Dask workers of the speed-ups (2)"
    )
    p.add_argument(
        "--speedup-patches",
        type=int,
        default=4,
        help="patches (the first of patch.list) of the Steps 1-4 speed-up runs (default 4)",
    )
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
    p.add_argument(
        "--speedups",
        choices=("all", "1-4", "6"),
        default="all",
        help="which speed-ups to measure: Steps 1-4, Step 6 or both",
    )
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

    speedup = not args.skip_parallel
    ref = chain_run(bench, "reference", ref_stack, args.unwrap_grid_size, speedup=False)
    frame = chain_run(bench, "frame", frame_stack, ref["grid"], speedup=speedup)
    if speedup:
        speedups(bench, frame)
    print(
        f"\nunwrap_grid_size {ref['grid']:g} m on both stacks (synthetic pixels 13.9 m azimuth x "
        f"3.70 m ground range; the largest of {', '.join(f'{g:g}' for g in GRID_SIZES_M)} m that "
        f"fits the reference stack{'' if args.unwrap_grid_size is None else ', as asked'}); "
        f"StaMPS' 200 m default {'fits' if frame['grid_200_fits'] else 'does not fit'} the "
        f"frame, {'fits' if ref['grid_200_fits'] else 'does not fit'} the reference stack"
    )
    print_stack(ref, ref_spec, args.chain_cores)
    print_stack(frame, frame_spec, args.chain_cores)
    print_comparison(frame, ref)
    if speedup:
        print_speedups(frame, args.workers)
    chain_tree = max(r["tree_peak_mb"] for r in frame["stages"].values())
    tree = tree_peak_mb(frame)
    print(
        f"\nframe: prep + Steps 1-8 + export {total_s(frame):.0f} s = "
        f"{total_s(frame) / 60:.1f} min with n_cores {args.chain_cores} (in-process walls; "
        f"target < 20 min on 2 cores); process tree peak {chain_tree:.0f} MiB = "
        f"{chain_tree / 1024:.2f} GiB in the chain, {tree:.0f} MiB = {tree / 1024:.2f} GiB over "
        "every run (target < 8 GiB; summed RSS of each stage's process and its descendants, "
        "psutil every 0.2 s)"
    )
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

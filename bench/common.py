"""What the benchmark scripts share: running one measured stage in a fresh Python process."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh Python with ``args``; the JSON it prints last (wall s, peak MiB)."""
    res = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if res.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def add_profile_stack_arguments(p: argparse.ArgumentParser) -> None:
    """--profiles/--rows/--cols/--seed of the synthetic stacks the chain and SB benches share
    (same defaults, so both benchmark the same stacks)."""
    p.add_argument("--profiles", nargs="+", default=["easy", "realistic"])
    p.add_argument("--rows", type=int, default=400)
    p.add_argument("--cols", type=int, default=800)
    p.add_argument("--seed", type=int, default=7)


def add_accuracy_stack_arguments(
    p: argparse.ArgumentParser, profiles: list[str], seeds: list[int]
) -> None:
    """--profiles/--seeds/--rows/--cols/--ds-short-fraction/--strat-std/--terrain-relief/
    --no-bowl-anywhere of the
    stacks the chain and error-budget benches draw (bowl anywhere, short-lived DS:
    docs/synthetic.md)."""
    p.add_argument("--profiles", nargs="+", default=profiles)
    p.add_argument("--seeds", nargs="+", type=int, default=seeds)
    p.add_argument("--rows", type=int, default=400)
    p.add_argument("--cols", type=int, default=800)
    p.add_argument(
        "--ds-short-fraction",
        type=float,
        default=0.3,
        help="share of the distributed scatterers that stay coherent for weeks only (default 0.3)",
    )
    p.add_argument(
        "--strat-std",
        type=float,
        default=None,
        metavar="RAD_PER_KM",
        help="per-date stratified delay coefficient std (default: the profile's; 2 makes the "
        "strong-stratification stack of docs/troposphere.md)",
    )
    p.add_argument(
        "--terrain-relief",
        type=float,
        default=None,
        metavar="M",
        help="hill height scale, m (default: the profile's; 1000 for a mountainous scene)",
    )
    p.add_argument(
        "--no-bowl-anywhere",
        dest="bowl_anywhere",
        action="store_false",
        help="keep the bowl near the scene centre (the profile's spread)",
    )


def generate_accuracy_stack(stack: Path, profile: str, seed: int, args: argparse.Namespace) -> None:
    """The stack of one (profile, seed) with the options of :func:`add_accuracy_stack_arguments`
    and every truth cube (the floors and the error budget need them)."""
    from stamps_python.synthetic import generate_stack

    generate_stack(
        stack,
        profile=profile,
        rows=args.rows,
        cols=args.cols,
        seed=seed,
        truth_cube="yes",
        progress=False,
        bowl_anywhere=args.bowl_anywhere,
        ds_short_fraction=args.ds_short_fraction,
        strat_std=getattr(args, "strat_std", None),
        terrain_relief=getattr(args, "terrain_relief", None),
    )


def tree_rss_mb(pid: int) -> float:
    """Summed resident memory (MiB) of process ``pid`` and all its descendants, now (psutil).
    Pages shared between processes count once per process, so this is an upper bound."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 2**20


def run_child_tree(
    code: str,
    *args: str,
    log: Path,
    interval_s: float = 0.2,
    env: dict | None = None,
    disk: Path | None = None,
) -> dict:
    """Like :func:`run_child`, sampling every ``interval_s`` the summed RSS of the child's whole
    process tree (workers, snaphu): the JSON it prints last, plus ``tree_peak_mb`` (the largest
    sample), ``process_wall`` (s, including the interpreter start-up), ``machine_cpu`` (CPU
    seconds the whole machine was busy meanwhile, every process: minus the child's own CPU time,
    what other work took from it) and, with ``disk``, the least free space seen on its file
    system (``min_free_gib``). The child's stdout and stderr go to ``log`` (and ``log`` +
    ``.out``)."""
    import os
    import shutil
    import time

    import psutil

    def busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    log.parent.mkdir(parents=True, exist_ok=True)
    out_path = log.with_name(log.name + ".out")
    child_env = {**os.environ, "TQDM_DISABLE": "1", **(env or {})}
    t0 = time.perf_counter()
    busy0 = busy()
    peak = 0.0
    min_free = float("inf")
    with open(out_path, "w") as out, open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args], stdout=out, stderr=err, cwd=ROOT, env=child_env
        )
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            if disk is not None:
                min_free = min(min_free, shutil.disk_usage(disk).free / 2**30)
            time.sleep(interval_s)
    wall = time.perf_counter() - t0
    machine_cpu = busy() - busy0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)} (log {log})\n{log.read_text()[-3000:]}")
    res = json.loads(out_path.read_text().strip().splitlines()[-1])
    res["tree_peak_mb"] = peak
    res["process_wall"] = wall
    res["machine_cpu"] = machine_cpu
    if disk is not None:
        res["min_free_gib"] = min_free
    return res

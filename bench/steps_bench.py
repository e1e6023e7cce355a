"""Benchmark StaMPS Steps 1-5 on synthetic stacks: time, peak memory per step, PS recall/precision.

For a `realistic` stack (default 30 dates x 800 x 1600) and one `--scale` times larger in area
(default 4x: 1600 x 3200), it runs prep_isce and then each step in its own process, printing wall
time and peak memory per step, the number of candidates, and how the cost grows with the number
of candidates. On each stack it compares the final (selected and weeded) PS with the generator's
truth: recall = share of the true PS that were candidates and are kept; precision = share of
the kept points that are true PS or a sidelobe of one; and what the other kept points are.

    python bench/steps_bench.py [--rows 800 --cols 1600 --dates 30 --scale 4 --profile realistic]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import run_child  # noqa: E402

from stamps_python.io.products import load_product  # noqa: E402
from stamps_python.synthetic import generate_stack  # noqa: E402

STEP_CODE = """
import json, resource, sys, time
from stamps_python.pipeline import run_steps
t = time.perf_counter()
run_steps(sys.argv[1], int(sys.argv[2]), int(sys.argv[2]))
print(json.dumps({"wall": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
PREP_CODE = """
import json, resource, sys, time
from stamps_python.prep_isce import prepare
t = time.perf_counter()
prepare(sys.argv[1], sys.argv[2], bootstrap_metadata=True, range_patches=2, azimuth_patches=1)
print(json.dumps({"wall": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(code: str, *args: str) -> dict:
    return run_child(code, *args)


def _classes(truth: Path) -> tuple[np.ndarray, dict[str, str]]:
    with h5py.File(truth, "r") as f:
        names = json.loads(f.attrs["class_names"])
        return f["pixel_class"][()], names


def evaluate(run: Path, truth: Path) -> dict:
    """Recall of true PS among candidates, precision (PS or sidelobe), classes of the rest."""
    pclass, names = _classes(truth)
    cands = set()
    for pdir in sorted(run.glob("PATCH_*")):
        ij = load_product(pdir / "pscands.h5", ["ij"])["ij"]
        cands.update(map(tuple, ij.tolist()))
    final_ij = load_product(run / "ps2.h5", ["ij"])["ij"][:, 1:]
    final = set(map(tuple, final_ij.tolist()))
    true_ps = set(zip(*np.nonzero(pclass == 1)))
    sidelobe = set(zip(*np.nonzero(pclass == 2)))
    true_cands = true_ps & cands
    kept_true = true_cands & final
    good = final & (true_ps | sidelobe)
    others = np.array([pclass[r, c] for r, c in final - good], dtype=int)
    other_counts = {names[str(k)]: int(np.sum(others == k)) for k in np.unique(others)}
    with h5py.File(truth, "r") as f:
        gamma_inf = f["temporal_coherence_inf"][()] if "temporal_coherence_inf" in f else None
    ds_kept = [(r, c) for r, c in final - good if pclass[r, c] in (3, 5)]
    ds_dropped = [(r, c) for r, c in cands - final if pclass[r, c] in (3, 5)]
    ds_coherence = {}
    if gamma_inf is not None and ds_kept:
        ds_coherence = {
            "kept_median_long_term_coherence": float(np.median([gamma_inf[p] for p in ds_kept])),
            "dropped_median_long_term_coherence": float(
                np.median([gamma_inf[p] for p in ds_dropped])
            )
            if ds_dropped
            else float("nan"),
        }
    return {
        "n_true_ps": len(true_ps),
        "true_ps_candidates": len(true_cands),
        "n_candidates": len(cands),
        "n_final": len(final),
        "recall": len(kept_true) / max(len(true_cands), 1),
        "precision": len(good) / max(len(final), 1),
        "final_true_ps": len(final & true_ps),
        "final_sidelobes": len(final & sidelobe),
        "other_kept": other_counts,
        "distributed_coherence": ds_coherence,
    }


def bench_one(workdir: Path, rows: int, cols: int, dates: int, profile: str, seed: int) -> dict:
    stack, run = workdir / "stack", workdir / "run"
    t = time.perf_counter()
    generate_stack(
        stack,
        profile=profile,
        rows=rows,
        cols=cols,
        n_dates=dates,
        seed=seed,
        truth_cube="no",
        progress=False,
    )
    out = {"size": f"{dates} dates x {rows} x {cols}", "generate_s": time.perf_counter() - t}
    out["prep"] = _child(PREP_CODE, str(stack / "merged"), str(run))
    for step in range(1, 6):
        out[f"step{step}"] = _child(STEP_CODE, str(run), str(step))
    out["quality"] = evaluate(run, stack / "truth.h5")
    return out


def _print(res: dict) -> None:
    q = res["quality"]
    print(f"\n== {res['size']}: {q['n_candidates']} candidates, {q['n_final']} final PS ==")
    print(f"  generate      {res['generate_s']:7.1f} s")
    for key in ("prep", "step1", "step2", "step3", "step4", "step5"):
        print(f"  {key:<12} {res[key]['wall']:7.1f} s   peak {res[key]['peak_mb']:7.0f} MiB")
    print(f"  steps 2+3    {res['step2']['wall'] + res['step3']['wall']:7.1f} s")
    print(
        f"  recall    {100 * q['recall']:5.1f} %  ({q['true_ps_candidates']} true PS among the "
        f"candidates, of {q['n_true_ps']} true PS)   target >= 95 %"
    )
    print(
        f"  precision {100 * q['precision']:5.1f} %  ({q['final_true_ps']} true PS + "
        f"{q['final_sidelobes']} sidelobes of {q['n_final']})   target >= 75 %"
    )
    print(f"  other kept points by class: {q['other_kept']}")
    if q["distributed_coherence"]:
        d = q["distributed_coherence"]
        print(
            f"  distributed scatterers kept have a median long-term coherence of "
            f"{d['kept_median_long_term_coherence']:.2f} (those dropped: "
            f"{d['dropped_median_long_term_coherence']:.2f})"
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=800)
    p.add_argument("--cols", type=int, default=1600)
    p.add_argument("--dates", type=int, default=30)
    p.add_argument("--profile", default="realistic")
    p.add_argument("--scale", type=int, default=4, help="area factor of the second stack (0: none)")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument(
        "--extra-seeds",
        default="",
        help="comma-separated generator seeds: also run the base-size stack with each "
        "and print recall/precision over all seeds (mean, min, max)",
    )
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "steps")
    args = p.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    results = [
        bench_one(args.workdir / "base", args.rows, args.cols, args.dates, args.profile, args.seed)
    ]
    _print(results[0])
    shutil.rmtree(args.workdir / "base" / "stack", ignore_errors=True)
    if args.scale > 1:
        f = int(round(np.sqrt(args.scale)))
        results.append(
            bench_one(
                args.workdir / "large",
                args.rows * f,
                args.cols * f,
                args.dates,
                args.profile,
                args.seed,
            )
        )
        _print(results[1])
        a, b = results
        n_ratio = b["quality"]["n_candidates"] / a["quality"]["n_candidates"]
        print(f"\n== growth: {n_ratio:.2f}x candidates ==")
        for key in ("prep", "step1", "step2", "step3", "step4", "step5"):
            print(
                f"  {key:<8} {b[key]['wall'] / a[key]['wall']:5.2f}x time  "
                f"{b[key]['peak_mb'] / a[key]['peak_mb']:5.2f}x memory"
            )
        per_cand = (b["step2"]["wall"] + b["step3"]["wall"]) / b["quality"]["n_candidates"]
        print(f"  steps 2+3 per 200 000 candidates: {per_cand * 200_000:.1f} s (target < 120 s)")
    seeds = [int(x) for x in args.extra_seeds.split(",") if x.strip()]
    if seeds:
        quality = [results[0]["quality"]]
        for seed in seeds:
            res = bench_one(
                args.workdir / f"seed{seed}", args.rows, args.cols, args.dates, args.profile, seed
            )
            shutil.rmtree(args.workdir / f"seed{seed}", ignore_errors=True)
            quality.append(res["quality"])
            q = res["quality"]
            print(
                f"  seed {seed}: recall {100 * q['recall']:5.1f} %  precision "
                f"{100 * q['precision']:5.1f} %  ({q['n_final']} final, other kept "
                f"{q['other_kept']})"
            )
        for key in ("recall", "precision"):
            v = 100 * np.array([q[key] for q in quality])
            print(
                f"  {key} over seeds {[args.seed] + seeds}: mean {v.mean():.1f} %, "
                f"min {v.min():.1f} %, max {v.max():.1f} %"
            )
    shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

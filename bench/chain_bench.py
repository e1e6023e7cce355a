"""Benchmark the whole PS chain on synthetic stacks: time/memory per step and accuracy vs truth.

For each profile (`easy`, `realistic`) it generates a stack, runs prep_isce, Steps 1-8 (each step
in its own process, for its peak memory; unwrap_grid_size 50 m, as a scene of a few km needs)
and export_results (v-do and v-dso), then reads the
exported GeoPackages the way a user would (geopandas), places each point on the truth grid by its
lon/lat, and prints:
- velocity RMSE (mm/yr) against the truth after removing the reference offset (median difference),
  and the share of points off by more than 5 mm/yr;
- time-series RMSE (mm) against the true displacement, after removing each date's offset;
- the sign (correlation with the truth) and whether the subsidence bowl is there (mean VEL in the
  bowl core minus outside, exported vs truth).
Targets on `easy`: RMSE <= 1.5 mm/yr, < 2 % of points > 5 mm/yr, time-series RMSE <= 4 mm.

    python bench/chain_bench.py [--profiles easy realistic] [--rows 400 --cols 800]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import geopandas as gpd
import h5py
import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import add_profile_stack_arguments, run_child  # noqa: E402

from stamps_python.synthetic import CLASS_NAMES, generate_stack  # noqa: E402

CHILD = """
import json, resource, sys, time
t = time.perf_counter()
kind = sys.argv[1]
if kind == "prep":
    from stamps_python.parms import set_parm
    from stamps_python.prep_isce import prepare
    prepare(sys.argv[2], sys.argv[3], bootstrap_metadata=True, range_patches=2, azimuth_patches=1)
    # a few-km scene needs a finer unwrapping grid than the 200 m default (StaMPS stops otherwise)
    set_parm(sys.argv[3], "unwrap_grid_size", 50)
elif kind == "step":
    from stamps_python.stamps_main import run_steps
    run_steps(sys.argv[2], int(sys.argv[3]), int(sys.argv[3]))
else:
    from stamps_python.export_results import main
    main(["--input-path", sys.argv[2], "--output-dir", sys.argv[3], "--correction", "v-do",
          "--correction", "v-dso", "--plot"])
print(json.dumps({"wall": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(*args: str) -> dict:
    return run_child(CHILD, *args)


def accuracy(gpkg: Path, truth: Path) -> dict:
    """Exported VEL and D fields against the generator's truth (see module docstring)."""
    gdf = gpd.read_file(gpkg)
    with h5py.File(truth, "r") as t:
        lat, lon = t["lat"][()], t["lon"][()]
        vel_true = t["velocity_lsfit_mm_yr"][()]
        disp = t["displacement_mm"][()] if "displacement_mm" in t else None
        dates = [d.decode() for d in t["dates"][()]]
        bowl = t["bowl_core_mask"][()].astype(bool)
        pclass = t["pixel_class"][()]
    scale = np.cos(np.radians(np.nanmean(lat)))
    tree = cKDTree(np.column_stack([lon.ravel() * scale, lat.ravel()]))
    _, flat = tree.query(np.column_stack([gdf.geometry.x * scale, gdf.geometry.y]))
    r, c = np.unravel_index(flat, lat.shape)
    vel = gdf.VEL.values
    truth_v = vel_true[r, c]
    dv = vel - truth_v
    dv -= np.median(dv)
    # 'o' removes a plane per interferogram, so a planar part of the true deformation is gone
    # from v-do by design; compare also with that plane removed from the difference
    x, y = gdf.geometry.x.values, gdf.geometry.y.values
    plane = np.column_stack([np.ones_like(x), x - x.mean(), y - y.mean()])
    coef, *_ = np.linalg.lstsq(plane, vel - truth_v, rcond=None)
    dp = vel - truth_v - plane @ coef
    true_plane, *_ = np.linalg.lstsq(plane, truth_v, rcond=None)
    is_ps = pclass[r, c] == 1
    out = {
        "n_points": len(gdf),
        "vel_rmse": float(np.sqrt(np.mean(dv**2))),
        "frac_vel_err_gt5": float(np.mean(np.abs(dv) > 5)),
        "vel_rmse_plane": float(np.sqrt(np.mean(dp**2))),
        "frac_gt5_plane": float(np.mean(np.abs(dp) > 5)),
        "vel_rmse_plane_true_ps": float(np.sqrt(np.mean(dp[is_ps] ** 2))) if is_ps.any() else np.nan,
        "truth_plane_span": float(np.ptp(plane[:, 1:] @ true_plane[1:])),
        "vel_corr": float(np.corrcoef(vel, truth_v)[0, 1]),
        "bowl_contrast": float(vel[bowl[r, c]].mean() - vel[~bowl[r, c]].mean())
        if bowl[r, c].any() else float("nan"),
        "bowl_contrast_truth": float(truth_v[bowl[r, c]].mean() - truth_v[~bowl[r, c]].mean())
        if bowl[r, c].any() else float("nan"),
        "n_in_bowl": int(bowl[r, c].sum()),
        # RMSE (planar part removed) and point count per truth class: where the errors come from
        "by_class": {name: (int(np.sum(pclass[r, c] == k)),
                            float(np.sqrt(np.mean(dp[pclass[r, c] == k] ** 2))))
                     for k, name in CLASS_NAMES.items() if np.any(pclass[r, c] == k)},
    }
    if disp is not None:
        cols = [f"D{d}" for d in dates if f"D{d}" in gdf.columns]
        d_ours = gdf[cols].values
        d_true = disp[[dates.index(cname[1:]) for cname in cols]][:, r, c].T
        dd = d_ours - d_true
        dd -= np.median(dd, axis=0, keepdims=True)
        out["ts_rmse"] = float(np.sqrt(np.mean(dd**2)))
    return out


def bench_profile(workdir: Path, profile: str, rows: int, cols: int, seed: int) -> dict:
    stack, run, export = workdir / "stack", workdir / "run", workdir / "export"
    t = time.perf_counter()
    generate_stack(stack, profile=profile, rows=rows, cols=cols, seed=seed, truth_cube="yes",
                   progress=False)
    res: dict = {"profile": profile, "size": f"{rows} x {cols}", "generate_s": time.perf_counter() - t}
    res["prep"] = _child("prep", str(stack / "merged"), str(run))
    for step in range(1, 9):
        res[f"step{step}"] = _child("step", str(run), str(step))
    res["export"] = _child("export", str(run), str(export))
    for corr in ("v-do", "v-dso"):
        res[corr] = accuracy(export / f"ps_{corr}.gpkg", stack / "truth.h5")
    with h5py.File(stack / "truth.h5", "r") as t:
        res["n_dates"] = len(t["dates"])
    return res


def _print(res: dict) -> None:
    print(f"\n== profile {res['profile']}: {res['n_dates']} dates x {res['size']} ==")
    for key in ("prep", *[f"step{k}" for k in range(1, 9)], "export"):
        print(f"  {key:<8} {res[key]['wall']:7.1f} s   peak {res[key]['peak_mb']:6.0f} MiB")
    total = sum(res[k]["wall"] for k in res if isinstance(res[k], dict) and "wall" in res[k])
    print(f"  total    {total:7.1f} s (generation {res['generate_s']:.1f} s not included)")
    for corr in ("v-do", "v-dso"):
        a = res[corr]
        print(f"  {corr:<6} {a['n_points']} PS: VEL RMSE {a['vel_rmse']:.2f} mm/yr, "
              f"{100 * a['frac_vel_err_gt5']:.2f} % > 5 mm/yr, time-series RMSE "
              f"{a.get('ts_rmse', float('nan')):.2f} mm, corr {a['vel_corr']:.3f}, bowl "
              f"{a['bowl_contrast']:.1f} mm/yr (truth {a['bowl_contrast_truth']:.1f}, "
              f"{a['n_in_bowl']} PS in the core)")
        print(f"         with the planar part removed (true plane spans {a['truth_plane_span']:.1f} "
              f"mm/yr): VEL RMSE {a['vel_rmse_plane']:.2f} mm/yr ({a['vel_rmse_plane_true_ps']:.2f}"
              f" over true PS), {100 * a['frac_gt5_plane']:.2f} % > 5 mm/yr")
        print("         by truth class (points, RMSE mm/yr, planar part removed): "
              + ", ".join(f"{k} {n} {e:.2f}" for k, (n, e) in a["by_class"].items()))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_profile_stack_arguments(p)
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "chain")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    for profile in args.profiles:
        _print(bench_profile(args.workdir / profile, profile, args.rows, args.cols, args.seed))
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark the Small Baseline chain on synthetic stacks: time/memory per step, accuracy vs truth.

For each profile (`easy`, `realistic`) it generates a stack and runs, each in its own process (for
its peak memory):
- the SB chain: define_sb_pairs, prep_isce --small-baseline, build_sb_phase, Steps 1-8 and
  export_results (`v-do`: velocity from the small-baseline interferograms, as ps_plot 'v' on an SB
  run; `V-do`: from the single-master series inverted by sb_invert_uw, as ps_plot 'V');
- the PS chain on the same stack (prep_isce, Steps 1-8, export `v-do`), to count the points the SB
  run finds where the PS run has none.

It reads the exported GeoPackages as a user would and prints, per layer, the velocity RMSE
(mm/yr) against the truth after removing the reference offset, the share of points off by more
than 5 mm/yr and the time-series RMSE (as bench/chain_bench.py); the points per truth class of the
nearest pixel for the SB and the PS run; and the SB points with no PS-run point within 50 m (half
the 100 m SB resampling cell): ground only the SB run measures, with the share of distributed
scatterers around them and their velocity error. Targets on `easy`: SB RMSE <= 2 mm/yr with
< 3 % of points off by > 5 mm/yr.

    python bench/sb_bench.py [--profiles easy realistic] [--rows 400 --cols 800]
        [--max-temporal 60 --max-perpendicular 200]
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
sys.path.insert(0, str(ROOT / "bench"))

from chain_bench import accuracy  # noqa: E402
from common import add_profile_stack_arguments, run_child  # noqa: E402

from stamps_python.io.products import load_product  # noqa: E402
from stamps_python.synthetic import CLASS_NAMES, generate_stack  # noqa: E402

CHILD = """
import json, resource, sys, time
t = time.perf_counter()
kind, args = sys.argv[1], sys.argv[2:]
if kind == "pairs":
    from stamps_python.define_sb_pairs import define_pairs
    define_pairs(args[0], float(args[2]), float(args[3]), output=args[1])
elif kind in ("prep", "prep_sb"):
    from stamps_python.parms import set_parm
    from stamps_python.prep_isce import prepare
    prepare(args[0], args[1], bootstrap_metadata=True, range_patches=2, azimuth_patches=1,
            small_baseline=kind == "prep_sb")
    # a few-km scene needs a finer unwrapping grid than the 200 m default
    set_parm(args[1], "unwrap_grid_size", 50)
elif kind == "build":
    from stamps_python.build_sb_phase import main
    main([args[0]])
elif kind == "step":
    from stamps_python.pipeline import run_steps
    run_steps(args[0], int(args[1]), int(args[1]))
else:
    from stamps_python.export_results import main
    main(["--input-path", args[0], "--output-dir", args[1], "--n-boot", "20"]
         + [x for c in args[2:] for x in ("--correction", c)])
print(json.dumps({"wall": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(*args: str) -> dict:
    return run_child(CHILD, *args)


def point_classes(gpkg: Path, truth: Path) -> tuple[np.ndarray, np.ndarray]:
    """Truth pixel (flat index) and truth class of every exported point."""
    gdf = gpd.read_file(gpkg)
    with h5py.File(truth, "r") as t:
        lat, lon = t["lat"][()], t["lon"][()]
        pclass = t["pixel_class"][()]
    scale = np.cos(np.radians(np.nanmean(lat)))
    tree = cKDTree(np.column_stack([lon.ravel() * scale, lat.ravel()]))
    _, flat = tree.query(np.column_stack([gdf.geometry.x * scale, gdf.geometry.y]))
    return flat, pclass.ravel()[flat]


RADIUS_M = 50.0  # half the SB merge_resample_size default (100 m): one SB point's cell


def coverage(sb_gpkg: Path, ps_gpkg: Path, truth: Path, radius: float) -> dict:
    """SB points with no PS-run point within ``radius`` m (ground the PS run misses), the share
    of distributed-scatterer pixels around them, and their velocity error against the truth."""
    sb_g, ps_g = gpd.read_file(sb_gpkg), gpd.read_file(ps_gpkg)
    lat0 = float(np.mean(sb_g.geometry.y))
    m_per_deg = np.array([111320.0 * np.cos(np.radians(lat0)), 110540.0])

    def xy(g: gpd.GeoDataFrame) -> np.ndarray:
        return np.column_stack([g.geometry.x, g.geometry.y]) * m_per_deg

    dist, _ = cKDTree(xy(ps_g)).query(xy(sb_g))
    alone = dist > radius
    with h5py.File(truth, "r") as t:
        lat, lon = t["lat"][()], t["lon"][()]
        pclass = t["pixel_class"][()].ravel()
        vel_true = t["velocity_lsfit_mm_yr"][()].ravel()
    pix = np.column_stack([lon.ravel(), lat.ravel()]) * m_per_deg
    tree = cKDTree(pix)
    ds_share = [
        float(np.mean(np.isin(pclass[tree.query_ball_point(p, radius)], (3, 5))))
        for p in xy(sb_g)[alone]
    ]
    _, near = tree.query(xy(sb_g))
    dv = sb_g.VEL.to_numpy() - vel_true[near]
    dv -= np.median(dv)
    return {
        "n_sb": len(sb_g),
        "n_alone": int(alone.sum()),
        "ds_share_alone": float(np.mean(ds_share)) if ds_share else float("nan"),
        "rmse_alone": float(np.sqrt(np.mean(dv[alone] ** 2))) if alone.any() else float("nan"),
    }


def selected_pixels(sb: Path, ps: Path, truth: Path) -> dict:
    """Pixels the SB run keeps after Step 4 (before Step 5 resamples them to 100 m cells) by
    truth class, and those of them the PS run does not keep."""
    with h5py.File(truth, "r") as t:
        pclass = t["pixel_class"][()]
    sb_pix = set()
    for pdir in sorted(sb.glob("PATCH_*")):
        ij = load_product(pdir / "ps2.h5", ["ij"])["ij"]
        sb_pix.update(map(tuple, ij[:, 1:].tolist()))
    ps_pix = set(map(tuple, load_product(ps / "ps2.h5", ["ij"])["ij"][:, 1:].tolist()))
    only = sb_pix - ps_pix
    cls_sb = np.array([pclass[p] for p in sb_pix], dtype=int)
    cls_only = np.array([pclass[p] for p in only], dtype=int)
    return {
        "sb": len(sb_pix),
        "sb_ds": int(np.sum(np.isin(cls_sb, (3, 5)))),
        "only": len(only),
        "only_ds": int(np.sum(np.isin(cls_only, (3, 5)))),
        "ps_ds": int(sum(pclass[p] in (3, 5) for p in ps_pix)),
    }


def bench_profile(
    workdir: Path,
    profile: str,
    rows: int,
    cols: int,
    seed: int,
    max_temporal: float,
    max_perp: float,
) -> dict:
    stack, sb, ps = workdir / "stack", workdir / "sb", workdir / "ps"
    t = time.perf_counter()
    generate_stack(
        stack, profile=profile, rows=rows, cols=cols, seed=seed, truth_cube="yes", progress=False
    )
    merged, truth = str(stack / "merged"), stack / "truth.h5"
    res: dict = {
        "profile": profile,
        "size": f"{rows} x {cols}",
        "generate_s": time.perf_counter() - t,
        "sb": {},
        "ps": {},
    }
    res["sb"]["define_sb_pairs"] = _child(
        "pairs", merged, str(sb), str(max_temporal), str(max_perp)
    )
    res["sb"]["prep"] = _child("prep_sb", merged, str(sb))
    res["sb"]["build_sb_phase"] = _child("build", str(sb))
    for step in range(1, 9):
        res["sb"][f"step{step}"] = _child("step", str(sb), str(step))
    res["sb"]["export"] = _child("export", str(sb), str(sb / "export"), "v-do", "V-do")
    res["ps"]["prep"] = _child("prep", merged, str(ps))
    for step in range(1, 9):
        res["ps"][f"step{step}"] = _child("step", str(ps), str(step))
    res["ps"]["export"] = _child("export", str(ps), str(ps / "export"), "v-do")
    res["acc"] = {
        "SB v-do": accuracy(sb / "export" / "ps_v-do.gpkg", truth),
        "SB V-do": accuracy(sb / "export" / "ps_v-do_sm.gpkg", truth),
        "PS v-do": accuracy(ps / "export" / "ps_v-do.gpkg", truth),
    }
    _, sb_cls = point_classes(sb / "export" / "ps_v-do.gpkg", truth)
    _, ps_cls = point_classes(ps / "export" / "ps_v-do.gpkg", truth)
    res["classes"] = {
        "SB": {CLASS_NAMES[k]: int(np.sum(sb_cls == k)) for k in CLASS_NAMES},
        "PS": {CLASS_NAMES[k]: int(np.sum(ps_cls == k)) for k in CLASS_NAMES},
    }
    res["pixels"] = selected_pixels(sb, ps, truth)
    res["coverage"] = coverage(
        sb / "export" / "ps_v-do_sm.gpkg", ps / "export" / "ps_v-do.gpkg", truth, RADIUS_M
    )
    res["n_pairs"] = len((sb / "small_baselines.list").read_text().split("\n")) - 1
    with h5py.File(truth, "r") as t:
        res["n_dates"] = len(t["dates"])
    return res


def _print(res: dict) -> None:
    print(
        f"\n== profile {res['profile']}: {res['n_dates']} dates x {res['size']}, "
        f"{res['n_pairs']} small-baseline pairs =="
    )
    for chain in ("sb", "ps"):
        total = 0.0
        for key, r in res[chain].items():
            print(f"  {chain.upper()} {key:<16} {r['wall']:7.1f} s   peak {r['peak_mb']:6.0f} MiB")
            total += r["wall"]
        print(f"  {chain.upper()} total            {total:7.1f} s")
    for name, a in res["acc"].items():
        print(
            f"  {name}: {a['n_points']} points, VEL RMSE {a['vel_rmse']:.2f} mm/yr, "
            f"{100 * a['frac_vel_err_gt5']:.2f} % > 5 mm/yr, time-series RMSE "
            f"{a.get('ts_rmse', float('nan')):.2f} mm, corr {a['vel_corr']:.3f}, bowl "
            f"{a['bowl_contrast']:.1f} mm/yr (truth {a['bowl_contrast_truth']:.1f})"
        )
        print(
            f"      planar part removed: VEL RMSE {a['vel_rmse_plane']:.2f} mm/yr, "
            f"{100 * a['frac_gt5_plane']:.2f} % > 5 mm/yr"
        )
    for chain, counts in res["classes"].items():
        print(
            f"  {chain} points by truth class: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        )
    px = res["pixels"]
    print(
        f"  pixels kept after Step 4: SB {px['sb']} ({px['sb_ds']} distributed scatterers), of "
        f"which {px['only']} ({px['only_ds']} distributed scatterers) the PS run does not keep; "
        f"the PS run keeps {px['ps_ds']} distributed scatterers"
    )
    c = res["coverage"]
    print(
        f"  SB points with no PS point within {RADIUS_M:.0f} m (ground the PS run misses): "
        f"{c['n_alone']} of {c['n_sb']}; {100 * c['ds_share_alone']:.0f} % of the pixels around "
        f"them are distributed scatterers; their V-do RMSE {c['rmse_alone']:.2f} mm/yr"
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_profile_stack_arguments(p)
    p.add_argument("--max-temporal", type=float, default=60.0, help="days")
    p.add_argument("--max-perpendicular", type=float, default=200.0, help="m")
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "sb")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    for profile in args.profiles:
        _print(
            bench_profile(
                args.workdir / profile,
                profile,
                args.rows,
                args.cols,
                args.seed,
                args.max_temporal,
                args.max_perpendicular,
            )
        )
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark the Small Baseline chain on synthetic stacks: time/memory per step, accuracy vs truth.

For each profile (`easy`, `realistic`) it generates a stack and runs, each in its own process (for
its peak memory):
- the SB chain: define_sb_pairs, prep_isce --small-baseline, build_sb_phase, Steps 1-8 and
  export_results (`v-do`: velocity from the small-baseline interferograms, as ps_plot 'v' on an SB
  run; `V-do`: from the single-master series inverted by sb_invert_uw, as ps_plot 'V');
- the PS chain on the same stack (prep_isce, Steps 1-8, export `v-do`), to count the points the SB
  run finds where the PS run has none;
- the combined (MERGED) run: ps_sb_merge of the PS and SB runs' Step 5 products, Steps 6-8 on
  MERGED and export_results (`v-do`, `V-do`).

It reads the exported GeoPackages as a user would and prints, per layer, the velocity RMSE
(mm/yr) against the truth after removing the reference offset, the share of points off by more
than 5 mm/yr and the time-series RMSE; the points per truth class of the nearest pixel for the
SB and the PS run; and the SB points with no PS-run point within 50 m (half the 100 m SB
resampling cell): ground only the SB run measures, with the share of distributed scatterers
around them and their velocity error. Targets on `easy`: SB RMSE <= 2 mm/yr with < 3 % of points
off by > 5 mm/yr.

For the MERGED run it prints the points (PS only, combined, SB), the ground it covers that
neither run covers alone and that each one alone misses (50 m), and the velocity error of PS,
SB and MERGED on the same points: the MERGED points that are PS pixels against the PS run, the
SB points against the SB run (velocities of the single-master series, `V-do` for SB and MERGED,
`v-do` for PS). Targets: MERGED holds at least the union of the two runs' well-measured points
(error <= 5 mm/yr) and its RMSE on each set of points is no worse than the better run's.

    python bench/sb_bench.py [--profiles easy realistic] [--rows 400 --cols 800]
        [--max-temporal 60 --max-perpendicular 200] [--sb-merge-resample-size 0]
"""

from __future__ import annotations

import argparse
import json
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
elif kind == "set":
    from stamps_python.parms import set_parm
    set_parm(args[0], args[1], float(args[2]))
elif kind == "merge":
    from stamps_python.ps_sb_merge import main
    main([args[0], args[1], "--output", args[2]])
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


class Layer:
    """One exported GeoPackage layer placed on the truth: per point lon/lat, metric xy, the
    velocity and its error (mm/yr, the median offset removed) and the time series."""

    def __init__(self, gpkg: Path, truth: Path) -> None:
        gdf = gpd.read_file(gpkg)
        with h5py.File(truth, "r") as t:
            lat, lon = t["lat"][()], t["lon"][()]
            vel = t["velocity_lsfit_mm_yr"][()].ravel()
            core = t["bowl_core_mask"][()].astype(bool).ravel()
            dates = [d.decode() for d in t["dates"][()]]
            disp = t["displacement_mm"][()] if "displacement_mm" in t else None
        self.lonlat = np.column_stack([gdf.geometry.x.to_numpy(), gdf.geometry.y.to_numpy()])
        m_per_deg = np.array([111320.0 * np.cos(np.radians(np.nanmean(lat))), 110540.0])
        self.m_per_deg = m_per_deg
        self.xy = self.lonlat * m_per_deg
        _, flat = cKDTree(np.column_stack([lon.ravel(), lat.ravel()]) * m_per_deg).query(self.xy)
        self.vel = gdf.VEL.to_numpy(dtype=np.float64)
        self.vel_true = vel[flat]
        self.core = core[flat]
        err = self.vel - self.vel_true
        self.err = err - np.median(err)
        self.ts_rmse = float("nan")
        if disp is not None:
            cols = [f"D{d}" for d in dates if f"D{d}" in gdf.columns]
            rows, cols_ix = np.unravel_index(flat, lat.shape)
            true = disp[[dates.index(c[1:]) for c in cols]][:, rows, cols_ix].T
            dd = gdf[cols].to_numpy(dtype=np.float64) - true
            dd -= np.median(dd, axis=0, keepdims=True)
            self.ts_rmse = float(np.sqrt(np.mean(dd**2)))

    def __len__(self) -> int:
        return len(self.vel)

    def rows_at(self, lonlat: np.ndarray, tol_m: float = 0.5) -> np.ndarray:
        """Row of this layer at each of ``lonlat`` (the same point, within ``tol_m``), -1 where
        it has none."""
        dist, ix = cKDTree(self.xy).query(np.asarray(lonlat) * self.m_per_deg)
        return np.where(dist <= tol_m, ix, -1)


def figures(err: np.ndarray) -> dict:
    """RMSE (mm/yr) and share of points off by more than 5 mm/yr of velocity errors ``err``."""
    if not err.size:
        return {"n": 0, "rmse": float("nan"), "gt5": float("nan")}
    return {
        "n": int(err.size),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "gt5": float(np.mean(np.abs(err) > 5.0)),
    }


def accuracy(gpkg: Path, truth: Path) -> dict:
    """Velocity and time-series figures of one exported layer against the truth."""
    layer = Layer(gpkg, truth)
    e = layer.err
    A = np.column_stack([np.ones(len(e)), layer.xy - layer.xy.mean(axis=0)])
    e_plane = e - A @ np.linalg.lstsq(A, e, rcond=None)[0]
    core = layer.core
    both = core.any() and (~core).any()
    return {
        "n_points": len(layer),
        "vel_rmse": figures(e)["rmse"],
        "frac_vel_err_gt5": figures(e)["gt5"],
        "ts_rmse": layer.ts_rmse,
        "vel_corr": float(np.corrcoef(layer.vel, layer.vel_true)[0, 1]),
        "bowl_contrast": float(layer.vel[core].mean() - layer.vel[~core].mean())
        if both
        else float("nan"),
        "bowl_contrast_truth": float(layer.vel_true[core].mean() - layer.vel_true[~core].mean())
        if both
        else float("nan"),
        "vel_rmse_plane": figures(e_plane)["rmse"],
        "frac_gt5_plane": figures(e_plane)["gt5"],
    }


def merged_figures(merged: Path, ps: Path, sb: Path, truth: Path, radius: float) -> dict:
    """The MERGED run against the PS and SB runs: its points by origin (merge2), the ground
    (within ``radius`` m) it covers that neither or one run alone does not, and the velocity
    errors of the three runs on the same points (single-master series: V-do for SB and MERGED,
    v-do for PS)."""
    lm = Layer(merged / "export" / "ps_v-do_sm.gpkg", truth)
    lp = Layer(ps / "export" / "ps_v-do.gpkg", truth)
    ls = Layer(sb / "export" / "ps_v-do_sm.gpkg", truth)
    m2 = load_product(merged / "merge2.h5")
    ps_ll = load_product(ps / "ps2.h5", ["lonlat"])["lonlat"]
    sb_ll = load_product(sb / "ps2.h5", ["lonlat"])["lonlat"]
    sb_only = np.setdiff1d(np.arange(len(sb_ll)), m2["sbnu_ix"])
    # each group: the MERGED points' lon/lat, and for each run the lon/lat of the same points
    # there (a combined pixel is at the SB point's place; the PS pixel may lie elsewhere in it)
    groups = {
        "PS only": (ps_ll[m2["psu_ix"]], {"PS": ps_ll[m2["psu_ix"]]}),
        "combined": (
            sb_ll[m2["sbnu_ix"]],
            {"PS": ps_ll[m2["psnu_ix"]], "SB": sb_ll[m2["sbnu_ix"]]},
        ),
        "SB only": (sb_ll[sb_only], {"SB": sb_ll[sb_only]}),
    }
    layers = {"PS": lp, "SB": ls}
    res: dict = {
        "n": {"PS": len(lp), "SB": len(ls), "MERGED": len(lm)},
        "origin": {k: len(v[0]) for k, v in groups.items()},
        "groups": {},
    }
    for name, (ll, others) in groups.items():
        rm = lm.rows_at(ll) if len(ll) else np.zeros(0, dtype=int)
        out = {}
        for label, ll_run in others.items():
            r = layers[label].rows_at(ll_run) if len(ll_run) else np.zeros(0, dtype=int)
            both = (r >= 0) & (rm >= 0)
            out[label] = figures(layers[label].err[r[both]])
            out[f"MERGED vs {label}"] = figures(lm.err[rm[both]])
        res["groups"][name] = out
    # well-measured points: error <= 5 mm/yr; the union of PS and SB counted by place (1 m)
    good_p, good_s, good_m = (np.abs(x.err) <= 5.0 for x in (lp, ls, lm))
    union = np.concatenate([lp.xy[good_p], ls.xy[good_s]])
    if len(union):
        dup = cKDTree(union).query_pairs(1.0, output_type="ndarray")
        n_union = len(union) - len(np.unique(dup[:, 1])) if len(dup) else len(union)
    else:
        n_union = 0
    res["well"] = {"PS": int(good_p.sum()), "SB": int(good_s.sum()), "union": n_union}
    res["well"]["MERGED"] = int(good_m.sum())
    d_ps, _ = cKDTree(lp.xy).query(lm.xy)
    d_sb, _ = cKDTree(ls.xy).query(lm.xy)
    res["cover"] = {
        "no_ps": int(np.sum(d_ps > radius)),
        "no_sb": int(np.sum(d_sb > radius)),
        "neither": int(np.sum((d_ps > radius) & (d_sb > radius))),
    }
    cells = {}
    for label, layer in (("PS", lp), ("SB", ls), ("MERGED", lm)):
        cells[label] = set(map(tuple, np.floor(layer.xy / (2 * radius)).astype(int).tolist()))
    res["cells"] = {k: len(v) for k, v in cells.items()}
    res["cells"]["PS+SB"] = len(cells["PS"] | cells["SB"])
    res["cells"]["MERGED only"] = len(cells["MERGED"] - cells["PS"] - cells["SB"])
    res["all"] = {label: figures(layer.err) for label, layer in (("PS", lp), ("SB", ls))}
    res["all"]["MERGED"] = figures(lm.err)
    return res


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
    sb_resample: float | None = None,
) -> dict:
    stack, sb, ps, mg = (workdir / n for n in ("stack", "sb", "ps", "merged"))
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
        "merged": {},
    }
    res["sb"]["define_sb_pairs"] = _child(
        "pairs", merged, str(sb), str(max_temporal), str(max_perp)
    )
    res["sb"]["prep"] = _child("prep_sb", merged, str(sb))
    res["sb"]["build_sb_phase"] = _child("build", str(sb))
    if sb_resample is not None:
        _child("set", str(sb), "merge_resample_size", str(sb_resample))
    for step in range(1, 9):
        res["sb"][f"step{step}"] = _child("step", str(sb), str(step))
    res["sb"]["export"] = _child("export", str(sb), str(sb / "export"), "v-do", "V-do")
    res["ps"]["prep"] = _child("prep", merged, str(ps))
    for step in range(1, 9):
        res["ps"][f"step{step}"] = _child("step", str(ps), str(step))
    res["ps"]["export"] = _child("export", str(ps), str(ps / "export"), "v-do")
    res["merged"]["ps_sb_merge"] = _child("merge", str(ps), str(sb), str(mg))
    for step in range(6, 9):
        res["merged"][f"step{step}"] = _child("step", str(mg), str(step))
    res["merged"]["export"] = _child("export", str(mg), str(mg / "export"), "v-do", "V-do")
    res["acc"] = {
        "SB v-do": accuracy(sb / "export" / "ps_v-do.gpkg", truth),
        "SB V-do": accuracy(sb / "export" / "ps_v-do_sm.gpkg", truth),
        "PS v-do": accuracy(ps / "export" / "ps_v-do.gpkg", truth),
        "MERGED v-do": accuracy(mg / "export" / "ps_v-do.gpkg", truth),
        "MERGED V-do": accuracy(mg / "export" / "ps_v-do_sm.gpkg", truth),
    }
    res["merge"] = merged_figures(mg, ps, sb, truth, RADIUS_M)
    res["sb_resample"] = float(
        json.loads((sb / "parms.json").read_text()).get("merge_resample_size", 100)
    )
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
    for chain in ("sb", "ps", "merged"):
        total = 0.0
        for key, r in res[chain].items():
            print(
                f"  {chain.upper():<6} {key:<16} {r['wall']:7.1f} s   peak {r['peak_mb']:6.0f} MiB"
            )
            total += r["wall"]
        print(f"  {chain.upper():<6} total            {total:7.1f} s")
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
    _print_merge(res)


def _print_merge(res: dict) -> None:
    m = res["merge"]
    o = m["origin"]
    print(
        f"  MERGED (SB merge_resample_size {res['sb_resample']:g} m): {m['n']['MERGED']} points "
        f"exported ({o['PS only']} PS only, {o['combined']} PS + SB combined, {o['SB only']} SB "
        f"only); PS run {m['n']['PS']}, SB run {m['n']['SB']}"
    )
    c, cells = m["cover"], m["cells"]
    d = 2 * RADIUS_M
    print(
        f"  MERGED points with no PS point within {RADIUS_M:.0f} m: {c['no_ps']}, with no SB "
        f"point: {c['no_sb']}, with neither (ground neither run covers alone): {c['neither']}; "
        f"{d:.0f} m cells covered: PS {cells['PS']}, SB {cells['SB']}, PS or SB "
        f"{cells['PS+SB']}, MERGED {cells['MERGED']} ({cells['MERGED only']} by MERGED only)"
    )
    w = m["well"]
    print(
        f"  well-measured points (|error| <= 5 mm/yr): PS {w['PS']}, SB {w['SB']}, union "
        f"{w['union']}, MERGED {w['MERGED']} -> target MERGED >= union: "
        f"{'met' if w['MERGED'] >= w['union'] else 'NOT met'}"
    )
    for label in ("PS", "SB", "MERGED"):
        f = m["all"][label]
        print(
            f"  {label:<6} all points: {f['n']:6d}, VEL RMSE {f['rmse']:5.2f} mm/yr, "
            f"{100 * f['gt5']:5.2f} % > 5 mm/yr"
        )
    for name, g in m["groups"].items():
        labels = [x for x in ("PS", "SB") if x in g and g[x]["n"]]
        parts = [
            f"{x} {g[x]['rmse']:5.2f} ({100 * g[x]['gt5']:4.1f} %) vs MERGED "
            f"{g['MERGED vs ' + x]['rmse']:5.2f} ({100 * g['MERGED vs ' + x]['gt5']:4.1f} %) on "
            f"{g[x]['n']}"
            for x in labels
        ]
        if not labels:
            print(f"  same points, {name:<8}: none")
            continue
        better = min(labels, key=lambda x: g[x]["rmse"])
        met = g["MERGED vs " + better]["rmse"] <= g[better]["rmse"]
        print(
            f"  same points, {name:<8}: VEL RMSE (> 5 mm/yr) "
            + "; ".join(parts)
            + f" -> no worse than the better ({better}): {'met' if met else 'NOT met'}"
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_profile_stack_arguments(p)
    p.add_argument("--max-temporal", type=float, default=60.0, help="days")
    p.add_argument("--max-perpendicular", type=float, default=200.0, help="m")
    p.add_argument(
        "--sb-merge-resample-size",
        type=float,
        default=None,
        metavar="M",
        help="merge_resample_size (m) of the SB run's Step 5 (default: the SB default, 100 m; "
        "0 keeps the SB pixels, which ps_sb_merge then combines with the PS pixels)",
    )
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
                args.sb_merge_resample_size,
            )
        )
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

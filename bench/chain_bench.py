"""Benchmark the whole PS chain on synthetic stacks: time/memory per step and accuracy vs truth.

For each profile (`easy`, `realistic`) and each seed it generates a stack (by default with the
subsidence bowl anywhere in the scene and a population of short-lived distributed scatterers,
`--bowl-anywhere` / `--ds-short-fraction`, see docs/synthetic.md), runs prep_isce, Steps 1-8
(each step in its own process, for its peak memory; unwrap_grid_size 50 m, as a scene of a few
km needs) and export_results, twice:
- **faithful**: the StaMPS defaults, layers `v-do`, `v-dso` and `v-dao` (after `aps_linear`:
  TRAIN's linear tropospheric correction, fitted on the PS outside the subsidence bowl, the
  non-deforming polygon a user would draw);
- **accurate**: the same run after `stamps_parms RUN preset accurate` and Steps 7-8 again
  (Steps 1-6 do not read the preset's parameters), layers `v-do`, `v-dso` and `v-dao`.

It reads the exported GeoPackages as a user would (geopandas), places each point on the truth
grid by its lon/lat and prints, for every layer, on all exported points and on the true PS among
them: the velocity RMSE (mm/yr, after removing the median offset: the reference), the share of
points off by more than 5 mm/yr, and the local-outlier fraction (points whose error differs by
more than 5 mm/yr from the median error of their 8 nearest exported neighbours). Beside each, two
**floors** computed from the truth at the same points:
- `floor`: an ideal estimator that does not filter atmosphere: the least-squares rate through
  the true displacement plus the true atmosphere (turbulent and stratified, truth
  `atmosphere_rad`) plus the point's own phase noise (its SLC interferograms minus every
  modelled term), i.e. a processor that removes orbit ramps, DEM errors and unwrapping errors
  perfectly and filters nothing;
- `floor_atm`: the same without the point noise (atmosphere only).
Last, the true PS each layer keeps, as a share of those the faithful `v-do` exports. Targets
with the preset, against `floor`: RMSE within 1.2x, % > 5 mm/yr at most its + 2 points, local
outliers under 1 %, at least 95 % of the true PS kept; `v-dso` below it on `realistic`.

    python bench/chain_bench.py [--profiles easy realistic] [--seeds 1 2 3]
        [--rows 400 --cols 800] [--ds-short-fraction 0.3] [--no-bowl-anywhere]
        [--strat-std 2]   # the strong-stratification stack of docs/troposphere.md
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

from common import add_accuracy_stack_arguments, generate_accuracy_stack, run_child  # noqa: E402

from stamps_python.synthetic import CLASS_NAMES  # noqa: E402

CORRECTIONS = ("v-do", "v-dso", "v-dao")
OUTLIER_MM_YR = 5.0
OUTLIER_NEIGHBOURS = 8

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
elif kind == "aps":
    from stamps_python.io.train import read_polygon
    from stamps_python.steps.aps_linear import aps_linear
    aps_linear(sys.argv[2], read_polygon(sys.argv[3]), sys.argv[3])
elif kind == "preset":
    from stamps_python.parms import apply_preset
    apply_preset(sys.argv[2], sys.argv[3])
elif kind == "step":
    from stamps_python.pipeline import run_steps
    run_steps(sys.argv[2], int(sys.argv[3]), int(sys.argv[3]))
else:
    from stamps_python.export_results import main
    main(["--input-path", sys.argv[2], "--output-dir", sys.argv[3], "--correction", "v-do",
          "--correction", "v-dso", "--correction", "v-dao", "--n-boot", "20"])
print(json.dumps({"wall": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _child(*args: str) -> dict:
    return run_child(CHILD, *args)


# --------------------------------------------------------------------------------------------
# truth


class Truth:
    """What the accuracy figures need from a stack's truth.h5 (with the truth cubes)."""

    def __init__(self, path: Path) -> None:
        self.slc_dir = path.parent / "merged" / "SLC"
        with h5py.File(path, "r") as t:
            self.lat, self.lon = t["lat"][()], t["lon"][()]
            self.vel = t["velocity_lsfit_mm_yr"][()]
            self.pclass = t["pixel_class"][()]
            self.bowl = t["bowl_core_mask"][()].astype(bool)
            self.dates = [d.decode() for d in t["dates"][()]]
            self.t_years = t["t_years"][()]
            self.ref_ix = int(np.argmin(np.abs(self.t_years)))
            self.wavelength = float(t["wavelength_m"][()])
            self.disp = t["displacement_mm"] if "displacement_mm" in t else None
            self.disp = None if self.disp is None else self.disp[()]
            self.atm = t["atmosphere_rad"][()] if "atmosphere_rad" in t else None
            self.strat = t["strat_rad_per_km"][()]
            self.hgt = t["hgt"][()]
            self.systematic = None  # atmosphere + orbit + DEM error, SLC convention (rad)
            if self.atm is not None:
                self.systematic = self.atm + t["orbit_ramp_rad"][()] + t["dem_error_rad"][()]
        scale = np.cos(np.radians(np.nanmean(self.lat)))
        self._scale = scale
        self._tree = cKDTree(np.column_stack([self.lon.ravel() * scale, self.lat.ravel()]))

    def pixels(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Truth (row, col) of the pixel nearest each lon/lat."""
        _, flat = self._tree.query(np.column_stack([lon * self._scale, lat]))
        return np.unravel_index(flat, self.lat.shape)

    def _rate(self, ph: np.ndarray) -> np.ndarray:
        """Least-squares rate (mm/yr) through interferogram phase ``ph`` (n_dates, n_pts)."""
        mm = -ph * self.wavelength * 1000.0 / (4.0 * np.pi)
        t = self.t_years - self.t_years.mean()
        return (t @ mm) / (t @ t)

    def point_noise(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Each pixel's own phase noise (rad, (n_dates, n_pts), wrapped): the interferogram
        (reference x conj(date)) of the SLCs minus every modelled term (deformation,
        atmosphere, orbit ramp, DEM error)."""
        rows, cols = self.lat.shape
        slc = np.empty((len(self.dates), r.size), dtype=np.complex64)
        for k, d in enumerate(self.dates):
            mm = np.memmap(
                self.slc_dir / d / f"{d}.slc.full", dtype=np.complex64, mode="r", shape=(rows, cols)
            )
            slc[k] = mm[r, c]
            del mm
        ifg = np.angle(slc[self.ref_ix][None, :] * np.conj(slc))
        model = (
            -4.0 * np.pi / self.wavelength / 1000.0 * self.disp[:, r, c]
            + self.systematic[self.ref_ix][r, c][None, :]
            - self.systematic[:, r, c]
        )
        return np.angle(np.exp(1j * (ifg - model)))

    def floor_error(self, r: np.ndarray, c: np.ndarray, noise: bool = True) -> np.ndarray:
        """Velocity error (mm/yr) of the ideal estimator at pixels (r, c): the least-squares
        rate through the true atmosphere (interferogram convention, X[ref] - X[date]) and, with
        ``noise``, the pixel's own phase noise: what a processor that removed orbit ramps, DEM
        errors and unwrapping errors perfectly but filtered nothing would get."""
        if self.atm is None or self.disp is None:  # a stack written without the truth cubes
            return np.full(r.size, np.nan)
        ph = self.atm[self.ref_ix][r, c][None, :] - self.atm[:, r, c]
        if noise:
            ph = ph + self.point_noise(r, c)
        return self._rate(ph)

    def strat_error(self, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Velocity error (mm/yr) the stratified delay alone gives at pixels (r, c):
        (strat[ref] - strat[date]) x height (km), the part aps_linear can remove."""
        h_km = (self.hgt[r, c] - self.hgt.mean()) / 1000.0
        k = self.strat[self.ref_ix] - self.strat
        return self._rate(k[:, None] * h_km[None, :])


def figures(err: np.ndarray, xy: np.ndarray) -> dict:
    """RMSE, share > 5 mm/yr and local-outlier share of velocity errors ``err`` (mm/yr) at
    points ``xy`` (any metric coordinates), after removing the median offset."""
    e = err - np.median(err)
    k = min(OUTLIER_NEIGHBOURS + 1, len(e))
    _, nb = cKDTree(xy).query(xy, k=k)
    local = np.median(e[nb[:, 1:]], axis=1) if k > 1 else np.zeros_like(e)
    return {
        "n": int(e.size),
        "rmse": float(np.sqrt(np.mean(e**2))),
        "gt5": float(np.mean(np.abs(e) > OUTLIER_MM_YR)),
        "outliers": float(np.mean(np.abs(e - local) > OUTLIER_MM_YR)),
    }


def layer_accuracy(gpkg: Path, truth: Truth) -> dict:
    """The exported layer against the truth, with the floor at the same points."""
    gdf = gpd.read_file(gpkg)
    lon, lat = gdf.geometry.x.values, gdf.geometry.y.values
    r, c = truth.pixels(lon, lat)
    xy = np.column_stack([lon * truth._scale * 111e3, lat * 111e3])
    err = gdf.VEL.values - truth.vel[r, c]
    floor = truth.floor_error(r, c)
    floor_atm = truth.floor_error(r, c, noise=False)
    is_ps = truth.pclass[r, c] == 1
    out = {
        "all": figures(err, xy),
        "floor": figures(floor, xy),
        "floor_atm": figures(floor_atm, xy),
        "strat": figures(truth.strat_error(r, c), xy),
        "ps": figures(err[is_ps], xy[is_ps]),
        "floor_ps": figures(floor[is_ps], xy[is_ps]),
        "floor_atm_ps": figures(floor_atm[is_ps], xy[is_ps]),
        "n_true_ps": int(is_ps.sum()),
        "by_class": {
            name: int(np.sum(truth.pclass[r, c] == k))
            for k, name in CLASS_NAMES.items()
            if np.any(truth.pclass[r, c] == k)
        },
        "ps_pixels": set((r[is_ps] * truth.lat.shape[1] + c[is_ps]).tolist()),
    }
    core = truth.bowl[r, c]
    if core.any() and (~core).any():
        out["bowl"] = float(gdf.VEL.values[core].mean() - gdf.VEL.values[~core].mean())
        out["bowl_truth"] = float(truth.vel[r, c][core].mean() - truth.vel[r, c][~core].mean())
    if truth.disp is not None:
        cols = [f"D{d}" for d in truth.dates if f"D{d}" in gdf.columns]
        dd = gdf[cols].values - truth.disp[[truth.dates.index(n[1:]) for n in cols]][:, r, c].T
        dd -= np.median(dd, axis=0, keepdims=True)
        out["ts_rmse"] = float(np.sqrt(np.mean(dd**2)))
    if "TCOH" in gdf.columns:
        out["tcoh_median_ps"] = float(np.nanmedian(gdf.TCOH.values[is_ps]))
    return out


def accuracy(gpkg: Path, truth_path: Path) -> dict:
    """Velocity and time-series figures of one layer in the form bench/sb_bench.py prints."""
    a = layer_accuracy(gpkg, Truth(truth_path))
    return {
        "n_points": a["all"]["n"],
        "vel_rmse": a["all"]["rmse"],
        "frac_vel_err_gt5": a["all"]["gt5"],
        "ts_rmse": a.get("ts_rmse", float("nan")),
    }


# --------------------------------------------------------------------------------------------
# runs


def non_deforming_area(truth_path: Path, out: Path) -> Path:
    """The polygon a user would draw for aps_linear: the scene without the subsidence bowl
    (its truth ``bowl_mask``, 2 sigma, grown by 10 % of the scene), as a GeoJSON in lon/lat."""
    import shapely

    with h5py.File(truth_path, "r") as t:
        lat, lon = t["lat"][()], t["lon"][()]
        bowl = t["bowl_mask"][()].astype(bool)
    scene = shapely.box(lon.min(), lat.min(), lon.max(), lat.max())
    area = scene
    if bowl.any():
        pts = shapely.multipoints(np.column_stack([lon[bowl], lat[bowl]]))
        grow = 0.1 * max(lon.max() - lon.min(), lat.max() - lat.min())
        area = scene.difference(shapely.convex_hull(pts).buffer(grow))
    gpd.GeoDataFrame(geometry=[area], crs="EPSG:4326").to_file(out, driver="GeoJSON")
    return out


def bench_stack(workdir: Path, profile: str, seed: int, args: argparse.Namespace) -> dict:
    stack, run = workdir / "stack", workdir / "run"
    t = time.perf_counter()
    generate_accuracy_stack(stack, profile, seed, args)
    res: dict = {
        "profile": profile,
        "seed": seed,
        "size": f"{args.rows} x {args.cols}",
        "generate_s": time.perf_counter() - t,
        "timing": {},
    }
    res["timing"]["prep"] = _child("prep", str(stack / "merged"), str(run))
    for step in range(1, 9):
        res["timing"][f"step{step}"] = _child("step", str(run), str(step))
    non_defo = non_deforming_area(stack / "truth.h5", workdir / "non_defo.geojson")
    res["timing"]["aps_linear"] = _child("aps", str(run), str(non_defo))
    res["timing"]["export"] = _child("export", str(run), str(workdir / "faithful"))
    acc_run = workdir / "run_accurate"
    shutil.copytree(run, acc_run)
    _child("preset", str(acc_run), "accurate")
    for step in (7, 8):
        res["timing"][f"accurate step{step}"] = _child("step", str(acc_run), str(step))
    res["timing"]["accurate export"] = _child("export", str(acc_run), str(workdir / "accurate"))
    truth = Truth(stack / "truth.h5")
    res["n_dates"] = len(truth.dates)
    res["layers"] = {}
    for mode in ("faithful", "accurate"):
        for corr in CORRECTIONS:
            res["layers"][f"{mode} {corr}"] = layer_accuracy(
                workdir / mode / f"ps_{corr}.gpkg", truth
            )
    base = res["layers"]["faithful v-do"]["ps_pixels"]
    for layer in res["layers"].values():
        layer["true_ps_kept"] = len(layer.pop("ps_pixels") & base) / max(len(base), 1)
    shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(acc_run, ignore_errors=True)
    return res


def _fmt(f: dict) -> str:
    return f"{f['rmse']:5.2f} {100 * f['gt5']:5.1f} {100 * f['outliers']:5.2f}"


def print_stack(res: dict) -> None:
    print(f"\n== {res['profile']} seed {res['seed']}: {res['n_dates']} dates x {res['size']} ==")
    timing = res["timing"]
    print(
        "  " + ", ".join(f"{k} {v['wall']:.1f} s/{v['peak_mb']:.0f} MiB" for k, v in timing.items())
    )
    print(
        f"  {'layer':<16} {'points':>6} | all: RMSE  %>5  %out | floor: RMSE  %>5  %out | "
        f"floor_atm RMSE %>5 | true PS: RMSE  %>5  %out | floor | floor_atm | PS kept  "
        f"TS RMSE  bowl (truth)  classes"
    )
    for name, a in res["layers"].items():
        bowl = f"{a['bowl']:6.1f} ({a['bowl_truth']:6.1f})" if "bowl" in a else "   -"
        fa, fp = a["floor_atm"], a["floor_atm_ps"]
        print(
            f"  {name:<16} {a['all']['n']:6d} | {_fmt(a['all'])} | {_fmt(a['floor'])} | "
            f"{fa['rmse']:5.2f} {100 * fa['gt5']:5.1f} | "
            f"{_fmt(a['ps'])} | {_fmt(a['floor_ps'])} | {fp['rmse']:5.2f} {100 * fp['gt5']:5.1f} "
            f"| {100 * a['true_ps_kept']:6.1f} "
            f"{a.get('ts_rmse', float('nan')):8.2f}  {bowl}  "
            + " ".join(f"{k}:{v}" for k, v in a["by_class"].items())
        )


def print_summary(results: list[dict]) -> None:
    """Mean figures over seeds per profile and layer, and the targets of the preset."""
    print("\n== summary (mean over seeds) ==")
    for profile in sorted({r["profile"] for r in results}):
        rs = [r for r in results if r["profile"] == profile]
        print(f"  {profile} ({len(rs)} seeds)")
        for name in rs[0]["layers"]:
            ls = [r["layers"][name] for r in rs]

            def m(key: str, part: str, ls: list = ls) -> float:
                return float(np.mean([x[part][key] for x in ls]))

            print(
                f"    {name:<16} RMSE {m('rmse', 'all'):5.2f} (floor {m('rmse', 'floor'):5.2f}, "
                f"x{m('rmse', 'all') / m('rmse', 'floor'):4.2f}; floor_atm "
                f"{m('rmse', 'floor_atm'):5.2f})  >5: {100 * m('gt5', 'all'):5.1f}"
                f" % (floor {100 * m('gt5', 'floor'):4.1f})  outliers "
                f"{100 * m('outliers', 'all'):5.2f} %  true PS: RMSE {m('rmse', 'ps'):5.2f} "
                f"(floor {m('rmse', 'floor_ps'):5.2f})  kept "
                f"{100 * np.mean([x['true_ps_kept'] for x in ls]):5.1f} %"
            )
        for mode in ("faithful", "accurate"):
            do = [r["layers"][f"{mode} v-do"]["all"]["rmse"] for r in rs]
            dao = [r["layers"][f"{mode} v-dao"]["all"]["rmse"] for r in rs]
            gt_do = [r["layers"][f"{mode} v-do"]["all"]["gt5"] for r in rs]
            gt_dao = [r["layers"][f"{mode} v-dao"]["all"]["gt5"] for r in rs]
            strat = [r["layers"][f"{mode} v-do"]["strat"]["rmse"] for r in rs]
            print(
                f"    troposphere ({mode}): stratified delay alone RMSE {np.mean(strat):5.2f}  |  "
                f"v-do RMSE {np.mean(do):5.2f} >5 "
                f"{100 * np.mean(gt_do):5.1f} %  |  v-dao (aps_linear) RMSE {np.mean(dao):5.2f} "
                f">5 {100 * np.mean(gt_dao):5.1f} %  |  RMSE "
                f"{100 * (1 - np.mean(dao) / np.mean(do)):+.1f} % better"
            )
        for name in ("accurate v-do", "accurate v-dso"):
            ok = []
            for r in rs:
                a = r["layers"][name]
                checks = [
                    a["all"]["rmse"] <= 1.2 * a["floor"]["rmse"],
                    a["all"]["gt5"] <= a["floor"]["gt5"] + 0.02,
                    a["all"]["outliers"] < 0.01,
                    a["true_ps_kept"] >= 0.95,
                ]
                if name.endswith("v-dso") and profile == "realistic":
                    checks.append(a["all"]["rmse"] < a["floor"]["rmse"])
                ok.append(all(checks))
            print(f"    targets {name}: met on {sum(ok)} of {len(ok)} seeds")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_accuracy_stack_arguments(p, ["easy", "realistic"], [1, 2, 3])
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "chain")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    results = []
    for profile in args.profiles:
        for seed in args.seeds:
            res = bench_stack(args.workdir / f"{profile}_{seed}", profile, seed, args)
            print_stack(res)
            results.append(res)
    print_summary(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

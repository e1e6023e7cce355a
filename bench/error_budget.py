"""Term-by-term budget of the exported velocity error of the PS chain on a synthetic stack.

Every stage after unwrapping is linear in the unwrapped phase: Step 7 (ps_calc_scla, a least
squares fit), Step 8 (ps_scn_filt, filters in time and space) and the export (deramp, reference,
weighted line). So the velocity error of a point is the sum of the errors each part of its
unwrapped phase causes alone. For each profile and seed this script generates a stack with the
truth cubes, runs prep_isce and Steps 1-8 once (unwrap_grid_size 50 m, as bench/chain_bench.py)
and writes the unwrapped phase ``ph_uw`` (phuw2.h5) at every merged PS as a sum of terms, from
truth.h5 at the point's pixel (interferogram convention, reference x conj(date)):

- **defo**: the true deformation, -4 pi / lambda x D_mm / 1000;
- **atmosphere**, **orbit**, **dem**: the true turbulent + stratified atmosphere, orbital ramp and
  DEM-error phase, X[ref] - X[date] of the truth cubes;
- **constant**: of the remainder (ph_uw minus those four), a constant per interferogram (its
  median over the points: the arbitrary reference of the unwrapping);
- **cycles**: 2 pi x the whole number of cycles the remainder, less that constant and less the
  point's own median over the dates, is away from zero (points unwrapped a whole number of
  cycles wrong; a point off by whole cycles on most dates counts too);
- **noise**: the rest, within +-pi of the point's median: scatterer noise and decorrelation, and
  minus the per-point constant C_ps Step 5 takes out (master noise, with part of the master
  atmosphere in it).

Each term alone goes through Steps 7 and 8 and the export (in a copy of the run whose phuw2.h5
holds only that term) and gives one velocity per exported point: the points and the reference PS
of the real export (the accurate preset's export_coh_ps_min / export_tcoh_min drop points by
their data, so the term exports keep every point and take the real run's). A term's error is that
velocity, except for defo: VEL_defo - true rate (``velocity_lsfit_mm_yr``), what the estimator
does to the deformation itself (e.g. the 'o' plane removing the planar part of a bowl). The sum
of the terms' errors is checked against the real error (VEL of the run - true rate): the
closure, RMS of the difference after removing its median, is float rounding as long as the
parameters keep the chain linear (the StaMPS defaults and the accurate preset do; an L1
``scla_method`` would not, and the line above each table says so).

It prints, per product (faithful v-do, v-dso; accurate v-do, v-dso): the points exported and
their truth classes, the closure, and a table with, for each term and for the real error
("total (run)"), on all exported points, on the true PS (class 1), on the PS sidelobes (class 2)
and on the DS (classes 3 and 5): the RMSE (mm/yr, median removed), the term's share of the
squared error (its sum of squares over the sum of the terms' sums of squares: the shares ignore
the cross terms, whose part of the squared error of the sum of the median-removed terms is the
"cross terms" line, "sum (centred)" being that sum's RMSE) and the % of points the term alone
puts off by more than 5 mm/yr, with the share of DS among those (all points). Below: for the
real error, the share of DS among the points off by > 5 mm/yr and among the local outliers
(error more than 5 mm/yr from the median error of the 8 nearest exported points); the defo
error of the export's weighted line alone (true displacement, no filtering); the defo bias
(mean of the median-removed error) of the points far from the bowl centre (> ``--far-km`` km,
and beyond 3 bowl sigmas). Wall times of each stage come first.

    python bench/error_budget.py [--profiles realistic] [--seeds 1] [--rows 400 --cols 800]
        [--ds-short-fraction 0.3] [--no-bowl-anywhere] [--preset faithful|accurate|both]
        [--far-km 5] [--workdir DIR] [--keep] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import h5py
import numpy as np
from scipy.spatial import cKDTree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import add_accuracy_stack_arguments, generate_accuracy_stack  # noqa: E402

from stamps_python.io.products import (  # noqa: E402
    load_product,
    product_attrs,
    product_path,
    save_product,
)
from stamps_python.numerics.timeseries import (  # noqa: E402
    fit_velocity,
    ifg_weights,
    parse_correction,
    used_ifg_index,
)
from stamps_python.parms import apply_preset, load_parms, set_parm  # noqa: E402
from stamps_python.pipeline import run_steps  # noqa: E402
from stamps_python.prep_isce import prepare  # noqa: E402
from stamps_python.results import Reference, compute_results, load_run  # noqa: E402
from stamps_python.synthetic import CLASS_NAMES  # noqa: E402

CORRECTIONS = ("v-do", "v-dso")
TERMS = ("defo", "atmosphere", "orbit", "dem", "noise", "cycles", "constant")
TRUTH_PHASE = {"atmosphere": "atmosphere_rad", "orbit": "orbit_ramp_rad", "dem": "dem_error_rad"}
OUTLIER_MM_YR = 5.0
OUTLIER_NEIGHBOURS = 8
DS_CLASSES = (3, 5)
N_BOOT = 2  # V_STDEV is not used here; the fewest bootstrap draws the export accepts
# top-level files of a run that Steps 7-8 rewrite or that only Step 6 needs: not copied
NOT_COPIED = (
    "phuw2.h5",
    "scla2.h5",
    "scla_smooth2.h5",
    "scn2.h5",
    "stamps.log",
    "uw_grid.h5",
    "uw_interp.h5",
    "uw_space_time.h5",
    "uw_phaseuw.h5",
    "rc2.h5",
    "ph2.h5",
)


# --------------------------------------------------------------------------------------------
# running the chain quietly, in this process


@contextlib.contextmanager
def quiet(log: TextIO) -> Iterator[None]:
    """Send the steps' console logging and progress bars (stderr) to ``log``."""
    sys.stderr.flush()
    with contextlib.redirect_stderr(log):
        yield
    log.flush()


class FixedReference(Reference):
    """The reference PS of another export, given by index (0-based, in ps2 order)."""

    def __init__(self, indices: np.ndarray | None) -> None:
        super().__init__(source="error budget: the reference PS of the real run")
        object.__setattr__(self, "indices", indices)

    def select(self, lonlat: np.ndarray, ll0: Any) -> np.ndarray | None:
        return None if self.indices is None else np.asarray(self.indices)


class Export:
    """VEL of the exported points of one run directory for one correction."""

    def __init__(self, run_dir: Path, correction: str, like: Export | None = None) -> None:
        run = load_run(run_dir)
        corr = parse_correction(correction)
        if like is None:
            res = compute_results(run, corr, n_boot=N_BOOT)
            codes = np.asarray(run.ps["ij"])[:, 0].astype(np.int64)
            self.keep = np.isin(codes, res.codes)
            ref = res.ts.ref_ix
            self.ref_full = None if ref is None else np.flatnonzero(self.keep)[ref]
            self.vel = np.asarray(res.ts.vel, dtype=np.float64)
        else:
            # a term: every point kept (the real run's quality masks depend on the data), the
            # real run's reference PS, then the real run's points
            run.parms["export_coh_ps_min"] = 0.0
            run.parms["export_tcoh_min"] = 0.0
            res = compute_results(run, corr, FixedReference(like.ref_full), n_boot=N_BOOT)
            self.keep, self.ref_full = like.keep, like.ref_full
            self.vel = np.asarray(res.ts.vel, dtype=np.float64)[like.keep]


def light_copy(src: Path, dst: Path) -> None:
    """The run's merged workspaces and parameters (not its patches' nor Step 6's intermediate
    files, nor what Steps 7-8 write), with empty patch folders (run_steps lists them)."""
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for path in src.iterdir():
        if path.is_dir():
            (dst / path.name).mkdir()
        elif path.name not in NOT_COPIED and not path.name.startswith(("tmp_", ".")):
            shutil.copy2(path, dst / path.name)


def write_phuw(src: Path, dst: Path, ph_uw: np.ndarray) -> None:
    """``dst`` = the phuw2.h5 ``src`` with ``ph_uw`` replaced (same datasets, dtypes, attrs)."""
    data = load_product(src)
    data["ph_uw"] = np.asarray(ph_uw).astype(data["ph_uw"].dtype)
    attrs = {k: v for k, v in product_attrs(src).items() if k != "format"}
    save_product(dst, data, attrs)


# --------------------------------------------------------------------------------------------
# the terms


class Truth:
    """truth.h5 of the stack, at the merged PS of a run."""

    def __init__(self, path: Path, ps: dict[str, Any]) -> None:
        with h5py.File(path, "r") as t:
            self.shape = t["lat"].shape
            self.dates = [d.decode() for d in t["dates"][()]]
            self.wavelength = float(t["wavelength_m"][()])
            ij = np.asarray(ps["ij"], dtype=np.int64)
            self.r, self.c = ij[:, 1], ij[:, 2]
            if self.r.max() >= self.shape[0] or self.c.max() >= self.shape[1]:
                raise SystemExit(f"ps2 ij beyond the truth grid {self.shape}")
            lonlat = np.asarray(ps["lonlat"], dtype=np.float64)
            self.ll_err_m = float(
                np.max(
                    np.hypot(
                        (t["lon"][()][self.r, self.c] - lonlat[:, 0])
                        * 111e3
                        * math.cos(math.radians(float(np.mean(lonlat[:, 1])))),
                        (t["lat"][()][self.r, self.c] - lonlat[:, 1]) * 111e3,
                    )
                )
            )
            self.pclass = t["pixel_class"][()][self.r, self.c]
            self.vel = t["velocity_lsfit_mm_yr"][()][self.r, self.c].astype(np.float64)
            self.cubes = {
                name: self._at_ps(t[name]) for name in ("displacement_mm", *TRUTH_PHASE.values())
            }
            bowl = json.loads(t.attrs["params_json"])["bowl"]
            east, north = t["east_m"][()][self.r, self.c], t["north_m"][()][self.r, self.c]
            self.bowl_dist = np.hypot(east - bowl["center_e_m"], north - bowl["center_n_m"])
            self.bowl_sigma = float(bowl["sigma_m"])

    def _at_ps(self, cube: h5py.Dataset) -> np.ndarray:
        """(n_ps, n_dates) float64 of a (n_dates, rows, cols) cube, date by date."""
        return np.stack([cube[k][self.r, self.c] for k in range(cube.shape[0])], axis=1).astype(
            np.float64
        )


def phase_terms(truth: Truth, ps: dict[str, Any], ph_uw: np.ndarray) -> tuple[dict, dict]:
    """The terms (rad, (n_ps, n_ifg) float64) that sum to ``ph_uw`` and, for the check of the
    conventions, the least-squares coefficients of ph_uw (less its cycles) on the truth terms at
    the true PS (1 each when the terms are as assumed)."""
    dates = [str(d) for d in ps["dates"]]
    col = np.array([truth.dates.index(d) for d in dates])
    m = int(ps["master_ix"])
    ph_uw = np.asarray(ph_uw, dtype=np.float64)
    used = np.any(ph_uw != 0, axis=0)
    used[m] = False
    t: dict[str, np.ndarray] = {}
    disp = truth.cubes["displacement_mm"][:, col]
    t["defo"] = -4.0 * math.pi / truth.wavelength * (disp - disp[:, [m]]) / 1000.0
    for name, cube in TRUTH_PHASE.items():
        x = truth.cubes[cube][:, col]
        t[name] = x[:, [m]] - x
    for v in t.values():
        v[:, ~used] = 0.0
    cols = np.flatnonzero(used)
    rem = ph_uw - sum(t.values())
    const = np.zeros_like(rem)
    const[:, cols] = np.median(rem[:, cols], axis=0)
    rem1 = rem - const
    centre = np.median(rem1[:, cols], axis=1, keepdims=True)
    cycles = np.zeros_like(rem)
    cycles[:, cols] = (
        2
        * math.pi
        * (np.round((rem1[:, cols] - centre) / (2 * math.pi)) + np.round(centre / (2 * math.pi)))
    )
    # the conventions: ph_uw less its cycle errors against the four truth terms at the true PS,
    # all of them less their mean per interferogram and per point (the per-point constant Step 5
    # takes out holds part of the master atmosphere; medians would bias the fit)
    sel = truth.pclass == 1

    def centre2(x: np.ndarray) -> np.ndarray:
        x = x[np.ix_(sel, cols)]
        x = x - x.mean(axis=0)
        return (x - x.mean(axis=1, keepdims=True)).ravel()

    A = np.column_stack([centre2(v) for v in t.values()])
    coef = dict(zip(t, np.linalg.lstsq(A, centre2(ph_uw - cycles), rcond=None)[0]))
    t["noise"] = rem1 - cycles
    t["cycles"] = cycles
    t["constant"] = const
    for v in t.values():
        v[:, ~used] = 0.0
    return t, coef


# --------------------------------------------------------------------------------------------
# figures


def local_outliers(e: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Points whose error differs by more than 5 mm/yr from the median of their 8 nearest."""
    k = min(OUTLIER_NEIGHBOURS + 1, len(e))
    _, nb = cKDTree(xy).query(xy, k=k)
    local = np.median(e[nb[:, 1:]], axis=1) if k > 1 else e
    return np.abs(e - local) > OUTLIER_MM_YR


def centred(e: np.ndarray) -> np.ndarray:
    return e - np.median(e)


def budget(
    errors: dict[str, np.ndarray], total: np.ndarray, pclass: np.ndarray, xy: np.ndarray
) -> dict[str, Any]:
    """Figures of one product: per subset, per term RMSE, share and % > 5 mm/yr."""
    e = {name: centred(v) for name, v in errors.items()}
    tot = centred(total)
    diff = sum(errors.values()) - total
    subsets = {
        "all": np.ones(pclass.size, bool),
        "true PS": pclass == 1,
        "sidelobes": pclass == 2,
        "DS": np.isin(pclass, DS_CLASSES),
    }
    out: dict[str, Any] = {
        "closure_rms": float(np.sqrt(np.mean(centred(diff) ** 2))),
        "closure_max": float(np.max(np.abs(centred(diff)))),
        "subsets": {},
    }
    is_ds = np.isin(pclass, DS_CLASSES)
    for sub, sel in subsets.items():
        if not sel.any():
            continue
        ss = {n: float(np.sum(v[sel] ** 2)) for n, v in e.items()}
        ss_sum = sum(ss.values())
        ss_of_sum = float(np.sum(sum(v[sel] for v in e.values()) ** 2))

        def row(v: np.ndarray, share: float, sel: np.ndarray = sel) -> dict[str, float]:
            off = np.abs(v[sel]) > OUTLIER_MM_YR
            return {
                "rmse": float(np.sqrt(np.mean(v[sel] ** 2))),
                "share": share,
                "gt5": float(off.mean()),
                "ds_of_gt5": float(is_ds[sel][off].mean()) if off.any() else float("nan"),
            }

        rows = {n: row(v, ss[n] / max(ss_sum, 1e-300)) for n, v in e.items()}
        rows["total (run)"] = row(tot, float("nan"))
        out["subsets"][sub] = {
            "n": int(sel.sum()),
            "terms": rows,
            "cross": (ss_of_sum - ss_sum) / max(ss_of_sum, 1e-300),
            "rmse_of_sum": math.sqrt(ss_of_sum / sel.sum()),
        }
    off = np.abs(tot) > OUTLIER_MM_YR
    outl = local_outliers(tot, xy)
    out["gt5"] = (
        int(off.sum()),
        float(off.mean()),
        float(is_ds[off].mean()) if off.any() else float("nan"),
    )
    out["outliers"] = (
        int(outl.sum()),
        float(outl.mean()),
        float(is_ds[outl].mean()) if outl.any() else float("nan"),
    )
    return out


def far_bias(defo_err: np.ndarray, dist: np.ndarray, limit_m: float) -> str:
    """Mean (median removed) and std of the defo error of the points farther than limit_m."""
    far = dist > limit_m
    if not far.any():
        return f"no point beyond {limit_m / 1000:.2f} km"
    e = centred(defo_err)[far]
    return (
        f"{far.sum()} points beyond {limit_m / 1000:.2f} km: mean {e.mean():+.2f}, "
        f"std {e.std():.2f} mm/yr"
    )


def fit_only_error(truth: Truth, ps: dict[str, Any], run_dir: Path, keep: np.ndarray) -> np.ndarray:
    """Velocity error (mm/yr) of the export's weighted line through the true displacement alone
    (dates and weights of the export, reference date left out), at the exported points."""
    parms = load_parms(run_dir)
    m = int(ps["master_ix"])
    use = used_ifg_index(int(ps["n_ifg"]), m, parms.get("drop_ifg_index") or [])
    col = np.array([truth.dates.index(str(d)) for d in ps["dates"]])
    disp = truth.cubes["displacement_mm"][:, col]
    day = np.asarray(ps["day"], dtype=np.float64).ravel()
    std_path = product_path(run_dir, "ifgstd2")
    std = (
        np.asarray(load_product(std_path, ["ifg_std"])["ifg_std"]).ravel()
        if std_path.is_file()
        else None
    )
    w = ifg_weights(std, day.size)[use]
    vel, _ = fit_velocity(disp[:, use] - disp[:, [m]], (day[use] - day[m]) / 365.25, w)
    return vel[keep] - truth.vel[keep]


# --------------------------------------------------------------------------------------------
# one stack


def budget_stack(workdir: Path, profile: str, seed: int, args: argparse.Namespace) -> dict:
    stack, run = workdir / "stack", workdir / "run"
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / "steps.log", "w", encoding="utf-8")  # noqa: SIM115
    wall: dict[str, float] = {}
    t0 = time.perf_counter()
    with quiet(log):
        generate_accuracy_stack(stack, profile, seed, args)
    wall["generate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with quiet(log):
        prepare(stack / "merged", run, bootstrap_metadata=True, range_patches=2, azimuth_patches=1)
        set_parm(run, "unwrap_grid_size", 50)
        run_steps(run, 1, 6)
    wall["prep + steps 1-6"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ps = load_product(product_path(run, "ps2"))
    ph_uw = load_product(product_path(run, "phuw", 2), ["ph_uw"])["ph_uw"]
    truth = Truth(stack / "truth.h5", ps)
    terms, coef = phase_terms(truth, ps, ph_uw)
    wall["truth terms"] = time.perf_counter() - t0
    xy = np.asarray(ps["xy"], dtype=np.float64)[:, 1:3]

    presets = ["faithful", "accurate"] if args.preset == "both" else [args.preset]
    res: dict[str, Any] = {
        "profile": profile,
        "seed": seed,
        "n_ps": int(ps["n_ps"]),
        "n_dates": len(truth.dates),
        "ll_err_m": truth.ll_err_m,
        "coef": coef,
        "products": {},
        "wall": wall,
        "rms_rad": {n: float(np.sqrt(np.mean(v**2))) for n, v in terms.items()},
    }
    for preset in presets:
        t0 = time.perf_counter()
        base = workdir / f"run_{preset}"  # the real run with the preset: Steps 7-8 again
        light_copy(run, base)
        shutil.copy2(product_path(run, "phuw", 2), product_path(base, "phuw", 2))
        apply_preset(base, preset)
        with quiet(log):
            run_steps(base, 7, 8)
        real = {c: Export(base, c) for c in CORRECTIONS}
        wall[f"{preset}: real steps 7-8 + export"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        vel: dict[str, dict[str, np.ndarray]] = {c: {} for c in CORRECTIONS}
        for name in TERMS:
            tdir = workdir / f"term_{preset}_{name}"
            light_copy(base, tdir)
            write_phuw(product_path(run, "phuw", 2), product_path(tdir, "phuw", 2), terms[name])
            with quiet(log):
                run_steps(tdir, 7, 8)
            for c in CORRECTIONS:
                vel[c][name] = Export(tdir, c, like=real[c]).vel
            if not args.keep:
                shutil.rmtree(tdir, ignore_errors=True)
        wall[f"{preset}: {len(TERMS)} terms x (steps 7-8 + export)"] = time.perf_counter() - t0
        for c in CORRECTIONS:
            keep = real[c].keep
            true_vel = truth.vel[keep]
            errors = {n: (v - true_vel if n == "defo" else v) for n, v in vel[c].items()}
            total = real[c].vel - true_vel
            b = budget(errors, total, truth.pclass[keep], xy[keep])
            b["classes"] = {
                CLASS_NAMES.get(int(k), str(k)): int(n)
                for k, n in zip(*np.unique(truth.pclass[keep], return_counts=True))
            }
            b["fit_only"] = float(
                np.sqrt(np.mean(centred(fit_only_error(truth, ps, base, keep)) ** 2))
            )
            b["far"] = [
                far_bias(errors["defo"], truth.bowl_dist[keep], args.far_km * 1000.0),
                far_bias(errors["defo"], truth.bowl_dist[keep], 3 * truth.bowl_sigma),
            ]
            b["linear"] = linearity(base)
            res["products"][f"{preset} {c}"] = b
    log.close()
    if not args.keep:
        for p in presets:
            shutil.rmtree(workdir / f"run_{p}", ignore_errors=True)
    return res


def linearity(run_dir: Path) -> str:
    """Whether the parameters keep Steps 7-8 and the export linear in ph_uw."""
    p = load_parms(run_dir)
    if str(p.get("scla_method", "L2")).upper() == "L1":
        return "no (scla_method L1): the terms add up only approximately"
    return "yes"


# --------------------------------------------------------------------------------------------
# printing


def _pct(x: float) -> str:
    return "    -" if not math.isfinite(x) else f"{100 * x:5.1f}"


def _row(label: str, cells: list[str], last: str = "") -> str:
    return f"  {label:<13} | " + " | ".join(f"{c:<17}" for c in cells) + f" | {last}"


def print_stack(res: dict) -> None:
    print(
        f"\n== {res['profile']} seed {res['seed']}: {res['n_dates']} dates, {res['n_ps']} "
        f"merged PS =="
    )
    print("  wall: " + ", ".join(f"{k} {v:.1f} s" for k, v in res["wall"].items()))
    print(f"  ps2 lon/lat vs truth at ij: max {res['ll_err_m']:.2f} m")
    print(
        "  conventions: LS coefficient of ph_uw on each truth term at the true PS (1 = as "
        "assumed): " + ", ".join(f"{k} {v:+.3f}" for k, v in res["coef"].items())
    )
    off = [k for k, v in res["coef"].items() if not 0.9 < v < 1.1]
    if off:
        print(
            f"  WARNING: {', '.join(off)} do not follow the assumed convention: the budget of "
            f"those terms is wrong"
        )
    print(
        "  term rms at the merged PS (rad): "
        + ", ".join(f"{k} {v:.2f}" for k, v in res["rms_rad"].items())
    )
    for name, b in res["products"].items():
        cls = ", ".join(f"{k} {v}" for k, v in b["classes"].items())
        print(f"\n  -- {name}: {sum(b['classes'].values())} points ({cls}) --")
        print(
            f"  linear: {b['linear']}; closure (sum of the terms' errors - real error, "
            f"median removed): RMS {b['closure_rms']:.1e}, max {b['closure_max']:.1e} mm/yr"
        )
        subs = b["subsets"]
        print(_row("term", [f"{k} ({v['n']})" for k, v in subs.items()], "DS % of"))
        print(_row("", ["RMSE share  %>5" for _ in subs], "all >5"))
        for term in (*TERMS, "total (run)"):
            cells = [
                f"{v['terms'][term]['rmse']:5.2f}{_pct(v['terms'][term]['share'])}"
                f"{_pct(v['terms'][term]['gt5'])}"
                for v in subs.values()
            ]
            print(_row(term, cells, _pct(subs["all"]["terms"][term]["ds_of_gt5"])))
        print(
            _row(
                "cross terms",
                [f"     {_pct(v['cross'])}" for v in subs.values()],
                "(% of the squared error of the sum)",
            )
        )
        print(_row("sum (centred)", [f"{v['rmse_of_sum']:5.2f}" for v in subs.values()]))
        n5, f5, ds5 = b["gt5"]
        no, fo, dso = b["outliers"]
        print(
            f"  real error: {n5} points > 5 mm/yr ({_pct(f5).strip()} %), {_pct(ds5).strip()} % "
            f"of them DS; {no} local outliers ({_pct(fo).strip()} %), {_pct(dso).strip()} % of "
            f"them DS"
        )
        print(
            f"  defo error of the export's weighted line alone (true displacement, no "
            f"filtering): RMSE {b['fit_only']:.2f} mm/yr"
        )
        print(f"  defo bias far from the bowl: {b['far'][0]}; {b['far'][1]} (3 bowl sigmas)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_accuracy_stack_arguments(p, ["realistic"], [1])
    p.add_argument("--preset", choices=("faithful", "accurate", "both"), default="both")
    p.add_argument(
        "--far-km",
        type=float,
        default=5.0,
        help="distance from the bowl centre for the far-field defo bias (default 5)",
    )
    p.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "error_budget")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the stacks and runs")
    args = p.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    results = []
    t0 = time.perf_counter()
    for profile in args.profiles:
        for seed in args.seeds:
            res = budget_stack(args.workdir / f"{profile}_{seed}", profile, seed, args)
            print_stack(res)
            results.append(res)
    print(f"\ntotal wall time {time.perf_counter() - t0:.1f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float))
    if not args.keep:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

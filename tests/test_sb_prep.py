"""Small-baseline preparation: prep_isce --small-baseline, build_sb_phase, SB Step 1 and Step 2."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from stamps_python import build_sb_phase as bsp
from stamps_python.io import isce
from stamps_python.io.products import load_product, product_attrs
from stamps_python.numerics.amplitude import (
    CALAMP_MIN_AMPLITUDE,
    SELPSC_ZERO_AMPLITUDE,
    sb_block_pass,
    sb_dispersion,
)
from stamps_python.numerics.sb_network import sb_design_matrix
from stamps_python.parms import load_parms
from stamps_python.prep_isce import build_parser, prepare
from stamps_python.steps import ps_est_gamma_quick, sb_load_initial
from stamps_python.synthetic import generate_stack
from stamps_python.utils import StampsError, datenum, run_cli

ROWS, COLS = 60, 120
PRODUCTS = ("ps1", "ph1", "bp1", "la1", "inc1", "da1", "hgt1")


def _write_list(path: Path, pairs: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{a} {b}\n" for a, b in pairs))


def _products(patch: Path) -> dict[str, dict]:
    return {name: load_product(patch / f"{name}.h5") for name in PRODUCTS}


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("sb")
    generate_stack(
        base / "stack", profile="easy", rows=ROWS, cols=COLS, n_dates=10, seed=3, progress=False
    )
    with h5py.File(base / "stack" / "truth.h5", "r") as t:
        dates = [d.decode() for d in t["dates"][()]]
        bperp = t["bperp_m"][()].astype(np.float64)
        pixel_class = t["pixel_class"][()]
    # consecutive pairs and skip-one pairs, in an order that is not sorted
    pairs = [(dates[i], dates[i + 1]) for i in range(len(dates) - 1)]
    pairs += [(dates[i], dates[i + 2]) for i in range(len(dates) - 2)]
    run = base / "run"
    _write_list(run / "small_baselines.list", pairs)
    (run / "small_baselines.png").write_bytes(b"png")
    summary = prepare(
        base / "stack" / "merged",
        run,
        bootstrap_metadata=True,
        small_baseline=True,
        range_patches=2,
        azimuth_patches=1,
        range_overlap=10,
        azimuth_overlap=10,
    )
    built = bsp.build_sb_phase(run)
    return {
        "base": base,
        "merged": base / "stack" / "merged",
        "run": run,
        "dates": dates,
        "bperp": bperp,
        "pairs": pairs,
        "summary": summary,
        "built": built,
        "pixel_class": pixel_class,
    }


def _slc_cube(merged: Path, dates: list[str]) -> np.ndarray:
    """All SLCs (n_dates, rows, cols) complex64, read straight from the raw files."""
    return np.stack(
        [
            np.array(
                np.memmap(
                    merged / "SLC" / d / f"{d}.slc.full", dtype="<c8", mode="r", shape=(ROWS, COLS)
                )
            )
            for d in dates
        ]
    )


def test_run_directory_and_parameters(sb):
    run = sb["run"]
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["small_baseline"]["n_pairs"] == len(sb["pairs"])
    assert meta["small_baseline"]["amp_dispersion"] == 0.6 == meta["prep"]["amp_dispersion"]
    assert meta["small_baseline"]["pairs"] == [f"{a}_{b}" for a, b in sb["pairs"]]
    assert (run / "small_baselines.list").read_text().split() == [d for p in sb["pairs"] for d in p]
    assert (run / "small_baselines.png").read_bytes() == b"png"
    parms = load_parms(run)
    assert parms["small_baseline_flag"] == "y"
    assert build_parser().parse_args(["m", "-o", "r"]).amp_dispersion is None
    for name in sb["summary"]["patches"]:
        cands = load_product(run / name / "pscands.h5")
        assert "ph" not in cands and product_attrs(run / name / "pscands.h5")["small_baseline"]
        assert cands["dates"] == sb["dates"] and cands["bperp_grids"].shape[0] == 9


def test_candidates_are_exactly_the_selsbc_set(sb):
    """D_a_sb = sqrt(sum (A1-A2)^2 / P) / (sum (A1+A2) / 2P) on calibrated amplitudes."""
    amp = np.abs(_slc_cube(sb["merged"], sb["dates"]).astype(np.complex128))
    calconst = np.array([a[a > CALAMP_MIN_AMPLITUDE].mean() for a in amp])
    # the pass takes amplitudes in single precision (as calamp.c does), summed in double
    np.testing.assert_allclose(sb["summary"]["calconst"], calconst, rtol=1e-7)
    cal = amp / calconst[:, None, None]
    ix = {d: i for i, d in enumerate(sb["dates"])}
    first = np.array([ix[a] for a, _ in sb["pairs"]])
    second = np.array([ix[b] for _, b in sb["pairs"]])
    n_p = len(first)
    with np.errstate(invalid="ignore", divide="ignore"):
        d_sb = np.sqrt(((cal[first] - cal[second]) ** 2).sum(0) / n_p) / (
            (cal[first] + cal[second]).sum(0) / (2 * n_p)
        )
    used = np.unique(np.r_[first, second])
    expected = (d_sb < 0.6) & np.all(cal[used] > SELPSC_ZERO_AMPLITUDE, axis=0)
    assert 500 < expected.sum() < expected.size - 500
    got = np.zeros_like(expected)
    for name in sb["summary"]["patches"]:
        ps1 = load_product(sb["run"] / name / "ps1.h5", ["ij"])
        da = load_product(sb["run"] / name / "da1.h5")["D_A"]
        r, c = ps1["ij"][:, 1], ps1["ij"][:, 2]
        # stored as float32, and computed from float32 amplitudes: the difference of two
        # amplitudes carries their rounding, an absolute error of about 1e-7 in D_a_sb
        np.testing.assert_allclose(da, d_sb[r, c], rtol=1e-6, atol=2e-7)
        got[r, c] = True
    np.testing.assert_array_equal(got, expected)
    assert sb["summary"]["n_candidates"] == expected.sum()


def test_superset_pass_keeps_every_candidate_under_weight_errors():
    """With weights off by up to the margin, the pass never drops a pixel the exact test keeps."""
    rng = np.random.default_rng(5)
    n, rows, cols = 8, 40, 300
    scale = rng.uniform(0.5, 2.0, size=(1, rows, cols))
    block = (rng.rayleigh(1.0, (n, rows, cols)) * (0.3 + scale)).astype(np.complex64)
    block *= np.exp(1j * rng.uniform(-np.pi, np.pi, block.shape)).astype(np.complex64)
    exact_cal = rng.uniform(0.5, 2.0, n)
    margin = 0.02
    provisional = exact_cal * (1 + rng.uniform(-margin, margin, n))
    pairs = np.array([[i, i + 1] for i in range(n - 1)] + [[i, i + 2] for i in range(n - 2)])
    d, zero = sb_dispersion(block.reshape(n, -1), exact_cal, pairs)
    truth = (d < 0.45) & ~zero
    keep, sums, counts = sb_block_pass(block, 1 / provisional, pairs, 0.45, margin)
    keep = keep.ravel()
    assert truth.sum() > 100 and np.all(keep[truth])
    assert keep.sum() < block[0].size  # a real filter, not everything
    exact_keep, _, _ = sb_block_pass(block, 1 / exact_cal, pairs, 0.45, 0.0)
    np.testing.assert_array_equal(exact_keep.ravel(), truth)
    amp = np.abs(block).astype(np.float64)
    np.testing.assert_allclose(sums, np.where(amp > CALAMP_MIN_AMPLITUDE, amp, 0).sum((1, 2)))
    np.testing.assert_array_equal(counts, (amp > CALAMP_MIN_AMPLITUDE).sum((1, 2)))


def test_pair_phase_equals_slc_products(sb):
    cube = _slc_cube(sb["merged"], sb["dates"])
    ix = {d: i for i, d in enumerate(sb["dates"])}
    ref = ix[load_product(sb["run"] / "PATCH_1" / "ps1.h5", ["master_date"])["master_date"]]
    for name in sb["summary"]["patches"]:
        patch = sb["run"] / name
        ps1 = load_product(patch / "ps1.h5")
        ph = load_product(patch / "ph1.h5")["ph"]
        assert ph.dtype == np.complex64 and ph.shape == (ps1["n_ps"], len(sb["pairs"]))
        v = cube[:, ps1["ij"][:, 1], ps1["ij"][:, 2]].astype(np.complex128)
        for k, (a, b) in enumerate(sb["pairs"]):
            want = v[ix[a]] * np.conj(v[ix[b]])
            want /= np.abs(want)
            np.testing.assert_allclose(ph[:, k], want, atol=1e-6)
        # sign convention: SB phase = G @ single-master phase (ref x conj(sec)), G = [-1, +1]
        sm = np.angle(v[ref] * np.conj(v)).T
        G = sb_design_matrix(ps1["ifgday_ix"], ps1["n_image"], ps1["master_ix"])
        diff = np.angle(np.exp(1j * (sm @ G.T)) * np.conj(ph))
        assert np.abs(diff).max() < 1e-5
        np.testing.assert_array_equal(ps1["ij"][:, 0], np.arange(1, ps1["n_ps"] + 1))
        assert np.all(np.diff(ps1["xy"][:, 2]) >= 0)


def test_pair_dates_indices_and_baselines(sb):
    for name in sb["summary"]["patches"]:
        ps1 = load_product(sb["run"] / name / "ps1.h5")
        assert ps1["n_ifg"] == len(sb["pairs"]) and ps1["n_image"] == len(sb["dates"])
        assert ps1["dates"] == sb["dates"]  # stack dates are ascending
        ixs = ps1["ifgday_ix"]
        assert [(ps1["dates"][i], ps1["dates"][j]) for i, j in ixs] == sb["pairs"]
        assert ps1["ifg_dates"] == [f"{a}_{b}" for a, b in sb["pairs"]]
        np.testing.assert_array_equal(
            ps1["ifgday"], [[datenum(a), datenum(b)] for a, b in sb["pairs"]]
        )
        want = [
            sb["bperp"][sb["dates"].index(b)] - sb["bperp"][sb["dates"].index(a)]
            for a, b in sb["pairs"]
        ]
        np.testing.assert_allclose(ps1["bperp"], want, atol=1e-6)


def test_bperp_mat_is_grid_difference(sb):
    merged, dates = sb["merged"], sb["dates"]
    stack = isce.open_stack(merged)
    for name in sb["summary"]["patches"]:
        ps1 = load_product(sb["run"] / name / "ps1.h5")
        bp = load_product(sb["run"] / name / "bp1.h5")["bperp_mat"]
        assert bp.dtype == np.float32 and bp.shape == (ps1["n_ps"], ps1["n_ifg"])
        rows, cols = ps1["ij"][:, 1], ps1["ij"][:, 2]
        grid = {
            d: (
                np.zeros(len(rows))
                if d == ps1["master_date"]
                else _sample_baseline_grid(
                    isce.baseline_grid_path(stack, d), rows, cols, ROWS, COLS
                )
            )
            for d in dates
        }
        for k, (a, b) in enumerate(sb["pairs"]):
            np.testing.assert_allclose(bp[:, k], grid[b] - grid[a], atol=1e-3)
        # the grids vary about the per-date average baseline
        np.testing.assert_allclose(bp.mean(axis=0), ps1["bperp"], atol=5.0)


def test_in_memory_and_chunked_writes_agree_and_no_grid_fallback(sb, tmp_path):
    patch = sb["run"] / "PATCH_2"
    cands = load_product(patch / "pscands.h5")
    values = sb_load_initial.read_candidate_slcs(
        [sb["merged"] / "SLC" / d / f"{d}.slc.full.vrt" for d in sb["dates"]],
        cands["ij"],
        block_mb=0.01,
    )
    built = sb_load_initial.build_sb_step1(cands, sb["pairs"], values)
    sb_load_initial.write_sb_step1(tmp_path, cands, sb["pairs"], values, chunk=97)
    on_disk = _products(patch)
    for name in PRODUCTS:
        small = load_product(tmp_path / f"{name}.h5")
        for key, value in built[name].items():
            np.testing.assert_array_equal(np.asarray(small[key]), np.asarray(value))
            np.testing.assert_array_equal(np.asarray(on_disk[name][key]), np.asarray(value))
    no_grid = {k: v for k, v in cands.items() if k not in ("bperp_mat", "bperp_grids")}
    bp = sb_load_initial.build_sb_step1(no_grid, sb["pairs"], values)["bp1"]["bperp_mat"]
    np.testing.assert_array_equal(
        bp, np.tile(built["ps1"]["bperp"].astype(np.float32), (len(bp), 1))
    )
    with pytest.raises(StampsError, match="expected"):
        sb_load_initial.build_sb_step1(cands, sb["pairs"], values[:, :3])


def test_rerun_and_step1_entry_give_identical_products(sb):
    patch = sb["run"] / "PATCH_1"
    before = _products(patch)
    assert run_cli(bsp.main, [str(sb["run"]), "--patches", "PATCH_1"]) == 0
    built = (patch / "ps1.h5").stat().st_mtime_ns
    assert sb_load_initial.run(patch) == patch / "ps1.h5"
    assert (patch / "ps1.h5").stat().st_mtime_ns == built  # current: the SLCs are not read again
    (patch / "ph1.h5").unlink()
    assert sb_load_initial.run(patch) == patch / "ps1.h5"  # a workspace missing: built again
    after = _products(patch)
    for name in PRODUCTS:
        assert before[name].keys() == after[name].keys()
        for key in before[name]:
            np.testing.assert_array_equal(
                np.asarray(after[name][key]), np.asarray(before[name][key])
            )


def test_step2_on_sb_products(sb):
    run = sb["run"]
    coh_by_class: dict[int, list[np.ndarray]] = {1: [], 3: [], 4: []}
    for name in sb["summary"]["patches"]:
        patch = run / name
        ps_est_gamma_quick.run(patch, load_parms(patch))
        coh = load_product(patch / "pm1.h5", ["coh_ps"])["coh_ps"]
        ij = load_product(patch / "ps1.h5", ["ij"])["ij"]
        assert np.all((coh >= 0) & (coh <= 1))
        cls = sb["pixel_class"][ij[:, 1], ij[:, 2]]
        for k, found in coh_by_class.items():
            found.append(coh[cls == k])
    ps, ds, noise = (np.concatenate(coh_by_class[k]) for k in (1, 3, 4))
    assert len(ps) > 50 and len(noise) > 30
    assert np.median(ps) > 0.9
    assert np.median(ps) > np.median(ds) > np.median(noise) + 0.1


def test_prep_errors(sb, tmp_path):
    merged, dates = sb["merged"], sb["dates"]
    with pytest.raises(StampsError, match="run define_sb_pairs first"):
        prepare(merged, tmp_path / "a", small_baseline=True)
    assert not (tmp_path / "a").exists()
    _write_list(
        tmp_path / "b" / "small_baselines.list", [(dates[0], dates[1]), (dates[1], "20300101")]
    )
    with pytest.raises(StampsError, match="date 20300101 .*not in the stack"):
        prepare(merged, tmp_path / "b", small_baseline=True)
    _write_list(tmp_path / "c" / "small_baselines.list", [(dates[0], dates[1])])
    with pytest.raises(StampsError, match="at least 2"):
        prepare(merged, tmp_path / "c", small_baseline=True)
    with pytest.raises(StampsError, match="build_sb_phase"):
        prepare(merged, tmp_path / "d", small_baseline=True, write_step1=True)
    with pytest.raises(StampsError, match="holds a small-baseline run"):
        prepare(merged, sb["run"], bootstrap_metadata=True)
    # a PS-only output directory may not hold a pair list
    with pytest.raises(StampsError, match="not empty"):
        prepare(merged, tmp_path / "c", bootstrap_metadata=True)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["small_baselines.list"]


def _copy_run(sb: dict, dst: Path) -> Path:
    shutil.copytree(sb["run"], dst, ignore=shutil.ignore_patterns("*1.h5", "pm1.h5"))
    return dst


def test_build_errors(sb, tmp_path, capsys):
    pairs = sb["pairs"]
    run = _copy_run(sb, tmp_path / "changed")
    _write_list(run / "small_baselines.list", pairs[:-1] + [(sb["dates"][0], sb["dates"][3])])
    with pytest.raises(
        StampsError,
        match=rf"added {pairs[0][0]}_{sb['dates'][3]}; removed "
        rf"{pairs[-1][0]}_{pairs[-1][1]}",
    ):
        bsp.build_sb_phase(run)
    (run / "small_baselines.list").unlink()
    with pytest.raises(StampsError, match="small baseline list missing"):
        bsp.build_sb_phase(run)
    assert not list(run.glob("PATCH_*/ps1.h5"))

    ps_like = _copy_run(sb, tmp_path / "ps")
    meta = json.loads((ps_like / "metadata.json").read_text())
    del meta["small_baseline"]
    (ps_like / "metadata.json").write_text(json.dumps(meta))
    assert run_cli(bsp.main, [str(ps_like)]) == 1
    assert "not a small-baseline run" in capsys.readouterr().err

    stack = tmp_path / "stack"
    shutil.copytree(sb["merged"].parent, stack, ignore=shutil.ignore_patterns("truth.h5"))
    missing = stack / "merged" / "SLC" / sb["dates"][4] / f"{sb['dates'][4]}.slc.full"
    missing.unlink()
    moved = _copy_run(sb, tmp_path / "moved")
    meta = json.loads((moved / "metadata.json").read_text())
    meta["merged_dir"] = str(stack / "merged")
    (moved / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(StampsError, match=re.escape(str(missing))):
        bsp.build_sb_phase(moved)
    with pytest.raises(StampsError, match="not in"):
        bsp.build_sb_phase(sb["run"], patches=["PATCH_9"])


def test_second_pass_when_the_line_sample_is_off(sb, tmp_path, monkeypatch):
    """If the sampled constants miss their margin, a pass with the exact constants decides (and
    the CLI's log in the run directory says so)."""
    from stamps_python.prep import candidates
    from stamps_python.prep_isce import main

    monkeypatch.setattr(candidates, "weight_error", lambda a, b: 0.5)
    run = tmp_path / "run"
    _write_list(run / "small_baselines.list", sb["pairs"])
    args = ["--bootstrap-metadata", "--small-baseline", "--amp-dispersion", "0.5"]
    args += ["--range-patches", "2", "--range-overlap", "10", "--azimuth-overlap", "10"]
    assert main([str(sb["merged"]), "--output", str(run), *args]) == 0
    assert "second pass with the exact constants" in (run / "stamps.log").read_text()
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["small_baseline"]["amp_dispersion"] == 0.5
    for name in (run / "patch.list").read_text().split():
        new = load_product(run / name / "pscands.h5")
        old = load_product(sb["run"] / name / "pscands.h5")
        keep = old["D_A"] < 0.5
        np.testing.assert_array_equal(new["ij"], old["ij"][keep])
        np.testing.assert_array_equal(new["D_A"], old["D_A"][keep])


def _sample_baseline_grid(path, rows, cols, length, width):
    """Bperp (m) of one topsStack gridded baseline file at full-resolution pixels (rows, cols)."""
    return isce.sample_grids(isce.read_raster(path)[None], rows, cols, length, width)[:, 0]

"""Step 6 (ps_unwrap / uw_3d): gridding, Goldstein filter, network, time unwrapping, end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from factories import days, ps_product, scene_points, write_workspace

from stamps_python.io.products import load_product, save_product
from stamps_python.numerics.unwrap_costs import uw_unwrap_from_grid
from stamps_python.numerics.unwrap_grid import check_grid, grid_cells, uw_grid_wrapped, wrap_filt
from stamps_python.numerics.unwrap_interp import uw_interp
from stamps_python.numerics.unwrap_space_time import (
    design_matrix,
    estimate_arc_gradient,
    gradient_filt,
    smooth_unwrap_anneal,
)
from stamps_python.parms import PARAMETERS, default_parms
from stamps_python.steps import ps_unwrap
from stamps_python.utils import StampsError

LAMBDA = 0.05546576
SCENE = (4000.0, 3000.0)  # x, y extent of the synthetic scenes, m


def _scene(rng: np.random.Generator, n_ps: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = scene_points(rng, n_ps, SCENE).T
    return x, y


def _ps_product(
    x: np.ndarray, y: np.ndarray, day: np.ndarray, bperp: np.ndarray, master: int, **kw: object
) -> dict:
    """ps2 of the PS at x, y (m) on a 10 m pixel grid, lon, lat a scaled copy of x, y."""
    ij = np.column_stack([np.arange(1, len(x) + 1), (y / 10).astype(int), (x / 10).astype(int)])
    xy = np.column_stack([x, y])
    return ps_product(xy, day, master, bperp, ij=ij, lonlat=xy * 1e-5, **kw)


def make_ps_run(
    run: Path,
    n_ps: int = 400,
    n_img: int = 12,
    master: int = 5,
    cycles: float = 4.0,
    noise: float = 0.3,
    seed: int = 0,
    ramp_cycles_per_km: float = 0.0,
    bperp_max: float = 150.0,
) -> dict[str, np.ndarray]:
    """Merged single-reference run: a deformation ramp of ``cycles`` across the scene growing
    linearly in time, per-PS look-angle error, Gaussian noise (rad). Returns the true phases."""
    rng = np.random.default_rng(seed)
    x, y = _scene(rng, n_ps)
    day = days("20200101", n_img, 36.0)
    bperp = rng.uniform(-1, 1, n_img) * bperp_max
    bperp[master] = 0
    t = (day - day[master]) / np.abs(day - day[master]).max()
    k_ps = rng.normal(0, 0.002, n_ps)
    phase = 2 * np.pi * cycles * (x / SCENE[0])[:, None] * t[None, :] + k_ps[:, None] * bperp
    phase += rng.normal(0, noise, phase.shape)
    ramp = 2 * np.pi * ramp_cycles_per_km * (x / 1000)[:, None] * np.sign(t)[None, :]
    phase += ramp
    phase[:, master] = 0
    ph_rc = np.exp(1j * (phase - k_ps[:, None] * bperp)).astype(np.complex64)
    ph_rc[:, master] = 1
    write_workspace(
        run,
        ps2=_ps_product(x, y, day, bperp, master),
        rc2={"ph_rc": ph_rc},
        pm2={
            "ph_patch": np.delete(np.exp(1j * phase), master, axis=1).astype(np.complex64),
            "K_ps": k_ps,
            "C_ps": np.zeros(n_ps),
            "coh_ps": np.full(n_ps, 0.8),
            "ph_res": np.zeros((n_ps, n_img - 1), np.float32),
        },
        bp2={"bperp_mat": np.tile(np.delete(bperp, master), (n_ps, 1))},
        la2={"la": np.full(n_ps, 0.6)},
    )
    return {"phase": phase, "ramp": ramp, "x": x, "bperp": bperp, "k_ps": k_ps}


def make_sb_run(
    run: Path,
    n_ps: int = 400,
    n_img: int = 12,
    master: int = 5,
    cycles: float = 6.0,
    noise: float = 0.3,
    seed: int = 1,
) -> np.ndarray:
    """Merged small-baseline run (pairs of consecutive and second-next images); true ifg phase."""
    rng = np.random.default_rng(seed)
    x, y = _scene(rng, n_ps)
    day = days("20200101", n_img, 36.0)
    bp_img = rng.uniform(-150, 150, n_img)
    bp_img -= bp_img[master]
    ifgday_ix = np.array(
        sorted([(i, i + 1) for i in range(n_img - 1)] + [(i, i + 2) for i in range(n_img - 2)])
    )
    t = (day - day[master]) / np.abs(day - day[master]).max()
    k_ps = rng.normal(0, 0.002, n_ps)
    img = 2 * np.pi * cycles * (x / SCENE[0])[:, None] * t[None, :] + k_ps[:, None] * bp_img
    phase = img[:, ifgday_ix[:, 1]] - img[:, ifgday_ix[:, 0]]
    phase += rng.normal(0, noise, phase.shape)
    bperp = bp_img[ifgday_ix[:, 1]] - bp_img[ifgday_ix[:, 0]]
    write_workspace(
        run,
        ps2=_ps_product(x, y, day, bperp, master, ifgday_ix=ifgday_ix),
        rc2={"ph_rc": np.exp(1j * (phase - k_ps[:, None] * bperp)).astype(np.complex64)},
        pm2={
            "ph_patch": np.exp(1j * phase).astype(np.complex64),
            "K_ps": k_ps,
            "C_ps": np.zeros(n_ps),
            "coh_ps": np.full(n_ps, 0.8),
        },
        bp2={"bperp_mat": np.tile(bperp, (n_ps, 1)).astype(np.float32)},
    )
    return phase


def parms_for(small_baseline: bool = False, **extra) -> dict:
    p = default_parms(small_baseline=small_baseline)
    p.update(
        {"lambda": LAMBDA, "heading": -168.0, "unwrap_grid_size": 100.0, "unwrap_gold_n_win": 8}
    )
    p.update(extra)
    return p


def cycle_errors(ph_uw: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per interferogram, the number of PS off the truth by other than the common 2pi multiple."""
    cycles = np.round((ph_uw - truth) / 2 / np.pi)
    assert np.allclose(ph_uw - truth, 2 * np.pi * cycles, atol=1e-3)
    return (cycles != np.median(cycles, axis=0)).sum(axis=0)


# ---------------------------------------------------------------- gridding and filtering


def test_grid_cells_fold_last_row_and_column() -> None:
    xy = np.array([[0.0, 0.0], [150.0, 50.0], [250.0, 120.0], [399.9, 299.0]])
    cells, n_i, n_j, x_min, y_min = grid_cells(xy, 100.0)
    # columns ceil((x + 1e-3)/100) = 1, 2, 3, 4, the last folded into 3; rows 1, 1, 2, 3 -> 3 to 2
    assert cells.tolist() == [[0, 0], [0, 1], [1, 2], [1, 2]]
    assert (n_i, n_j, x_min, y_min) == (2, 3, 0.0, 0.0)


def test_grid_smaller_than_prefilter_window_is_stamps_error() -> None:
    rng = np.random.default_rng(3)
    xy = np.column_stack([np.arange(50), rng.uniform(0, 1600, 50), rng.uniform(0, 900, 50)])
    ph = np.exp(1j * rng.uniform(-np.pi, np.pi, (50, 3)))
    with pytest.raises(
        StampsError,
        match=r"^Minimum dimension of the resampled grid \(8 pixels\) "
        r"is less than prefilter window size \(32\); lower "
        r"unwrap_grid_size",
    ):
        uw_grid_wrapped(ph, xy, 100.0, 32, True, False, 0.8, progress=False)


def test_grid_of_too_many_cells_is_refused_before_allocating() -> None:
    xy = np.array([[0.0, 0.0], [4000.0, 3000.0]])
    with pytest.raises(StampsError) as err:
        grid_cells(xy, 0.001)  # 1.2e13 cells: terabytes
    msg = str(err.value)
    assert msg.startswith("parameter unwrap_grid_size: 0.001 m") and "\n" not in msg
    assert "3,000,001 x 4,000,001 grid" in msg and "more than 50,000,000" in msg
    suggested = float(msg.split(">= ")[1].split(" m")[0])
    assert suggested == 0.49
    grid_cells(xy, suggested)  # the suggestion is within the limit
    with pytest.raises(StampsError, match="unwrap_grid_size"):
        check_grid(xy, 0.48, 8)
    with pytest.raises(StampsError, match="Minimum dimension"):
        check_grid(xy, 200.0, 32)


def test_run_refuses_a_huge_grid_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_ps_run(tmp_path)

    def no_loading(*args, **kwargs):
        raise AssertionError("rc2 read before the grid check")

    monkeypatch.setattr(
        ps_unwrap,
        "load_product",
        lambda path, *a, **k: (
            load_product(path, *a, **k) if Path(path).name == "ps2.h5" else no_loading()
        ),
    )
    with pytest.raises(
        StampsError,
        match=r"^parameter unwrap_grid_size: 0.001 m .* grid .* use "
        r"unwrap_grid_size >= \d",
    ):
        ps_unwrap.run(tmp_path, parms_for(unwrap_grid_size=0.001), progress=False)
    assert not (tmp_path / "uw_grid.h5").exists()


def test_grid_sums_phasors_per_cell_in_column_major_node_order() -> None:
    xy = np.array(
        [[1, 10.0, 10.0], [2, 20.0, 30.0], [3, 150.0, 20.0], [4, 60.0, 160.0], [5, 290.0, 290.0]]
    )
    ph = np.exp(1j * np.array([[0.1], [0.3], [1.0], [-2.0], [2.5]]))
    ug = uw_grid_wrapped(ph, xy, 100.0, 2, False, False, 0.8, progress=False)
    # cells (row, col): PS1, PS2 -> (0, 0); PS3 -> (0, 1); PS4, PS5 -> (1, 0), (1, 1) after folding
    assert ug["grid_ij"].tolist() == [[0, 0], [0, 0], [0, 1], [1, 0], [1, 1]]
    assert ug["ij"].tolist() == [[0, 0], [1, 0], [0, 1], [1, 1]]  # down each column first
    np.testing.assert_allclose(
        ug["ph"][:, 0], [ph[0, 0] + ph[1, 0], ph[3, 0], ph[2, 0], ph[4, 0]], rtol=1e-6
    )
    np.testing.assert_allclose(ug["xy"][:, 1:], [[50, 50], [50, 150], [150, 50], [150, 150]])


def test_goldstein_keeps_a_plane_and_reduces_noise() -> None:
    ii, jj = np.mgrid[0:40, 0:50]
    plane = np.exp(1j * (0.5 * ii - 0.3 * jj))
    out, low = wrap_filt(plane, 16, 0.8, None, True)
    assert np.abs(np.angle(out * np.conj(plane))).max() < 0.03
    np.testing.assert_allclose(np.abs(out), 1.0)
    assert low is not None and low.shape == plane.shape
    rng = np.random.default_rng(0)
    noisy = plane * np.exp(1j * rng.normal(0, 0.8, plane.shape))
    filtered, none = wrap_filt(noisy, 16, 0.8)
    assert none is None
    before = np.std(np.angle(noisy * np.conj(plane)))
    after = np.std(np.angle(filtered * np.conj(plane)))
    assert after < 0.5 * before


# ---------------------------------------------------------------- network


def test_nearest_node_map_ties_to_lowest_node_and_signed_edges() -> None:
    nzix = np.zeros((3, 4), dtype=bool)
    nzix[0, 0] = nzix[2, 3] = nzix[0, 3] = True  # column-major nodes: (0,0)=0, (0,3)=1, (2,3)=2
    ui = uw_interp(nzix)
    nodes = np.array([[0, 0], [0, 3], [2, 3]])
    ii, jj = np.mgrid[0:3, 0:4]
    d2 = (ii[..., None] - nodes[:, 0]) ** 2 + (jj[..., None] - nodes[:, 1]) ** 2
    np.testing.assert_array_equal(ui["Z"], np.argmin(d2, axis=-1))  # argmin: first (lowest) on ties
    assert ui["Z"][0, 1] == 0 and ui["Z"][1, 2] == 1  # (1,2) is 1 from node 1 and from node 2
    Z = ui["Z"]
    edges = {tuple(e) for e in ui["edgs"][:, 1:].tolist()}
    expect = {tuple(sorted(p)) for p in zip(Z[:, :-1].ravel(), Z[:, 1:].ravel()) if p[0] != p[1]}
    expect |= {tuple(sorted(p)) for p in zip(Z[:-1].ravel(), Z[1:].ravel()) if p[0] != p[1]}
    assert edges == expect and ui["n_edge"] == len(expect)
    assert ui["edgs"][:, 0].tolist() == list(range(1, ui["n_edge"] + 1))
    for i in range(3):
        for j in range(3):
            num = ui["colix"][i, j]
            a, b = Z[i, j], Z[i, j + 1]
            if a == b:
                assert num == 0
            else:
                assert tuple(ui["edgs"][abs(num) - 1, 1:]) == (min(a, b), max(a, b))
                assert np.sign(num) == (1 if a < b else -1)


# ---------------------------------------------------------------- time unwrapping pieces


def test_arc_look_angle_gradient_is_recovered() -> None:
    rng = np.random.default_rng(5)
    bperp = rng.uniform(-120, 120, 20)
    bperp -= bperp.mean()  # StaMPS' refinement fits K without intercept: unbiased for zero-mean
    k_true = rng.uniform(-0.01, 0.01, 50)
    phase = k_true[:, None] * bperp[None, :] + rng.uniform(-np.pi, np.pi, (50, 1))
    dph = np.exp(1j * (phase + rng.normal(0, 0.05, phase.shape)))
    rng_b = bperp.max() - bperp.min()
    k, coh = estimate_arc_gradient(dph, bperp, rng_b, n_trial_wraps=0.01 * rng_b / 2 / np.pi)
    np.testing.assert_allclose(k, k_true, atol=6e-4)  # 0.05 rad noise: K std 1.6e-4
    assert coh.min() > 0.9
    random_arcs = np.exp(1j * rng.uniform(-np.pi, np.pi, (20, 20)))
    _, coh_random = estimate_arc_gradient(random_arcs, bperp, rng_b, 0.5)
    assert np.median(coh_random) < 0.31


def test_gradient_filter_returns_plane_wave_gradients() -> None:
    ii, jj = np.mgrid[0:40, 0:48]
    g_i, g_j = 2 * np.pi * 3 / 16, -2 * np.pi * 2 / 16
    ifreq, jfreq, ij, hmag = gradient_filt(np.exp(1j * (g_i * ii + g_j * jj)), 16)
    np.testing.assert_allclose(ifreq, g_i)
    np.testing.assert_allclose(jfreq, g_j)
    assert ij.shape == (len(ifreq), 2) and np.all(hmag > 3)
    assert ij[0].tolist() == [7.5, 7.5] and ij[1].tolist() == [7.5, 11.5]


def test_annealing_fit_finds_the_cycles_and_is_seeded() -> None:
    n_img = 10
    ifgday_ix = np.array(
        sorted([(i, i + 1) for i in range(n_img - 1)] + [(i, i + 2) for i in range(n_img - 2)])
    )
    G = design_matrix(ifgday_ix, n_img)
    x = np.arange(n_img, dtype=float)
    rng = np.random.default_rng(0)
    rate = rng.uniform(-1.2, 1.2, 24)  # rad per image: the second-next pairs wrap often
    true = (G @ (rate[None, :] * x[:, None])).T
    dph = np.angle(np.exp(1j * (true + rng.normal(0, 0.3, true.shape))))
    W = np.eye(len(G))
    series = smooth_unwrap_anneal(dph, G, W, x, np.random.default_rng(1), runs=6)
    cycles = np.round(((G @ series).T - dph) / 2 / np.pi)
    np.testing.assert_array_equal(cycles, np.round((true - dph) / 2 / np.pi))
    again = smooth_unwrap_anneal(dph, G, W, x, np.random.default_rng(1), runs=6)
    np.testing.assert_array_equal(series, again)


def test_unwrap_from_grid_adds_ps_departure_and_holds_predefined_values() -> None:
    grid_uw = np.array([[10.0, 20.0], [-3.0, 4.0]])  # 2 nodes x 2 ifgs
    ph_in = np.exp(1j * np.array([[10.2, 19.5], [-3.1, 4.4], [10.0 - 0.3, 20.6]]))
    ug = {
        "ph_in": ph_in,
        "nzix": np.array([[True], [True]]),
        "grid_ij": np.array([[0, 0], [1, 0], [0, 0]]),
        "ph_in_predef": None,
    }
    out = uw_unwrap_from_grid(ug, grid_uw)
    np.testing.assert_allclose(out, [[10.2, 19.5], [-3.1, 4.4], [9.7, 20.6]], atol=1e-5)
    predef = np.full((3, 2), np.nan)
    predef[0, 0] = 10.2 - 4 * np.pi  # held value, two cycles off the new solution
    ug["ph_in_predef"] = predef
    held = uw_unwrap_from_grid(ug, grid_uw)
    np.testing.assert_allclose(held, [[10.2, 19.5], [-3.1, 4.4], [9.7, 20.6]], atol=1e-5)


# ---------------------------------------------------------------- options from the parameters


@pytest.mark.parametrize("small_baseline", [False, True])
def test_unwrap_options_from_default_parms(small_baseline: bool) -> None:
    parms = default_parms(small_baseline=small_baseline)
    options = ps_unwrap.UnwrapOptions.from_parms(parms, n_trial_wraps=2.5)
    # ps_parms_default.m: the same for PS and SB but unwrap_method
    assert options == ps_unwrap.UnwrapOptions(
        unwrap_method="3D_QUICK" if small_baseline else "3D",
        unwrap_grid_size=200.0,
        unwrap_gold_n_win=32,
        unwrap_prefilter_flag=True,
        unwrap_gold_alpha=0.8,
        unwrap_time_win=730.0,
        unwrap_la_error_flag=True,
        unwrap_spatial_cost_func_flag=False,
        n_trial_wraps=2.5,
        lowfilt_flag=False,  # ps_unwrap.m sets 'n' for PS and SB
    )
    # every field named as a parameter holds that parameter's spec default
    spec = PARAMETERS
    named = [f.name for f in dataclasses.fields(options) if f.name in spec]
    assert len(named) == 8
    for name in named:
        want = spec[name].sb_default if small_baseline else spec[name].ps_default
        got = getattr(options, name)
        assert (("y" if got else "n") if isinstance(got, bool) else got) == want, name


def test_unwrap_options_need_every_parameter() -> None:
    parms = default_parms()
    del parms["unwrap_time_win"]
    with pytest.raises(StampsError, match="^parameter 'unwrap_time_win' is missing$"):
        ps_unwrap.UnwrapOptions.from_parms(parms, n_trial_wraps=1.0)


def test_run_without_a_needed_parameter(tmp_path: Path) -> None:
    make_ps_run(tmp_path)
    save_product(tmp_path / "tca2.h5", {"ph_tropo_linear": np.zeros((400, 12))})
    for name in ("unwrap_gold_n_win", "max_topo_err", "lambda", "tropo_method"):
        parms = parms_for(subtr_tropo="y")
        del parms[name]
        with pytest.raises(StampsError) as err:
            ps_unwrap.run(tmp_path, parms, progress=False)
        assert str(err.value) == f"parameter '{name}' is missing"


# ---------------------------------------------------------------- ps_unwrap end to end


def test_run_recovers_ps_deformation_ramp(tmp_path: Path) -> None:
    truth = make_ps_run(tmp_path, cycles=5.0)
    out = ps_unwrap.run(tmp_path, parms_for(), progress=False)
    assert out.name == "phuw2.h5"
    uw = load_product(out)
    assert uw["ph_uw"].dtype == np.float32 and uw["ph_uw"].shape == (400, 12)
    np.testing.assert_array_equal(uw["ph_uw"][:, 5], 0)  # master
    assert uw["msd"][5] == 0 and np.all(uw["msd"][np.arange(12) != 5] > 0)
    assert cycle_errors(uw["ph_uw"], truth["phase"]).sum() == 0
    # the largest phase range is several cycles, so this is more than wrapping
    assert np.ptp(uw["ph_uw"][:, 0]) > 2 * np.pi * 4
    for name in ("uw_grid", "uw_interp", "uw_space_time", "uw_phaseuw"):
        assert (tmp_path / f"{name}.h5").is_file()
    ui = load_product(tmp_path / "uw_interp.h5")
    assert ui["edgs"].shape[1] == 3
    assert not list(tmp_path.glob(".snaphu_*"))


def test_run_honours_drop_ifg_index(tmp_path: Path) -> None:
    truth = make_ps_run(tmp_path, seed=4)
    uw = load_product(ps_unwrap.run(tmp_path, parms_for(drop_ifg_index=[3, 10]), progress=False))
    dropped = [2, 9]
    np.testing.assert_array_equal(uw["ph_uw"][:, dropped], 0)
    np.testing.assert_array_equal(uw["msd"][dropped], 0)
    kept = [k for k in range(12) if k not in dropped + [5]]
    assert cycle_errors(uw["ph_uw"][:, kept], truth["phase"][:, kept]).sum() == 0
    grid = load_product(tmp_path / "uw_grid.h5", ["n_ifg"])
    assert grid["n_ifg"] == 9


def test_run_without_baseline_spread(tmp_path: Path) -> None:
    truth = make_ps_run(tmp_path, seed=8, bperp_max=0.0)
    uw = load_product(ps_unwrap.run(tmp_path, parms_for(), progress=False))
    assert cycle_errors(uw["ph_uw"], truth["phase"]).sum() == 0
    np.testing.assert_array_equal(load_product(tmp_path / "uw_space_time.h5", ["K"])["K"], 0)


def test_run_with_spatial_cost_function(tmp_path: Path) -> None:
    truth = make_ps_run(tmp_path, seed=7)
    uw = load_product(
        ps_unwrap.run(tmp_path, parms_for(unwrap_spatial_cost_func_flag="y"), progress=False)
    )
    assert cycle_errors(uw["ph_uw"], truth["phase"]).sum() == 0
    st = load_product(tmp_path / "uw_space_time.h5")
    assert st["ifreq_ij"].shape == st["jfreq_ij"].shape and "shaky_ix" in st


def test_run_subtracts_and_adds_back_step7_estimates(tmp_path: Path) -> None:
    # a 0.8 cycle/km orbital ramp aliases on a 100 m grid with the Goldstein window: only with the
    # Step 7 ramp removed (scla_deramp='y') is the scene unwrappable
    truth = make_ps_run(tmp_path, seed=2, ramp_cycles_per_km=0.8)
    n_ps = len(truth["x"])
    rng = np.random.default_rng(9)
    k_uw = rng.normal(0, 0.001, n_ps)
    c_uw = rng.uniform(-1, 1, n_ps)
    save_product(
        tmp_path / "scla_smooth2.h5",
        {"K_ps_uw": k_uw, "C_ps_uw": c_uw, "ph_ramp": truth["ramp"].astype(np.float32)},
    )
    uw = load_product(ps_unwrap.run(tmp_path, parms_for(scla_deramp="y"), progress=False))
    assert cycle_errors(uw["ph_uw"], truth["phase"]).sum() == 0
    without = load_product(ps_unwrap.run(tmp_path, parms_for(scla_deramp="n"), progress=False))
    assert cycle_errors(without["ph_uw"], truth["phase"]).sum() > 100


def test_run_subtracts_and_adds_back_tropospheric_correction(tmp_path: Path) -> None:
    truth = make_ps_run(tmp_path, seed=6, ramp_cycles_per_km=0.8)
    save_product(tmp_path / "tca2.h5", {"ph_tropo_linear": truth["ramp"]})
    parms = parms_for(subtr_tropo="y", tropo_method="a_l")
    uw = load_product(ps_unwrap.run(tmp_path, parms, progress=False))
    assert cycle_errors(uw["ph_uw"], truth["phase"]).sum() == 0
    parms["tropo_method"] = "a_gacos"
    with pytest.raises(StampsError, match="ph_tropo_gacos"):
        ps_unwrap.run(tmp_path, parms, progress=False)


def test_run_with_patch_phase(tmp_path: Path) -> None:
    truth = make_ps_run(tmp_path, seed=11)
    uw = load_product(ps_unwrap.run(tmp_path, parms_for(unwrap_patch_phase="y"), progress=False))
    # the patch phase is unwrapped and the PS's departure from it taken from ph_rc, which has
    # the PS look-angle error removed (StaMPS does not put it back in this mode)
    expected = truth["phase"] - truth["k_ps"][:, None] * truth["bperp"][None, :]
    assert cycle_errors(uw["ph_uw"], expected).sum() == 0


@pytest.mark.parametrize("method", ["3D_QUICK", "3D"])
def test_run_small_baselines(tmp_path: Path, method: str) -> None:
    phase = make_sb_run(tmp_path)
    out = ps_unwrap.run(tmp_path, parms_for(True, unwrap_method=method), progress=False)
    assert out.name == "phuw_sb2.h5"
    uw = load_product(out)
    assert uw["ph_uw"].shape == phase.shape
    assert cycle_errors(uw["ph_uw"], phase).sum() == 0
    if method == "3D":
        assert load_product(tmp_path / "uw_grid.h5", ["ph_lowpass"])["ph_lowpass"].shape == (
            load_product(tmp_path / "uw_grid.h5", ["ph"])["ph"].shape
        )


def test_run_without_step5_products(tmp_path: Path) -> None:
    with pytest.raises(StampsError, match=r"ps2\.h5: not found; run Step 5 first"):
        ps_unwrap.run(tmp_path, parms_for(), progress=False)
    make_ps_run(tmp_path)
    (tmp_path / "rc2.h5").unlink()
    with pytest.raises(StampsError, match=r"rc2\.h5: not found; run Step 5 first"):
        ps_unwrap.run(tmp_path, parms_for(), progress=False)


def test_run_checks_snaphu_first_and_removes_stale_snaphu_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_ps_run(tmp_path)
    stale = tmp_path / ".snaphu_k1ll3d"
    stale.mkdir()
    (stale / "snaphu.in").write_bytes(b"left by a killed run")
    (tmp_path / ".snaphu_note").write_text("a file, not a snaphu folder")
    (tmp_path / "snaphu_mine").mkdir()

    def no_gridding(*args, **kwargs):
        raise AssertionError("gridding before the snaphu check")

    monkeypatch.setattr(ps_unwrap, "uw_grid_wrapped", no_gridding)
    monkeypatch.setenv("SNAPHU_BIN", str(tmp_path / "nowhere" / "snaphu"))
    with pytest.raises(StampsError) as err:
        ps_unwrap.run(tmp_path, parms_for(), progress=False)
    assert "SNAPHU_BIN" in str(err.value) and "\n" not in str(err.value)
    assert not stale.exists()
    assert (tmp_path / ".snaphu_note").is_file() and (tmp_path / "snaphu_mine").is_dir()
    with pytest.raises(StampsError, match="SNAPHU_BIN"):  # uw_3d itself looks first, too
        ps_unwrap.uw_3d(
            np.ones((4, 2), np.complex64),
            np.zeros((4, 2)),
            np.arange(2.0),
            np.array([[0, 1], [0, 1]]),
            np.zeros(2),
            ps_unwrap.UnwrapOptions.from_parms(parms_for(), n_trial_wraps=1.0),
            tmp_path,
        )


def test_run_holds_good_small_baseline_values(tmp_path: Path) -> None:
    phase = make_sb_run(tmp_path, seed=3)
    parms = parms_for(True, unwrap_hold_good_values="y")
    first = load_product(ps_unwrap.run(tmp_path, parms, progress=False))["ph_uw"]  # no phuw yet
    assert cycle_errors(first, phase).sum() == 0
    # pretend a previous run unwrapped 50 PS one cycle off in ifg 4 (pair 2-4, whose only loop is
    # the triangle 2-3-4): the closure test finds them, the rest is held as it was
    previous = first.copy()
    previous[:50, 3] += 2 * np.pi
    save_product(tmp_path / "phuw_sb2.h5", {"ph_uw": previous, "msd": np.zeros(previous.shape[1])})
    held = load_product(ps_unwrap.run(tmp_path, parms, progress=False))["ph_uw"]
    good = load_product(tmp_path / "phuw_good2.h5", ["good_pixels"])["good_pixels"]
    assert not good[:50, 3].any() and good[50:, 3].mean() > 0.8
    assert good.mean() > 0.8
    np.testing.assert_allclose(held[good], previous[good], atol=1e-4)  # held as they were
    assert cycle_errors(held[:, 3:4], phase[:, 3:4]).sum() == 0  # the wrong ones unwrapped again
    grid = load_product(tmp_path / "uw_grid.h5", ["ph_uw_predef"])["ph_uw_predef"]
    assert np.isfinite(grid).any() and np.isnan(grid).any()


def test_n_trial_wraps_uses_the_look_angle_as_ps_unwrap_means(tmp_path):
    # docs/differences.md "Step 6 n_trial_wraps": mean(la2) + 0.052 rad when la2 exists (always,
    # in a stamps_python run), 21 deg only without it; ps2's mean_incidence wins when present
    from stamps_python.io.products import save_product
    from stamps_python.parms import default_parms

    parms = {**default_parms(), "lambda": 0.0555, "max_topo_err": 20.0}
    ps = {"bperp": np.array([-100.0, 0.0, 50.0, 140.0])}

    def expected(inc: float) -> float:
        return 240.0 * 20.0 / (0.0555 * ps_unwrap.RHO * np.sin(inc) / 4 / np.pi) / (2 * np.pi)

    guess = ps_unwrap.n_trial_wraps_of(tmp_path, ps, parms)
    assert guess == pytest.approx(expected(np.radians(21.0)), rel=1e-12)
    save_product(tmp_path / "la2.h5", {"la": np.full(5, np.radians(36.0))})
    look = ps_unwrap.n_trial_wraps_of(tmp_path, ps, parms)
    assert look == pytest.approx(expected(np.radians(36.0) + 0.052), rel=1e-12)
    # on Sentinel-1 geometry the look-angle value is about 1/1.7 of MATLAB's 21-deg guess
    assert 1.6 < guess / look < 1.8
    inc = ps_unwrap.n_trial_wraps_of(tmp_path, {**ps, "mean_incidence": 0.7}, parms)
    assert inc == pytest.approx(expected(0.7), rel=1e-12)


@pytest.mark.parametrize("case", ["ps", "sb_hold"])
def test_threads_give_the_serial_products_bit_for_bit(tmp_path: Path, monkeypatch, case) -> None:
    # 50-row blocks so that 400 PS are 8 blocks on 3 threads; every loop over PS (SCLA, ramp, APS
    # and patch-phase add-back, the rotations, the way back from the grid) and the per-ifg
    # gridding and filtering run threaded, and each product must equal the serial one exactly
    from stamps_python.numerics import threads

    monkeypatch.setattr(threads, "ROW_BLOCK", 50)
    runs = {}
    for n_threads in (1, 3):
        run = tmp_path / f"t{n_threads}"
        if case == "ps":
            truth = make_ps_run(run, seed=2, ramp_cycles_per_km=0.8)
            rng = np.random.default_rng(9)
            save_product(
                run / "scla_smooth2.h5",
                {
                    "K_ps_uw": rng.normal(0, 0.001, 400),
                    "C_ps_uw": rng.uniform(-1, 1, 400),
                    "ph_ramp": truth["ramp"].astype(np.float32),
                },
            )
            save_product(run / "tca2.h5", {"ph_tropo_linear": 0.1 * truth["ramp"]})
            parms = parms_for(
                scla_deramp="y", subtr_tropo="y", tropo_method="a_l", unwrap_patch_phase="y"
            )
        else:
            phase = make_sb_run(run, seed=3)
            save_product(
                run / "phuw_sb2.h5",
                {"ph_uw": phase.astype(np.float32), "msd": np.zeros(phase.shape[1])},
            )
            parms = parms_for(True, unwrap_hold_good_values="y")
        ps_unwrap.run(run, parms, progress=False, n_threads=n_threads)
        runs[n_threads] = run
    names = ["phuw_sb2" if case == "sb_hold" else "phuw2", "uw_grid", "uw_phaseuw"]
    for name in names:
        one = load_product(runs[1] / f"{name}.h5")
        three = load_product(runs[3] / f"{name}.h5")
        assert one.keys() == three.keys()
        for key, value in one.items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(three[key], value, err_msg=f"{name}.{key}")

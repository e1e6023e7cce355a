"""cr_insar: corner-reflector InSAR without unwrapping (docs/cr_insar.md).

The paper's case simulated at phase level (Envisat-like, 9 images, 36 pairs), the numerics
(coherence search, refinement, ambiguity, uncertainty, network least squares), the synthetic
generator's corner reflectors, the command on a 30-date synthetic Sentinel-1 stack, and its
one-line errors.
"""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from stamps_python.cr import simulate as sim
from stamps_python.cr.locate import locate
from stamps_python.cr_insar import main
from stamps_python.numerics import cr_search as cs
from stamps_python.synthetic import generate_stack
from stamps_python.synthetic.corner_reflectors import CR_CSV, CR_STREAM, _kernel
from stamps_python.synthetic.fields import _STREAMS
from stamps_python.utils import StampsError, run_cli

ROWS, COLS, N_DATES, N_CR, SEED = 160, 320, 30, 6, 3


# ---------------------------------------------------------------------------------------------
# the paper's case, at phase level
# ---------------------------------------------------------------------------------------------


def test_envisat_simulation_paper_case(capsys):
    case = sim.envisat_case(seed=0)
    assert case.pairs.shape == (36, 2) and case.days[1] - case.days[0] == 35
    score = sim.score_case(case)
    v_true, dh_true = score.v_true[0], score.dh_true[0]  # CR 1: the paper's values
    assert v_true == pytest.approx(-0.4 * 365.25) and dh_true == 50.0
    v, dh = score.v["coherence"][0], score.dh["coherence"][0]
    rmse = {m: score.nonlinear_rmse_mm[m][0] for m in sim.METHODS}
    with capsys.disabled():
        print(
            f"\npaper case: v {v / 365.25:.4f} mm/day (true -0.4), dh {dh:.2f} m (true 50); "
            f"nonlinear RMSE mm: coherence + network LS {rmse['coherence']:.2f}, periodogram + "
            f"low-pass {rmse['periodogram']:.2f}, unwrapping {rmse['unwrapping']:.2f}; "
            f"unwrapping v {score.v['unwrapping'][0] / 365.25:.3f} mm/day, "
            f"dh {score.dh['unwrapping'][0]:.1f} m"
        )
    assert abs(v - v_true) < 0.01 * abs(v_true)
    assert abs(dh - dh_true) < 2.0
    assert rmse["coherence"] < rmse["periodogram"]
    # the unwrapping baseline fails as the paper says: more than half a cycle between dates
    assert abs(score.v["unwrapping"][0] - v_true) > 0.1 * abs(v_true)
    # over the other CRs too: the coherence search is right where unwrapping is not
    ok = np.abs(score.v["coherence"] - score.v_true) < 0.02 * np.abs(score.v_true) + 2.0
    assert ok.mean() >= 0.8
    bad_unw = np.abs(score.v["unwrapping"] - score.v_true) > 0.1 * np.abs(score.v_true)
    assert bad_unw.mean() >= 0.5
    assert np.median(score.nonlinear_rmse_mm["coherence"]) < np.median(
        score.nonlinear_rmse_mm["periodogram"]
    )


def test_sigma_matches_the_scatter_over_noise_draws():
    errors, sigmas = [], []
    for seed in range(40):
        score = sim.score_case(sim.envisat_case(seed=seed, n_cr=2))
        errors.append(score.v["coherence"][0] - score.v_true[0])
        sigmas.append(score.fits[0].sigma_v)
    errors = np.array(errors)
    assert abs(np.mean(errors)) < 0.5
    # sigma from the residuals (the nonlinear motion counts as noise): not below the scatter
    assert np.median(sigmas) > 0.8 * np.std(errors)
    assert np.median(sigmas) < 5 * np.std(errors)


# ---------------------------------------------------------------------------------------------
# numerics
# ---------------------------------------------------------------------------------------------


def _design(n=12, seed=1):
    rng = np.random.default_rng(seed)
    days = np.arange(n) * 12.0
    bperp = rng.normal(0, 80, n)
    a, b = cs.date_coefficients(0.0555, days, bperp, np.array([870e3]), np.radians([39.0]), 0)
    pairs = cs.network_pairs("all", n, 0)
    return days, a, b[0], pairs


def test_search_refines_well_below_the_grid_step():
    days, a, b, pairs = _design()
    psi = a * 23.456 + b * 7.89
    phase = cs.wrap(cs.pair_values(psi, pairs))
    pa, pb = cs.pair_values(a, pairs), cs.pair_values(b, pairs)
    fit = cs.coherence_search(phase, pa, pb, (-60, 60), (-30, 30), v_step=5.0, dh_step=3.0)
    assert fit.gamma == pytest.approx(1.0, abs=1e-9)
    assert abs(fit.v - 23.456) < 5.0 / 100 and abs(fit.dh - 7.89) < 3.0 / 100
    assert abs(fit.grid_v - 23.456) <= 2.5 and fit.border == ""
    assert fit.surface.shape == (fit.v_grid.size, fit.dh_grid.size)
    # the maximum on the border of the search space is flagged
    edge = cs.coherence_search(phase, pa, pb, (-60, 20), (-30, 30), v_step=5.0, dh_step=3.0)
    assert "v max" in edge.border


def test_second_peak_reports_the_velocity_ambiguity():
    days, a, b, pairs = _design(n=8)
    period = cs.velocity_ambiguity(0.0555, days)
    assert period == pytest.approx(0.0555 * 1000 / 2 / (12 / 365.25))
    psi = a * 10.0 + b * 2.0
    phase = cs.wrap(cs.pair_values(psi, pairs))
    pa, pb = cs.pair_values(a, pairs), cs.pair_values(b, pairs)
    wide = cs.coherence_search(phase, pa, pb, (-period, period), (-20, 20))
    assert wide.second_ratio > 0.97  # the alias one period away is as high
    assert abs(abs(wide.second_v - wide.v) - period) < 0.05 * period
    narrow = cs.coherence_search(phase, pa, pb, (-0.4 * period, 0.4 * period), (-20, 20))
    assert narrow.second_ratio < 0.9


def test_network_least_squares_and_disconnected_dates():
    n = 6
    pairs = np.array([[0, 1], [1, 2], [0, 2], [3, 4], [4, 5]])
    dates = [f"2021010{k + 1}" for k in range(n)]
    with pytest.raises(StampsError, match="20210104, 20210105, 20210106 are not linked"):
        cs.network_solve(np.zeros(len(pairs)), pairs, dates, 0)
    pairs = np.vstack([pairs, [[2, 3]]])
    x = np.array([0.0, 0.3, -0.2, 0.5, 0.1, 0.7])
    got = cs.network_solve(cs.pair_values(x, pairs), pairs, dates, 0)
    np.testing.assert_allclose(got, x, atol=1e-12)


def test_locate_subpixel_peak_in_clutter():
    rng = np.random.default_rng(4)
    errs = []
    for _ in range(10):
        du, dv = rng.uniform(-0.5, 0.5, 2)
        k = _kernel(np.array([du]), np.array([dv]))[0]
        chips = (rng.normal(size=(20, 32, 32)) + 1j * rng.normal(size=(20, 32, 32))) / np.sqrt(2)
        amp = np.sqrt(10**2.8)  # 28 dB
        chips[:, 4:29, 4:29] += amp * k * np.exp(1j * rng.uniform(0, 6.28, 20))[:, None, None]
        got = locate(chips, (100, 200), 116.4, 215.7, 16, 4.0)
        errs.append((got.line - 116 - du, got.sample - 216 - dv))
        assert np.median(got.scr_db) == pytest.approx(28.0, abs=1.5)
    assert np.abs(errs).max() < 0.05


# ---------------------------------------------------------------------------------------------
# the generator's corner reflectors and cr_insar on a 30-date synthetic stack
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    out = tmp_path_factory.mktemp("cr") / "stack"
    generate_stack(out, "easy", ROWS, COLS, N_DATES, seed=SEED, progress=False, truth_cube="no",
                   corner_reflectors=N_CR)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def run(stack):
    out = stack.parent / "cr_out"
    assert main([str(stack / "merged"), "--cr-list", str(stack / CR_CSV), "--output", str(out),
                 "--v-range", "-80", "80"]) == 0  # fmt: skip
    return out


def test_generator_writes_reflectors_and_leaves_the_rest(stack, tmp_path):
    assert CR_STREAM not in _STREAMS.values()  # the reflectors' own random stream
    plain = tmp_path / "plain"
    generate_stack(plain, "easy", ROWS, COLS, N_DATES, seed=SEED, progress=False,
                   truth_cube="no")  # fmt: skip
    assert not (plain / CR_CSV).exists()
    with h5py.File(stack / "truth.h5") as t, h5py.File(plain / "truth.h5") as p:
        assert "cr" not in p and t["cr/line"].shape == (N_CR,)
        names: list[str] = []
        p.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        for name in names:  # every other truth dataset is that of the stack without reflectors
            np.testing.assert_array_equal(t[name][()], p[name][()], err_msg=name)
        ri = np.round(t["cr/line"][()]).astype(int)
        ci = np.round(t["cr/sample"][()]).astype(int)
        assert t["cr/is_reference"][0] == 1 and t["cr/velocity_mm_yr"][0] == 0
        assert np.abs(t["cr/velocity_mm_yr"][()]).max() <= 40.0
        dates = [d.decode() for d in t["dates"][()]]
    listed = pd.read_csv(stack / CR_CSV)
    assert list(listed.columns) == ["name", "lon", "lat", "height", "reference"]
    assert listed.reference.sum() == 1
    near = np.zeros((ROWS, COLS), bool)
    for r, c in zip(ri, ci):
        near[r - 12 : r + 13, c - 12 : c + 13] = True
    for d in dates:
        a = np.fromfile(stack / f"merged/SLC/{d}/{d}.slc.full", "<c8").reshape(ROWS, COLS)
        b = np.fromfile(plain / f"merged/SLC/{d}/{d}.slc.full", "<c8").reshape(ROWS, COLS)
        np.testing.assert_array_equal(a[~near], b[~near])  # only the reflectors' windows change
        assert np.all(np.abs(a[ri, ci]) > 5 * np.median(np.abs(b[near])))


def test_cr_insar_finds_every_reflector(stack, run, capsys):
    table = pd.read_csv(run / "cr_insar.csv")
    with h5py.File(stack / "truth.h5") as t:
        names = [n.decode() for n in t["cr/names"][()]]
        line, sample = t["cr/line"][()], t["cr/sample"][()]
        vel = t["cr/velocity_mm_yr"][()]
        dates = [d.decode() for d in t["dates"][()]]
        disp = t["cr/displacement_mm"][()]
    assert table.name.tolist() == names
    pos = np.hypot(table.line - line, table["sample"] - sample)
    v_err = table.v_mm_yr - vel
    with capsys.disabled():
        print(f"\nsynthetic stack: position errors (px) {np.round(pos, 3).tolist()}, velocity "
              f"errors (mm/yr) {np.round(v_err, 2).tolist()}")  # fmt: skip
    assert pos.max() < 0.05
    assert np.abs(v_err).max() < 1.0
    assert np.all(table.sigma_v_mm_yr[1:] > 0) and np.all(table.gamma[1:] > 0.5)
    assert np.all(table.scr_db > 20)
    series = table[[f"D{d}" for d in dates]].to_numpy()
    assert np.all(table[f"D{dates[len(dates) // 2]}"] == 0)  # the reference date
    rms = np.sqrt(np.mean((series - series.mean(1, keepdims=True)
                           - (disp - disp.mean(1, keepdims=True))) ** 2, axis=1))  # fmt: skip
    assert rms.max() < 2.0  # mm: time series with their nonlinear part
    assert np.allclose(table.cum_disp_mm, series[:, -1] - series[:, 0], atol=1e-3)
    import pyogrio

    gpkg = pyogrio.read_dataframe(run / "cr_insar.gpkg")
    assert len(gpkg) == N_CR and "v_mm_yr" in gpkg.columns and f"D{dates[0]}" in gpkg.columns
    assert (run / "cr_insar_scr.csv").is_file() and (run / "cr_insar_series.csv").is_file()
    for name in names[1:]:
        for kind in ("coherence", "timeseries", "chip"):
            assert (run / f"cr_{name}_{kind}.png").stat().st_size > 1000


def test_single_and_sb_networks_and_gnss(stack, tmp_path, capsys):
    with h5py.File(stack / "truth.h5") as t:
        vel = t["cr/velocity_mm_yr"][()]
        dates = [d.decode() for d in t["dates"][()]]
        disp = t["cr/displacement_mm"][()]
    sb = tmp_path / "small_baselines.list"
    sb.write_text("".join(f"{dates[k]} {dates[k + j]}\n" for k in range(len(dates))
                          for j in (1, 4, 10) if k + j < len(dates)))  # fmt: skip
    inc, az = np.radians(39.0), np.radians(-102.0)  # the stack's look: LOS unit vector (E, N, U)
    u = np.array([-np.sin(az) * np.sin(inc), np.cos(az) * np.sin(inc), np.cos(inc)])
    gnss = tmp_path / "gnss.csv"
    rows = ["name,start,end,east,north,up"]
    for i in range(1, N_CR):
        los = disp[i, -1] - disp[i, 0]
        e, n, up = los * u  # a motion along the LOS
        rows.append(f"CR{i + 1:02d},{dates[0]},{dates[-1]},{e:.3f},{n:.3f},{up:.3f}")
    gnss.write_text("\n".join(rows) + "\n")
    for kind, extra in (("single", []), ("sb", ["--sb-list", str(sb), "--gnss", str(gnss)])):
        out = tmp_path / kind
        main([str(stack / "merged"), "--cr-list", str(stack / CR_CSV), "--output", str(out),
              "--network", kind, "--no-plots", "--v-range", "-80", "80", *extra])  # fmt: skip
        table = pd.read_csv(out / "cr_insar.csv")
        assert np.abs(table.v_mm_yr - vel).max() < 1.5, kind
    printed = capsys.readouterr().out
    assert "GNSS LOS mm" in printed
    g = pd.read_csv(tmp_path / "sb" / "cr_insar_gnss.csv")
    assert len(g) == N_CR - 1 and np.abs(g.difference_mm).max() < 3.0


# ---------------------------------------------------------------------------------------------
# one-line errors
# ---------------------------------------------------------------------------------------------


def _err(argv, capsys) -> str:
    assert run_cli(main, argv) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err and err.rstrip().endswith(errors[0])
    return errors[0]


def test_bad_input_is_a_one_line_error(stack, tmp_path, capsys):
    merged = str(stack / "merged")
    listed = pd.read_csv(stack / CR_CSV)
    base = [merged, "--output", str(tmp_path / "out"), "--cr-list"]

    def csv(name: str, frame: pd.DataFrame) -> str:
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return str(path)

    far = listed.copy()
    far.loc[2, "lon"] += 0.5
    assert "CR03" in _err(base + [csv("far.csv", far)], capsys)
    assert "outside the scene" in _err(base + [csv("far.csv", far)], capsys)
    px = pd.DataFrame({"name": ["A", "B"], "line": [50.0, 5000.0], "sample": [100.0, 100.0],
                       "reference": [1, 0]})  # fmt: skip
    assert "CR B" in _err(base + [csv("px.csv", px)], capsys)
    noref = listed.assign(reference=0)
    assert "no reference CR" in _err(base + [csv("noref.csv", noref)], capsys)
    err = _err(base + [str(stack / CR_CSV), "--reference-cr", "CR99"], capsys)
    assert "--reference-cr CR99: not in" in err
    cols = listed.drop(columns=["lat"])
    assert "missing column(s) lon, lat (or line, sample)" in _err(
        base + [csv("cols.csv", cols)], capsys
    )
    with h5py.File(stack / "truth.h5") as t:
        dates = [d.decode() for d in t["dates"][()]]
    sb = tmp_path / "sb.list"
    sb.write_text(f"{dates[0]} {dates[1]}\n{dates[2]} {dates[3]}\n")
    err = _err(base + [str(stack / CR_CSV), "--network", "sb", "--sb-list", str(sb)], capsys)
    assert "pair network not connected" in err and dates[3] in err
    assert "--network sb: pass --sb-list" in _err(base + [str(stack / CR_CSV), "--network",
                                                          "sb"], capsys)  # fmt: skip
    assert "--v-range" in _err(base + [str(stack / CR_CSV), "--v-range", "5", "-5"], capsys)

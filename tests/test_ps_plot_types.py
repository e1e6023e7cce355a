"""ps_plot's other value types: every type's numbers equal the same combination of workspace
terms computed here directly, on a hand-made PS run (test_export.make_run plus Step-7 ramps,
smoothed SCLA, TRAIN and rc2 ph_reref) and a hand-made small-baseline run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import days, ps_product, write_workspace
from matplotlib import image as mpimg
from test_export import WAVELENGTH, make_run

from stamps_python.io.products import load_product, save_product
from stamps_python.numerics.geodesy import llh2local
from stamps_python.numerics.value_types import (
    drop_one_velocities,
    matlab_limits,
    parse_value_type,
    rereference,
)
from stamps_python.parms import set_parm, write_parms
from stamps_python.plot_types import plot_values
from stamps_python.ps_plot import cli
from stamps_python.results import Reference, load_run
from stamps_python.utils import StampsError

N_PS, N_DATES, MASTER = 120, 9, 3


def _plane_removed(xy: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``f`` minus its least-squares plane a x + b y + c, column by column."""
    a = np.column_stack([xy[:, 0], xy[:, 1], np.ones(len(xy))])
    return f - a @ np.linalg.lstsq(a, f, rcond=None)[0]


def _ref(f: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    """``f`` minus the mean over the reference PS (all PS by default) per column."""
    rows = slice(None) if ref is None else ref
    return f - f[rows].mean(axis=0)


def _unit(z: np.ndarray) -> np.ndarray:
    return z / np.abs(z)


def _wrapped_ref(z: np.ndarray) -> np.ndarray:
    """ps_plot's reference of complex phase: unit phasors times the conjugate of their sum."""
    u = _unit(z)
    return np.angle(u * np.conj(u.sum(axis=0)))


def _same_angle(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(np.exp(1j * a), np.exp(1j * b), atol=2e-5)


# --------------------------------------------------------------------------------------------
# a PS run


@pytest.fixture(scope="module")
def ps_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("types") / "run"
    t = make_run(root, n_ps=N_PS, n_dates=N_DATES, master_ix=MASTER)
    rng = np.random.default_rng(3)
    xy = t["xy"]
    scla = load_product(root / "scla2.h5")
    ramp = np.column_stack([xy[:, 0], xy[:, 1], np.ones(N_PS)]) @ rng.normal(0, 1e-3, (3, N_DATES))
    ramp[:, MASTER] = 0.0
    scla["ph_ramp"] = ramp
    save_product(root / "scla2.h5", scla)
    smooth = {
        "K_ps_uw": scla["K_ps_uw"] * 0.9,
        "C_ps_uw": scla["C_ps_uw"] * 0.8,
        "ph_scla": np.asarray(scla["ph_scla"]) * 0.9,
        "ph_ramp": ramp,
    }
    aps = _plane_removed(xy, rng.normal(0, 0.7, (N_PS, N_DATES)))
    aps[:, MASTER] = 0.0
    rc = load_product(root / "rc2.h5")
    reref = np.exp(1j * rng.uniform(-np.pi, np.pi, (N_PS, N_DATES))).astype(np.complex64)
    reref[:, MASTER] = 1.0
    ifg_std = rng.uniform(10, 40, N_DATES)
    write_workspace(
        root,
        scla_smooth2=smooth,
        tca2={"ph_tropo_linear": aps},
        rc2={"ph_rc": rc["ph_rc"], "ph_reref": reref},
        ifgstd2={"ifg_std": ifg_std},
    )
    t.update(ramp=ramp, smooth=smooth, aps=aps, reref=reref, ifg_std=ifg_std, k=scla["K_ps_uw"])
    return root, t


def _values(root: Path, text: str, **kw) -> np.ndarray:
    return plot_values(load_run(root), parse_value_type(text), **kw).values


@pytest.mark.parametrize(
    ("text", "terms"),
    [
        ("w", ()),
        ("w-d", ("scla_s",)),
        ("w-o", ("ramp",)),
        ("w-do", ("scla_s", "ramp")),
        ("w-dm", ("scla_s", "c_s")),
        ("w-dmo", ("scla_s", "c_s", "ramp")),
        ("w-a", ("aps",)),
        ("w-da", ("scla_s", "aps")),
    ],
)
def test_wrapped_types(ps_run, text: str, terms: tuple) -> None:
    root, t = ps_run
    ph_rc = load_product(root / "rc2.h5")["ph_rc"].astype(np.complex128)
    term = {
        "scla_s": t["smooth"]["ph_scla"],
        "c_s": np.repeat(t["smooth"]["C_ps_uw"][:, None], N_DATES, axis=1),
        "ramp": t["ramp"],
        "aps": t["aps"],
    }
    z = ph_rc * np.exp(-1j * sum((term[k] for k in terms), np.zeros((N_PS, N_DATES))))
    if "c_s" in terms:
        z[:, MASTER] = 1.0
    _same_angle(_values(root, text), _wrapped_ref(z))


def _terms(t: dict) -> dict[str, np.ndarray]:
    c = np.repeat(t["c_ps"][:, None], N_DATES, axis=1)
    return {"d": t["ph_scla"], "m": c, "s": t["ph_scn"], "a": t["aps"]}


@pytest.mark.parametrize(
    "text",
    ["u", "u-d", "u-o", "u-do", "u-m", "u-dm", "u-dmo", "u-s", "u-dms", "u-dmos", "u-a", "u-da"]
    + ["u-dao", "u-ao", "u-so"],
)
def test_unwrapped_types(ps_run, text: str) -> None:
    root, t = ps_run
    letters = text[2:]
    ph = load_product(root / "phuw2.h5")["ph_uw"].astype(np.float64)
    for letter in "dmsa":
        if letter in letters:
            ph = ph - _terms(t)[letter]
    if "o" in letters:
        ph = _plane_removed(t["xy"], ph)
    if set(letters) & set("msa"):
        ph[:, MASTER] = 0.0
    np.testing.assert_allclose(_values(root, text), _ref(ph), atol=1e-8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("d", lambda t: t["k"][:, None]),
        ("D", lambda t: t["k"][:, None]),
        ("m", lambda t: t["c_ps"][:, None]),
        ("o", lambda t: t["ramp"]),
        ("s", lambda t: t["ph_scn"]),
        ("a", lambda t: t["aps"]),
        ("a-o", lambda t: _plane_removed(t["xy"], t["aps"])),
    ],
)
def test_single_terms(ps_run, text: str, expected) -> None:
    root, t = ps_run
    np.testing.assert_allclose(_values(root, text), _ref(expected(t)), atol=1e-10)


def test_height_is_not_referenced(ps_run) -> None:
    root, t = ps_run
    pv = plot_values(load_run(root), parse_value_type("hgt"))
    np.testing.assert_allclose(pv.values[:, 0], t["hgt"])
    assert pv.ref_ix is None and pv.units == "m" and pv.fields == ["HGT"]


def _vdrop_direct(ph: np.ndarray, t_days: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Velocity (mm/yr) without each column in turn, by weighted least squares one by one."""
    out = np.empty(ph.shape)
    for i in range(ph.shape[1]):
        keep = np.arange(ph.shape[1]) != i
        G = np.column_stack([np.ones(keep.sum()), t_days[keep]]) * np.sqrt(w[keep])[:, None]
        m = np.linalg.lstsq(G, (ph[:, keep] * np.sqrt(w[keep])).T, rcond=None)[0]
        out[:, i] = -m[1] * 365.25 / (4 * np.pi) * WAVELENGTH * 1000
    return out


@pytest.mark.parametrize("text", ["vdrop", "vdrop-d", "vdrop-o", "vdrop-do", "vdrop-dos"])
def test_vdrop_types(ps_run, text: str) -> None:
    root, t = ps_run
    letters = text[6:]
    ph = load_product(root / "phuw2.h5")["ph_uw"].astype(np.float64)
    for letter in "ds":
        if letter in letters:
            ph = ph - _terms(t)[letter]
    if "o" in letters:
        ph = _plane_removed(t["xy"], ph)
    use = np.setdiff1d(np.arange(N_DATES), [MASTER])
    w = 1.0 / np.radians(t["ifg_std"][use]) ** 2
    t_days = t["day"][use] - t["day"][MASTER]
    expected = _vdrop_direct(_ref(ph[:, use]), t_days, w)
    pv = plot_values(load_run(root), parse_value_type(text))
    np.testing.assert_allclose(pv.values, _ref(expected), atol=1e-6)
    assert pv.numbers == (use + 1).tolist() and pv.units == "mm/yr"
    # the table: RMS of the velocity without each, against that with all of them
    G = np.column_stack([np.ones(use.size), t_days]) * np.sqrt(w)[:, None]
    m = np.linalg.lstsq(G, (_ref(ph[:, use]) * np.sqrt(w)).T, rcond=None)[0]
    v_all = -m[1] * 365.25 / (4 * np.pi) * WAVELENGTH * 1000
    rms = np.sqrt((expected**2).mean(axis=0))
    np.testing.assert_allclose(pv.table["rms_velocity_mm_yr"], rms, rtol=1e-7)
    np.testing.assert_allclose(
        pv.table["delta_rms_mm_yr"], rms - np.sqrt((v_all**2).mean()), atol=1e-6
    )
    np.testing.assert_allclose(
        pv.table["rms_change_mm_yr"],
        np.sqrt(((expected - v_all[:, None]) ** 2).mean(axis=0)),
        rtol=1e-6,
    )


def test_vdrop_with_troposphere_and_ifg_list(ps_run) -> None:
    root, t = ps_run
    ph = load_product(root / "phuw2.h5")["ph_uw"] - t["ph_scla"] - t["aps"]
    ph = _plane_removed(t["xy"], ph)
    use = np.array([0, 2, 4, 5, 7])
    w = 1.0 / np.radians(t["ifg_std"][use]) ** 2
    expected = _vdrop_direct(_ref(ph[:, use]), t["day"][use] - t["day"][MASTER], w)
    pv = plot_values(load_run(root), parse_value_type("vdrop-dao"), ifg_list=[1, 3, 4, 5, 6, 8])
    np.testing.assert_allclose(pv.values, _ref(expected), atol=1e-6)
    assert pv.numbers == [1, 3, 5, 6, 8]  # the reference date (4) is never in the fit


def test_ref_ifg_and_ifg_list(ps_run) -> None:
    root, t = ps_run
    ph = _plane_removed(t["xy"], load_product(root / "phuw2.h5")["ph_uw"] - t["ph_scla"])
    shown = np.array([1, 2, 6])
    got = _values(root, "u-do", ref_ifg=3, ifg_list=[2, 3, 7])
    np.testing.assert_allclose(got, _ref(ph[:, shown] - ph[:, [2]]), atol=1e-8)
    got = _values(root, "u-do", ref_ifg=-1, ifg_list=[2, 3, 7])
    inc = ph[:, shown] - np.column_stack([ph[:, shown[:1]], ph[:, shown[:-1]]])
    np.testing.assert_allclose(got, _ref(inc), atol=1e-8)
    # wrapped: REF_IFG k multiplies by the conjugate of rc2 ph_reref of interferogram k
    ph_rc = load_product(root / "rc2.h5")["ph_rc"].astype(np.complex128)
    z = ph_rc * np.conj(t["reref"][:, [5]])
    _same_angle(_values(root, "w", ref_ifg=6, ifg_list=[2, 3, 7]), _wrapped_ref(z[:, shown]))
    z = ph_rc[:, shown]
    inc = z * np.conj(np.column_stack([z[:, :1], z[:, :-1]]))
    _same_angle(_values(root, "w", ref_ifg=-1, ifg_list=[2, 3, 7]), _wrapped_ref(inc))


def test_reference_area_and_limits(ps_run) -> None:
    root, t = ps_run
    lonlat = t["lonlat"]
    ref = Reference(ref_lon=(-np.inf, float(np.median(lonlat[:, 0]))), source="test")
    ix = np.flatnonzero(lonlat[:, 0] < np.median(lonlat[:, 0]))
    pv = plot_values(load_run(root), parse_value_type("s"), reference=ref)
    np.testing.assert_allclose(pv.values, _ref(t["ph_scn"], ix), atol=1e-10)
    np.testing.assert_array_equal(pv.ref_ix, ix)
    assert pv.lims == matlab_limits(pv.values)
    assert plot_values(load_run(root), parse_value_type("s"), lims=(-2, 3)).lims == (-2, 3)
    assert plot_values(load_run(root), parse_value_type("w-d"), lims=(-2, 3)).lims == (
        -np.pi,
        np.pi,
    )


def test_default_interferograms_follow_drop_ifg_index(tmp_path: Path) -> None:
    make_run(tmp_path, n_ps=60, n_dates=8, master_ix=2, drop_ifg_index=[6])
    pv = plot_values(load_run(tmp_path), parse_value_type("u-d"))
    assert pv.numbers == [1, 2, 3, 4, 5, 7, 8]
    assert pv.fields[0].startswith("PH_2021") and pv.titles[1].startswith("2: 2021")
    assert plot_values(load_run(tmp_path), parse_value_type("u"), ifg_list=[6]).numbers == [6]


# --------------------------------------------------------------------------------------------
# pure helpers


def test_parse_value_type() -> None:
    vt = parse_value_type("W-DMO")
    assert (vt.base, sorted(vt.letters), vt.wrapped, vt.name) == (
        "w",
        ["d", "m", "o"],
        True,
        "w-dmo",
    )
    assert parse_value_type("D").single_master and parse_value_type("D").name == "d_sm"
    assert parse_value_type("Vdrop-do").name == "vdrop-do_sm"
    assert parse_value_type("usb-dao").base == "usb" and parse_value_type("hgt").units == "m"
    for bad, text in [
        ("u-q", "unknown letter"),
        ("w-s", "unknown letter"),
        ("u-dma", "atmosphere twice"),
        ("hgt-d", "takes no letters"),
        ("x", "expected one of"),
        ("V-do", "expected one of"),
        ("u-dd", "repeated"),
    ]:
        with pytest.raises(StampsError, match=text):
            parse_value_type(bad)


def test_limits_rereference_and_drop_one() -> None:
    values = np.arange(1, 2001, dtype=float)[:, None]
    assert matlab_limits(values) == (2.0, 1998.0)  # phsort(ceil(n*.001)), phsort(round(n*.999))
    a = np.array([[1.0, 2.0, 4.0, 8.0]])
    np.testing.assert_array_equal(rereference(a, np.array([1, 3]), 0), [[2.0, 8.0]])
    np.testing.assert_array_equal(rereference(a, np.array([1, 3]), 1), [[1.0, 7.0]])
    np.testing.assert_array_equal(rereference(a, np.array([1, 2, 3]), -1), [[0.0, 2.0, 4.0]])
    rng = np.random.default_rng(1)
    t = np.array([0.0, 12.0, 24.0, 48.0, 60.0])
    ph = rng.normal(size=(7, 5))
    cov = np.diag(rng.uniform(0.5, 2, 5))
    v_drop, v_all = drop_one_velocities(ph, t, WAVELENGTH, cov)
    np.testing.assert_allclose(v_drop, _vdrop_direct(ph, t, 1 / np.diag(cov)), atol=1e-9)
    with pytest.raises(StampsError, match="time spans"):
        drop_one_velocities(ph[:, :3], np.array([12.0, 12.0, 24.0]), WAVELENGTH)


# --------------------------------------------------------------------------------------------
# a small-baseline run


def _sb_pairs(n_image: int) -> np.ndarray:
    chain = [(i, i + 1) for i in range(n_image - 1)]
    skip = [(i, i + 2) for i in range(n_image - 2)]
    return np.array(chain + skip, dtype=np.int64)


@pytest.fixture(scope="module")
def sb_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("sb_types") / "run"
    rng = np.random.default_rng(8)
    n_ps, n_image, master = 90, 7, 3
    pairs = _sb_pairs(n_image)
    n_ifg = len(pairs)
    lonlat = np.array([-120.5, 37.0]) + rng.uniform(-0.02, 0.02, (n_ps, 2))
    xy = np.round(llh2local(lonlat, np.array([-120.5, 37.0])) * 1000, 3)
    xyd = xy.astype(np.float32).astype(np.float64)
    day = days("20210105", n_image, 12.0)
    ps = ps_product(
        xy,
        day,
        master,
        rng.uniform(-100, 100, n_ifg),
        lonlat=lonlat,
        ll0=np.array([-120.5, 37.0]),
        ifgday_ix=pairs,
    )
    ph_sb = rng.normal(0, 2, (n_ps, n_ifg))
    ph_res = rng.normal(0, 2, (n_ps, n_ifg))
    scla_sb = rng.normal(0, 0.5, (n_ps, n_ifg))
    k_sb = rng.normal(0, 0.003, n_ps)
    aps_sb = rng.normal(0, 0.6, (n_ps, n_ifg))
    ramp_sb = rng.normal(0, 0.3, (n_ps, n_ifg))
    sb_cov = np.diag(rng.uniform(0.5, 2.0, n_ifg))
    sm_cov = np.diag(rng.uniform(0.5, 2.0, n_image))
    ph_sm = rng.normal(0, 2, (n_ps, n_image))
    ph_sm[:, master] = 0.0
    scla_sm = rng.normal(0, 0.5, (n_ps, n_image))
    k_sm = rng.normal(0, 0.003, n_ps)
    ph_rc = np.exp(1j * rng.uniform(-np.pi, np.pi, (n_ps, n_ifg))).astype(np.complex64)
    smooth_sb = scla_sb * 0.7
    write_parms(root, small_baseline=True, overrides={"lambda": WAVELENGTH, "drop_ifg_index": [5]})
    write_workspace(
        root,
        ps2=ps,
        pm2={"coh_ps": rng.uniform(0.5, 1, n_ps)},
        rc2={"ph_rc": ph_rc, "ph_reref": np.ones_like(ph_rc)},
        phuw_sb2={"ph_uw": ph_sb},
        phuw_sb_res2={"ph_res": ph_res, "sb_cov": sb_cov, "sm_cov": sm_cov},
        phuw2={"ph_uw": ph_sm, "unwrap_ifg_index_sm": np.arange(n_image)},
        scla_sb2={
            "ph_scla": scla_sb,
            "K_ps_uw": k_sb,
            "C_ps_uw": np.zeros(n_ps),
            "ph_ramp": ramp_sb,
        },
        scla_smooth_sb2={
            "ph_scla": smooth_sb,
            "K_ps_uw": k_sb,
            "C_ps_uw": np.zeros(n_ps),
            "ph_ramp": ramp_sb,
        },
        scla2={
            "ph_scla": scla_sm,
            "K_ps_uw": k_sm,
            "C_ps_uw": rng.normal(0, 1, n_ps),
            "ph_ramp": np.zeros((0, 0)),
        },
        scn2={"ph_scn_slave": rng.normal(0, 1, (n_ps, n_image))},
        tca_sb2={"ph_tropo_linear": aps_sb},
        hgt2={"hgt": rng.uniform(0, 100, n_ps)},
    )
    return root, {
        "xy": xyd,
        "day": day,
        "pairs": pairs,
        "ph_sb": ph_sb,
        "ph_res": ph_res,
        "scla_sb": scla_sb,
        "k_sb": k_sb,
        "aps_sb": aps_sb,
        "sb_cov": sb_cov,
        "sm_cov": sm_cov,
        "ph_sm": ph_sm,
        "scla_sm": scla_sm,
        "k_sm": k_sm,
        "ph_rc": ph_rc,
        "smooth_sb": smooth_sb,
        "master": master,
        "used_sb": np.setdiff1d(np.arange(n_ifg), [4]),
        "n_ifg": n_ifg,
    }


@pytest.mark.parametrize(
    ("text", "terms", "deramp"),
    [
        ("usb", (), False),
        ("usb-d", ("scla_sb",), False),
        ("usb-o", (), True),
        ("usb-do", ("scla_sb",), True),
        ("usb-a", ("aps_sb",), False),
        ("usb-dao", ("scla_sb", "aps_sb"), True),
    ],
)
def test_sb_unwrapped_types(sb_run, text: str, terms: tuple, deramp: bool) -> None:
    root, t = sb_run
    ph = t["ph_sb"] - sum((t[k] for k in terms), np.zeros_like(t["ph_sb"]))
    if deramp:
        ph = _plane_removed(t["xy"], ph)
    pv = plot_values(load_run(root), parse_value_type(text))
    np.testing.assert_allclose(pv.values, _ref(ph[:, t["used_sb"]]), atol=1e-8)
    assert pv.numbers == (t["used_sb"] + 1).tolist()
    assert pv.fields[0] == "PH_20210105_20210117" and pv.titles[0] == "1: 20210105-20210117"


def test_sb_residual_aps_and_dem_types(sb_run) -> None:
    root, t = sb_run
    used = t["used_sb"]
    res = t["ph_sb"] - t["ph_res"]
    np.testing.assert_allclose(_values(root, "rsb"), _ref(res[:, used]), atol=1e-8)
    full = np.zeros_like(res)
    full[:, used] = res[:, used]
    np.testing.assert_allclose(
        _values(root, "rsb-o"), _ref(_plane_removed(t["xy"], full)[:, used]), atol=1e-8
    )
    np.testing.assert_allclose(_values(root, "asb"), _ref(t["aps_sb"][:, used]), atol=1e-10)
    np.testing.assert_allclose(
        _values(root, "asb-o"), _ref(_plane_removed(t["xy"], t["aps_sb"])[:, used]), atol=1e-8
    )
    for text in ("dsb", "d"):  # lower-case 'd' of an SB run is 'dsb', as ps_plot
        np.testing.assert_allclose(_values(root, text), _ref(t["k_sb"][:, None]), atol=1e-12)
    np.testing.assert_allclose(_values(root, "D"), _ref(t["k_sm"][:, None]), atol=1e-12)
    w = _values(root, "w-d")
    _same_angle(w, _wrapped_ref((t["ph_rc"] * np.exp(-1j * t["smooth_sb"]))[:, used]))
    np.testing.assert_allclose(
        _values(root, "u-d"), _ref(t["ph_sm"] - t["scla_sm"]), atol=1e-8
    )  # single-master types use the inverted series phuw2, every solved date


def test_sb_vdrop_small_baselines_and_single_master(sb_run) -> None:
    root, t = sb_run
    used, pairs, day = t["used_sb"], t["pairs"], t["day"]
    ph = _ref(_plane_removed(t["xy"], t["ph_sb"] - t["scla_sb"])[:, used])
    spans = day[pairs[used, 1]] - day[pairs[used, 0]]
    expected = _vdrop_direct(ph, spans, 1 / np.diag(t["sb_cov"])[used])
    pv = plot_values(load_run(root), parse_value_type("vdrop-do"))
    np.testing.assert_allclose(pv.values, _ref(expected), atol=1e-6)
    assert pv.labels[0] == "20210105_20210117"
    m = t["master"]
    use = np.setdiff1d(np.arange(7), [m])
    ph = _ref(_plane_removed(t["xy"], t["ph_sm"] - t["scla_sm"])[:, use])
    expected = _vdrop_direct(ph, day[use] - day[m], 1 / np.diag(t["sm_cov"])[use])
    pv = plot_values(load_run(root), parse_value_type("Vdrop-do"))
    np.testing.assert_allclose(pv.values, _ref(expected), atol=1e-6)
    with pytest.raises(StampsError, match="no 's' term"):
        plot_values(load_run(root), parse_value_type("vdrop-dos"))


# --------------------------------------------------------------------------------------------
# the command line


def _png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 5000
    return mpimg.imread(path)


def test_cli_pngs_exports_and_table(ps_run, tmp_path: Path, capsys) -> None:
    root, t = ps_run
    args = [str(root), "--output-dir", str(tmp_path), "--export", "csv", "--value-type"]
    assert cli([*args, "w-dmo", "--value-type", "d", "--value-type", "vdrop-do"]) == 0
    out = capsys.readouterr().out.split()
    names = [Path(p).name for p in out]
    assert names == [
        "ps_plot_w-dmo.png",
        "ps_plot_w-dmo.csv",
        "ps_plot_d.png",
        "ps_plot_d.csv",
        "ps_plot_vdrop-do.png",
        "ps_plot_vdrop-do_rms.csv",
        "ps_plot_vdrop-do.csv",
    ]
    h, w = _png(tmp_path / "ps_plot_w-dmo.png").shape[:2]
    assert h > 400 and w > 400
    frame = pd.read_csv(tmp_path / "ps_plot_d.csv")
    assert list(frame.columns) == ["LON", "LAT", "CODE", "K_PS_UW"]
    np.testing.assert_allclose(frame["K_PS_UW"], _ref(t["k"][:, None])[:, 0], atol=1e-12)
    table = pd.read_csv(tmp_path / "ps_plot_vdrop-do_rms.csv", dtype={"date": str})
    assert table["ifg"].tolist() == [1, 2, 3, 5, 6, 7, 8, 9]
    assert table["date"].tolist() == [t["dates"][k - 1] for k in table["ifg"]]
    layer = pd.read_csv(tmp_path / "ps_plot_vdrop-do.csv")
    assert list(layer.columns[3:]) == [f"VDROP_{t['dates'][k - 1]}" for k in table["ifg"]]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_gpkg_options_and_velocity_plots_together(ps_run, tmp_path: Path, capsys) -> None:
    import pyogrio

    root, _ = ps_run
    args = [str(root), "--output-dir", str(tmp_path), "--value-type", "u-do", "--ifg-list"]
    assert (
        cli(
            [
                *args,
                "2-4",
                "7",
                "--ref-ifg",
                "-1",
                "--lims",
                "-4",
                "4",
                "--export",
                "gpkg",
                "--correction",
                "v-do",
                "--n-boot",
                "5",
            ]
        )
        == 0
    )
    names = [Path(p).name for p in capsys.readouterr().out.split()]
    assert names[:4] == [
        "ps_plot_v-do_velocity.png",
        "ps_plot_v-do_ts.png",
        "ps_plot_w.png",
        "ps_plot_u-dmo.png",
    ]
    assert names[4:] == ["ps_plot_u-do.png", "ps_plot_u-do.gpkg"]
    info = pyogrio.read_info(tmp_path / "ps_plot_u-do.gpkg")
    assert list(info["fields"]) == ["CODE"] + [
        f"PH_{d}" for d in ("20210117", "20210129", "20210210", "20210318")
    ]
    assert info["crs"] == "EPSG:4326" and info["layer_metadata"]["interferograms"] == "[2, 3, 4, 7]"


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--value-type", "usb"], "only in a small-baseline run"),
        (["--value-type", "u-q"], "unknown letter"),
        (["--value-type", "u", "--ifg-list", "12"], "--ifg-list 12"),
        (["--value-type", "u", "--ifg-list", "5-3"], "range A-B"),
        (["--value-type", "u", "--ref-ifg", "11"], "--ref-ifg 11"),
        (["--value-type", "u", "--lims", "3", "1"], "--lims 3 1"),
        (["--value-type", "u", "--export", "shp"], "invalid choice"),
    ],
)
def test_cli_errors_are_one_line(ps_run, capsys, args: list, text: str) -> None:
    root, _ = ps_run
    assert cli([str(root), *args]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and text in err


def test_ramps_missing_is_one_line(tmp_path: Path, capsys) -> None:
    make_run(tmp_path, n_ps=40, n_dates=6, master_ix=2)
    scla = load_product(tmp_path / "scla2.h5")
    save_product(tmp_path / "scla2.h5", {**scla, "ph_ramp": np.zeros((0, 0))})
    assert cli([str(tmp_path), "--value-type", "w-o"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scla_deramp" in err
    assert cli([str(tmp_path), "--value-type", "a"]) == 1
    assert "tca2" in capsys.readouterr().err
    set_parm(tmp_path, "plot_color_scheme", "deflation")
    assert cli([str(tmp_path), "--value-type", "m", "--output-dir", str(tmp_path / "p")]) == 0
    assert _png(tmp_path / "p" / "ps_plot_m.png").shape[0] > 300

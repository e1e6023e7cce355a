"""Step 4 (ps_weed) and the Delaunay arcs: known answers on small hand-built patches."""

from __future__ import annotations

import itertools
from pathlib import Path

import h5py
import numpy as np
import pytest
from factories import days, ps_product, write_workspace
from scipy.spatial import ConvexHull, Delaunay

from stamps_python.io.products import load_product, save_product
from stamps_python.numerics.triangulation import delaunay_edges
from stamps_python.steps import ps_weed
from stamps_python.utils import StampsError

# ---------------------------------------------------------------- triangulation


def _brute_force_delaunay_edges(xy: np.ndarray) -> np.ndarray:
    """Edges of all triangles whose circumcircle holds no other point (general position)."""
    edges = set()
    n = len(xy)
    for a, b, c in itertools.combinations(range(n), 3):
        pa, pb, pc = xy[a], xy[b], xy[c]
        det = 2 * (pa[0] * (pb[1] - pc[1]) + pb[0] * (pc[1] - pa[1]) + pc[0] * (pa[1] - pb[1]))
        if abs(det) < 1e-12:
            continue
        sa, sb, sc = pa @ pa, pb @ pb, pc @ pc
        ux = (sa * (pb[1] - pc[1]) + sb * (pc[1] - pa[1]) + sc * (pa[1] - pb[1])) / det
        uy = (sa * (pc[0] - pb[0]) + sb * (pa[0] - pc[0]) + sc * (pb[0] - pa[0])) / det
        r2 = (pa[0] - ux) ** 2 + (pa[1] - uy) ** 2
        others = np.delete(np.arange(n), [a, b, c])
        d2 = (xy[others, 0] - ux) ** 2 + (xy[others, 1] - uy) ** 2
        if np.all(d2 > r2 * (1 + 1e-9)):
            edges.update({(a, b), (a, c), (b, c)})
    return np.array(sorted(edges), dtype=np.int64)


def test_delaunay_edges_match_empty_circumcircle_construction():
    rng = np.random.default_rng(11)
    xy = rng.uniform(0, 1000, size=(25, 2))
    got = delaunay_edges(xy)
    want = _brute_force_delaunay_edges(xy)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.int64
    assert np.all(got[:, 0] < got[:, 1])


def test_delaunay_edges_square_with_centre_and_degenerate_sets():
    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [5.0, 5.0]])
    want = [[0, 1], [0, 3], [0, 4], [1, 2], [1, 4], [2, 3], [2, 4], [3, 4]]
    np.testing.assert_array_equal(delaunay_edges(square), want)
    np.testing.assert_array_equal(delaunay_edges(np.array([[0.0, 0.0], [3.0, 4.0]])), [[0, 1]])
    line = np.array([[0.0, 0.0], [20.0, 0.0], [10.0, 0.0], [30.0, 0.0]])
    np.testing.assert_array_equal(delaunay_edges(line), [[0, 2], [1, 2], [1, 3]])
    assert delaunay_edges(np.zeros((1, 2))).shape == (0, 2)


# ---------------------------------------------------------------- adjacency / duplicates


def _matlab_adjacent_weed(ij: np.ndarray, coh: np.ndarray) -> np.ndarray:
    """Literal loop transcription of ps_weed's neighbour matrix and group selection."""
    n = len(ij)
    shift = ij - ij.min(axis=0) + 1
    grid = np.full(tuple(shift.max(axis=0) + 2), -1)
    for i in range(n):
        r, c = shift[i]
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                if (dr or dc) and grid[r + dr, c + dc] < 0:
                    grid[r + dr, c + dc] = i
    lists = [[] for _ in range(n)]
    for i in range(n):
        owner = grid[shift[i, 0], shift[i, 1]]
        if owner >= 0:
            lists[owner].append(i)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if lists[i]:
            same = [i]
            k = 0
            while k < len(same):
                p = same[k]
                same.extend(lists[p])
                lists[p] = []
                k += 1
            same = np.unique(same)
            best = same[np.argmax(coh[same])]
            keep[same[same != best]] = False
    return keep


def test_adjacent_weed_keeps_better_of_two_neighbours():
    ij = np.array([[10, 10], [10, 11], [30, 30], [50, 50], [51, 51]])
    coh = np.array([0.6, 0.9, 0.5, 0.95, 0.7])
    np.testing.assert_array_equal(
        ps_weed.adjacent_weed_mask(ij, coh), [False, True, True, True, False]
    )


def test_adjacent_weed_equals_literal_stamps_loop_on_clusters():
    rng = np.random.default_rng(5)
    for trial in range(20):
        cells = rng.choice(12 * 12, size=50, replace=False)
        ij = np.column_stack((cells // 12, cells % 12)) + 100
        coh = np.round(rng.uniform(0.3, 1.0, 50), 1)  # ties resolved like MATLAB max
        np.testing.assert_array_equal(
            ps_weed.adjacent_weed_mask(ij, coh), _matlab_adjacent_weed(ij, coh), err_msg=str(trial)
        )


def test_duplicate_xy_keeps_highest_coherence_first_on_ties():
    xy = np.array([[1.0, 2.0], [5.0, 5.0], [1.0, 2.0], [7.0, 1.0], [1.0, 2.0], [7.0, 1.0]])
    coh = np.array([0.5, 0.4, 0.8, 0.6, 0.8, 0.6])
    np.testing.assert_array_equal(
        ps_weed.duplicate_weed_mask(xy, coh), [False, True, True, True, False, False]
    )


# ---------------------------------------------------------------- arc noise


def _matlab_arc_noise(dph, day, bperp, time_win):
    """Per-epoch loop transcription of ps_weed's PS arc-noise estimate."""
    n_edge, n_use = dph.shape
    smooth = np.zeros_like(dph)
    smooth2 = np.zeros_like(dph)
    for i1 in range(n_use):
        td = day[i1] - day
        w = np.exp(-(td**2) / 2 / time_win**2)
        w = w / w.sum()
        mean = dph @ w
        adj = np.angle(dph * np.conj(mean)[:, None])
        g = np.column_stack((np.ones(n_use), td)) * np.sqrt(w)[:, None]
        m = np.linalg.lstsq(g, (adj * np.sqrt(w)).T, rcond=None)[0]
        adj = np.angle(np.exp(1j * (adj - (np.column_stack((np.ones(n_use), td)) @ m).T)))
        m2 = np.linalg.lstsq(g, (adj * np.sqrt(w)).T, rcond=None)[0]
        smooth[:, i1] = mean * np.exp(1j * (m[0] + m2[0]))
        w[i1] = 0
        smooth2[:, i1] = dph @ w
    noise = np.angle(dph * np.conj(smooth))
    noise2 = np.angle(dph * np.conj(smooth2))
    wt = 1 / np.var(noise2, axis=0, ddof=1)
    k = (noise @ (wt * bperp)) / np.sum(wt * bperp**2)
    noise = noise - k[:, None] * bperp
    return noise.std(axis=1, ddof=1), np.abs(noise).max(axis=1)


def test_arc_noise_equals_per_epoch_loop():
    rng = np.random.default_rng(3)
    day = np.sort(rng.choice(np.arange(738000, 739000, 6), 15, replace=False)).astype(float)
    bperp = rng.uniform(-150, 150, 15)
    phase = rng.normal(0, 0.6, (300, 15)) + 0.002 * bperp + np.linspace(0, 3, 15)
    dph = np.exp(1j * phase)
    got_std, got_max = ps_weed.arc_noise(dph, day, bperp, 120.0)
    want_std, want_max = _matlab_arc_noise(dph, day, bperp, 120.0)
    np.testing.assert_allclose(got_std, want_std, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_max, want_max, rtol=1e-10, atol=1e-12)


def test_arc_noise_of_linear_motion_is_zero():
    day = 738000.0 + 12.0 * np.arange(20)
    bperp = np.linspace(-100, 120, 20)[np.random.default_rng(0).permutation(20)]
    signal = 0.01 * (day - day[0])
    edge_std, edge_max = ps_weed.arc_noise(
        np.exp(1j * signal)[None, :].repeat(3, 0), day, bperp, 730.0
    )
    assert np.all(edge_std < 1e-6) and np.all(edge_max < 1e-6)


def test_ps_noise_is_minimum_over_arcs():
    edges = np.array([[0, 1], [1, 2], [0, 2], [2, 3]])
    ps_std, ps_max = ps_weed.ps_noise_from_arcs(
        edges, np.array([0.5, 0.2, 0.9, 1.5]), np.array([2.0, 1.0, 3.0, 2.5]), 5
    )
    np.testing.assert_allclose(ps_std, [0.5, 0.2, 0.2, 1.5, np.inf])
    np.testing.assert_allclose(ps_max, [2.0, 1.0, 1.0, 2.5, np.inf])
    assert ps_std.dtype == np.float32


# ---------------------------------------------------------------- whole step


def _make_patch(tmp: Path, noisy: int = 17, n: int = 60, seed: int = 1) -> dict:
    """A patch with n candidates (all kept by Step 3 except the last two), one noisy PS."""
    rng = np.random.default_rng(seed)
    n_ifg, master_ix = 16, 7
    day = days(738000.0, n_ifg, 12.0)
    bperp = rng.uniform(-120, 120, n_ifg)
    bperp[master_ix] = 0.0
    cells = rng.choice(40 * 40, size=n, replace=False)
    ij = np.column_stack((np.arange(1, n + 1), 100 + 3 * (cells // 40), 200 + 3 * (cells % 40)))
    xy = np.column_stack((ij[:, 0], 20.0 * ij[:, 2], 4.0 * ij[:, 1])).astype(np.float32)
    lonlat = np.column_stack((10 + xy[:, 1] / 1e5, 45 + xy[:, 2] / 1e5))
    k_ps = rng.normal(0, 0.003, n)
    defo = 0.004 * (day - day[0])[None, :] * (xy[:, 1:2] / 800.0)
    phase = defo + k_ps[:, None] * bperp[None, :] + rng.normal(0, 0.25, (n, n_ifg))
    phase[noisy] = rng.uniform(-np.pi, np.pi, n_ifg)
    phase[:, master_ix] = 0.0
    ph = (rng.uniform(0.5, 2.0, (n, 1)) * np.exp(1j * phase)).astype(np.complex64)
    hgt = rng.uniform(10, 100, n)
    bperp_mat = np.repeat(np.delete(bperp, master_ix)[None, :], n, 0).astype(np.float32)
    ph_patch = np.exp(1j * rng.uniform(-1, 1, (n, n_ifg - 1))).astype(np.complex64)
    keep = np.ones(n, dtype=bool)
    keep[-2:] = False
    coh = rng.uniform(0.5, 0.95, n)
    ps = ps_product(
        xy[:, 1:], day, master_ix, bperp, ij=ij, lonlat=lonlat, ll0=np.array([10.0, 45.0])
    )
    write_workspace(
        tmp,
        ps1=ps | {"sort_ix": np.arange(n)},
        ph1={"ph": ph},
        hgt1={"hgt": hgt},
        la1={"la": np.full(n, 0.6)},
        bp1={"bperp_mat": bperp_mat},
        pm1={"ph_patch": ph_patch},
        select1={
            "ix": np.arange(n),
            "keep_ix": keep,
            "K_ps2": k_ps,
            "C_ps2": rng.normal(0, 0.1, n),
            "coh_ps2": coh,
            "ph_res2": rng.normal(0, 0.2, (n, n_ifg - 1)).astype(np.float32),
            "ph_patch2": ph_patch,
        },
    )
    return {"n": n, "hgt": hgt, "ij": ij, "xy": xy, "coh": coh, "ph": ph, "noisy": noisy}


PARMS = {
    "small_baseline_flag": "n",
    "weed_time_win": 730,
    "weed_standard_dev": 1.0,
    "weed_max_noise": "inf",
    "weed_zero_elevation": "n",
    "weed_neighbours": "n",
    "drop_ifg_index": [],
}


def test_run_drops_injected_noisy_ps_only_and_writes_stage2(tmp_path):
    info = _make_patch(tmp_path)
    for stale in ("scla2.h5", "scla_smooth2.h5", "aps2.h5"):
        save_product(tmp_path / stale, {"x": 1})
    out = ps_weed.run(tmp_path, PARMS)
    assert out == tmp_path / "weed1.h5"
    weed = load_product(out)
    n_sel = info["n"] - 2
    assert weed["ix_weed"].shape == (n_sel,)
    expected = np.ones(n_sel, dtype=bool)
    expected[info["noisy"]] = False
    np.testing.assert_array_equal(weed["ix_weed"], expected)
    assert weed["ps_std"][info["noisy"]] > 1.0
    assert np.max(np.delete(weed["ps_std"], info["noisy"])) < 0.7
    np.testing.assert_array_equal(weed["ifg_index"], np.arange(16))

    ps2 = load_product(tmp_path / "ps2.h5")
    kept = np.nonzero(expected)[0]
    np.testing.assert_array_equal(ps2["ij"], info["ij"][kept])
    np.testing.assert_array_equal(ps2["xy"], info["xy"][kept])
    assert ps2["n_ps"] == n_sel - 1 and "sort_ix" not in ps2 and ps2["master_ix"] == 7
    np.testing.assert_array_equal(load_product(tmp_path / "ph2.h5")["ph"], info["ph"][kept])
    np.testing.assert_array_equal(load_product(tmp_path / "hgt2.h5")["hgt"], info["hgt"][kept])
    pm2 = load_product(tmp_path / "pm2.h5")
    np.testing.assert_array_equal(pm2["coh_ps"], info["coh"][kept])
    assert pm2["ph_patch"].shape == (n_sel - 1, 15) and pm2["ph_res"].shape == (n_sel - 1, 15)
    assert load_product(tmp_path / "bp2.h5")["bperp_mat"].shape == (n_sel - 1, 15)
    assert load_product(tmp_path / "la2.h5")["la"].shape == (n_sel - 1,)
    assert not (tmp_path / "inc2.h5").exists()
    assert not any((tmp_path / s).exists() for s in ("scla2.h5", "scla_smooth2.h5", "aps2.h5"))


def test_run_neighbours_zero_elevation_duplicates_and_drop_ifg(tmp_path):
    info = _make_patch(tmp_path, noisy=40)
    with h5py.File(tmp_path / "ps1.h5", "r+") as f:
        ij = f["ij"][()]
        ij[5, 1:] = ij[4, 1:] + [0, 1]  # 5 touches 4
        f["ij"][...] = ij
        xy = f["xy"][()]
        xy[12, 1:] = xy[11, 1:]  # 11 and 12 share x/y
        f["xy"][...] = xy
    with h5py.File(tmp_path / "select1.h5", "r+") as f:
        coh = f["coh_ps2"][()]
        coh[[4, 5, 11, 12]] = [0.7, 0.8, 0.9, 0.6]
        f["coh_ps2"][...] = coh
    with h5py.File(tmp_path / "hgt1.h5", "r+") as f:
        hgt = f["hgt"][()]
        hgt[20] = 0.0
        f["hgt"][...] = hgt
    parms = dict(PARMS, weed_neighbours="y", weed_zero_elevation="y", drop_ifg_index=[3, 9])
    weed = load_product(ps_weed.run(tmp_path, parms))
    dropped = set(np.nonzero(~weed["ix_weed"])[0].tolist())
    assert dropped == {4, 12, 20, 40}
    np.testing.assert_array_equal(weed["ifg_index"], np.delete(np.arange(16), [2, 8]))
    assert weed["ix_weed2"].size == info["n"] - 2 - 3


def test_run_is_bit_identical_on_rerun(tmp_path):
    _make_patch(tmp_path)
    ps_weed.run(tmp_path, PARMS)
    a = load_product(tmp_path / "weed1.h5")
    b_pm = load_product(tmp_path / "pm2.h5")
    ps_weed.run(tmp_path, PARMS)
    b = load_product(tmp_path / "weed1.h5")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    for key, value in load_product(tmp_path / "pm2.h5").items():
        np.testing.assert_array_equal(value, b_pm[key])


def test_run_without_noise_weeding_and_bad_drop_index(tmp_path):
    _make_patch(tmp_path)
    weed = load_product(ps_weed.run(tmp_path, dict(PARMS, weed_standard_dev=np.inf)))
    assert weed["ix_weed"].all() and np.all(weed["ps_std"] == 0)
    with pytest.raises(StampsError, match="drop_ifg_index"):
        ps_weed.run(tmp_path, dict(PARMS, drop_ifg_index=[0]))


def test_small_baseline_arc_noise_removes_look_angle_error_only():
    rng = np.random.default_rng(8)
    bperp = rng.uniform(-200, 200, 25)
    day = 738000.0 + 12.0 * np.arange(25)
    k = np.array([0.003, -0.002, 0.0])
    dph = np.exp(1j * k[:, None] * bperp[None, :])
    edge_std, edge_max = ps_weed.arc_noise(dph, day, bperp, 730.0, small_baseline=True)
    assert np.all(edge_std < 1e-9) and np.all(edge_max < 1e-9)
    noisy = dph * np.exp(1j * rng.normal(0, 0.5, (3, 25)))
    edge_std, _ = ps_weed.arc_noise(noisy, day, bperp, 730.0, small_baseline=True)
    assert np.all((edge_std > 0.3) & (edge_std < 0.7))


def test_run_small_baseline_mode_skips_neighbours_and_still_drops_noisy(tmp_path):
    info = _make_patch(tmp_path)
    with h5py.File(tmp_path / "ps1.h5", "r+") as f:
        ij = f["ij"][()]
        ij[5, 1:] = ij[4, 1:] + [1, 1]
        f["ij"][...] = ij
    parms = dict(PARMS, small_baseline_flag="y", weed_neighbours="y")
    weed = load_product(ps_weed.run(tmp_path, parms))
    assert set(np.nonzero(~weed["ix_weed"])[0].tolist()) == {info["noisy"]}


def test_delaunay_edges_are_those_of_the_triangles_covering_the_hull():
    rng = np.random.default_rng(12)
    xy = rng.uniform(0, 100, (40, 2))
    tri = Delaunay(xy).simplices
    a, b, c = xy[tri[:, 0]], xy[tri[:, 1]], xy[tri[:, 2]]
    area = 0.5 * np.abs(
        (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    )
    assert area.sum() == pytest.approx(ConvexHull(xy).volume)
    edges = np.unique(
        np.sort(np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]]), axis=1), axis=0
    )
    np.testing.assert_array_equal(edges, delaunay_edges(xy))

"""Step 5: ps_correct_phase, ps_merge_patches and ps_calc_ifg_std on hand-made patches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from factories import ps_product, write_workspace

from stamps_python.io.products import load_product, save_product
from stamps_python.parms import default_parms
from stamps_python.steps import ps_calc_ifg_std, ps_correct_phase, ps_merge_patches
from stamps_python.utils import StampsError, datenum

DATES = ["20210101", "20210113", "20210125", "20210206", "20210218"]
MASTER_IX = 2
N_IFG = len(DATES)


def _lonlat(az: np.ndarray, rg: np.ndarray) -> np.ndarray:
    """A descending-pass-like grid: 14 m lines, 3.7 m samples around (-120.5, 37)."""
    lat = 37.0 - az * 14.0 / 111_000.0
    lon = -120.5 - rg * 3.7 / (111_000.0 * np.cos(np.radians(37.0)))
    return np.column_stack([lon, lat])


def _make_patch(
    run: Path,
    name: str,
    rg_win: tuple[int, int],
    rg_core: tuple[int, int],
    tag: float,
    rng: np.random.Generator,
) -> dict:
    """Patch with PS every 3rd sample of lines 0..29 in columns rg_win (1-based inclusive)."""
    pdir = run / name
    pdir.mkdir(parents=True)
    (pdir / "patch_noover.in").write_text(f"{rg_core[0]}\n{rg_core[1]}\n1\n30\n")
    az, rg = np.meshgrid(np.arange(0, 30, 3), np.arange(rg_win[0] - 1, rg_win[1], 3), indexing="ij")
    az, rg = az.ravel(), rg.ravel()
    n = len(az)
    bperp = np.array([-50.0, 20.0, 0.0, 35.0, -10.0])
    K = np.full(n, tag * 1e-3)
    C = np.full(n, tag * 0.1)
    ph_patch = np.exp(1j * rng.uniform(-np.pi, np.pi, (n, N_IFG - 1))).astype(np.complex64)
    noise = rng.normal(0, 0.05, (n, N_IFG - 1))
    bp = np.repeat(np.delete(bperp, MASTER_IX)[None, :], n, 0).astype(np.float32)
    ph_sec = ph_patch * np.exp(1j * (K[:, None] * bp + C[:, None] + noise))
    ph = np.insert(ph_sec, MASTER_IX, 1.0, axis=1).astype(np.complex64) * 2.0  # amplitude 2
    ps = ps_product(
        np.column_stack([rg * 3.7, az * 14.0]),
        np.array([datenum(d) for d in DATES], dtype=float),
        MASTER_IX,
        bperp,
        ij=np.column_stack([np.arange(1, n + 1), az, rg]),
        lonlat=_lonlat(az, rg),
    )
    assert ps["dates"] == DATES
    write_workspace(
        pdir,
        ps2=ps,
        ph2={"ph": ph},
        pm2={
            "ph_patch": ph_patch,
            "ph_res": noise.astype(np.float32),
            "K_ps": K,
            "C_ps": C,
            "coh_ps": np.full(n, 0.5 + tag / 10),
        },
        bp2={"bperp_mat": bp},
        hgt2={"hgt": np.full(n, 100.0 * tag)},
        la2={"la": np.full(n, 0.6)},
    )
    return {"az": az, "rg": rg, "K": K, "C": C, "ph": ph, "ph_patch": ph_patch, "bp": bp}


@pytest.fixture()
def two_patches(tmp_path: Path) -> tuple[Path, dict, dict]:
    rng = np.random.default_rng(3)
    run = tmp_path / "run"
    p1 = _make_patch(run, "PATCH_1", (1, 90), (1, 60), 1.0, rng)
    p2 = _make_patch(run, "PATCH_2", (31, 120), (61, 120), 2.0, rng)
    (run / "patch.list").write_text("PATCH_1\nPATCH_2\n")
    return run, p1, p2


def test_correct_phase_removes_look_angle_error_and_master_noise(two_patches):
    run, p1, _ = two_patches
    parms = default_parms()
    ps_correct_phase.run(run / "PATCH_1", parms)
    rc = load_product(run / "PATCH_1" / "rc2.h5")
    expected = p1["ph"] * np.exp(
        -1j * (p1["K"][:, None] * np.insert(p1["bp"], MASTER_IX, 0, 1) + p1["C"][:, None])
    )
    np.testing.assert_allclose(rc["ph_rc"], expected, atol=1e-5)
    np.testing.assert_array_equal(rc["ph_reref"][:, MASTER_IX], 1)
    np.testing.assert_allclose(np.delete(rc["ph_reref"], MASTER_IX, 1), p1["ph_patch"], atol=1e-6)


def test_merge_keeps_each_pixel_once_and_core_values_win(two_patches):
    run, p1, p2 = two_patches
    parms = default_parms()
    parms["heading"] = -168.0
    for name in ("PATCH_1", "PATCH_2"):
        ps_correct_phase.run(run / name, parms)
    ps_merge_patches.run(run, parms)
    ps = load_product(run / "ps2.h5")
    pm = load_product(run / "pm2.h5")
    hgt = load_product(run / "hgt2.h5")["hgt"]
    keys = list(zip(ps["ij"][:, 1].tolist(), ps["ij"][:, 2].tolist()))
    union = set(zip(p1["az"].tolist(), p1["rg"].tolist())) | set(
        zip(p2["az"].tolist(), p2["rg"].tolist())
    )
    assert len(keys) == len(set(keys)) == len(union) == ps["n_ps"]
    rg = ps["ij"][:, 2]
    # a pixel takes the values of the patch whose core holds it (core: 1-based columns)
    np.testing.assert_allclose(pm["K_ps"][rg <= 59], 1e-3)
    np.testing.assert_allclose(pm["K_ps"][rg >= 60], 2e-3)
    np.testing.assert_allclose(hgt[rg >= 60], 200.0)
    np.testing.assert_array_equal(ps["ij"][:, 0], np.arange(1, ps["n_ps"] + 1))
    assert np.all(np.diff(ps["xy"][:, 2]) >= 0)  # sorted by y
    rc = load_product(run / "rc2.h5")
    np.testing.assert_allclose(np.abs(rc["ph_rc"]), 1, atol=1e-6)  # normalised
    assert ps["dates"] == DATES and ps["master_ix"] == MASTER_IX

    ps_calc_ifg_std.run(run, parms)
    std = load_product(run / "ifgstd2.h5")["ifg_std"]
    assert std.shape == (N_IFG,)
    # residual = injected 0.05 rad noise (2.9 deg) on secondaries; the master column holds -C_ps
    assert np.all(np.abs(np.delete(std, MASTER_IX) - np.degrees(0.05)) < 0.6)


def test_merge_drops_duplicate_lonlat_keeping_highest_coherence(two_patches):
    run, p1, p2 = two_patches
    parms = default_parms()
    # give one PS of patch 2 (in its core) the lon/lat of a PS of patch 1's core
    ps2 = load_product(run / "PATCH_2" / "ps2.h5")
    ps1 = load_product(run / "PATCH_1" / "ps2.h5")
    i2 = int(np.flatnonzero(ps2["ij"][:, 2] >= 90)[0])
    ps2["lonlat"][i2] = ps1["lonlat"][0]
    save_product(run / "PATCH_2" / "ps2.h5", ps2)
    for name in ("PATCH_1", "PATCH_2"):
        ps_correct_phase.run(run / name, parms)
    m = ps_merge_patches.merge_patches(run, parms)
    lonlat = m["ps"]["lonlat"]
    assert len(np.unique(lonlat, axis=0)) == len(lonlat)
    i = np.flatnonzero(np.all(lonlat == ps1["lonlat"][0], axis=1))
    assert len(i) == 1 and m["coh_ps"][i[0]] == pytest.approx(0.7)  # patch 2's (0.7 > 0.6)


def test_merge_resampled_to_grid(two_patches):
    run, p1, p2 = two_patches
    parms = default_parms()
    parms["merge_resample_size"] = 100.0
    for name in ("PATCH_1", "PATCH_2"):
        ps_correct_phase.run(run / name, parms)
    m = ps_merge_patches.merge_patches(run, parms)
    n = m["ps"]["n_ps"]
    # 30 lines x 14 m = 420 m by 120 samples x 3.7 m = 444 m: about 5 x 5 cells of 100 m
    assert 16 <= n <= 40
    assert np.all(np.isfinite(m["K_ps"])) and np.all((m["coh_ps"] > 0) & (m["coh_ps"] <= 1))
    assert set(np.round(m["K_ps"], 6)) <= {1e-3, 2e-3}


def test_missing_step4_products_say_which_step(tmp_path):
    (tmp_path / "PATCH_1").mkdir()
    with pytest.raises(StampsError, match=r"ps2.h5: not found; run Step 4 first"):
        ps_correct_phase.run(tmp_path / "PATCH_1", default_parms())
    with pytest.raises(StampsError, match=r"run Step 5 first"):
        ps_calc_ifg_std.run(tmp_path, default_parms())


def test_resample_cells_aligned_to_one_metre_as_stamps():
    """StaMPS' min(ps.xy(ix,:), 1) is an element-wise minimum: cells start at x, y = 1 m, not at
    the patch's smallest coordinate."""
    x = np.array([0.5, 1.5, 100.5, 101.5])
    xy = np.column_stack([np.arange(1, 5), x, np.full(4, 50.0)])
    cells = ps_merge_patches.resample_cells(xy, 100.0)
    assert cells.tolist() == [0, 1, 1, 2]
    # shifting every PS by a whole number of cells shifts nothing else
    xy2 = xy.copy()
    xy2[:, 1] += 300.0
    assert ps_merge_patches.resample_cells(xy2, 100.0).tolist() == [0, 1, 1, 2]


def _h5_tree(run: Path) -> dict:
    import h5py

    out = {}
    for path in sorted(run.glob("*.h5")):
        with h5py.File(path) as f:
            for k in f:
                out[(path.name, k)] = (f[k][()], f[k].dtype, f[k].chunks, dict(f[k].attrs))
    return out


@pytest.mark.parametrize("grid", [0.0, 100.0])
def test_merge_tiny_row_blocks_write_identical_products(two_patches, monkeypatch, grid):
    run, _, _ = two_patches
    parms = default_parms()
    parms["merge_resample_size"] = grid
    for name in ("PATCH_1", "PATCH_2"):
        ps_correct_phase.run(run / name, parms)
    ps_merge_patches.run(run, parms)
    big = _h5_tree(run)
    monkeypatch.setattr(ps_merge_patches, "BLOCK_BYTES", 1)  # one row per block
    ps_merge_patches.run(run, parms)
    small = _h5_tree(run)
    assert big.keys() == small.keys() and ("ph2.h5", "ph") in big
    for key, (v, dtype, chunks, attrs) in big.items():
        w, dtype2, chunks2, attrs2 = small[key]
        assert dtype == dtype2 and chunks == chunks2 and attrs == attrs2, key
        assert np.array_equal(v, w, equal_nan=v.dtype.kind in "fc"), key


def test_merge_failure_leaves_no_product_and_no_temp_file(two_patches, monkeypatch):
    run, _, _ = two_patches
    parms = default_parms()
    for name in ("PATCH_1", "PATCH_2"):
        ps_correct_phase.run(run / name, parms)
    rows = ps_merge_patches.merged_rows

    def failing(plan, key, scratch_dir):
        if key == "ph_patch":
            raise RuntimeError("killed mid-merge")
        yield from rows(plan, key, scratch_dir)

    monkeypatch.setattr(ps_merge_patches, "merged_rows", failing)
    with pytest.raises(RuntimeError, match="mid-merge"):
        ps_merge_patches.run(run, parms)
    assert [p.name for p in run.iterdir() if p.is_file() or p.name.startswith(".")] == [
        "patch.list"
    ]

"""snaphu as Step 6 runs it: executable lookup, cost files, real unwrapping, errors, golden run."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from stamps_python.io import snaphu
from stamps_python.io.products import load_product
from stamps_python.io.snaphu import uw_stat_costs
from stamps_python.numerics.unwrap_costs import MAXSHORT, cost_setup, ifg_costs
from stamps_python.numerics.unwrap_interp import uw_interp
from stamps_python.utils import StampsError

LAMBDA = 0.05546576  # m, the golden run's wavelength


def neutral_costs(nrow: int, ncol: int, sigsq: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Cost records with no offset, one variance everywhere and no cost shelf."""
    rowcost = np.zeros((nrow - 1, ncol, 4), np.int16)
    colcost = np.zeros((nrow, ncol - 1, 4), np.int16)
    for cost in (rowcost, colcost):
        cost[..., 1] = sigsq
        cost[..., 2] = MAXSHORT
        cost[..., 3] = -MAXSHORT
    return rowcost, colcost


def test_snaphu_unwraps_a_ramp(tmp_path: Path) -> None:
    ii, jj = np.mgrid[0:24, 0:31]
    ramp = 2 * np.pi * (0.3 * jj - 0.22 * ii) + 0.4  # ~12 cycles across, 0.3 cycle per cell
    runner = snaphu.Snaphu(tmp_path, snaphu.find_snaphu())
    out = runner.unwrap(np.exp(1j * ramp), *neutral_costs(24, 31))
    assert out.shape == (24, 31) and out.dtype == np.float32
    offset = out - ramp
    k = np.round(offset[0, 0] / 2 / np.pi)
    np.testing.assert_allclose(offset, 2 * np.pi * k, atol=1e-4)
    assert (tmp_path / "snaphu.conf").read_text().split() == [
        "INFILE",
        "snaphu.in",
        "OUTFILE",
        "snaphu.out",
        "COSTINFILE",
        "snaphu.costinfile",
        "STATCOSTMODE",
        "DEFO",
        "INFILEFORMAT",
        "COMPLEX_DATA",
        "OUTFILEFORMAT",
        "FLOAT_DATA",
    ]


def test_cost_file_layout(tmp_path: Path) -> None:
    rowcost, colcost = neutral_costs(3, 4)
    rowcost[0, 0] = [-7, 11, 12, 13]
    colcost[2, 2] = [5, 6, 7, 8]
    path = tmp_path / "c"
    snaphu.write_cost_file(path, rowcost, colcost)
    raw = np.fromfile(path, dtype="<i2")
    assert raw.size == (2 * 4 + 3 * 3) * 4
    assert raw[:4].tolist() == [-7, 11, 12, 13]  # first row arc first
    assert raw[-4:].tolist() == [5, 6, 7, 8]  # last column arc last
    data = np.fromfile(path, dtype="<i2")  # read back: row arcs, then column arcs
    r2, c2 = data[: 2 * 4 * 4].reshape(2, 4, 4), data[2 * 4 * 4 :].reshape(3, 3, 4)
    np.testing.assert_array_equal(r2, rowcost)
    np.testing.assert_array_equal(c2, colcost)
    with pytest.raises(ValueError):
        snaphu.write_cost_file(path, colcost, rowcost)


def _block_case(predicted: bool) -> tuple[np.ndarray, dict, dict, dict]:
    """A ramp with a 6x8 block raised by exactly one cycle: invisible in the wrapped phase."""
    nrow, ncol = 16, 20
    ii, jj = np.mgrid[0:nrow, 0:ncol]
    block = (ii >= 5) & (ii < 11) & (jj >= 6) & (jj < 14)
    true = 2 * np.pi * (0.15 * jj - 0.1 * ii + block)
    nzix = np.ones((nrow, ncol), bool)
    nz_j, nz_i = np.nonzero(nzix.T)
    node_phase = true[nz_i, nz_j]
    ui = uw_interp(nzix)
    e = ui["edgs"][:, 1:]
    d_true = node_phase[e[:, 1]] - node_phase[e[:, 0]]
    noise = np.random.default_rng(1).normal(0, 0.3, (len(e), 4))
    dsu = (d_true if predicted else np.angle(np.exp(1j * d_true)))[:, None] + noise
    ug = {
        "ph": np.exp(1j * node_phase)[:, None].astype(np.complex64),
        "nzix": nzix,
        "pix_size": 100.0,
    }
    ut = {"dph_space_uw": dsu, "dph_noise": noise, "spread": np.zeros((len(e), 4))}
    return true, ug, ui, ut


@pytest.mark.parametrize("predicted", [False, True])
def test_costs_steer_snaphu(tmp_path: Path, predicted: bool) -> None:
    true, ug, ui, ut = _block_case(predicted)
    res = uw_stat_costs("3D", ug, ui, ut, tmp_path, subset_ifg_index=[0], progress=False)
    assert not list(tmp_path.iterdir())  # the temporary snaphu folder is gone
    nz_j, nz_i = np.nonzero(ug["nzix"].T)
    grid = np.zeros(ug["nzix"].shape)
    grid[nz_i, nz_j] = res["ph_uw"][:, 0]
    cycles = np.round((grid - true) / 2 / np.pi)
    cycles -= cycles[0, 0]
    block = np.zeros_like(cycles, dtype=bool)
    block[5:11, 6:14] = True
    if predicted:  # the cost offsets carry the step: snaphu puts it back
        assert np.all(cycles == 0)
    else:  # no offsets: the smoothest solution, without the block
        assert np.all(cycles[block] == -1) and np.all(cycles[~block] == 0)
    assert res["msd"][0] > 0


def test_cost_values_follow_stamps_int16_arithmetic() -> None:
    nzix = np.ones((2, 3), bool)
    ui = uw_interp(nzix)  # nodes 0..5 column-major: (0,0), (1,0), (0,1), (1,1), (0,2), (1,2)
    n_edge = ui["n_edge"]
    assert n_edge == 7
    noise = np.zeros((n_edge, 3))
    noise[:, 1] = 0.5  # std over time of [0, 0.5, 0] = 0.2887 rad
    noise[2, 0] = np.nan  # edge 3 has no statistics
    dsu = np.full((n_edge, 3), 0.5)
    dsu[0, 0] = 0.5 + 2 * np.pi * 3.25  # edge 1 predicted 3 cycles off its wrapped value
    spread = np.zeros((n_edge, 3))
    spread[1, 0] = 1e3  # saturates
    setup = cost_setup(
        "3D",
        {"nzix": nzix, "pix_size": 100.0},
        ui,
        {"dph_space_uw": dsu, "dph_noise": noise, "spread": spread},
    )
    sigsq = np.round((np.std([0, 0.5, 0], ddof=1) / 2 / np.pi) ** 2 * 200**2 / 100)
    assert setup["sigsq"][0] == sigsq == 1
    rowcost, colcost = ifg_costs(setup, 0)
    assert rowcost.shape == (1, 3, 4) and colcost.shape == (2, 2, 4)
    edges = ui["edgs"][:, 1:].tolist()
    # column arc (0,0)-(0,1) is nodes 0-2; row arc (0,0)-(1,0) is nodes 0-1 = edge 1
    assert edges[0] == [0, 1] and edges[1] == [0, 2]
    # offset: (wrapped - predicted) / 2pi * 200 = (0.5 + pi/2 - (0.5 + 6.5 pi)) / 2pi * 200 = -600,
    # negated for row arcs, as StaMPS writes it
    assert rowcost[0, 0, 0] == 600
    assert rowcost[0, 0, 1] == 1 and colcost[0, 0, 1] == 32767  # saturated spread
    assert rowcost[0, 0, 2] == MAXSHORT and rowcost[0, 0, 3] == -MAXSHORT
    third = tuple(edges[2])
    arcs = [(0, j) for j in range(3) if {2 * j, 2 * j + 1} == set(third)]
    arcs_col = [
        (i, j) for i in range(2) for j in range(2) if {2 * j + i, 2 * j + 2 + i} == set(third)
    ]
    for i, j in arcs:
        assert rowcost[i, j, 3] == 1 and rowcost[i, j, 0] == 0  # no statistics: cost shelf 1
    for i, j in arcs_col:
        assert colcost[i, j, 3] == 1 and colcost[i, j, 0] == 0
    assert len(arcs) + len(arcs_col) == 1


def test_missing_snaphu_names_snaphu_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAPHU_BIN", str(tmp_path / "nowhere" / "snaphu"))
    with pytest.raises(StampsError) as err:
        snaphu.find_snaphu()
    assert "SNAPHU_BIN" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(StampsError, match="SNAPHU_BIN"):
        snaphu.Snaphu(tmp_path / "work")


def _fake_snaphu(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_failing_snaphu_quotes_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_snaphu(
        tmp_path / "snaphu_bad",
        "echo 'snaphu v2.0.7'\necho 'Reading wrapped phase' \n"
        "echo 'ERROR: cost file size mismatch' >&2\nexit 3\n",
    )
    monkeypatch.setenv("SNAPHU_BIN", str(fake))
    runner = snaphu.Snaphu(tmp_path / "w")
    with pytest.raises(StampsError) as err:
        runner.unwrap(np.ones((4, 5), np.complex64), *neutral_costs(4, 5), label="interferogram 7")
    msg = str(err.value)
    assert "interferogram 7" in msg and "exit code 3" in msg
    assert "ERROR: cost file size mismatch" in msg and "\n" not in msg
    silent = _fake_snaphu(tmp_path / "snaphu_silent", "echo done\nexit 0\n")
    with pytest.raises(StampsError, match="output has 0 bytes, expected 80"):
        snaphu.Snaphu(tmp_path / "w2", silent).unwrap(
            np.ones((4, 5), np.complex64), *neutral_costs(4, 5)
        )


def _stamps_displacement(plain: Path) -> tuple[np.ndarray, np.ndarray]:
    """(AZ, RG) and D* fields (mm) of StaMPS' ps_vdo export (the decompressed GeoPackage)."""
    con = sqlite3.connect(plain)
    cols = [r[1] for r in con.execute("pragma table_info(stamps_octave)")]
    dcols = [c for c in cols if c.startswith("D20")]
    rows = np.array(
        con.execute(f"select AZ, RG, {', '.join(dcols)} from stamps_octave").fetchall(), dtype=float
    )
    con.close()
    return rows[:, :2].astype(int), rows[:, 2:]


def test_golden_unwrapping_matches_stamps(
    golden_steps1to5: Path,
    golden_chain: dict[str, Path],
    golden_gpkg: dict[str, Path],
    tmp_path: Path,
) -> None:
    """Step 6 on the golden stack after Steps 1-5: StaMPS' grid-size error with the default
    unwrap_grid_size, then (the session's chain, 55 m as the golden run) StaMPS' cycles."""
    from stamps_python.parms import load_parms
    from stamps_python.steps import ps_unwrap

    run = tmp_path / "run"
    shutil.copytree(golden_steps1to5, run)
    parms = load_parms(run)
    with pytest.raises(
        StampsError,
        match=r"\(8 pixels\) is less than prefilter window size "
        r"\(32\)",
    ):
        ps_unwrap.run(run, parms, progress=False)
    uw = load_product(golden_chain["run"] / "phuw2.h5")["ph_uw"].astype(float)
    ps = load_product(golden_chain["run"] / "ps2.h5", ["ij", "xy"])
    az_rg, disp = _stamps_displacement(golden_gpkg["ps_vdo"])
    where = {(a, r): k for k, (a, r) in enumerate(az_rg.tolist())}
    match = np.array([where.get((a, r), -1) for a, r in ps["ij"][:, 1:].tolist()])
    ok = match >= 0
    # StaMPS' D = -lambda/4pi (ph_uw - smooth Step-7 terms - mean): ours minus StaMPS' phase is
    # smooth in space unless a PS was unwrapped to a different cycle
    diff = uw[ok] + 4 * np.pi / LAMBDA * disp[match[ok]] / 1000
    _, nb = cKDTree(ps["xy"][ok, 1:]).query(ps["xy"][ok, 1:], k=15)
    cycles = np.round((diff - np.median(diff[nb], axis=1)) / 2 / np.pi)
    print(
        f"Step 6: {ok.mean():.5f} of our PS are StaMPS PS; {np.count_nonzero(cycles)} of "
        f"{cycles.size} phases on another cycle than StaMPS'"
    )
    assert ok.mean() >= 0.998  # measured 1.0 (6081 of our 6081 PS)
    assert np.count_nonzero(cycles) <= 6  # measured 2 of 145 944 (1.4e-5)

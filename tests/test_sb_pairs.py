"""define_sb_pairs and the SB network functions: hand-computed pair selections, limits, errors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stamps_python.define_sb_pairs import define_pairs
from stamps_python.io.sb_list import read_sb_list, write_sb_list
from stamps_python.numerics.sb_network import (
    check_connected,
    coherence_model,
    network_components,
    sb_design_matrix,
    sb_find_pairs,
)
from stamps_python.utils import StampsError, datenum

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "stamps_python" / "define_sb_pairs.py"

# Seven dates (days after 20210101) and baselines (m) whose pair coherences are worked out by
# hand below with ddiff_max = bdiff_max = 100: rho = (1 - |dB|/100) (1 - |dt|/100).
OFFSETS = [0, 10, 20, 30, 60, 70, 90]
DATES = ["20210101", "20210111", "20210121", "20210131", "20210302", "20210312", "20210401"]
BPERP = [0.0, 10.0, 60.0, 0.0, 5.0, -40.0, 0.0]
DAYS = np.array([datenum(d) for d in DATES], dtype=float)
HAND = {"ddiff_max": 100.0, "bdiff_max": 100.0, "rho_min": 0.5}
NO_LIMIT = {"max_temporal": 1000.0, "max_perpendicular": 1000.0}


def pairs_of(arr: np.ndarray) -> list[tuple[int, int]]:
    return [tuple(map(int, r)) for r in arr]


def test_days_match_offsets():
    assert (DAYS - DAYS[0]).tolist() == OFFSETS


def test_coherence_model_hand_values():
    rho = coherence_model(DAYS, BPERP, 100.0, 100.0)
    assert rho[0, 1] == pytest.approx(0.81)
    assert rho[1, 3] == pytest.approx(0.72)
    assert rho[4, 5] == pytest.approx(0.495)
    assert rho[2, 5] == 0.0  # |dB| = bdiff_max exactly
    assert np.all(np.diag(rho) == 0) and np.allclose(rho, rho.T)
    # both beyond the limits: the product of two negative factors is zeroed, not positive
    far = coherence_model([0.0, 200.0], [0.0, 300.0], 100.0, 100.0)
    assert far[0, 1] == 0.0


def test_sb_find_hand_computed():
    # rho > 0.5: (0,1) .81, (0,3) .70, (1,3) .72, (3,4) .665, (4,6) .665.
    # best partners: 2 -> 1 (.45), 5 -> 4 (.495); 4 has a tie 3/6 (.665, both 30 days) -> 3.
    pairs = sb_find_pairs(DAYS, BPERP, **NO_LIMIT, **HAND)
    assert pairs_of(pairs) == [(0, 1), (0, 3), (1, 2), (1, 3), (3, 4), (4, 5), (4, 6)]
    assert pairs.dtype == np.int64


def test_stamps_defaults_consecutive_only():
    # 400-day steps, zero baseline: rho(400 d) = 0.733 > 0.5, rho(800 d) = 0.467 < 0.5
    days = np.array([0.0, 400.0, 800.0, 1200.0]) + 738000
    pairs = sb_find_pairs(days, np.zeros(4), 5000.0, 5000.0)
    assert pairs_of(pairs) == [(0, 1), (1, 2), (2, 3)]


def test_hard_limits_respected_and_inclusive():
    # |dt| <= 25 days: only (0,1) and (1,3) have rho > 0.5; best partners add (1,2), (4,5), (5,6)
    pairs = sb_find_pairs(DAYS, BPERP, 25.0, 1000.0, **HAND)
    assert pairs_of(pairs) == [(0, 1), (1, 2), (1, 3), (4, 5), (5, 6)]
    # the limit is inclusive: at 30 days (0,3), (3,4), (4,6) come back -> the unlimited answer
    pairs30 = sb_find_pairs(DAYS, BPERP, 30.0, 1000.0, **HAND)
    assert pairs_of(pairs30) == pairs_of(sb_find_pairs(DAYS, BPERP, **NO_LIMIT, **HAND))
    for max_t, max_b in ((25.0, 1000.0), (1000.0, 45.0), (40.0, 12.0)):
        p = sb_find_pairs(DAYS, BPERP, max_t, max_b, **HAND)
        dt = DAYS[p[:, 1]] - DAYS[p[:, 0]]
        db = np.abs(np.asarray(BPERP)[p[:, 1]] - np.asarray(BPERP)[p[:, 0]])
        assert np.all(dt > 0) and dt.max() <= max_t and db.max() <= max_b


def test_best_partner_rule_below_rho_min():
    # with rho_min above every coherence only the best partners remain
    pairs = sb_find_pairs(DAYS, BPERP, **NO_LIMIT, ddiff_max=100.0, bdiff_max=100.0, rho_min=0.99)
    assert pairs_of(pairs) == [(0, 1), (1, 2), (1, 3), (3, 4), (4, 5), (4, 6)]


def test_min_connections_adds_next_best_partners():
    pairs = sb_find_pairs(DAYS, BPERP, **NO_LIMIT, **HAND, min_connections=3)
    # 0 gets 4 (.38); 2 gets 3 (.36), 0 (.32); 5 gets 6 (.48), 3 (.36); 6 gets 3 (.40)
    assert pairs_of(pairs) == [
        (0, 1),
        (0, 2),
        (0, 3),
        (0, 4),
        (1, 2),
        (1, 3),
        (2, 3),
        (3, 4),
        (3, 5),
        (3, 6),
        (4, 5),
        (4, 6),
        (5, 6),
    ]
    assert np.bincount(pairs.ravel(), minlength=7).min() >= 3


def test_min_connections_short_date_is_warned(caplog, monkeypatch):
    # within 30 days 20210401 has only two partners (20210302, 20210312)
    monkeypatch.setattr(logging.getLogger("stamps"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="stamps"):
        pairs = sb_find_pairs(DAYS, BPERP, 30.0, 1000.0, **HAND, min_connections=3, dates=DATES)
    deg = np.bincount(pairs.ravel(), minlength=7)
    assert deg[6] == 2
    assert "20210401 (2)" in caplog.text
    assert "20210101" not in caplog.text  # 0 has three partners within 30 days


def test_disconnected_names_isolated_dates():
    pairs = sb_find_pairs(DAYS, BPERP, 25.0, 1000.0, **HAND)
    comps = network_components(7, pairs)
    assert [c.tolist() for c in comps] == [[0, 1, 2, 3], [4, 5, 6]]
    with pytest.raises(
        StampsError,
        match=r"^small baseline network is disconnected: 20210302, "
        r"20210312, 20210401 are not connected to 20210131 \(increase ",
    ):
        check_connected(DATES, pairs, reference_index=3)
    with pytest.raises(
        StampsError,
        match=r": 20210101, 20210111, 20210121, 20210131 are not "
        r"connected to 20210302",
    ):
        check_connected(DATES, pairs, reference_index=4)
    # no reference: the largest component is the network
    with pytest.raises(
        StampsError,
        match=r": 20210302, 20210312, 20210401 are not connected to "
        r"the other 4 dates \(20210101..20210131\)",
    ):
        check_connected(DATES, pairs)
    # |dB| <= 45 m: 20210121 (60 m off everything) has no eligible partner at all
    pairs45 = sb_find_pairs(DAYS, BPERP, 1000.0, 45.0, **HAND)
    assert 2 not in pairs45
    with pytest.raises(StampsError, match=r": 20210121 is not connected to 20210131"):
        check_connected(DATES, pairs45, reference_index=3)
    check_connected(DATES, sb_find_pairs(DAYS, BPERP, **NO_LIMIT, **HAND), reference_index=3)


def test_bad_arguments():
    with pytest.raises(StampsError, match="--max-temporal"):
        sb_find_pairs(DAYS, BPERP, 0.0, 10.0)
    with pytest.raises(StampsError, match="--max-perpendicular"):
        sb_find_pairs(DAYS, BPERP, 10.0, -1.0)
    with pytest.raises(StampsError, match="--min-connections"):
        sb_find_pairs(DAYS, BPERP, 10.0, 10.0, min_connections=0)
    with pytest.raises(StampsError, match="same date"):
        sb_find_pairs([1.0, 1.0, 2.0], [0.0, 1.0, 2.0], 10.0, 10.0)


def test_design_matrix():
    G = sb_design_matrix(np.array([[0, 1], [1, 2], [0, 2]]), 3, 1)
    assert G.tolist() == [[-1, 0, 0], [0, 0, 1], [-1, 0, 1]]
    with pytest.raises(StampsError, match="itself"):
        sb_design_matrix(np.array([[1, 1]]), 3, 0)
    with pytest.raises(StampsError, match="0..2"):
        sb_design_matrix(np.array([[0, 3]]), 3, 0)


def test_list_round_trip(tmp_path):
    pairs = [("20210101", "20210111"), ("20210101", "20210131"), ("20210302", "20210401")]
    path = write_sb_list(tmp_path / "small_baselines.list", pairs)
    assert path.read_text() == "20210101 20210111\n20210101 20210131\n20210302 20210401\n"
    assert read_sb_list(path) == pairs


@pytest.mark.parametrize(
    "text, line, what",
    [
        ("20210101 20210111\n20210101\n", 2, "expected two dates"),
        ("20210101 20210111 20210121\n", 1, "expected two dates"),
        ("20210101 20210111\n\n20210231 20210301\n", 3, "not a date"),
        ("20210111 20210101\n", 1, "20210111 is not earlier than 20210101"),
        ("20210111 20210111\n", 1, "not earlier"),
        ("20210101 20210111\n20210101 20210121\n20210101 20210111\n", 3, "repeats line 1"),
    ],
)
def test_list_malformed(tmp_path, text, line, what):
    path = tmp_path / "small_baselines.list"
    path.write_text(text)
    with pytest.raises(StampsError, match=rf"small_baselines.list, line {line}: .*{what}"):
        read_sb_list(path)


def test_list_empty_or_missing(tmp_path):
    (tmp_path / "a.list").write_text("\n\n")
    with pytest.raises(StampsError, match="holds no pairs"):
        read_sb_list(tmp_path / "a.list")
    with pytest.raises(StampsError, match="not found"):
        read_sb_list(tmp_path / "b.list")


# ------------------------------------------------------------------------------ CLI


def write_run(run: Path, dates=DATES, bperp=BPERP, reference="20210131") -> Path:
    run.mkdir(parents=True, exist_ok=True)
    meta = {
        "dates": list(dates),
        "reference_date": reference,
        "bperp": dict(zip(dates, bperp)),
        "processor": "isce",
    }
    (run / "metadata.json").write_text(json.dumps(meta))
    return run


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False
    )


def test_cli_run_dir_writes_list_and_plot(tmp_path):
    run = write_run(tmp_path / "run")
    res = cli(run, "--max-temporal", "30", "--max-perpendicular", "1000")
    assert res.returncode == 0, res.stderr
    # StaMPS defaults (1500 d, 1070 m): every pair within 30 days has rho > 0.5
    assert (run / "small_baselines.list").read_text().split("\n") == [
        "20210101 20210111",
        "20210101 20210121",
        "20210101 20210131",
        "20210111 20210121",
        "20210111 20210131",
        "20210121 20210131",
        "20210131 20210302",
        "20210302 20210312",
        "20210302 20210401",
        "20210312 20210401",
        "",
    ]
    png = (run / "small_baselines.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert "10 pairs; connections per date 2..4; longest temporal baseline 30 days" in res.stderr
    assert not list(run.glob(".*tmp*"))


def test_cli_disconnected_one_line_error(tmp_path):
    run = write_run(tmp_path / "run")
    res = cli(run, "--max-temporal", "25", "--max-perpendicular", "1000", "--no-plot")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines()[-1] == (
        "error: small baseline network is disconnected: 20210302, 20210312, 20210401 are not "
        "connected to 20210131 (increase --max-temporal or --max-perpendicular)"
    )
    assert sorted(p.name for p in run.iterdir()) == ["metadata.json"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max-temporal", "0", "--max-perpendicular", "10"], "--max-temporal: 0.0"),
        (["--max-temporal", "10", "--max-perpendicular", "-5"], "--max-perpendicular: -5.0"),
    ],
)
def test_cli_bad_limits(tmp_path, args, message):
    run = write_run(tmp_path / "run")
    res = cli(run, *args)
    assert res.returncode == 1
    assert res.stderr.strip() == f"error: {message} must be greater than 0"
    assert sorted(p.name for p in run.iterdir()) == ["metadata.json"]


def test_bad_inputs(tmp_path):
    with pytest.raises(StampsError, match="nowhere: not found"):
        define_pairs(tmp_path / "nowhere", 10, 10)
    (tmp_path / "empty").mkdir()
    with pytest.raises(StampsError, match="no metadata.json"):
        define_pairs(tmp_path / "empty", 10, 10)
    few = write_run(tmp_path / "few", DATES[:2], BPERP[:2], "20210101")
    with pytest.raises(StampsError, match="2 dates; a small-baseline network needs at least 3"):
        define_pairs(few, 100, 100)
    run = write_run(tmp_path / "run")
    with pytest.raises(StampsError, match="reference date 20990101: not one of the 7 dates"):
        define_pairs(run, 100, 100, reference_date="20990101")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metadata.json").write_text(json.dumps({"dates": DATES, "reference_date": DATES[0]}))
    with pytest.raises(StampsError, match="has no bperp"):
        define_pairs(bad, 100, 100)


def test_define_pairs_output_dir_and_reference(tmp_path):
    run = write_run(tmp_path / "run")
    out = define_pairs(run, 30, 1000, output=tmp_path / "elsewhere", plot=False)
    assert out["list_path"] == tmp_path / "elsewhere" / "small_baselines.list"
    assert out["plot_path"] is None
    assert not (tmp_path / "elsewhere" / "small_baselines.png").exists()
    assert read_sb_list(out["list_path"]) == out["pairs"] and len(out["pairs"]) == 10
    assert out["pair_index"].tolist()[6] == [3, 4]
    assert sorted(p.name for p in run.iterdir()) == ["metadata.json"]
    # the reference date decides which side of a split network is named
    with pytest.raises(
        StampsError,
        match=r": 20210101, 20210111, 20210121, 20210131 are not "
        r"connected to 20210312",
    ):
        define_pairs(run, 25, 1000, reference_date="20210312")


def test_cli_merged_stack(tmp_path):
    from stamps_python.io import isce
    from stamps_python.synthetic import generate_stack

    generate_stack(
        tmp_path / "stack", profile="easy", rows=24, cols=48, n_dates=8, seed=0, progress=False
    )
    merged = tmp_path / "stack" / "merged"
    res = cli(merged, "--max-temporal", "400", "--max-perpendicular", "150")
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f"error: {merged} is an ISCE2 merged/ folder: --output (the "
        f"directory for small_baselines.list) is required"
    )
    res = cli(
        merged,
        "--output",
        tmp_path / "run",
        "--max-temporal",
        "400",
        "--max-perpendicular",
        "150",
        "--min-connections",
        "2",
    )
    assert res.returncode == 0, res.stderr
    stack = isce.open_stack(merged)
    bperp = isce.read_bperp(stack, "20220909")  # the reference the baselines/ folders name
    dates = stack.dates
    # StaMPS defaults give rho > 0.6 for every pair within 400 days and 150 m: all are kept
    expected = [
        (a, b)
        for k, a in enumerate(dates)
        for b in dates[k + 1 :]
        if datenum(b) - datenum(a) <= 400 and abs(bperp[b] - bperp[a]) <= 150
    ]
    got = read_sb_list(tmp_path / "run" / "small_baselines.list")
    assert got == expected
    assert ("20220217", "20221226") not in got  # 312 days but 158 m
    assert ("20210105", "20220217") not in got  # 53 m but 408 days
    assert (tmp_path / "run" / "small_baselines.png").is_file()
    assert "reference 20220909" in res.stderr

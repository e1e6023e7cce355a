"""esd_misreg: TOPS azimuth misregistration from topsStack ESD folders (weighted fit, w-test,
network), the misreg files topsStack reads, one-line errors, and the burst-seam check of a PS
run on a synthetic stack with one misregistered date."""

from __future__ import annotations

import datetime as _dt
import glob
import json
import os
from pathlib import Path

import numpy as np
import pytest

from stamps_python.esd.seam_check import SeamOptions, seam_check
from stamps_python.esd_misreg import esd_misreg, main
from stamps_python.numerics.esd import (
    data_snooping,
    fit_azimuth_polynomial,
    invert_network,
    network_design,
)
from stamps_python.synthetic.esd_folders import BurstGeometry, GroundMotion, write_esd_folders
from stamps_python.synthetic.misreg import MisregHook, check_azimuth_misreg
from stamps_python.utils import StampsError, run_cli, setup_logging

D0, D1 = "20210101", "20210113"


@pytest.fixture(autouse=True)
def _console_log_on_the_session_stream():
    """main() leaves the console handler on the stream of the test's capsys; rebind it."""
    yield
    setup_logging(None)


def _dates(n: int) -> list[str]:
    start = _dt.date(2021, 1, 1)
    return [(start + _dt.timedelta(days=12 * k)).strftime("%Y%m%d") for k in range(n)]


# ------------------------------------------------------------------ ESD on simulated folders


def test_shift_recovered_with_one_overlap_displaced_where_the_median_fails(tmp_path, capsys):
    """0.002 px, overlap 4 moved 0.02 px by ground motion and holding many coherent points."""
    frac = {(1, k): 0.25 for k in range(1, 9)}
    frac[(1, 4)] = 0.7
    write_esd_folders(
        tmp_path, [D0, D1], {D1: 0.002}, coherent_fraction=frac, seed=2,
        ground_motion=[GroundMotion(1, 4, D1, 0.02)],
    )  # fmt: skip
    res = esd_misreg(tmp_path)
    pair = res.pairs[0]
    ours = res.date_shift()[D1]
    with capsys.disabled():
        print(
            f"\nESD truth 0.002 px: esd_misreg {ours:+.5f} px (error {ours - 0.002:+.5f}), "
            f"topsStack median {pair.median_topsstack:+.5f} px "
            f"(error {pair.median_topsstack - 0.002:+.5f})"
        )
    assert abs(ours - 0.002) < 0.0002
    assert abs(pair.median_topsstack - 0.002) > 0.001
    flagged = [r.number for r in pair.overlaps if r.flagged]
    assert flagged == [4]
    assert "ground motion" in pair.overlaps[3].reason
    rdir = tmp_path / "esd_misreg"
    for name in ("report.json", "overlaps.csv", "pairs.csv", "dates.csv", "date_shifts.png",
                 "overlap_phase_histogram.png", f"overlaps_{D0}_{D1}.png"):  # fmt: skip
        assert (rdir / name).is_file(), name
    report = json.loads((rdir / "report.json").read_text())
    assert report["pairs"][f"{D0}_{D1}"]["swaths"]["IW1"]["flagged_overlaps"].keys() == {"04"}
    ph = report["overlap_phase"]
    assert ph["mean_abs_after_deg"] < ph["mean_abs_before_deg"]


def test_w_test_false_alarm_rate_is_the_significance_level():
    """Clean overlaps (pure numerics, 8 overlaps, linear trend fitted with degree 1): the share
    of w statistics beyond the critical value is alpha; iterated snooping, which rejects only
    the largest and refits, flags a little less."""
    rng = np.random.default_rng(5)
    t = np.arange(8) * 2.758
    A = np.column_stack([np.ones_like(t), t])
    for alpha in (0.05, 0.01):
        n_sim, beyond, flagged = 3000, 0, 0
        for _ in range(n_sim):
            sig = rng.uniform(0.0002, 0.001, t.size)
            v = 0.002 + 1e-4 * t + sig * rng.standard_normal(t.size)
            single = data_snooping(A, v, sig, alpha, max_removed=0)
            beyond += int(np.sum(np.abs(single.w) > single.critical))
            fit = fit_azimuth_polynomial(t, v, sig, degree=1, alpha=alpha)
            flagged += int((~fit.snoop.active).sum())
        rate, snooped = beyond / (n_sim * t.size), flagged / (n_sim * t.size)
        print(f"alpha {alpha}: w-test false alarms {rate:.4f}, iterated snooping {snooped:.4f}")
        assert abs(rate - alpha) < 0.12 * alpha
        assert 0.7 * alpha < snooped <= 1.05 * alpha


def test_network_flags_a_disagreeing_pair_and_equals_least_squares():
    rng = np.random.default_rng(3)
    dates = _dates(7)
    truth = dict(zip(dates, np.r_[0.0, rng.normal(0, 0.003, 6)], strict=True))
    pairs = [(dates[i], dates[j]) for i in range(7) for j in range(i + 1, min(i + 4, 7))]
    sig = rng.uniform(1e-4, 3e-4, len(pairs))
    val = np.array([truth[b] - truth[a] for a, b in pairs]) + sig * rng.standard_normal(len(pairs))
    clean = invert_network(dates, pairs, val, sig, dates[0])
    A = network_design(dates, pairs, dates[0])
    x = np.linalg.lstsq(A / sig[:, None], val / sig, rcond=None)[0]
    assert np.allclose(clean.shift[1:], x, atol=1e-12) and clean.snoop.active.all()
    bad = val.copy()
    bad[5] += 0.01
    net = invert_network(dates, pairs, bad, sig, dates[0])
    assert np.flatnonzero(~net.snoop.active).tolist() == [5]
    assert np.max(np.abs(net.shift - [truth[d] for d in dates])) < 5e-4


def _read_invert_misreg(pairs_dir: Path) -> tuple[list[str], np.ndarray]:
    """invertMisreg.py's rules: glob('*/*.txt'), dates from the file name split at '_', the
    first line split at ':' into key and value, 'median'; first date 0, pinv of the
    day-difference design, cumulative sum."""
    files = glob.glob(os.path.join(str(pairs_dir), "*/*.txt"))
    names = [os.path.basename(f).replace(".txt", "") for f in files]
    date_list = sorted({d for n in names for d in n.split("_")})
    day = [(_dt.datetime.strptime(d, "%Y%m%d") - _dt.datetime.strptime(date_list[0], "%Y%m%d")).days
           for d in date_list]  # fmt: skip
    B = np.zeros((len(files), len(date_list)))
    L = np.zeros(len(files))
    for i, (f, n) in enumerate(zip(files, names, strict=True)):
        a, b = (date_list.index(d) for d in n.split("_"))
        B[i, a:b] = np.diff(day)[a:b]
        with open(f) as fh:
            c = fh.readline().split(":")
        assert c[0].strip() == "median"
        L[i] = float(c[1].replace("\n", "").strip())
    dS = np.linalg.pinv(B[:, :-1]) @ L
    return date_list, np.concatenate([[0.0], np.cumsum(dS * np.diff(day))])


def test_misreg_files_read_back_as_invert_misreg_and_inversion_is_least_squares(tmp_path):
    dates = _dates(6)
    truth = dict(zip(dates, [0.0, 0.0015, -0.001, 0.0025, 0.0005, -0.002], strict=True))
    geom = BurstGeometry(n_bursts=5)
    info = write_esd_folders(tmp_path, dates, truth, geometry=geom, seed=4)
    first = info["pairs"][0]
    old = tmp_path / "misreg" / "azimuth" / "pairs" / first / f"{first}.txt"
    old.parent.mkdir(parents=True)
    old.write_text("median : 0.1\nmean : 0.1\n")  # topsStack's own, kept aside
    res = esd_misreg(tmp_path, plots=False)
    assert (old.parent / f"{first}.txt.topsstack").read_text().startswith("median : 0.1")
    pairs_dir = tmp_path / "misreg" / "azimuth" / "pairs"
    date_list, s_inv = _read_invert_misreg(pairs_dir)
    assert date_list == dates
    # invertMisreg's pseudo-inverse on our files = the direct unweighted least squares
    used = [p for p in res.pairs]
    A = network_design(dates, [(p.reference, p.secondary) for p in used], dates[0])
    x = np.linalg.lstsq(A, [p.shift for p in used], rcond=None)[0]
    assert np.allclose(s_inv[1:], x, atol=1e-6)
    # our per-date inversion = the direct weighted least squares
    sig = np.array([p.sigma for p in used])
    xw = np.linalg.lstsq(A / sig[:, None], np.array([p.shift for p in used]) / sig, rcond=None)[0]
    assert not any(p.flagged for p in used)
    assert np.allclose(res.network.shift[1:], xw, atol=1e-12)
    for k, d in enumerate(dates):
        with open(tmp_path / "misreg" / "azimuth" / "dates" / f"{d}.txt") as fh:
            value = float(fh.readline())  # as geo2rdr.py / resamp_withCarrier.py read it
        assert value == pytest.approx(res.network.shift[k], abs=1e-15)
        assert abs(value - truth[d]) < 2e-4


# ---------------------------------------------------------------------------- one-line errors


def _one_line_error(capsys, argv) -> str:
    assert run_cli(main, argv) == 1
    err = capsys.readouterr().err.strip().splitlines()  # the log lines come first
    assert [e for e in err if e.startswith("error: ")] == err[-1:]
    return err[-1]


def test_errors_no_esd_folder_missing_overlaps_disconnected(tmp_path, capsys):
    assert "no ESD folder" in _one_line_error(capsys, [str(tmp_path)])
    geom = BurstGeometry(n_bursts=4)
    dates = _dates(4)
    w1 = tmp_path / "w1"
    write_esd_folders(w1, dates, {}, geometry=geom, n_connections=1)
    victim = w1 / "ESD" / f"{dates[1]}_{dates[2]}" / "IW1"
    for f in victim.glob("overlap_02.*"):
        f.unlink()
    msg = _one_line_error(capsys, [str(w1), "--no-plots"])
    assert "missing for 1 of 3 pairs" in msg and f"{dates[1]}_{dates[2]} (IW1:02)" in msg
    w2 = tmp_path / "w2"
    split = [(dates[0], dates[1]), (dates[2], dates[3])]
    write_esd_folders(w2, dates, {}, geometry=geom, pairs=split)
    msg = _one_line_error(capsys, [str(w2), "--no-plots"])
    assert "disconnected" in msg and f"{dates[0]} {dates[1]} | {dates[2]} {dates[3]}" in msg


def test_no_coherent_point_in_an_overlap_is_a_warning_and_the_others_are_used(tmp_path, capsys):
    geom = BurstGeometry(n_bursts=5)
    write_esd_folders(tmp_path, [D0, D1], {D1: 0.001}, geometry=geom)
    cor = tmp_path / "ESD" / f"{D0}_{D1}" / "IW1" / "overlap_03.5alks_15rlks.cor"
    cor.write_bytes(bytes(cor.stat().st_size))
    assert run_cli(main, [str(tmp_path), "--no-plots"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {D0}_{D1}/IW1/overlap_03: no coherent point (coherence > 0.85)" in err
    dates = (tmp_path / "esd_misreg" / "dates.csv").read_text().splitlines()
    assert abs(float(dates[2].split(",")[1]) - 0.001) < 2e-4


def test_generator_misreg_option_checks():
    dates = _dates(4)
    with pytest.raises(StampsError, match="reference date"):
        check_azimuth_misreg({dates[1]: 0.003}, dates, dates[1])
    with pytest.raises(StampsError, match="not an acquisition date"):
        check_azimuth_misreg({"20200101": 0.003}, dates, dates[1])
    with pytest.raises(StampsError, match="within"):
        check_azimuth_misreg({dates[2]: 0.3}, dates, dates[1])
    assert check_azimuth_misreg(None, dates, dates[1]) == {}
    assert check_azimuth_misreg({dates[2]: 0.003}, dates, dates[1]) == {2: 0.003}


# ------------------------------------------------------------------ seam check of a PS run

SEAM_SHIFT = 0.003
# 2 bursts of 1350 lines (a Sentinel-1 burst cycle: 4.4 kHz across the seam, 56 rad per pixel)
STACK = dict(profile="calm_seam", rows=2700, cols=80, n_dates=6, seed=7, progress=False,
             truth_cube="no", bowl_centre=(0.1, 0.5), strat_std=0.0)  # fmt: skip


@pytest.fixture(scope="module")
def seam_runs(tmp_path_factory):
    """A clean and a misregistered stack, Steps 1-5 on each. The scene is calm and PS-rich:
    with the easy profile's turbulent atmosphere (0.1-0.3 rad) one 80-column seam is off by
    up to 0.006 px (see docs/esd.md), which only a wide swath with many seams averages out."""
    from dataclasses import replace

    from stamps_python.pipeline import run_steps
    from stamps_python.prep.prepare import prepare
    from stamps_python.synthetic import generate_stack
    from stamps_python.synthetic.profiles import PROFILES

    calm = replace(
        PROFILES["easy"], name="calm_seam", atm_std_rad=(0.002, 0.004), seasonal_amp_mm=0.3,
        ramp_std_rad=0.05, ps_fraction=0.08, ps_da=(0.05, 0.12),
    )  # fmt: skip
    base = tmp_path_factory.mktemp("seam")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PROFILES, "calm_seam", calm)
        clean = generate_stack(base / "clean", **STACK)
        date = [d for d in clean["dates"] if d != clean["reference_date"]][1]
        generate_stack(base / "shifted", **STACK, azimuth_misreg={date: SEAM_SHIFT})
    for name in ("clean", "shifted"):
        prepare(base / name / "merged", base / f"run_{name}", bootstrap_metadata=True)
        run_steps(base / f"run_{name}", 1, 5)
    return base, date, clean


def test_generator_misregisters_only_the_chosen_date_by_the_burst_phase(seam_runs):
    base, date, clean = seam_runs
    for d in clean["dates"]:
        a = np.fromfile(base / "clean" / "merged" / "SLC" / d / f"{d}.slc.full", dtype="<c8")
        b = np.fromfile(base / "shifted" / "merged" / "SLC" / d / f"{d}.slc.full", dtype="<c8")
        if d != date:
            assert np.array_equal(a, b)
            continue
        hook = MisregHook({0: SEAM_SHIFT}, base / "shifted" / "reference" / "IW1.xml", 2700, 80)
        ok = np.abs(a) > 0
        got = np.angle(b * np.conj(a)).reshape(2700, 80)[ok.reshape(2700, 80)]
        want = hook.phase(SEAM_SHIFT)[ok.reshape(2700, 80)]
        assert np.max(np.abs(got - want)) < 1e-3
        assert np.ptp(want) > 0.15  # the burst ramps: about 0.2 rad per burst at 0.003 px


def test_seam_check_finds_the_shifted_date_and_nothing_on_a_clean_stack(seam_runs, capsys):
    base, date, _ = seam_runs
    res = seam_check(base / "run_shifted")
    k = res.dates.index(date)
    clean = seam_check(base / "run_clean")
    with capsys.disabled():
        print(
            f"\nseam check: {date} truth {SEAM_SHIFT} px, found {res.shift[k]:+.5f} +- "
            f"{res.sigma[k]:.5f} px; other dates max |shift| "
            f"{np.max(np.abs(np.delete(res.shift, k))):.5f} px; clean stack max |shift| "
            f"{np.max(np.abs(clean.shift)):.5f} px"
        )
    assert abs(res.shift[k] - SEAM_SHIFT) < 0.0005
    assert res.exceeding == [date]
    assert clean.exceeding == []
    assert run_cli(main, ["--seam-check", str(base / "run_shifted"), "--no-plots"]) == 0
    report = json.loads((base / "run_shifted" / "esd_seam_check" / "seam_check.json").read_text())
    assert report["exceeding"] == [date]
    opts = SeamOptions(phase="rc")
    assert seam_check(base / "run_shifted", options=opts).exceeding == [date]

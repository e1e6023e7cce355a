"""prep_isce: patch layout, reruns, and one-line errors for bad inputs (nothing half-written)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN_HEADING, GOLDEN_MERGED, GOLDEN_REFERENCE

from stamps_python.prep.layout import patch_layout
from stamps_python.prep.prepare import prepare
from stamps_python.utils import StampsError, get_logger

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "width,length,nr,na", [(480, 240, 1, 1), (480, 240, 3, 2), (1001, 997, 4, 3), (50, 7, 7, 7)]
)
def test_patch_cores_tile_image_exactly_once(width, length, nr, na):
    count = np.zeros((length, width), dtype=int)
    for p in patch_layout(width, length, nr, na, 50, 30):
        count[p.az_core[0] - 1 : p.az_core[1], p.rg_core[0] - 1 : p.rg_core[1]] += 1
        assert p.rg[0] == max(p.rg_core[0] - 50, 1) and p.rg[1] == min(p.rg_core[1] + 50, width)
        assert p.az[0] == max(p.az_core[0] - 30, 1) and p.az[1] == min(p.az_core[1] + 30, length)
    assert np.all(count == 1)


def test_patch_numbering_is_range_major_like_mt_prep():
    names = [(p.name, p.rg_core[0], p.az_core[0]) for p in patch_layout(100, 100, 2, 2, 0, 0)]
    assert names == [("PATCH_1", 1, 1), ("PATCH_2", 1, 51), ("PATCH_3", 51, 1), ("PATCH_4", 51, 51)]


def test_patches_split_candidates_with_overlap(tmp_path):
    one = prepare(
        GOLDEN_MERGED, tmp_path / "one", reference_date=GOLDEN_REFERENCE, heading=GOLDEN_HEADING
    )
    four = prepare(
        GOLDEN_MERGED,
        tmp_path / "four",
        reference_date=GOLDEN_REFERENCE,
        heading=GOLDEN_HEADING,
        range_patches=2,
        azimuth_patches=2,
        range_overlap=20,
        azimuth_overlap=10,
        write_step1=True,
    )
    assert four["patches"] == ["PATCH_1", "PATCH_2", "PATCH_3", "PATCH_4"]
    assert (tmp_path / "four" / "patch.list").read_text().split() == four["patches"]
    from stamps_python.io.products import load_product

    cores, total = set(), 0
    for name in four["patches"]:
        pdir = tmp_path / "four" / name
        rg1, rg2, az1, az2 = map(int, (pdir / "patch_noover.in").read_text().split())
        ij = load_product(pdir / "ps1.h5")["ij"]
        total += len(ij)
        core = (
            (ij[:, 2] >= rg1 - 1)
            & (ij[:, 2] <= rg2 - 1)
            & (ij[:, 1] >= az1 - 1)
            & (ij[:, 1] <= az2 - 1)
        )
        cores |= set(map(tuple, ij[core, 1:].tolist()))
    assert len(cores) == one["n_candidates"]  # every candidate in exactly one core
    assert total > one["n_candidates"]  # overlaps hold duplicates, as in StaMPS


def test_rerun_same_run_keeps_user_parms(tmp_path):
    from stamps_python import parms

    run = tmp_path / "run"
    prepare(GOLDEN_MERGED, run, reference_date=GOLDEN_REFERENCE, heading=GOLDEN_HEADING)
    parms.set_parm(run, "weed_standard_dev", 1.2)
    prepare(
        GOLDEN_MERGED, run, reference_date=GOLDEN_REFERENCE, heading=GOLDEN_HEADING, range_patches=2
    )
    assert parms.load_parms(run)["weed_standard_dev"] == 1.2
    assert (run / "patch.list").read_text().split() == ["PATCH_1", "PATCH_2"]
    assert abs(parms.load_parms(run)["heading"] - GOLDEN_HEADING) < 1e-9


def _fails(merged: Path, out: Path, match: str, **kw) -> None:
    with pytest.raises(StampsError, match=match):
        prepare(merged, out, **{"reference_date": GOLDEN_REFERENCE, **kw})
    assert not out.exists() or not any(out.glob("PATCH_*"))
    assert not list(out.parent.glob(f".{out.name}.prep-*"))  # no staging left behind


def test_missing_slc_or_geometry(stack_copy, tmp_path):
    import shutil

    shutil.rmtree(stack_copy / "geom_reference")
    _fails(stack_copy, tmp_path / "a", r"geom_reference: missing")
    shutil.rmtree(stack_copy / "SLC")
    _fails(stack_copy, tmp_path / "b", r"SLC: missing")


def test_reference_date_not_in_stack(tmp_path):
    _fails(
        GOLDEN_MERGED,
        tmp_path / "a",
        r"--reference-date 20210530: not in the stack",
        **{"reference_date": "20210530"},
    )
    _fails(
        GOLDEN_MERGED, tmp_path / "b", r"not a date in YYYYMMDD", **{"reference_date": "2021-05"}
    )


def test_rasters_of_different_sizes(stack_copy, tmp_path):
    vrt = stack_copy / "geom_reference" / "hgt.rdr.full.vrt"
    vrt.write_text(vrt.read_text().replace('rasterYSize="240"', 'rasterYSize="200"'))
    _fails(stack_copy, tmp_path / "a", r"hgt.rdr.full.vrt: size 200x480 differs from the SLCs")


def test_truncated_and_all_zero_slc(stack_copy, tmp_path):
    slc = stack_copy / "SLC" / "20210610" / "20210610.slc.full"
    data = slc.read_bytes()
    slc.write_bytes(data[: len(data) // 2])
    _fails(stack_copy, tmp_path / "a", r"20210610.slc.full: truncated")
    slc.write_bytes(bytes(len(data)))
    _fails(stack_copy, tmp_path / "b", r"20210610.slc.full.vrt: SLC is all zero")


def test_unreadable_xml(stack_copy, tmp_path):
    (stack_copy.parent / "reference" / "IW1.xml").write_text("<productmanager_name><broken")
    _fails(stack_copy, tmp_path / "a", r"IW1.xml: unreadable ISCE XML", bootstrap_metadata=True)


def test_output_holding_a_different_run(stack_copy, tmp_path):
    run = tmp_path / "run"
    prepare(GOLDEN_MERGED, run, reference_date=GOLDEN_REFERENCE, heading=GOLDEN_HEADING)
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(StampsError, match=r"holds a different run"):
        prepare(GOLDEN_MERGED, run, reference_date="20210610", heading=GOLDEN_HEADING)
    with pytest.raises(StampsError, match=r"holds a different run"):
        prepare(stack_copy, run, reference_date=GOLDEN_REFERENCE, heading=GOLDEN_HEADING)
    assert sorted(p.name for p in run.iterdir()) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(StampsError, match=r"not empty and holds no metadata.json"):
        prepare(GOLDEN_MERGED, other, reference_date=GOLDEN_REFERENCE, heading=GOLDEN_HEADING)


def test_cli_one_line_error_and_exit_code(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "stamps_python" / "prep_isce.py"),
            str(tmp_path / "nowhere"),
            "--output",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nowhere'}: not a directory "
        "(expected an ISCE2 topsStack merged/ folder)"
    ]
    assert not (tmp_path / "run").exists()


def test_output_that_cannot_be_created(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "stamps_python" / "prep_isce.py"),
            str(GOLDEN_MERGED),
            "--output",
            str(a_file / "run"),
            "--reference-date",
            GOLDEN_REFERENCE,
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [
        f"error: --output {a_file / 'run'}: cannot be created: {a_file} is not a directory"
    ]
    assert a_file.read_text() == "not a folder" and sorted(tmp_path.iterdir()) == [a_file]


@pytest.mark.parametrize("exists", [False, True])
def test_output_in_a_read_only_folder(tmp_path, monkeypatch, exists):
    import os

    import stamps_python.utils as utils

    locked = tmp_path / "locked"
    locked.mkdir()
    out = locked / "run"
    if exists:
        out.mkdir()
        locked = out
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root writes through chmod: have os.access answer as for a user
        access = os.access
        monkeypatch.setattr(
            utils.os, "access", lambda p, mode: False if Path(p) == locked else access(p, mode)
        )
    try:
        with pytest.raises(StampsError) as err:
            prepare(GOLDEN_MERGED, out, reference_date=GOLDEN_REFERENCE, heading=GOLDEN_HEADING)
    finally:
        locked.chmod(0o755)
    where = "" if exists else f"cannot be created: {locked} "
    assert str(err.value) == f"--output {out}: {where}is not writable (permission denied)"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["locked"] + (["run"] if exists else [])


def test_cli_runs_as_script_and_writes_metadata(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "stamps_python" / "prep_isce.py"),
            str(GOLDEN_MERGED),
            "--output",
            str(tmp_path / "run"),
            "--bootstrap-metadata",
            "--write-step1",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["reference_date"] == GOLDEN_REFERENCE  # inferred from baselines/
    assert meta["wavelength"] == pytest.approx(0.05546576)
    assert meta["heading"] == pytest.approx(-168.0, abs=0.05)  # from the LOS azimuth
    assert meta["range_pixel_spacing"] == pytest.approx(2.329562114715323)
    assert meta["slant_range_near"] == pytest.approx(864153.711)
    assert 38.9 < meta["incidence_angle"] < 39.1 and 34.5 < meta["look_angle"] < 34.7
    assert 13 < meta["azimuth_pixel_spacing"] < 15
    assert (tmp_path / "run" / "PATCH_1" / "inc1.h5").exists()
    assert "prep_isce wrote 1 patches" in (tmp_path / "run" / "stamps.log").read_text()


def test_prepare_leaves_logging_alone(tmp_path):
    """prepare() from Python logs through the suite's logger but adds or removes no handler, so
    it writes no stamps.log of its own."""
    before = list(get_logger().handlers)
    prepare(
        GOLDEN_MERGED, tmp_path / "run", reference_date=GOLDEN_REFERENCE, heading=GOLDEN_HEADING
    )
    with pytest.raises(StampsError, match="no candidates"):
        prepare(
            GOLDEN_MERGED,
            tmp_path / "none",
            reference_date=GOLDEN_REFERENCE,
            heading=GOLDEN_HEADING,
            amp_dispersion=1e-6,
        )
    assert get_logger().handlers == before
    assert not (tmp_path / "run" / "stamps.log").exists() and not (tmp_path / "none").exists()


def test_cli_logs_into_the_run_directory(tmp_path):
    """prep_isce's log lines go to RUN/stamps.log: a new run directory (made for the log once
    the inputs are checked), one left holding only the log by a failed run, a rerun (appended),
    and a small-baseline run beside define_sb_pairs' list; the CLI leaves no file handler."""
    import logging

    from stamps_python import __version__
    from stamps_python.define_sb_pairs import define_pairs
    from stamps_python.prep_isce import main

    def prep(out: Path, *extra: str) -> int:
        args = [str(GOLDEN_MERGED), "--output", str(out), "--reference-date", GOLDEN_REFERENCE]
        return main([*args, "--bootstrap-metadata", "--heading", str(GOLDEN_HEADING), *extra])

    run = tmp_path / "run"
    with pytest.raises(StampsError, match="no candidates"):
        prep(run, "--amp-dispersion", "1e-6")
    assert [p.name for p in run.iterdir()] == ["stamps.log"]
    assert f"prep_isce {__version__}: " in (run / "stamps.log").read_text()
    assert prep(run) == 0
    first = (run / "stamps.log").read_text()
    assert "prep_isce wrote 1 patches" in first and f"run directory: {run}" in first
    assert prep(run, "--range-patches", "2") == 0
    log = (run / "stamps.log").read_text()
    assert log.startswith(first) and "prep_isce wrote 2 patches" in log[len(first) :]
    assert (run / "patch.list").read_text().split() == ["PATCH_1", "PATCH_2"]

    sb = tmp_path / "sb"
    define_pairs(GOLDEN_MERGED, 60, 200, output=sb, reference_date=GOLDEN_REFERENCE)
    assert prep(sb, "--small-baseline") == 0
    log = (sb / "stamps.log").read_text()
    assert "small baselines: " in log and "prep_isce wrote 1 patches" in log
    assert (sb / "small_baselines.png").is_file()
    assert not [h for h in get_logger().handlers if isinstance(h, logging.FileHandler)]

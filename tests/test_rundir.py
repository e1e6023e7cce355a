"""The run directory has one owner: stamps_python.rundir."""

import ast
import json
from pathlib import Path

import pytest

from stamps_python import rundir
from stamps_python.utils import StampsError

PACKAGE = Path(__file__).resolve().parents[1] / "stamps_python"
OWNED = {
    rundir.METADATA,
    rundir.PATCH_LIST,
    rundir.PATCH_IN,
    rundir.PATCH_NOOVER,
    rundir.SB_LIST,
    rundir.SB_PLOT,
    rundir.PATCH_PREFIX,
}


def test_no_other_module_spells_a_run_directory_file_name():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "rundir.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and node.value.strip() in OWNED
            ):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.value!r}")
    assert offenders == []


def test_patch_bounds_round_trip_in_mt_prep_layout(tmp_path):
    rundir.write_patch_bounds(tmp_path, (1, 320, 1, 150), (1, 300, 1, 150))
    assert (tmp_path / "patch.in").read_text() == "1\n320\n1\n150\n"
    assert (tmp_path / "patch_noover.in").read_text() == "1\n300\n1\n150\n"
    assert rundir.read_patch_core(tmp_path) == (1, 300, 1, 150)
    (tmp_path / "patch_noover.in").write_text("1 2 x\n")
    with pytest.raises(StampsError, match="patch_noover.in: missing or not four integers"):
        rundir.read_patch_core(tmp_path)


def test_patch_list_order_selection_and_errors(tmp_path):
    with pytest.raises(StampsError, match="no patches"):
        rundir.read_patch_list(tmp_path)
    for n in (1, 2, 10):
        (tmp_path / rundir.patch_name(n)).mkdir()
    # without a list, every PATCH_* folder
    assert [p.name for p in rundir.read_patch_list(tmp_path)] == ["PATCH_1", "PATCH_10", "PATCH_2"]
    rundir.write_patch_list(tmp_path, ["PATCH_2", "PATCH_1", "PATCH_3"])
    assert (tmp_path / "patch.list").read_text() == "PATCH_2\nPATCH_1\nPATCH_3\n"
    with pytest.raises(StampsError, match="PATCH_3: patch folder not found"):
        rundir.select_patches(tmp_path)
    picked = rundir.select_patches(tmp_path, [str(tmp_path / "PATCH_1"), "PATCH_2"])
    assert [p.name for p in picked] == ["PATCH_2", "PATCH_1"]  # the list's order
    with pytest.raises(StampsError, match="--patches: PATCH_10 not in"):
        rundir.select_patches(tmp_path, ["PATCH_10"])


def test_metadata_errors_name_the_file(tmp_path):
    with pytest.raises(StampsError, match="no metadata.json; not a run directory"):
        rundir.read_metadata(tmp_path)
    (tmp_path / "metadata.json").write_text("{not json")
    with pytest.raises(StampsError, match="metadata.json: unreadable"):
        rundir.read_metadata(tmp_path)
    rundir.write_metadata(tmp_path, {"dates": ["20200101"]})
    assert rundir.read_metadata(tmp_path, require=("dates",)) == {"dates": ["20200101"]}
    with pytest.raises(StampsError, match="has no bperp; run prep_isce again"):
        rundir.read_metadata(tmp_path, require=("dates", "bperp"))
    patch = tmp_path / "PATCH_1" / "sub"
    patch.mkdir(parents=True)
    assert rundir.nearest_metadata(patch) == tmp_path / "metadata.json"
    assert rundir.nearest_metadata(patch, levels=1) is None
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert rundir.sb_list_path(tmp_path, meta) == tmp_path / "small_baselines.list"
    meta["small_baseline"] = {"list": "my.list"}
    assert rundir.sb_list_path(tmp_path, meta) == tmp_path / "my.list"

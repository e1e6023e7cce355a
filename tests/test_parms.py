"""Tests of stamps_python.parms (StaMPS defaults, files, precedence, validation) and its CLI
stamps_python.stamps_parms."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stamps_python import parms as P
from stamps_python.stamps_parms import cli
from stamps_python.utils import StampsError

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "data" / "golden_small" / "metadata.json"


def _golden_parms() -> dict:
    return json.loads(GOLDEN.read_text())["parameters_after_step8"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "stamps_python" / "stamps_parms.py"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


# ---------------------------------------------------------------------------- defaults


def test_defaults_equal_golden_stamps_run() -> None:
    golden = _golden_parms()
    defaults = P.default_parms(small_baseline=False)
    # same parameter set as StaMPS created for a PS run (no sb_scla_drop_index), plus the
    # opt-in ones StaMPS does not have
    assert set(defaults) - P.BEYOND_STAMPS == set(golden)
    assert P.BEYOND_STAMPS.isdisjoint(golden)
    non_default = {"unwrap_grid_size", "lambda", "heading"}
    for name, raw in golden.items():
        if name in non_default:
            continue
        value = P.validate_parm(name, raw)
        assert value == defaults[name], name
        assert type(value) is type(defaults[name]), name
    assert P.validate_parm("unwrap_grid_size", golden["unwrap_grid_size"]) == 55.0
    assert defaults["unwrap_grid_size"] == 200.0


def test_defaults_spot_values() -> None:
    d = P.default_parms()
    assert d["max_topo_err"] == 20.0
    assert d["clap_beta"] == 0.3
    assert d["gamma_change_convergence"] == 0.005
    assert d["gamma_max_iterations"] == 3 and isinstance(d["gamma_max_iterations"], int)
    assert d["weed_max_noise"] == math.inf
    assert d["merge_standard_dev"] == math.inf
    assert d["ref_radius"] == math.inf
    assert d["ref_lon"] == [-math.inf, math.inf]
    assert d["shade_rel_angle"] == [90.0, 45.0]
    assert d["drop_ifg_index"] == [] and d["scn_deramp_ifg"] == []
    assert d["insar_processor"] == "isce"
    assert d["unwrap_method"] == "3D"
    assert math.isnan(d["lambda"]) and math.isnan(d["heading"])
    assert d["small_baseline_flag"] == "n"


def test_small_baseline_defaults_differ_where_stamps_does() -> None:
    ps = P.default_parms(False)
    sb = P.default_parms(True)
    differ = {k for k in sb if k not in ps or not _same(ps[k], sb[k])}
    assert differ == {
        "small_baseline_flag",
        "density_rand",
        "percent_rand",
        "weed_standard_dev",
        "unwrap_method",
        "merge_resample_size",
        "sb_scla_drop_index",
    }
    assert sb["density_rand"] == 2.0 and sb["percent_rand"] == 1.0
    assert sb["weed_standard_dev"] == math.inf
    assert sb["unwrap_method"] == "3D_QUICK"
    assert sb["merge_resample_size"] == 100.0
    assert sb["sb_scla_drop_index"] == []


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def test_every_parameter_documented() -> None:
    doc = (REPO / "docs" / "parameters.md").read_text()
    assert P.parameters_markdown() in doc
    for name in P.PARAMETERS:
        assert f"`{name}`" in doc


# ---------------------------------------------------------------------------- files


def test_write_parms_and_inf_round_trip(tmp_path: Path) -> None:
    path = P.write_parms(tmp_path, overrides={"unwrap_grid_size": 55, "ref_radius": "-inf"})
    assert path == tmp_path / "parms.json"
    raw = json.loads(path.read_text())
    assert set(raw) == set(P.default_parms())
    # inf as strings, exactly the golden representation
    assert raw["ref_lon"] == ["-inf", "inf"]
    assert raw["weed_max_noise"] == "inf"
    assert raw["ref_radius"] == "-inf"
    assert raw["lambda"] == "nan"
    assert raw["unwrap_grid_size"] == 55
    loaded = P.load_parms(tmp_path)
    assert loaded["ref_lon"] == [-math.inf, math.inf]
    assert loaded["ref_radius"] == -math.inf
    assert loaded["weed_max_noise"] == math.inf
    assert loaded["unwrap_grid_size"] == 55.0
    assert not list(tmp_path.glob(".*tmp*"))


def test_write_parms_sb_and_metadata(tmp_path: Path) -> None:
    (tmp_path / "metadata.json").write_text(
        json.dumps({"wavelength": 0.05546576, "heading": -168.165222})
    )
    P.write_parms(tmp_path, small_baseline=True)
    loaded = P.load_parms(tmp_path)
    assert loaded["small_baseline_flag"] == "y"
    assert loaded["unwrap_method"] == "3D_QUICK"
    assert loaded["lambda"] == 0.05546576
    assert loaded["heading"] == -168.165222
    with pytest.raises(StampsError, match="contradicts"):
        P.write_parms(tmp_path, small_baseline=True, overrides={"small_baseline_flag": "n"})


def test_lambda_filled_from_metadata_when_unset(tmp_path: Path) -> None:
    P.write_parms(tmp_path)
    assert math.isnan(P.load_parms(tmp_path)["lambda"])
    patch = tmp_path / "PATCH_1"
    patch.mkdir()
    (tmp_path / "metadata.json").write_text(json.dumps({"wavelength": 0.0555, "heading": 12.5}))
    # a patch directory reads the parent's parms.json and metadata.json
    srcs = P.parm_sources(patch)
    assert srcs["lambda"] == (0.0555, "metadata")
    assert srcs["heading"] == (12.5, "metadata")
    assert srcs["clap_win"] == (32, "parms")


def test_precedence_local_over_parms_over_defaults(tmp_path: Path) -> None:
    (tmp_path / "parms.json").write_text(json.dumps({"weed_standard_dev": 0.8, "clap_win": 16}))
    (tmp_path / "localparms.json").write_text(json.dumps({"weed_standard_dev": 1.2}))
    srcs = P.parm_sources(tmp_path)
    assert srcs["weed_standard_dev"] == (1.2, "localparms")
    assert srcs["clap_win"] == (16, "parms")
    assert srcs["clap_beta"] == (0.3, "default")
    loaded = P.load_parms(tmp_path)
    assert list(loaded) == [n for n in P.PARAMETERS if n in loaded]
    # the SB flag in a file picks the SB defaults for everything not in the files
    (tmp_path / "parms.json").write_text(json.dumps({"small_baseline_flag": "y"}))
    sb = P.load_parms(tmp_path)
    assert sb["density_rand"] == 2.0 and sb["weed_standard_dev"] == 1.2
    assert sb["sb_scla_drop_index"] == []


def test_patch_dir_uses_parent_parms_and_own_localparms(tmp_path: Path) -> None:
    P.write_parms(tmp_path, overrides={"clap_win": 64})
    patch = tmp_path / "PATCH_2"
    patch.mkdir()
    P.set_parm(patch, "clap_alpha", 2, local=True)
    assert P.get_parm(patch, "clap_win") == 64
    assert P.get_parm(patch, "clap_al") == 2.0
    assert P.get_parm(tmp_path, "clap_alpha") == 1.0
    assert not (patch / "parms.json").exists()
    # as StaMPS' getparm: the run directory's localparms do not reach into the patch
    P.set_parm(tmp_path, "clap_beta", 0.5, local=True)
    assert P.get_parm(tmp_path, "clap_beta") == 0.5
    assert P.get_parm(patch, "clap_beta") == 0.3
    assert json.loads((patch / "localparms.json").read_text()) == {"clap_alpha": 2.0}


def test_set_parm_abbreviation_local_and_reset(tmp_path: Path) -> None:
    assert P.set_parm(tmp_path, "unwrap_grid", "55") == ("unwrap_grid_size", 55.0)
    assert json.loads((tmp_path / "parms.json").read_text())["unwrap_grid_size"] == 55
    assert P.set_parm(tmp_path, "scla_drop", "13:14") == ("scla_drop_index", [13, 14])
    assert P.set_parm(tmp_path, "weed_standard_dev", 2, local=True) == ("weed_standard_dev", 2.0)
    # already local: StaMPS setparm updates the local file only
    P.set_parm(tmp_path, "weed_standard_dev", 3)
    assert json.loads((tmp_path / "localparms.json").read_text()) == {"weed_standard_dev": 3}
    assert json.loads((tmp_path / "parms.json").read_text())["weed_standard_dev"] == 1
    assert P.load_parms(tmp_path)["weed_standard_dev"] == 3.0
    assert P.reset_parm(tmp_path, "weed_st") == ("weed_standard_dev", 1.0)
    assert not (tmp_path / "localparms.json").exists()
    assert P.reset_parm(tmp_path, "unwrap_grid_size") == ("unwrap_grid_size", 200.0)
    with pytest.raises(StampsError, match="small_baseline_flag"):
        P.reset_parm(tmp_path, "small_baseline_flag")


def test_set_parm_on_sb_run_keeps_sb_defaults(tmp_path: Path) -> None:
    P.set_parm(tmp_path, "small_baseline_flag", "y")
    loaded = P.load_parms(tmp_path)
    assert loaded["merge_resample_size"] == 100.0 and loaded["unwrap_method"] == "3D_QUICK"
    P.set_parm(tmp_path, "sb_scla", [3, 1])
    assert P.get_parm(tmp_path, "sb_scla_drop_index") == [1, 3]


def test_get_parm_from_dict_and_absent_sb_parameter() -> None:
    d = P.default_parms()
    assert P.get_parm(d, "unwrap_gold_n") == 32
    with pytest.raises(StampsError, match="small-baseline"):
        P.get_parm(d, "sb_scla_drop_index")


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("clap_beta", "0.5", 0.5),
        ("weed_standard_dev", "inf", math.inf),
        ("weed_standard_dev", "Inf", math.inf),
        ("merge_standard_dev", "Infinity", math.inf),
        ("ref_radius", "-inf", -math.inf),
        ("ref_lon", "[-inf, inf]", [-math.inf, math.inf]),
        ("ref_lon", ["-inf", "10.5"], [-math.inf, 10.5]),
        ("ref_centre_lonlat", "12.1 -7", [12.1, -7.0]),
        ("drop_ifg_index", "[1,2]", [1, 2]),
        ("drop_ifg_index", "[]", []),
        ("drop_ifg_index", "3", [3]),
        ("drop_ifg_index", "5:7, 1", [1, 5, 6, 7]),
        ("drop_ifg_index", np.array([4, 2, 4]), [2, 4]),
        ("scn_deramp_ifg", "all", "all"),
        ("gamma_max_iterations", "5", 5),
        ("gamma_max_iterations", 6.0, 6),
        ("unwrap_prefilter_flag", "N", "n"),
        ("weed_neighbours", True, "y"),
        ("select_method", "percent", "PERCENT"),
        ("tropo_method", "a_M", "a_M"),
        ("tropo_method", "a_m", "a_m"),
        ("unwrap_method", "3d_quick", "3D_QUICK"),
        ("lambda", "0.0555", 0.0555),
        ("lambda", "nan", None),
        ("percent_rand", 100, 100.0),
    ],
)
def test_validate_coerces(name, text, expected) -> None:
    value = P.validate_parm(name, text)
    if expected is None:
        assert math.isnan(value)
    else:
        assert value == expected
        assert type(value) is type(expected)


@pytest.mark.parametrize(
    "name, value, pattern",
    [
        ("weed_standard_dev", "-1", r"weed_standard_dev.*out of range.*> 0"),
        ("weed_standard_dev", "abc", r"weed_standard_dev.*not a number"),
        ("clap_win", 31, r"clap_win.*not a multiple of 8"),
        ("clap_win", 28, r"clap_win.*not a multiple of 8"),
        ("clap_win", 2, r"clap_win.*out of range"),
        ("gamma_max_iterations", 2.5, r"not a whole number"),
        ("gamma_max_iterations", True, r"not a number"),
        ("percent_rand", 101, r"percent_rand.*out of range.*<= 100"),
        ("percent_rand", 0, r"percent_rand.*out of range"),
        ("max_topo_err", "inf", r"max_topo_err.*out of range"),
        ("lambda", -0.05, r"lambda.*out of range"),
        ("clap_alpha", "nan", r"clap_alpha.*not allowed"),
        ("unwrap_prefilter_flag", "yes", r"'y' or 'n'"),
        ("select_method", "RANDOM", r"'DENSITY', 'PERCENT'"),
        ("tropo_method", "a_x", r"tropo_method.*one of 'a_l'"),
        ("ref_lon", [10, 5], r"low > high"),
        ("ref_lat", [1, 2, 3], r"not two numbers"),
        ("drop_ifg_index", "[0, 2]", r"not an interferogram number"),
        ("drop_ifg_index", "[1.5]", r"not an interferogram number"),
        ("scn_deramp_ifg", "al", r"not a list of interferogram numbers"),
    ],
)
def test_validate_rejects(name, value, pattern) -> None:
    with pytest.raises(StampsError, match=pattern) as info:
        P.validate_parm(name, value)
    assert "\n" not in str(info.value)


def test_unknown_name_suggests_nearest() -> None:
    with pytest.raises(
        StampsError, match=r"unknown parameter 'clap_bta'; did you mean 'clap_beta'"
    ):
        P.validate_parm("clap_bta", 1)
    with pytest.raises(StampsError, match=r"did you mean 'weed_standard_dev'"):
        P.resolve_name("weed_standrd_dev")
    with pytest.raises(StampsError, match=r"ambiguous.*unwrap_grid_size.*unwrap_gold_n_win"):
        P.resolve_name("unwrap_g")
    assert P.resolve_name("unwrap_grid") == "unwrap_grid_size"
    assert P.resolve_name("lambda") == "lambda"


@pytest.mark.parametrize(
    "old, new",
    [
        ("unwrap_ifg_index", "drop_ifg_index"),
        ("recalc_index", "scla_drop_index"),
        ("weed_alpha", "weed_time_win"),
        ("plot_pixel_size", "plot_scatterer_size"),
        ("pixel_aspect_ratio", "removed"),
        ("sb_recalc_index", "sb_scla_drop_index"),
    ],
)
def test_obsolete_names(old, new, tmp_path: Path) -> None:
    with pytest.raises(StampsError, match=rf"'{old}' is obsolete.*{new}"):
        P.resolve_name(old)
    with pytest.raises(StampsError, match=rf"obsolete.*{new}"):
        P.validate_parm(old, 1)
    (tmp_path / "parms.json").write_text(json.dumps({old: 1}))
    with pytest.raises(StampsError, match=rf"parms.json: parameter '{old}' is obsolete"):
        P.load_parms(tmp_path)


def test_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "parms.json"
    path.write_text('{\n  "clap_win": 32,\n  "clap_beta": 0.3\n  "clap_alpha": 1\n}\n')
    with pytest.raises(StampsError, match=r"parms.json: not valid JSON at line 4") as info:
        P.load_parms(tmp_path)
    assert str(path) in str(info.value)
    path.write_text(json.dumps({"weed_standard_dev": -2}))
    with pytest.raises(StampsError, match=r"parms.json: parameter weed_standard_dev"):
        P.load_parms(tmp_path)
    path.write_text(json.dumps({"Created": "01-Jan-2024"}))
    with pytest.raises(StampsError, match=r"unknown parameter 'Created'"):
        P.load_parms(tmp_path)
    path.write_text("[1, 2]")
    with pytest.raises(StampsError, match=r"JSON object"):
        P.load_parms(tmp_path)
    # JSON's non-standard Infinity/NaN tokens are accepted too
    path.write_text('{"ref_radius": -Infinity, "lambda": NaN}')
    loaded = P.load_parms(tmp_path)
    assert loaded["ref_radius"] == -math.inf and math.isnan(loaded["lambda"])


# ---------------------------------------------------------------------------- CLI


def test_cli_end_to_end(tmp_path: Path) -> None:
    run = str(tmp_path)
    res = _cli(run, "set", "unwrap_grid", "55")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "unwrap_grid_size = 55 (parms.json)"
    res = _cli(run, "set", "ref_radius", "-inf")
    assert res.returncode == 0, res.stderr
    res = _cli(run, "set", "--local", "ref_lon", "-10.5", "11")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ref_lon = [-10.5, 11] (localparms.json)"
    res = _cli(run, "set", "drop_ifg", "[3, 1]", "--local")
    assert res.returncode == 0 and "(localparms.json)" in res.stdout
    res = _cli(run, "get", "unwrap_grid_size")
    assert res.stdout.strip() == "unwrap_grid_size = 55"
    res = _cli(run, "get", "ref_rad")
    assert res.stdout.strip() == "ref_radius = -inf"
    res = _cli(run, "list")
    assert res.returncode == 0
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines()}
    assert set(rows) == set(P.default_parms())
    assert rows["unwrap_grid_size"][1:] == ["55", "parms"]
    assert rows["ref_lon"][1:] == ["[-10.5,", "11]", "localparms"]
    assert rows["drop_ifg_index"][1:] == ["[1,", "3]", "localparms"]
    assert rows["weed_max_noise"][1:] == ["inf", "parms"]
    assert json.loads((tmp_path / "localparms.json").read_text()) == {
        "ref_lon": [-10.5, 11],
        "drop_ifg_index": [1, 3],
    }
    assert "unwrap_grid_size = 55" in (tmp_path / "stamps.log").read_text()
    res = _cli(run, "reset", "ref_lon")
    assert res.stdout.strip() == "ref_lon = [-inf, inf] (parms)"


@pytest.mark.parametrize(
    "args, pattern",
    [
        (
            ["set", "clap_bta", "1"],
            "error: unknown parameter 'clap_bta'; did you mean 'clap_beta'?",
        ),
        (
            ["set", "weed_standard_dev", "-1"],
            "error: parameter weed_standard_dev: '-1' is out of range",
        ),
        (["get", "unwrap_g"], "error: parameter 'unwrap_g' is ambiguous"),
        (["set", "weed_alpha", "2"], "error: parameter 'weed_alpha' is obsolete"),
    ],
)
def test_cli_errors_one_line(tmp_path: Path, args, pattern) -> None:
    res = _cli(str(tmp_path), *args)
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(pattern), res.stderr
    assert "Traceback" not in res.stderr


def test_cli_bad_json_and_missing_dir(tmp_path: Path) -> None:
    (tmp_path / "parms.json").write_text('{"clap_win": 32,,}')
    res = _cli(str(tmp_path), "list")
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f"error: {tmp_path / 'parms.json'}: not valid JSON at line 1, "
        "column 17: Expecting property name enclosed in double quotes"
    )
    res = _cli(str(tmp_path / "nope"), "list")
    assert res.returncode == 1 and "no such run directory" in res.stderr


def test_main_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli([str(tmp_path), "set", "scn_time", "730"]) == 0
    assert cli([str(tmp_path), "get", "scn_time_win"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "scn_time_win = 730"
    assert cli([str(tmp_path), "set", "scn_time", "-5"]) == 1
    assert "scn_time_win" in capsys.readouterr().err

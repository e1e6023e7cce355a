"""One name for the run directory on every command line: the positional RUN, with the older
option spellings still accepted."""

import pytest

from stamps_python import (
    build_sb_phase,
    define_sb_pairs,
    export_results,
    prep_isce,
    ps_plot,
    stamps_main,
)
from stamps_python.utils import StampsError, run_argument

CASES = [
    # (parser module, fixed arguments, older spelling)
    (stamps_main, ["--start", "6"], "--config"),
    (export_results, ["--correction", "v-do"], "--input-path"),
    (ps_plot, ["--correction", "v-do"], "--input-path"),
    (define_sb_pairs, ["merged", "--max-temporal", "60", "--max-perpendicular", "200"], "--output"),
    (prep_isce, ["merged", "--range-patches", "2"], "--output"),
]


@pytest.mark.parametrize("module,fixed,alias", CASES, ids=lambda v: getattr(v, "__name__", None))
def test_run_positional_and_older_spelling_agree(module, fixed, alias):
    parse = module.build_parser().parse_intermixed_args
    assert run_argument(parse([*fixed, "runs/a"])).as_posix() == "runs/a"
    assert run_argument(parse([*fixed, alias, "runs/a"])).as_posix() == "runs/a"
    # the same folder twice is fine; two different ones are a one-line error
    assert run_argument(parse([*fixed, alias, "runs/a", "runs/a/"])).name == "a"
    with pytest.raises(StampsError, match="given twice, differently: RUN runs/b, .* runs/a"):
        run_argument(parse([*fixed, alias, "runs/a", "runs/b"]))


def test_defaults_when_run_is_not_given():
    assert str(run_argument(stamps_main.build_parser().parse_args([]))) == "."
    assert run_argument(define_sb_pairs.build_parser().parse_args(CASES[3][1])) is None
    with pytest.raises(StampsError, match="RUN: the run directory is required"):
        run_argument(export_results.build_parser().parse_args([]))
    with pytest.raises(StampsError, match="RUN: the run directory is required"):
        run_argument(build_sb_phase.build_parser().parse_args([]))


def test_missing_run_directory_is_one_line_error(tmp_path, capsys):
    missing = tmp_path / "nope"
    code = export_results.cli([str(missing)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == [f"error: {missing}: no such run directory"]
    code = export_results.cli(["--input-path", str(missing)])
    assert (
        code == 1 and capsys.readouterr().err.strip() == f"error: {missing}: no such run directory"
    )

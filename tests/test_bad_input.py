"""Bad input on the command line: options documented with their defaults, output folders that
cannot be used, output into a closed pipe."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and its sub-command parsers."""
    out = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out.extend(_parsers(sub))
    return out


@pytest.mark.parametrize("command", sorted(SCRIPTS))
def test_every_option_has_help_with_its_default(command: str) -> None:
    module = importlib.import_module(SCRIPTS[command].split(":")[0])
    build = getattr(module, "build_parser", None) or getattr(module, "_parser")
    problems = []
    for parser in _parsers(build()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(
                action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
            ):
                continue
            name = f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
            if not (action.help or "").strip():
                problems.append(f"{name}: no help")
            elif (
                action.option_strings
                and action.nargs != 0
                and not action.required
                and "default" not in formatter._expand_help(action)
            ):
                problems.append(f"{name}: help does not give the default")
    assert not problems, "; ".join(problems)


def _parms_run(tmp_path: Path) -> Path:
    from stamps_python.parms import write_parms

    run = tmp_path / "run"
    write_parms(run)
    return run


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    import os

    run = _parms_run(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written: every write fails
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "stamps_python.stamps_parms", str(run), "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=REPO,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == ""


def test_stamps_parms_list_into_head(tmp_path: Path) -> None:
    run = _parms_run(tmp_path)
    command = f"{sys.executable} -m stamps_python.stamps_parms {run} list | head -n 1"
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.stdout.split()[0] == "small_baseline_flag" and proc.stdout.count("\n") == 1
    assert proc.stderr == "" and proc.returncode in (0, 141)


@pytest.mark.parametrize("command", ["define_sb_pairs", "stamps_synthetic"])
def test_output_under_a_regular_file(tmp_path: Path, capsys, command: str) -> None:
    from conftest import GOLDEN_MERGED

    from stamps_python import define_sb_pairs, stamps_synthetic
    from stamps_python.utils import run_cli

    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    out = a_file / "out"
    if command == "define_sb_pairs":
        main, option = define_sb_pairs.main, "--output"
        argv = [
            str(GOLDEN_MERGED),
            "--max-temporal",
            "100",
            "--max-perpendicular",
            "200",
            "--output",
            str(out),
        ]
    else:
        main, option = stamps_synthetic.main, "OUTDIR"
        argv = [str(out), "--rows", "24", "--cols", "48", "--dates", "3", "--quiet"]
    assert run_cli(main, argv) == 1
    assert capsys.readouterr().err == (
        f"error: {option} {out}: cannot be created: {a_file} is not a directory\n"
    )
    assert sorted(tmp_path.iterdir()) == [a_file]

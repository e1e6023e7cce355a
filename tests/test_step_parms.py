"""The steps read resolved parameters (load_parms / with_defaults): a parameter's default lives in
the parameter spec only, and a parameter missing from what a step is given is a one-line error."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from stamps_python.parms import default_parms
from stamps_python.steps import (
    ps_est_gamma_quick,
    ps_merge_patches,
    ps_scn_filt,
    ps_select,
    ps_weed,
)
from stamps_python.utils import StampsError

PACKAGE = Path(__file__).resolve().parents[1] / "stamps_python"
ACCESSORS = ("number", "flag")


def _defaulted_reads(source: str, label: str) -> list[str]:
    """``number(...)`` / ``flag(...)`` calls given a default (a third argument or ``default=``)
    and ``parms.get(name, default)`` calls in ``source``, as 'label:line: code'."""
    found = []
    for node in ast.walk(ast.parse(source, label)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in ACCESSORS:
            defaulted = len(node.args) > 2 or any(k.arg == "default" for k in node.keywords)
        elif name == "get" and isinstance(func, ast.Attribute):
            receiver = func.value
            on_parms = isinstance(receiver, ast.Name) and receiver.id in ("parms", "p")
            defaulted = on_parms and (len(node.args) > 1 or bool(node.keywords))
        else:
            continue
        if defaulted:
            found.append(f"{label}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize("sub", ["steps", "numerics"])
def test_no_default_at_the_call_site(sub: str) -> None:
    paths = sorted((PACKAGE / sub).rglob("*.py"))
    assert len(paths) > 10
    found = [
        hit
        for path in paths
        for hit in _defaulted_reads(path.read_text(), str(path.relative_to(PACKAGE)))
    ]
    assert found == []


def test_the_scan_finds_defaults() -> None:
    code = (
        "a = number(parms, 'weed_time_win', 730.0)\n"
        "b = number(parms, 'clap_alpha', default=1.0)\n"
        "c = flag(parms, 'weed_neighbours', 'n')\n"
        "d = parms.get('tropo_method', 'a_l')\n"
        "e = number(parms, 'lambda', finite=True)\n"
        "f = flag(parms, 'subtr_tropo')\n"
        "g = ps.get('ll0', None)\n"
        "h = parms.get('heading')\n"
    )
    assert [hit.split(": ", 1)[1] for hit in _defaulted_reads(code, "example.py")] == [
        "number(parms, 'weed_time_win', 730.0)",
        "number(parms, 'clap_alpha', default=1.0)",
        "flag(parms, 'weed_neighbours', 'n')",
        "parms.get('tropo_method', 'a_l')",
    ]


# the parameters each of these steps reads before it opens any file
BEFORE_INPUT = [
    (ps_est_gamma_quick.run, "filter_grid_size"),
    (ps_select.run, "clap_alpha"),
    (ps_weed.run, "weed_time_win"),
    (ps_weed.run, "weed_standard_dev"),
    (ps_weed.run, "weed_zero_elevation"),  # a yes/no flag: missing is not "n"
    (ps_merge_patches.run, "merge_resample_size"),
    (ps_scn_filt.run, "scn_time_win"),
]


@pytest.mark.parametrize(("step", "name"), BEFORE_INPUT, ids=[n for _, n in BEFORE_INPUT])
def test_a_missing_parameter_is_a_one_line_error(tmp_path: Path, step, name: str) -> None:
    parms = default_parms()
    parms["lambda"] = 0.0555
    del parms[name]
    with pytest.raises(StampsError) as err:
        step(tmp_path, parms)
    assert str(err.value) == f"parameter '{name}' is missing"

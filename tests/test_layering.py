"""The package's layering (docs/README.md): parsed with ``ast``, imports inside functions included.

utils / parms  <-  numerics  <-  io  <-  steps  <-  results  <-  CLIs (prep_isce, stamps_main,
export_results, ps_plot, define_sb_pairs, build_sb_phase, ps_sb_merge, aps_linear, aps_import,
cr_insar, esd_misreg, stamps_parms, synthetic, and the run order ``pipeline`` that stamps_main
drives).

- no import cycle between the package's modules;
- no module in ``steps/`` imports another ``steps/`` module;
- ``numerics/`` imports neither ``io/`` nor ``steps/`` nor a CLI (pure functions, no I/O);
- ``io/`` imports no ``steps/`` module and no CLI;
- steps import no CLI module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "stamps_python"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE
CLIS = {
    f"{PACKAGE}.{name}"
    for name in (
        "prep_isce",
        "export_results",
        "ps_plot",
        "stamps_main",
        "define_sb_pairs",
        "build_sb_phase",
        "stamps_synthetic",
        "stamps_parms",
        "pipeline",
        "aps_linear",
        "aps_import",
        "cr_insar",
        "esd_misreg",
        "ps_sb_merge",
    )
}

# Known exceptions still to remove, (importer, imported) -> why. Keep this empty when possible.
PENDING: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The package module ``name`` denotes (itself, or its package), None outside the package."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> set[str]:
    """Package modules that ``module`` imports anywhere in its source (functions included)."""
    path = MODULES[module]
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_pkg else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([base] if base else []))
            # "from pkg import mod" imports the submodule pkg.mod
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                out.add(target)
    # a module importing "a.b.c" also runs the packages a and a.b; those are not layering edges
    return {t for t in out if MODULES[t].name != "__init__.py"}


GRAPH = {m: _imports(m) for m in MODULES}


def _edges(where, what):
    return sorted(
        (a, b)
        for a, targets in GRAPH.items()
        if where(a)
        for b in targets
        if what(b) and (a, b) not in PENDING
    )


def _in(sub: str):
    return lambda m: m.startswith(f"{PACKAGE}.{sub}.")


def test_modules_found() -> None:
    assert f"{PACKAGE}.steps.ps_calc_scla" in MODULES and f"{PACKAGE}.numerics.matlab" in MODULES
    assert f"{PACKAGE}.steps.ps_select" in GRAPH[f"{PACKAGE}.pipeline"]


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(GRAPH[m]):
            if (m, t) in PENDING:
                continue
            if state.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_steps_do_not_import_steps() -> None:
    assert _edges(_in("steps"), _in("steps")) == []


def test_numerics_is_pure() -> None:
    assert _edges(_in("numerics"), lambda m: _in("io")(m) or _in("steps")(m) or m in CLIS) == []


def test_io_imports_no_step_or_cli() -> None:
    assert _edges(_in("io"), lambda m: _in("steps")(m) or m in CLIS) == []


def test_steps_import_no_cli() -> None:
    assert _edges(_in("steps"), lambda m: m in CLIS) == []


def test_pending_exceptions_still_exist() -> None:
    """An exception that is no longer needed must be removed from PENDING."""
    assert [e for e in PENDING if e[1] not in GRAPH.get(e[0], ())] == []

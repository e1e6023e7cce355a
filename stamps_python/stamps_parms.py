"""stamps_parms: list, read and change StaMPS parameters (``parms.json`` / ``localparms.json``).

Usage (also ``python stamps_python/stamps_parms.py``)::

    stamps_parms RUN_DIR list
    stamps_parms RUN_DIR get NAME
    stamps_parms RUN_DIR set NAME VALUE [--local]
    stamps_parms RUN_DIR reset NAME [--local]
    stamps_parms RUN_DIR preset accurate|faithful

``NAME`` may be any unique prefix of a parameter name, as with StaMPS ``setparm``/``getparm``.
The parameters themselves are :mod:`stamps_python.parms`.
"""

from __future__ import annotations

if __name__ == "__main__" and not __package__:
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stamps_python.parms import (
    LOCALPARMS_FILE,
    PARMS_FILE,
    PRESETS,
    apply_preset,
    format_value,
    get_parm,
    parm_sources,
    read_local_parms,
    reset_parm,
    resolve_name,
    set_parm,
)
from stamps_python.utils import HelpFormatter, StampsError, run_cli, setup_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stamps_parms",
        formatter_class=HelpFormatter,
        description="List, read and change StaMPS parameters (parms.json / localparms.json). "
        "NAME may be any unique prefix of a parameter name.",
    )
    parser.add_argument("run_dir", metavar="RUN", help="run (or patch) directory")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every parameter with its value and source")
    p_get = sub.add_parser("get", help="print one parameter")
    p_get.add_argument("name", help="parameter name or unique prefix")
    p_set = sub.add_parser("set", help="set one parameter (VALUE like 0.5, inf, y, '[1,2]', 3:5)")
    p_set.add_argument("--local", action="store_true", help="write localparms.json")
    p_set.add_argument("name", help="parameter name or unique prefix")
    p_set.add_argument("value", nargs=argparse.REMAINDER, help="new value")
    p_preset = sub.add_parser(
        "preset",
        help="set a group of parameters at once: 'accurate' "
        "(the opt-in corrections beyond StaMPS, docs/accuracy.md) or "
        "'faithful' (their StaMPS defaults)",
    )
    p_preset.add_argument("preset", choices=sorted(PRESETS), help="preset name")
    p_reset = sub.add_parser("reset", help="put one parameter back to its default")
    p_reset.add_argument("--local", action="store_true", help="only remove it from localparms.json")
    p_reset.add_argument("name", help="parameter name or unique prefix")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``stamps_parms`` command line; errors are StampsError (one line)."""
    args = _parser().parse_args(argv)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: no such run directory")
    if args.command == "list":
        rows = parm_sources(run_dir)
        width = max(len(k) for k in rows)
        texts = {k: format_value(v) for k, (v, _) in rows.items()}
        vwidth = max(len(t) for t in texts.values())
        for key, (_, source) in rows.items():
            print(f"{key:<{width}}  {texts[key]:<{vwidth}}  {source}")
        return 0
    if args.command == "get":
        full = resolve_name(args.name)
        print(f"{full} = {format_value(get_parm(run_dir, full))}")
        return 0
    setup_logging(run_dir)
    if args.command == "set":
        words = list(args.value)
        local = args.local or "--local" in words
        words = [w for w in words if w != "--local"]
        if words[:1] == ["--"]:
            words = words[1:]
        if not words:
            raise StampsError(f"set {args.name}: a VALUE is needed")
        value: Any = words[0] if len(words) == 1 else " ".join(words)
        full, stored = set_parm(run_dir, args.name, value, local=local)
        where = LOCALPARMS_FILE if (local or full in read_local_parms(run_dir)) else PARMS_FILE
        print(f"{full} = {format_value(stored)} ({where})")
        return 0
    if args.command == "preset":
        for full, stored in apply_preset(run_dir, args.preset):
            print(f"{full} = {format_value(stored)}")
        return 0
    full, value = reset_parm(run_dir, args.name, local_only=args.local)
    source = parm_sources(run_dir).get(full, (None, "absent"))[1]
    print(f"{full} = {format_value(value)} ({source})")
    return 0


def cli(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point: exit 0, or 1 with a one-line error."""
    return run_cli(main, argv)


if __name__ == "__main__":
    raise SystemExit(cli())

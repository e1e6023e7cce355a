"""StaMPS' ``small_baselines.list``: one "YYYYMMDD YYYYMMDD" pair per line (earlier date first)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from stamps_python.utils import StampsError, atomic_output, parse_yyyymmdd


def read_sb_list(path: str | Path) -> list[tuple[str, str]]:
    """Pairs of a StaMPS ``small_baselines.list``: one "YYYYMMDD YYYYMMDD" per line.

    Blank lines are skipped. A line without exactly two valid dates, with the first not earlier
    than the second, or repeating a pair is a StampsError naming the file and line number.
    """
    path = Path(path)
    if not path.is_file():
        raise StampsError(f"{path}: small baseline list not found")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise StampsError(f"{path}: unreadable ({exc})") from None
    pairs: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path}, line {number}"
        if len(fields) != 2:
            raise StampsError(
                f"{where}: expected two dates 'YYYYMMDD YYYYMMDD', got {line.strip()!r}"
            )
        first, second = (parse_yyyymmdd(f, where) for f in fields)
        if first >= second:
            raise StampsError(f"{where}: {fields[0]} is not earlier than {fields[1]}")
        pair = (fields[0], fields[1])
        if pair in seen:
            raise StampsError(f"{where}: pair {fields[0]} {fields[1]} repeats line {seen[pair]}")
        seen[pair] = number
        pairs.append(pair)
    if not pairs:
        raise StampsError(f"{path}: holds no pairs")
    return pairs


def write_sb_list(path: str | Path, pairs_dates: Sequence[tuple[str, str]]) -> Path:
    """Write ``pairs_dates`` (earlier date first) as StaMPS ``small_baselines.list`` (atomic)."""
    path = Path(path)
    text = "".join(f"{a} {b}\n" for a, b in pairs_dates)
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return path

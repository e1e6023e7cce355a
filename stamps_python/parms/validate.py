"""Checking and converting parameter values: numbers, ranges, flags, choices, lists, pairs."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from stamps_python.parms.names import check_name
from stamps_python.parms.spec import NAN, PARAMETERS, ParmSpec, format_value
from stamps_python.utils import StampsError


def _bad(name: str, value: Any, why: str) -> StampsError:
    shown = value if isinstance(value, str) else format_value(value)
    return StampsError(f"parameter {name}: {shown!r} {why}")


def _number(spec: ParmSpec, value: Any, whole: Any = None) -> float:
    """A float from a number or numeric text, checked against the spec's range."""
    orig = value if whole is None else whole
    if isinstance(value, (list, tuple, np.ndarray)) and spec.kind != "pair" and np.size(value) == 1:
        value = np.ravel(value)[0]
    if isinstance(value, (bool, np.bool_)):
        raise _bad(spec.name, orig, f"is not a number (allowed: {spec.allowed()})")
    if isinstance(value, (int, float, np.integer, np.floating)):
        x = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]") and spec.kind != "pair":
            text = text[1:-1].strip()
        try:
            x = float(text)
        except ValueError:
            raise _bad(spec.name, orig, f"is not a number (allowed: {spec.allowed()})") from None
    else:
        raise _bad(spec.name, orig, f"is not a number (allowed: {spec.allowed()})")
    if math.isnan(x):
        if spec.allow_nan:
            return NAN
        raise _bad(spec.name, orig, f"is not allowed (allowed: {spec.allowed()})")
    if math.isinf(x):
        if (x > 0 and spec.allow_inf) or (x < 0 and spec.allow_neg_inf):
            return x
        raise _bad(spec.name, orig, f"is out of range (allowed: {spec.allowed()})")
    low_ok = spec.minimum is None or (x > spec.minimum if spec.exclusive_min else x >= spec.minimum)
    high_ok = spec.maximum is None or x <= spec.maximum
    if not (low_ok and high_ok):
        raise _bad(spec.name, orig, f"is out of range (allowed: {spec.allowed()})")
    if spec.kind == "int":
        if not x.is_integer():
            raise _bad(spec.name, orig, f"is not a whole number (allowed: {spec.allowed()})")
        if spec.even and int(x) % 2:
            raise _bad(spec.name, orig, f"is not even (allowed: {spec.allowed()})")
        if spec.multiple and int(x) % spec.multiple:
            raise _bad(
                spec.name, orig, f"is not a multiple of {spec.multiple} (allowed: {spec.allowed()})"
            )
    return x


_RANGE = re.compile(r"^([+-]?\d+)(?::([+-]?\d+))?:([+-]?\d+)$")


def _tokens(spec: ParmSpec, value: Any) -> list[Any]:
    """Elements of a list value given as a sequence, a scalar or text like '[1, 2]' / '3:5'."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        out: list[Any] = []
        for tok in re.split(r"[\s,;]+", text.strip()):
            if not tok:
                continue
            tok = tok.strip("'\"")
            m = _RANGE.match(tok) if spec.kind == "index_list" else None
            if m:
                start, step, stop = int(m.group(1)), int(m.group(2) or 1), int(m.group(3))
                if step == 0:
                    raise _bad(spec.name, value, "has a zero step in a range")
                out.extend(range(start, stop + (1 if step > 0 else -1), step))
            else:
                out.append(tok)
        return out
    return [value]


def _index_list(spec: ParmSpec, value: Any) -> list[int] | str:
    if spec.allow_all and isinstance(value, str) and value.strip().strip("'\"").lower() == "all":
        return "all"
    out: list[int] = []
    for tok in _tokens(spec, value):
        if isinstance(tok, (bool, np.bool_)):
            raise _bad(
                spec.name, value, f"is not a list of interferogram numbers ({spec.allowed()})"
            )
        try:
            x = float(tok)
        except (TypeError, ValueError):
            raise _bad(
                spec.name, value, f"is not a list of interferogram numbers ({spec.allowed()})"
            ) from None
        if not (math.isfinite(x) and x.is_integer() and x >= 1):
            raise _bad(
                spec.name,
                value,
                f"holds {format_value(tok)}, not an interferogram number ({spec.allowed()})",
            )
        out.append(int(x))
    return sorted(set(out))


def _pair(spec: ParmSpec, value: Any) -> list[float]:
    toks = _tokens(spec, value)
    if len(toks) != 2:
        raise _bad(spec.name, value, f"is not two numbers (allowed: {spec.allowed()})")
    pair = [_number(spec, t, whole=value) for t in toks]
    if spec.ordered and pair[0] > pair[1]:
        raise _bad(spec.name, value, f"has low > high (allowed: {spec.allowed()})")
    return pair


def validate_parm(name: str, value: Any) -> Any:
    """Check and convert ``value`` for parameter ``name`` (full name); returns the Python value.

    Text is converted as on the command line: "0.5" -> 0.5, "inf" -> inf, "[1,2]" or "1:2" ->
    [1, 2], "Y" -> 'y'. Floats come back as float, whole-number parameters as int, flags as
    'y'/'n', choices in StaMPS' spelling, vectors as lists. An unknown name, a wrong type or an
    out-of-range value is a one-line :class:`StampsError`.
    """
    spec = PARAMETERS[check_name(name)]
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if spec.kind == "float":
        return _number(spec, value)
    if spec.kind == "int":
        return int(_number(spec, value))
    if spec.kind == "flag":
        if isinstance(value, (bool, np.bool_)):
            return "y" if value else "n"
        if isinstance(value, str) and value.strip().strip("'\"").lower() in ("y", "n"):
            return value.strip().strip("'\"").lower()
        raise _bad(spec.name, value, f"is not allowed (allowed: {spec.allowed()})")
    if spec.kind == "choice":
        if isinstance(value, str):
            text = value.strip().strip("'\"")
            if text in spec.choices:
                return text
            folded = [c for c in spec.choices if c.lower() == text.lower()]
            if len(folded) == 1:
                return folded[0]
        raise _bad(spec.name, value, f"is not allowed (allowed: {spec.allowed()})")
    if spec.kind == "index_list":
        return _index_list(spec, value)
    return _pair(spec, value)

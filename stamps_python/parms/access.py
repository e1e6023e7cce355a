"""Reading parameters inside the steps: one place for flags, numbers and interferogram lists."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from stamps_python.parms.spec import default_parms
from stamps_python.utils import StampsError, get_logger


def with_defaults(parms: Mapping[str, Any]) -> dict[str, Any]:
    """``parms`` completed with the StaMPS defaults (PS or SB, after ``small_baseline_flag``)."""
    sb = str(parms.get("small_baseline_flag", "n")).strip().lower().startswith("y")
    out = default_parms(sb)
    out.update(parms)
    return out


def flag(parms: Mapping[str, Any], name: str) -> bool:
    """True when the StaMPS yes/no parameter ``name`` is ``'y'`` (case-insensitive); a
    StampsError when it is missing."""
    return str(required(parms, name)).strip().lower().startswith("y")


def required(parms: Mapping[str, Any], name: str) -> Any:
    """Parameter ``name``; a StampsError when it is missing."""
    if parms.get(name) is None:
        raise StampsError(f"parameter '{name}' is missing")
    return parms[name]


def number(parms: Mapping[str, Any], name: str, finite: bool = False) -> float:
    """Numeric parameter ``name`` as a float (``'inf'`` accepted unless ``finite``).

    A missing parameter, or a value that is not a number (or not finite when ``finite``), is a
    one-line StampsError naming it.
    """
    value = required(parms, name)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise StampsError(f"parameter '{name}' = {value!r} is not a number") from None
    if finite and not math.isfinite(out):
        raise StampsError(f"parameter '{name}' = {value!r} must be finite")
    return out


def ifg_index0(
    value: Any, n: int, name: str, allow_all: bool = False, strict: bool = False
) -> np.ndarray:
    """0-based sorted unique indices below ``n`` from a StaMPS 1-based index-list parameter.

    ``'all'`` (when ``allow_all``) gives every index. Numbers outside 1..n are an error when
    ``strict``, else ignored with a warning (as MATLAB's ``setdiff``/``intersect`` do).
    """
    if value is None:
        return np.zeros(0, dtype=np.int64)
    if isinstance(value, str):
        text = value.strip().lower()
        if allow_all and text == "all":
            return np.arange(n, dtype=np.int64)
        if text in ("", "[]"):
            return np.zeros(0, dtype=np.int64)
        raise StampsError(f"parameter {name}: '{value}' is not a list of interferogram numbers")
    try:
        vals = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    except (TypeError, ValueError):
        raise StampsError(f"parameter {name}: {value!r} is not a list of numbers") from None
    if np.any(vals != np.round(vals)):
        raise StampsError(f"parameter {name}: {vals.tolist()} are not whole numbers")
    idx = vals.astype(np.int64) - 1
    outside = (idx < 0) | (idx >= n)
    if np.any(outside):
        if strict:
            raise StampsError(
                f"parameter {name}: {vals.tolist()} must be interferogram numbers 1..{n}"
            )
        get_logger().warning(
            "parameter %s: numbers outside 1..%d ignored: %s", name, n, (idx[outside] + 1).tolist()
        )
    return np.unique(idx[~outside])


def drop_ifg_index0(parms: Mapping[str, Any], n_ifg: int) -> np.ndarray:
    """0-based interferograms to drop, from the 1-based ``drop_ifg_index`` (numbers 1..n_ifg)."""
    return ifg_index0(required(parms, "drop_ifg_index"), n_ifg, "drop_ifg_index", strict=True)

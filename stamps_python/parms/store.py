"""``parms.json`` / ``localparms.json``: reading, writing and layering them.

The value in effect is ``localparms.json`` > ``parms.json`` > the default (PS or SB, after
``small_baseline_flag``); unset (nan) ``lambda`` / ``heading`` come from the stack
``metadata.json``. Files are written atomically, one parameter per line.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.parms.names import check_name, resolve_name
from stamps_python.parms.spec import ABSENT, PARAMETERS, default_parms, format_value
from stamps_python.parms.validate import validate_parm
from stamps_python.rundir import nearest_metadata
from stamps_python.utils import StampsError, atomic_output, get_logger

PARMS_FILE = "parms.json"
LOCALPARMS_FILE = "localparms.json"


def _to_json(value: Any) -> Any:
    """JSON form of a parameter value: inf/-inf/nan as strings, whole floats as integers."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_to_json(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        if x.is_integer() and abs(x) < 1e15:
            return int(x)
        return x
    return value


def dumps(parms: Mapping[str, Any]) -> str:
    """Text of a parms JSON file: one parameter per line, lists kept on their line."""
    lines = [
        f"  {json.dumps(k)}: {json.dumps(_to_json(v), separators=(', ', ': '))}"
        for k, v in parms.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n" if lines else "{}\n"


def _write_json(path: Path, parms: Mapping[str, Any]) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(dumps(parms), encoding="utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    """Raw, validated contents of a parms/localparms file (values converted to Python types)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StampsError(f"{path}: cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise StampsError(f"{path}: is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StampsError(
            f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise StampsError(f"{path}: must hold one JSON object of parameter names and values")
    out: dict[str, Any] = {}
    for key, value in data.items():
        try:
            out[check_name(key)] = validate_parm(key, value)
        except StampsError as exc:
            raise StampsError(f"{path}: {exc}") from None
    return out


def find_parms_file(run_dir: str | Path) -> Path | None:
    """``parms.json`` of a directory, or of its parent (a patch directory), as StaMPS looks."""
    run_dir = Path(run_dir)
    for directory in (run_dir, run_dir.parent):
        path = directory / PARMS_FILE
        if path.is_file():
            return path
    return None


def _metadata_values(run_dir: Path) -> dict[str, float]:
    """``lambda`` / ``heading`` from the nearest metadata.json (here, parent or grandparent)."""
    path = nearest_metadata(run_dir)
    if path is None:
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StampsError(f"{path}: cannot be read for lambda/heading ({exc})") from None
    out: dict[str, float] = {}
    if isinstance(meta, dict):
        for parm, key in (("lambda", "wavelength"), ("heading", "heading")):
            if meta.get(key) is not None:
                try:
                    out[parm] = validate_parm(parm, meta[key])
                except StampsError as exc:
                    raise StampsError(f"{path}: {exc}") from None
    return out


def read_local_parms(run_dir: Path) -> dict[str, Any]:
    """``localparms.json`` of ``run_dir`` only, as StaMPS' getparm reads the current directory's
    localparms.mat: in a patch, the run directory's local overrides do not apply."""
    local_path = run_dir / LOCALPARMS_FILE
    return _read_json(local_path) if local_path.is_file() else {}


def _resolve(run_dir: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Effective parameters and their sources (default / parms / localparms / metadata)."""
    run_dir = Path(run_dir)
    parms_path = find_parms_file(run_dir)
    file_parms = _read_json(parms_path) if parms_path else {}
    local_parms = read_local_parms(run_dir)
    flag = local_parms.get("small_baseline_flag", file_parms.get("small_baseline_flag", "n"))
    values = default_parms(flag == "y")
    sources = dict.fromkeys(values, "default")
    for layer, label in ((file_parms, "parms"), (local_parms, "localparms")):
        for key, value in layer.items():
            values[key] = value
            sources[key] = label
    unset = [k for k in ("lambda", "heading") if math.isnan(values[k])]
    if unset:
        meta = _metadata_values(run_dir)
        for key in unset:
            if key in meta and not math.isnan(meta[key]):
                values[key] = meta[key]
                sources[key] = "metadata"
    order = {name: i for i, name in enumerate(PARAMETERS)}
    keys = sorted(values, key=order.__getitem__)
    return {k: values[k] for k in keys}, {k: sources[k] for k in keys}


def load_parms(run_dir: str | Path) -> dict[str, Any]:
    """Effective parameters of a run or patch directory: localparms > parms > defaults.

    ``parms.json`` is read from ``run_dir`` or, for a patch directory, its parent; for a patch,
    the run's ``localparms.json`` applies and the patch's own on top of it. Unset (nan)
    ``lambda`` / ``heading`` are filled from the stack ``metadata.json`` (wavelength in m, heading
    in deg). Every value is validated.
    """
    return _resolve(run_dir)[0]


def parm_sources(run_dir: str | Path) -> dict[str, tuple[Any, str]]:
    """Every effective parameter with where it came from: default, parms, localparms, metadata."""
    values, sources = _resolve(run_dir)
    return {k: (values[k], sources[k]) for k in values}


def get_parm(run_dir_or_dict: str | Path | Mapping[str, Any], name: str) -> Any:
    """One parameter (a unique prefix of its name is enough) from a run directory or a dict."""
    full = resolve_name(name)
    parms = run_dir_or_dict if isinstance(run_dir_or_dict, Mapping) else load_parms(run_dir_or_dict)
    if full not in parms:
        raise StampsError(
            f"parameter {full} is not set here (StaMPS creates it only for small-baseline runs)"
            if PARAMETERS[full].ps_default is ABSENT
            else f"parameter {full} is missing from the parameter set"
        )
    return parms[full]


def write_parms(
    run_dir: str | Path, small_baseline: bool = False, overrides: Mapping[str, Any] | None = None
) -> Path:
    """Create (or replace) ``run_dir/parms.json`` holding every parameter, atomically.

    Starts from the PS or SB defaults, fills ``lambda`` / ``heading`` from ``run_dir``'s
    ``metadata.json`` when present, then applies ``overrides`` (full names, validated).
    """
    run_dir = Path(run_dir)
    parms = default_parms(small_baseline)
    meta = _metadata_values(run_dir)
    parms.update(meta)
    for key, value in (overrides or {}).items():
        checked = validate_parm(key, value)
        if key == "small_baseline_flag" and checked != parms[key]:
            raise StampsError(
                f"parameter small_baseline_flag: override '{checked}' contradicts "
                f"small_baseline={small_baseline}"
            )
        parms[key] = checked
    path = run_dir / PARMS_FILE
    _write_json(path, parms)
    get_logger().debug("wrote %s (%d parameters)", path, len(parms))
    return path


def set_parm(run_dir: str | Path, name: str, value: Any, local: bool = False) -> tuple[str, Any]:
    """Set one parameter (unique prefix allowed) in parms.json, or localparms.json if ``local``.

    As StaMPS ``setparm``: if the parameter is already in ``localparms.json`` the local file is
    the one updated. Without any parms.json one is first created with the defaults. Returns the
    full name and the stored value.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise StampsError(f"{run_dir}: no such run directory")
    full = resolve_name(name)
    checked = validate_parm(full, value)
    log = get_logger()
    parms_path = find_parms_file(run_dir)
    if parms_path is None:
        parms_path = write_parms(
            run_dir, small_baseline=(full == "small_baseline_flag" and checked == "y")
        )
        log.info("created %s with the default parameters", parms_path)
    file_parms = _read_json(parms_path)
    local_parms = read_local_parms(run_dir)
    local_path = run_dir / LOCALPARMS_FILE
    if local or full in local_parms:
        if not local:
            log.warning("%s is in %s: only the LOCAL parameter file was updated", full, local_path)
        local_parms[full] = checked
        _write_json(local_path, local_parms)
        target = local_path
    else:
        file_parms[full] = checked
        _write_json(parms_path, file_parms)
        target = parms_path
    if full == "small_baseline_flag":
        log.warning(
            "small_baseline_flag changed: parameters whose default differs for small "
            "baselines keep their present values"
        )
    log.debug("%s = %s (%s)", full, format_value(checked), target)
    return full, checked


def reset_parm(run_dir: str | Path, name: str, local_only: bool = False) -> tuple[str, Any]:
    """Put a parameter back to its default (StaMPS ``setparm(name, nan)``); returns name, value.

    Removes it from ``localparms.json``; unless ``local_only`` also writes the default (PS or SB,
    per ``small_baseline_flag``) into parms.json. Returns the value now in effect.
    """
    run_dir = Path(run_dir)
    full = resolve_name(name)
    if full == "small_baseline_flag" and not local_only:
        raise StampsError("small_baseline_flag has no default to reset to; set it to 'y' or 'n'")
    local_path = run_dir / LOCALPARMS_FILE
    if local_path.is_file():
        local_parms = _read_json(local_path)
        if full in local_parms:
            del local_parms[full]
            if local_parms:
                _write_json(local_path, local_parms)
            else:
                local_path.unlink()
    parms_path = find_parms_file(run_dir)
    if not local_only and parms_path is not None:
        file_parms = _read_json(parms_path)
        flag = file_parms.get("small_baseline_flag", "n")
        spec = PARAMETERS[full]
        default = spec.sb_default if flag == "y" else spec.ps_default
        if default is ABSENT:
            file_parms.pop(full, None)
        else:
            file_parms[full] = copy.deepcopy(default)
        _write_json(parms_path, file_parms)
    values = load_parms(run_dir)
    get_logger().debug("%s reset to default", full)
    return full, values.get(full, ABSENT)

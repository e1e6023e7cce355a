"""Presets: groups of the opt-in parameters beyond StaMPS set together (docs/accuracy.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stamps_python.parms.store import reset_parm, set_parm
from stamps_python.utils import StampsError

# `stamps_parms RUN preset NAME`: parameter values switched on together (docs/accuracy.md).
PRESETS: dict[str, dict[str, Any]] = {
    "accurate": {
        "deramp_method": "model",
        "defo_model": "linear",
        "detrend_scn": "y",
        "auto_scn_time_win": "y",
        "export_coh_ps_min": 0.8,
        "export_tcoh_min": 0.7,
    },
}
PRESETS["faithful"] = {name: None for name in PRESETS["accurate"]}


def apply_preset(run_dir: str | Path, name: str) -> list[tuple[str, Any]]:
    """Set every parameter of preset ``name`` (:data:`PRESETS`) in the run's parms.json.

    'faithful' puts them back to their StaMPS defaults. Returns (name, value) as stored.
    """
    if name not in PRESETS:
        raise StampsError(f"preset '{name}': choose one of {', '.join(sorted(PRESETS))}")
    done = []
    for parm, value in PRESETS[name].items():
        if value is None:
            done.append(reset_parm(run_dir, parm))
        else:
            done.append(set_parm(run_dir, parm, value))
    return done

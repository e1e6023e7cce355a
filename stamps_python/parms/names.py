"""Parameter names: exact names, unique prefixes (as StaMPS ``setparm``) and obsolete names."""

from __future__ import annotations

import difflib

from stamps_python.parms.spec import PARAMETERS
from stamps_python.utils import StampsError

OBSOLETE: dict[str, str] = {
    "unwrap_ifg_index": "replaced by drop_ifg_index (list the interferograms to leave OUT)",
    "recalc_index": "replaced by scla_drop_index (list the interferograms to leave OUT of SCLA)",
    "sb_recalc_index": "replaced by sb_scla_drop_index (list the SB interferograms to leave OUT)",
    "weed_alpha": "replaced by weed_time_win (Gaussian time window in days)",
    "plot_pixel_size": "replaced by plot_scatterer_size (in m; old value x 25)",
    "pixel_aspect_ratio": "removed from StaMPS; it has no replacement",
}


def _nearest(name: str) -> str:
    best = difflib.get_close_matches(name, list(PARAMETERS), n=1, cutoff=0.0)
    return best[0]


def _obsolete_error(name: str) -> StampsError:
    return StampsError(f"parameter '{name}' is obsolete: {OBSOLETE[name]}")


def check_name(name: str) -> str:
    """Return ``name`` if it is an exact parameter name; otherwise a one-line StampsError."""
    if name in PARAMETERS:
        return name
    if name in OBSOLETE:
        raise _obsolete_error(name)
    raise StampsError(f"unknown parameter '{name}'; did you mean '{_nearest(name)}'?")


def resolve_name(name: str) -> str:
    """Full parameter name from a name or a unique prefix of one (as StaMPS ``setparm``)."""
    name = str(name).strip()
    if name in PARAMETERS:
        return name
    if name in OBSOLETE:
        raise _obsolete_error(name)
    matches = [n for n in PARAMETERS if n.startswith(name)] if name else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise StampsError(f"parameter '{name}' is ambiguous: it could be {', '.join(matches)}")
    old = [n for n in OBSOLETE if name and n.startswith(name)]
    if len(old) == 1:
        raise _obsolete_error(old[0])
    raise StampsError(f"unknown parameter '{name}'; did you mean '{_nearest(name)}'?")

"""StaMPS processing parameters: ``parms.json`` / ``localparms.json`` and their validation.

StaMPS keeps its parameters in ``parms.mat`` (shared by all patches, created by
``ps_parms_initial`` / ``sb_parms_initial`` and completed by ``ps_parms_default``) and an optional
``localparms.mat`` (per directory, overriding ``parms.mat``). Here they are JSON files with the
same parameter names, defaults and units. JSON has no infinity, so ``inf`` / ``-inf`` / ``NaN``
are written as the strings ``"inf"``, ``"-inf"`` and ``"nan"``; vectors are JSON lists and
``'y'``/``'n'`` flags are strings, as in StaMPS.

The modules (everything public is importable from here):

- :mod:`~stamps_python.parms.spec`: the parameter table (:class:`ParmSpec`, :data:`PARAMETERS`,
  the defaults, the docs/parameters.md table);
- :mod:`~stamps_python.parms.names`: exact names, unique prefixes, obsolete names;
- :mod:`~stamps_python.parms.validate`: checking and converting values;
- :mod:`~stamps_python.parms.store`: reading, writing and layering the JSON files;
- :mod:`~stamps_python.parms.presets`: the ``accurate`` / ``faithful`` presets;
- :mod:`~stamps_python.parms.access`: what the steps call (``flag``, ``number``, ...).

The command line is :mod:`stamps_python.stamps_parms`.
"""

from stamps_python.parms.access import (
    drop_ifg_index0,
    flag,
    ifg_index0,
    number,
    required,
    with_defaults,
)
from stamps_python.parms.names import OBSOLETE, check_name, resolve_name
from stamps_python.parms.presets import PRESETS, apply_preset
from stamps_python.parms.spec import (
    ABSENT,
    BEYOND_STAMPS,
    INF,
    NAN,
    PARAMETERS,
    ParmSpec,
    default_parms,
    format_value,
    parameters_markdown,
)
from stamps_python.parms.store import (
    LOCALPARMS_FILE,
    PARMS_FILE,
    dumps,
    find_parms_file,
    get_parm,
    load_parms,
    parm_sources,
    read_local_parms,
    reset_parm,
    set_parm,
    write_parms,
)
from stamps_python.parms.validate import validate_parm

__all__ = [
    "ABSENT",
    "BEYOND_STAMPS",
    "INF",
    "LOCALPARMS_FILE",
    "NAN",
    "OBSOLETE",
    "PARAMETERS",
    "PARMS_FILE",
    "PRESETS",
    "ParmSpec",
    "apply_preset",
    "check_name",
    "default_parms",
    "drop_ifg_index0",
    "dumps",
    "find_parms_file",
    "flag",
    "format_value",
    "get_parm",
    "ifg_index0",
    "load_parms",
    "number",
    "parameters_markdown",
    "parm_sources",
    "read_local_parms",
    "required",
    "reset_parm",
    "resolve_name",
    "set_parm",
    "validate_parm",
    "with_defaults",
    "write_parms",
]

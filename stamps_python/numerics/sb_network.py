"""Small Baseline interferogram network: pair selection, connectivity, design matrix, pair list.

Pure functions behind ``define_sb_pairs`` and ``sb_invert_uw``:

* :func:`sb_find_pairs` chooses the pairs as StaMPS ``sb_find`` (coherence model in temporal and
  perpendicular baseline, plus each image's best partner), inside hard limits on both baselines,
  and optionally tops up poorly connected dates;
* :func:`network_components` / :func:`check_connected` find dates the network leaves isolated;
* :func:`sb_design_matrix` is the (n_ifg, n_image) matrix that inverts SB phase to single master.

StaMPS' ``small_baselines.list`` is read and written by :mod:`stamps_python.io.sb_list`.

Image indices are 0-based; days are in days (MATLAB datenums or any common origin), baselines in m.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from stamps_python.utils import (
    StampsError,
    datestr,
    get_logger,
)

# StaMPS sb_find defaults: minimum modelled coherence, days and metres of total decorrelation.
RHO_MIN = 0.5
DDIFF_MAX = 1500.0
BDIFF_MAX = 1070.0
_MAX_NAMED = 12  # dates named in one error message before "and N more"


def _positive(value: float, name: str) -> float:
    """``value`` as a float if it is > 0 (inf allowed), else a StampsError naming ``name``."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise StampsError(f"{name}: {value!r} is not a number") from None
    if not out > 0:
        raise StampsError(f"{name}: {value!r} must be greater than 0")
    return out


def _names(days: np.ndarray, dates: Sequence[str] | None) -> list[str]:
    """Labels of the images for messages: ``dates``, else YYYYMMDD of datenums, else indices."""
    if dates is not None:
        return [str(d) for d in dates]
    try:
        return [datestr(d) for d in days]
    except (ValueError, OverflowError):
        return [f"image {i}" for i in range(len(days))]


def _join(names: Sequence[str]) -> str:
    """Comma-separated names, cut after ``_MAX_NAMED`` with a count of the rest."""
    if len(names) <= _MAX_NAMED:
        return ", ".join(names)
    return f"{', '.join(names[:_MAX_NAMED])} and {len(names) - _MAX_NAMED} more"


def coherence_model(
    days: np.ndarray, bperp: np.ndarray, ddiff_max: float = DDIFF_MAX, bdiff_max: float = BDIFF_MAX
) -> np.ndarray:
    """(n, n) modelled coherence of every image pair, as ``sb_find``.

    rho = (1 - |dB| / bdiff_max) (1 - |dt| / ddiff_max), 0 where |dB| > bdiff_max (m) or
    |dt| > ddiff_max (days), and 0 on the diagonal.
    """
    days = np.asarray(days, dtype=np.float64)
    bperp = np.asarray(bperp, dtype=np.float64)
    dt = np.abs(days[:, None] - days[None, :])
    db = np.abs(bperp[:, None] - bperp[None, :])
    rho = (1.0 - db / bdiff_max) * (1.0 - dt / ddiff_max)
    rho[(db > bdiff_max) | (dt > ddiff_max)] = 0.0
    np.fill_diagonal(rho, 0.0)
    return rho


def sb_find_pairs(
    days: Sequence[float] | np.ndarray,
    bperp: Sequence[float] | np.ndarray,
    max_temporal: float,
    max_perpendicular: float,
    rho_min: float = RHO_MIN,
    ddiff_max: float = DDIFF_MAX,
    bdiff_max: float = BDIFF_MAX,
    min_connections: int = 1,
    *,
    dates: Sequence[str] | None = None,
) -> np.ndarray:
    """Small-baseline pairs (n_pairs, 2) of 0-based image indices, earlier image first, sorted.

    ``days`` per image (days), ``bperp`` per image (m). A pair is eligible when
    |dt| <= ``max_temporal`` (days) and |dB| <= ``max_perpendicular`` (m). As StaMPS ``sb_find``,
    eligible pairs with modelled coherence rho > ``rho_min`` are kept (see
    :func:`coherence_model`), and every image is paired with its best eligible partner (highest
    rho; ties go to the shorter time span, then the lower index). Then each image, in date order,
    with fewer than ``min_connections`` pairs gets its next-best eligible partners until it has
    that many; an image with fewer eligible partners than that is logged as a warning. Images with
    no eligible partner stay unpaired (see :func:`check_connected`). ``dates`` (YYYYMMDD) only
    name images in messages.
    """
    days = np.asarray(days, dtype=np.float64).ravel()
    bperp = np.asarray(bperp, dtype=np.float64).ravel()
    n = days.size
    if bperp.size != n:
        raise StampsError(f"{n} dates but {bperp.size} perpendicular baselines")
    if n < 2:
        raise StampsError(f"a small-baseline network needs at least 2 dates, got {n}")
    if not (np.all(np.isfinite(days)) and np.all(np.isfinite(bperp))):
        raise StampsError("dates and perpendicular baselines must be finite numbers")
    if np.unique(days).size != n:
        raise StampsError("the same date appears twice")
    max_temporal = _positive(max_temporal, "--max-temporal")
    max_perpendicular = _positive(max_perpendicular, "--max-perpendicular")
    ddiff_max = _positive(ddiff_max, "ddiff_max")
    bdiff_max = _positive(bdiff_max, "bdiff_max")
    if not np.isfinite(float(rho_min)):
        raise StampsError(f"--rho-min: {rho_min!r} must be a finite number")
    if int(min_connections) != min_connections or min_connections < 1:
        raise StampsError(f"--min-connections: {min_connections!r} must be a whole number >= 1")
    min_connections = int(min_connections)

    rho = coherence_model(days, bperp, ddiff_max, bdiff_max)
    dt = np.abs(days[:, None] - days[None, :])
    db = np.abs(bperp[:, None] - bperp[None, :])
    eligible = (dt <= max_temporal) & (db <= max_perpendicular)
    np.fill_diagonal(eligible, False)
    selected = eligible & (rho > float(rho_min))

    # partners of each image, best first: rho descending, then shorter span, then lower index
    ranked: list[np.ndarray] = []
    for i in range(n):
        cand = np.flatnonzero(eligible[i])
        ranked.append(cand[np.lexsort((cand, dt[i, cand], -rho[i, cand]))])
    for i in range(n):
        if ranked[i].size:
            j = ranked[i][0]
            selected[i, j] = selected[j, i] = True
    short: list[str] = []
    names = None
    for i in range(n):
        degree = int(selected[i].sum())
        for j in ranked[i]:
            if degree >= min_connections:
                break
            if not selected[i, j]:
                selected[i, j] = selected[j, i] = True
                degree += 1
        if 0 < degree < min_connections:
            names = names or _names(days, dates)
            short.append(f"{names[i]} ({degree})")
    if short:
        get_logger().warning(
            "fewer than %d eligible partners (pairs made): %s; widen "
            "--max-temporal/--max-perpendicular for more",
            min_connections,
            _join(short),
        )

    i_ix, j_ix = np.nonzero(np.triu(selected, 1))
    first = np.where(days[i_ix] < days[j_ix], i_ix, j_ix)
    second = np.where(days[i_ix] < days[j_ix], j_ix, i_ix)
    order = np.lexsort((second, first))
    return np.column_stack([first[order], second[order]]).astype(np.int64).reshape(-1, 2)


def network_components(n_image: int, pairs: np.ndarray) -> list[np.ndarray]:
    """Connected components of the images linked by ``pairs`` (k, 2) 0-based.

    Each component is a sorted array of image indices; components are ordered by their lowest
    index. An image in no pair is a component of its own.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n_image):
        raise StampsError(f"pair indices must be 0..{n_image - 1}")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_image, n_image))
    _, labels = connected_components(graph, directed=False)
    comps = [np.flatnonzero(labels == lab) for lab in np.unique(labels)]
    return sorted(comps, key=lambda c: int(c[0]))


def check_connected(
    dates: Sequence[str],
    pairs: np.ndarray,
    reference_index: int | None = None,
    hint: str = "increase --max-temporal or --max-perpendicular",
) -> None:
    """Raise a StampsError naming the dates not connected to the rest of the network.

    The main network is the component holding ``reference_index`` (0-based), or the largest one
    (the earliest on a tie) when no reference is given; every other date is named.
    """
    n = len(dates)
    comps = network_components(n, pairs)
    if len(comps) <= 1:
        return
    if reference_index is not None:
        if not 0 <= int(reference_index) < n:
            raise StampsError(f"reference index {reference_index} is outside 0..{n - 1}")
        main = next(c for c in comps if int(reference_index) in c)
        anchor = str(dates[int(reference_index)])
    else:
        main = max(comps, key=len)
        anchor = f"the other {len(main)} dates ({dates[main[0]]}..{dates[main[-1]]})"
    isolated = [str(dates[i]) for i in range(n) if i not in set(main.tolist())]
    verb = "is" if len(isolated) == 1 else "are"
    raise StampsError(
        f"small baseline network is disconnected: {_join(isolated)} {verb} not "
        f"connected to {anchor} ({hint})"
    )


def sb_design_matrix(ifgday_ix: np.ndarray, n_image: int, master_ix: int) -> np.ndarray:
    """(n_ifg, n_image) design matrix: -1 at the first image, +1 at the second, master column 0.

    ``ifgday_ix`` (n_ifg, 2) 0-based. Single-master phase m (n_image,) relative to the master
    gives the SB phase G @ m, as ``sb_invert_uw`` sets it up.
    """
    ix = np.asarray(ifgday_ix, dtype=np.int64).reshape(-1, 2)
    if ix.size and (ix.min() < 0 or ix.max() >= n_image):
        raise StampsError(f"ifgday_ix: image indices must be 0..{n_image - 1}")
    if np.any(ix[:, 0] == ix[:, 1]):
        raise StampsError("ifgday_ix: an interferogram pairs an image with itself")
    if not 0 <= int(master_ix) < n_image:
        raise StampsError(f"master_ix {master_ix} is outside 0..{n_image - 1}")
    G = np.zeros((ix.shape[0], int(n_image)))
    rows = np.arange(ix.shape[0])
    G[rows, ix[:, 0]] = -1.0
    G[rows, ix[:, 1]] = 1.0
    G[:, int(master_ix)] = 0.0
    return G

"""What ``cr_insar`` writes in OUTDIR: ``cr_insar.csv`` and ``cr_insar.gpkg`` (one row / point
per CR), ``cr_insar_scr.csv`` (SCR per CR and date), ``cr_insar_series.csv`` (the time series
of the method and of both baselines), ``cr_insar_gnss.csv`` with ``--gnss``, and the PNGs
(coherence surface, time series, amplitude chip of each CR). Every file is written atomically."""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stamps_python.utils import atomic_output

LAYER = "cr_insar"


def write_csv(path: Path, columns: Mapping[str, Sequence[Any]]) -> Path:
    """A CSV with one column per key (floats with 6 decimals, NaN as empty)."""
    import pandas as pd

    with atomic_output(path) as tmp:
        pd.DataFrame(dict(columns)).to_csv(tmp, index=False, float_format="%.6f")
    return path


def write_gpkg(path: Path, columns: Mapping[str, Sequence[Any]], metadata: Mapping) -> Path:
    """EPSG:4326 points at ``lon``/``lat`` with every column as a field (GeoPackage 1.2, as
    export_results writes)."""
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    frame = pd.DataFrame(dict(columns))
    geo = gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326"
    )
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        pyogrio.write_dataframe(
            geo, tmp, driver="GPKG", layer=LAYER, layer_metadata=meta,
            dataset_options={"VERSION": "1.2"},
        )  # fmt: skip
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def plot_coherence(path: Path, name: str, fit) -> Path:
    """The temporal coherence on the (v, dh) grid (the paper's Figure 1), with the refined
    maximum and the second-best peak."""
    fig = _figure((7.0, 5.0))
    ax = fig.add_subplot(1, 1, 1)
    dv = fit.v_grid[1] - fit.v_grid[0] if fit.v_grid.size > 1 else 1.0
    dh = fit.dh_grid[1] - fit.dh_grid[0] if fit.dh_grid.size > 1 else 1.0
    extent = (fit.dh_grid[0] - dh / 2, fit.dh_grid[-1] + dh / 2,
              fit.v_grid[0] - dv / 2, fit.v_grid[-1] + dv / 2)  # fmt: skip
    im = ax.imshow(fit.surface, origin="lower", aspect="auto", extent=extent, vmin=0, vmax=1,
                   cmap="viridis")  # fmt: skip
    fig.colorbar(im, ax=ax, label="temporal coherence")
    ax.plot(fit.dh, fit.v, "r+", ms=14, mew=2, label=f"max {fit.gamma:.3f}")
    if fit.second_ratio > 0:
        ax.plot(fit.second_dh, fit.second_v, "wx", ms=10, mew=2,
                label=f"second peak {fit.second_ratio:.2f}")  # fmt: skip
    ax.set_xlabel("DEM error dh (m)")
    ax.set_ylabel("LOS velocity v (mm/yr)")
    ax.set_title(f"{name}: v = {fit.v:.2f} mm/yr, dh = {fit.dh:.2f} m")
    ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path)


def plot_series(
    path: Path, name: str, dates: Sequence[str], series: Mapping[str, np.ndarray]
) -> Path:
    """The displacement time series of one CR (mm), the method beside the baselines."""
    when = [_dt.datetime.strptime(d, "%Y%m%d") for d in dates]
    fig = _figure((8.0, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    styles = {"coherence": "o-", "periodogram": "s--", "unwrapping": "^:", "truth": "k-"}
    for label, values in series.items():
        ax.plot(when, values, styles.get(label, "-"), ms=4, label=label)
    ax.set_ylabel("LOS displacement (mm, toward the satellite +)")
    ax.set_title(f"{name}: relative to the reference CR")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    return _save(fig, path)


def plot_chip(path: Path, name: str, located, given: tuple[float, float]) -> Path:
    """Mean amplitude of the SLC chip (dB) and the oversampled intensity near the peak, with
    the listed position and the sub-pixel peak."""
    fig = _figure((10.0, 4.5))
    r0, c0 = located.origin
    h, w = located.mean_amp.shape
    ax = fig.add_subplot(1, 2, 1)
    ax.imshow(20 * np.log10(located.mean_amp + 1e-12), cmap="gray", origin="upper",
              extent=(c0 - 0.5, c0 + w - 0.5, r0 + h - 0.5, r0 - 0.5))  # fmt: skip
    ax.plot(given[1], given[0], "cx", ms=10, mew=2, label="listed")
    ax.plot(located.sample, located.line, "r+", ms=12, mew=2, label="peak")
    ax.set_xlabel("sample")
    ax.set_ylabel("line")
    ax.set_title(f"{name}: mean amplitude (dB)")
    ax.legend(loc="upper right", fontsize="small")
    ax2 = fig.add_subplot(1, 2, 2)
    fy, fx = located.fine_y + r0, located.fine_x + c0
    ax2.imshow(10 * np.log10(located.fine + 1e-12), cmap="magma", origin="upper",
               extent=(fx[0], fx[-1], fy[-1], fy[0]))  # fmt: skip
    ax2.plot(located.sample, located.line, "c+", ms=12, mew=2)
    ax2.set_xlabel("sample")
    ax2.set_title(f"oversampled intensity: {located.line:.3f}, {located.sample:.3f}")
    return _save(fig, path)

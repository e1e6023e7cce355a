"""ps_plot PNGs (velocity map, time series, wrapped and unwrapped panels) on a hand-made run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg
from test_export import make_run  # the hand-made run of test_export.py (same folder)

from stamps_python.export_results import cli as export_cli
from stamps_python.numerics.timeseries import parse_correction
from stamps_python.ps_plot import (
    DPI,
    MAP_SIZE_IN,
    cli,
    make_plots,
    nearest_ps,
    parse_point,
    plot_velocity_map,
    unwrapped_phase,
    wrapped_phase,
)
from stamps_python.results import compute_results, load_run
from stamps_python.utils import StampsError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("plots") / "run"
    return root, make_run(root, n_ps=250, n_dates=10, master_ix=4)


def _png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 5000
    return mpimg.imread(path)


def test_velocity_map_size_and_colours(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lonlat = np.array([-120.5, 37.0]) + rng.uniform(-0.01, 0.01, (400, 2))
    vel = np.where(lonlat[:, 0] > -120.5, 10.0, -10.0)
    img = _png(plot_velocity_map(lonlat, vel, "test v-do", tmp_path / "v.png"))
    assert img.shape[:2] == (round(MAP_SIZE_IN[1] * DPI), round(MAP_SIZE_IN[0] * DPI))
    rgb = img[..., :3].reshape(-1, 3)
    # the diverging map shows both ends: reddish (away) and bluish (toward) pixels
    assert np.sum((rgb[:, 0] > 0.6) & (rgb[:, 2] < 0.3)) > 200
    assert np.sum((rgb[:, 2] > 0.6) & (rgb[:, 0] < 0.4)) > 200


def test_nearest_ps_and_points() -> None:
    lonlat = np.array([[-120.50, 37.00], [-120.49, 37.00], [-120.48, 37.01]])
    ix, dist = nearest_ps(lonlat, (-120.5, 37.0), np.array([[-120.4899, 37.0001], [-120.0, 37.0]]))
    assert ix.tolist() == [1, 2]
    assert dist[0] < 20 and dist[1] > 30000
    assert parse_point("-120.5,37.25") == (-120.5, 37.25)
    with pytest.raises(StampsError):
        parse_point("120.5;37")
    with pytest.raises(StampsError):
        parse_point("10,95")


def test_make_plots_all_pngs(run: tuple[Path, dict], tmp_path: Path) -> None:
    root, truth = run
    r = load_run(root)
    res = compute_results(r, parse_correction("v-dso"), n_boot=10)
    paths = make_plots(r, res, tmp_path, [tuple(truth["lonlat"][5]), tuple(truth["lonlat"][9])])
    names = [p.name for p in paths]
    assert names == [
        "ps_plot_v-dso_velocity.png",
        "ps_plot_v-dso_ts.png",
        "ps_plot_w.png",
        "ps_plot_u-dmos.png",
    ]
    sizes = [_png(p).shape[:2] for p in paths]
    assert sizes[0] == (750, 900)
    assert sizes[1] == (round((3.2 * 2 + 0.6) * DPI), 1000)  # two time-series panels
    assert all(h > 200 and w > 200 for h, w in sizes[2:])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_panel_values_known(run: tuple[Path, dict]) -> None:
    root, truth = run
    r = load_run(root)
    res = compute_results(r, parse_correction("v-dso"), n_boot=5)
    uw, name = unwrapped_phase(r, res)
    assert name == "u-dmos"  # StaMPS' value type: minus SCLA, master AOE, ramps and SCN
    ph_def = -4 * np.pi / 0.05546576 * truth["disp"] / 1000
    np.testing.assert_allclose(uw, ph_def - ph_def.mean(0), atol=1e-4)
    w = wrapped_phase(r, res.ts.ref_ix)
    ph = np.exp(1j * truth["ph_uw"][:, 2])
    expected = np.angle(ph * np.conj(ph.sum()))
    np.testing.assert_allclose(np.exp(1j * w[:, 2]), np.exp(1j * expected), atol=1e-5)
    assert np.all(w[:, truth["master_ix"]] == 0)


def test_ps_plot_cli(run: tuple[Path, dict], tmp_path: Path, capsys) -> None:
    root, truth = run
    lon, lat = truth["lonlat"][3]
    assert (
        cli(
            [
                str(root),
                "--correction",
                "v-do",
                "--ts-points",
                f"{lon},{lat}",
                "--output-dir",
                str(tmp_path),
                "--n-boot",
                "5",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.split()
    assert len(out) == 4 and all(Path(p).is_file() for p in out)
    assert cli([str(root), "--correction", "v-q"]) == 1
    assert cli([str(root), "--ts-points", "abc"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "v-q" in err and "abc" in err


def test_export_plot_flag_and_script(run: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = run
    assert (
        export_cli(
            [
                "--input-path",
                str(root),
                "--output-dir",
                str(tmp_path / "e"),
                "--correction",
                "v-d",
                "--plot",
                "--n-boot",
                "5",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == [
        "ps_plot_u-dm.png",
        "ps_plot_v-d_ts.png",
        "ps_plot_v-d_velocity.png",
        "ps_plot_w.png",
        "ps_v-d.gpkg",
    ]
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "stamps_python" / "ps_plot.py"),
            str(root),
            "--correction",
            "v-o",
            "--ts-points",
            "-120.5,37.0",
            "--output-dir",
            str(tmp_path / "s"),
            "--n-boot",
            "5",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "s" / "ps_plot_v-o_ts.png").stat().st_size > 5000

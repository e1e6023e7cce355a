"""export_results --format html: one self-contained page whose packed series decode to the
GeoPackage's D fields; in a real browser (headless Chromium) when one is installed."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN_MERGED, GOLDEN_REFERENCE
from test_export import make_run

from stamps_python.export_results import cli
from stamps_python.html_view import pack_series, quant_step, unpack_series
from stamps_python.io.isce import bootstrap_metadata, open_stack
from stamps_python.rundir import write_metadata

REPO = Path(__file__).resolve().parents[1]
CORRECTIONS = ("v-do", "v-dso")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("html") / "run"
    make_run(root)
    out = root.parent / "export"
    args = [str(root), "--output-dir", str(out), "--format", "html", "--n-boot", "5"]
    assert cli(args + [a for c in CORRECTIONS for a in ("--correction", c)]) == 0
    return out


def _page(path: Path) -> tuple[str, dict, dict[str, bytes]]:
    text = path.read_text(encoding="utf-8")
    meta = json.loads(
        re.search(r'<script type="application/json" id="stamps-meta">(.*?)</script>', text, re.S)[1]
    )
    blobs = {
        m[1]: base64.b64decode(m[2])
        for m in re.finditer(
            r'<script type="application/octet-stream" id="([^"]+)">([^<]*)</script>', text
        )
    }
    return text, meta, blobs


def _layer(path: Path) -> dict[str, np.ndarray]:
    import pyogrio

    frame = pyogrio.read_dataframe(path)
    dnames = [c for c in frame.columns if c.startswith("D") and c[1:].isdigit()]
    return {
        "CODE": frame["CODE"].to_numpy(),
        "VEL": frame["VEL"].to_numpy(),
        "D": frame[dnames].to_numpy(np.float64),
        "dates": [c[1:] for c in dnames],
    }


def test_one_self_contained_file(export: Path) -> None:
    assert sorted(p.name for p in export.iterdir()) == [
        "ps_v-do.gpkg",
        "ps_v-dso.gpkg",
        "ps_view.html",
    ]
    text, meta, _ = _page(export / "ps_view.html")
    assert "plotly.js v" in text  # inlined, not fetched
    assert not re.search(r"<script[^>]+\bsrc=", text)
    assert not re.search(r"<link\b", text)
    assert not re.search(r"<img[^>]+src=[\"']https?:", text)
    assert "mapbox" not in json.dumps(meta) and '"type":"scattergl"' in text.replace(" ", "")
    assert "data:image/png;base64," in text  # the background, embedded
    assert meta["background"] == "PS heights (hgt2)"  # no metadata.json: no stack
    assert [c["name"] for c in meta["corrections"]] == list(CORRECTIONS)


@pytest.mark.parametrize("k", range(len(CORRECTIONS)))
def test_packed_series_decode_to_d_fields(export: Path, k: int) -> None:
    _, meta, blobs = _page(export / "ps_view.html")
    corr = meta["corrections"][k]
    layer = _layer(export / f"ps_{corr['name']}.gpkg")
    n, m = layer["D"].shape
    assert corr["n"] == n and corr["dates"] == layer["dates"]
    q = np.frombuffer(blobs[f"stamps-ts-{k}"], dtype="<i2").reshape(n, m)
    series = unpack_series(q, corr["step"])
    assert np.abs(series - layer["D"]).max() <= corr["step"] / 2 + 1e-12
    assert corr["step"] <= np.abs(layer["D"]).max() / 32767 * 5
    np.testing.assert_array_equal(np.frombuffer(blobs[f"stamps-code-{k}"], "<i4"), layer["CODE"])
    np.testing.assert_array_equal(
        np.frombuffer(blobs[f"stamps-vel-{k}"], "<f4"), layer["VEL"].astype(np.float32)
    )
    ref = corr["dates"].index(corr["reference_date"])
    assert np.all(series[:, ref] == 0) and corr["t_yr"][ref] == 0


def test_pack_series() -> None:
    assert quant_step(60.0) == pytest.approx(0.002)
    assert quant_step(32.767) == pytest.approx(0.001)
    assert quant_step(32.768) == pytest.approx(0.002)
    assert quant_step(5000.0) == pytest.approx(0.2)
    d = np.array([[0.0, 1.23456, -59.9], [np.nan, 60.0, 0.0011]])
    q, step = pack_series(d)
    assert q.dtype == np.int16 and step == pytest.approx(0.002)
    back = unpack_series(q, step)
    assert np.isnan(back[1, 0]) and q[1, 0] == -32768
    assert np.nanmax(np.abs(back - d)) <= step / 2


def test_background_from_the_stack(tmp_path: Path) -> None:
    root = tmp_path / "run"
    make_run(root, n_ps=60, n_dates=6, master_ix=2)
    write_metadata(root, bootstrap_metadata(open_stack(GOLDEN_MERGED), GOLDEN_REFERENCE))
    assert cli([str(root), "--output-dir", str(tmp_path), "--format", "html", "--n-boot", "3"]) == 0
    _, meta, _ = _page(tmp_path / "ps_view.html")
    assert meta["background"] == "stack DEM (hgt.rdr.full)"


@pytest.mark.skipif(
    shutil.which("chromium") is None and not Path("/usr/bin/chromium").is_file(),
    reason="no Chromium (apt-get install chromium)",
)
def test_in_headless_chromium(export: Path, tmp_path: Path) -> None:
    pytest.importorskip("playwright", reason="no playwright (pip install playwright)")
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "html_check.py"),
            str(export),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "html_check.json").read_text())
    assert report["failures"] == [] and len(report["checks"]) >= 5
    assert (tmp_path / "html_click_v-do.png").stat().st_size > 10_000

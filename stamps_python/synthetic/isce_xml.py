"""The files of the ISCE2 topsStack layout: the bursts and merged valid mask they describe,
``reference/IW1.xml``, ``merged/SLC``, ``merged/geom_reference`` (full resolution and 3x9 looks),
the text baselines and ``merged/baselines`` grids; the rasters' ``.xml``/``.vrt``/``.hdr``
sidecars come from :mod:`stamps_python.io.isce_sidecars`."""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stamps_python.io.isce_sidecars import (
    Comp,
    Prop,
    render_isce_xml,
    resampled_vrt,
    write_raster,
    write_sidecars,
)
from stamps_python.synthetic.constants import (
    AZIMUTH_TIME_INTERVAL_S,
    PRF_HZ,
    RANGE_PIXEL_M,
    RANGE_SAMPLING_RATE_HZ,
    WAVELENGTH_M,
)
from stamps_python.synthetic.orbit import _Orbit
from stamps_python.utils import atomic_output

AZIMUTH_LOOKS = 3
RANGE_LOOKS = 9


ISCE_ROOT = "/data/s1_stack"  # path recorded in the XML/HDR sidecars (as ISCE records its own)


@dataclass
class _Burst:
    """One burst of the swath, in merged-line / sample indices."""

    start_line: int  # first merged line covered by the burst
    n_lines: int
    first_valid_line: int
    n_valid_lines: int
    first_valid_sample: int
    n_valid_samples: int


def _make_bursts(rows: int, cols: int, rng: np.random.Generator) -> tuple[list[_Burst], np.ndarray]:
    """Bursts of the swath and the merged valid mask (True = data, False = zero fill).

    Merged lines belong to the burst above them ('top' merge); each burst has its own first
    valid sample (near-range zero band) and far-range invalid samples; the first burst's first
    lines and the last burst's last lines are invalid too.
    """
    nb = max(2, math.ceil(rows / 1350))
    step = math.ceil(rows / nb)
    overlap = max(2, round(0.1 * step))
    edge = max(1, min(cols // 40, 12))
    top = int(rng.integers(1, max(2, min(4, rows // 30)) + 1))
    bottom = int(rng.integers(1, max(2, min(4, rows // 30)) + 1))
    valid = np.zeros((rows, cols), dtype=bool)
    bursts = []
    for k in range(nb):
        start = k * step
        end_owned = min(rows, (k + 1) * step)
        n_lines = min(step + overlap, rows - start)
        near = int(rng.integers(max(1, edge // 2), edge + 1)) + 2
        far = int(rng.integers(1, max(2, edge // 2) + 1))
        fvl = top if k == 0 else overlap // 2
        last_valid = n_lines - (bottom if k == nb - 1 else overlap // 2)
        bursts.append(_Burst(start, n_lines, fvl, last_valid - fvl, near, cols - near - far))
        lo = start + fvl if k == 0 else start
        hi = min(end_owned, start + last_valid) if k == nb - 1 else end_owned
        valid[lo:hi, near : cols - far] = True
    return bursts, valid


def _isce_time(t: _dt.datetime) -> str:
    """ISCE's UTC time text, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def _reference_product_xml(
    *,
    bursts: list[_Burst],
    cols: int,
    first_line_utc: _dt.datetime,
    orbit: _Orbit,
    t_first_line: float,
    starting_range: float,
    pass_direction: str,
    terrain_height: float,
) -> str:
    """Text of ``reference/IW1.xml`` (an ISCE ``TOPSSwathSLCProduct``)."""
    n_rows_total = bursts[-1].start_line + bursts[-1].n_lines
    t_mid = t_first_line + 0.5 * (n_rows_total - 1) * AZIMUTH_TIME_INTERVAL_S
    sv_times = t_mid + np.arange(-3, 4) * 10.0
    sv_times = np.round(sv_times)
    pos = orbit.position(sv_times)
    vel = orbit.velocity(sv_times)

    def utc(t: float) -> _dt.datetime:
        return first_line_utc + _dt.timedelta(seconds=float(t - t_first_line))

    state_vectors = [
        Comp(
            f"statevector{k + 1}",
            [
                Prop("position", str([float(x) for x in pos[k]])),
                Prop("time", _isce_time(utc(sv_times[k]))),
                Prop("velocity", str([float(x) for x in vel[k]])),
            ],
            factorymodule="isceobj.Orbit.Orbit",
            factoryname="createStateVector",
        )
        for k in range(sv_times.size)
    ]
    # ascending node: latest northward equator crossing before the scene
    zc, zs = orbit.s0[2], orbit.a[2]
    phi = math.atan2(zs, zc)
    t_an = (((phi - math.pi / 2) % (2 * math.pi)) - 2 * math.pi) / orbit.omega
    burst_comps = []
    for k, b in enumerate(bursts):
        start = first_line_utc + _dt.timedelta(seconds=b.start_line * AZIMUTH_TIME_INTERVAL_S)
        stop = start + _dt.timedelta(seconds=(b.n_lines - 1) * AZIMUTH_TIME_INTERVAL_S)
        orbit_comp = Comp(
            "orbit",
            [
                Prop("orbitquality", "Precise", "Orbit quality"),
                Prop("orbitreferenceframe", "ECR", "Orbit reference frame"),
                Prop(
                    "orbitsource",
                    "synthetic circular orbit (non-rotating spherical Earth)",
                    "Orbit source",
                ),
                Comp(
                    "state_vectors",
                    state_vectors,
                    factorymodule="iscesys.Component",
                    factoryname="createTraitSeq",
                    doc="Testing Trait Sequence",
                ),
            ],
            factorymodule="isceobj.Orbit.Orbit",
            factoryname="createOrbit",
        )
        image = Comp(
            "image",
            [
                Prop("data_type", "CFLOAT", "Image data type."),
                Prop(
                    "file_name",
                    f"{ISCE_ROOT}/reference/IW1/burst_{k + 1:02d}.slc",
                    "Name of the image file.",
                ),
                Prop("length", b.n_lines, "Image length"),
                Prop("width", cols, "Image width"),
            ],
            factorymodule="isceobj.Image",
            factoryname="createSlcImage",
        )
        burst_comps.append(
            Comp(
                f"burst{k + 1}",
                [
                    Prop("azimuthprocessingbandwidth", 327.0, "Azimuth processing bandwidth"),
                    Prop(
                        "azimuthsteeringrate", 0.02775, "Azimuth steering rate in radians per sec"
                    ),
                    Prop(
                        "azimuthtimeinterval",
                        AZIMUTH_TIME_INTERVAL_S,
                        "Time interval between consecutive lines (sec)",
                    ),
                    Prop("azimuthwindowcoefficient", 0.7, "Azimuth window coefficient"),
                    Prop("azimuthwindowtype", "Hamming", "Azimuth window type"),
                    Prop("burstnumber", k + 1, "Burst number"),
                    Prop(
                        "burststartutc",
                        _isce_time(start),
                        "Actual sensing time corresponding to start of burst",
                    ),
                    Prop(
                        "burststoputc",
                        _isce_time(stop),
                        "Actual sensing time corresponding to end of burst",
                    ),
                    Prop("firstvalidline", b.first_valid_line, "First valid line in the burst"),
                    Prop(
                        "firstvalidsample", b.first_valid_sample, "First valid sample in the burst"
                    ),
                    Prop("framenumber", 0, "Frame number"),
                    image,
                    Prop("numberoflines", b.n_lines, "Number of lines in the burst"),
                    Prop("numberofsamples", cols, "Number of samples in the burst"),
                    Prop(
                        "numberofvalidlines", b.n_valid_lines, "Number of valid lines in the burst"
                    ),
                    Prop(
                        "numberofvalidsamples",
                        b.n_valid_samples,
                        "Number of valid samples in the burst",
                    ),
                    orbit_comp,
                    Prop("orbitnumber", 36000, "Orbit number"),
                    Prop(
                        "passdirection",
                        pass_direction,
                        "Ascending or descending direction of orbit",
                    ),
                    Prop("polarization", "vv", "Polarization"),
                    Prop("pulserepetitionfrequency", PRF_HZ, "pulse repetition frequency in Hz"),
                    Prop("radarwavelength", WAVELENGTH_M, "Radar wavelength", "m"),
                    Prop("rangepixelsize", RANGE_PIXEL_M, "Slant range pixel size", "m"),
                    Prop("rangeprocessingbandwidth", 56500000.0, "Range processing bandwidth"),
                    Prop("rangesamplingrate", RANGE_SAMPLING_RATE_HZ, "Range sampling rate", "Hz"),
                    Prop("rangewindowcoefficient", 0.75, "Range window coefficient"),
                    Prop("rangewindowtype", "Hamming", "Range window type"),
                    Prop(
                        "sensingstart",
                        _isce_time(start),
                        "UTC time corresponding to first line of burst SLC",
                    ),
                    Prop(
                        "sensingstop",
                        _isce_time(stop),
                        "UTC time corresponding to last line of burst SLC",
                    ),
                    Prop("startingrange", starting_range, "Slant range to first pixel in m", "m"),
                    Prop("swathnumber", 1, "Swath number"),
                    Prop(
                        "terrainheight", terrain_height, "Average terrain height used for focusing"
                    ),
                    Prop("tracknumber", 42, "Track number"),
                ],
                factorymodule="isceobj.Sensor.TOPS",
                factoryname="createBurstSLC",
            )
        )
    instance = Comp(
        "instance",
        [
            Prop(
                "ascendingnodetime",
                _isce_time(utc(t_an)),
                "Ascending node time corresponding to the acquisition",
            ),
            Comp(
                "bursts",
                burst_comps,
                factorymodule="iscesys.Component",
                factoryname="createTraitSeq",
                doc="Trait sequence of burst SLCs",
            ),
            Prop("folder", "synthetic.SAFE", "Folder name"),
            Prop("imagingmode", "TOPS", "Imaging mode"),
            Prop("mission", "S1", "Mission"),
            Prop("numberofbursts", len(bursts), "Number of bursts in the product"),
            Prop("processingfacility", "synthetic", "Processing facility information"),
            Prop("processingsoftwareversion", "synthetic", "Processing system software version"),
            Prop("processingsystem", "synthetic stack generator", "Processing system information"),
            Prop("spacecraftname", "Sentinel-1A", "Name of the space craft"),
        ],
        factorymodule="isceobj.Sensor.TOPS",
        factoryname="createTOPSSwathSLCProduct",
    )
    return render_isce_xml("productmanager_name", [instance])


def _write_text(path: Path, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _write_slc(outdir: Path, date: str, slc: np.ndarray) -> None:
    """Write ``merged/SLC/<date>/<date>.slc.full`` (complex64 (lines, samples), BIP) and its
    ``.xml``/``.vrt``/``.hdr``, as mergeBursts.py does."""
    rows, cols = slc.shape
    slc_path = outdir / "merged" / "SLC" / date / f"{date}.slc.full"
    with atomic_output(slc_path) as tmp:
        slc.tofile(tmp)
    write_sidecars(
        slc_path, width=cols, length=rows, dtype="c8", scheme="BIP",
        recorded_path=f"{ISCE_ROOT}/merged/SLC/{date}/{date}.slc.full", image_type="slc",
    )  # fmt: skip


def _write_baseline_text(
    outdir: Path, ref: str, sec: str, bperp: float, bpar: float, copies: bool
) -> None:
    """Write ``baselines/REF_SEC/REF_SEC.txt`` as computeBaseline.py does (average Bperp and
    Bpar, m) and, with ``copies``, the same file in ``merged/baselines/REF_SEC/``."""
    pair = f"{ref}_{sec}"
    text = f"swath: IW1\nBperp (average): {bperp!s}\nBpar (average): {bpar!s}\n"
    _write_text(outdir / "baselines" / pair / f"{pair}.txt", text)
    if copies:
        _write_text(outdir / "merged" / "baselines" / pair / f"{pair}.txt", text)


def _write_baseline_grid(
    outdir: Path, sec: str, grid_bperp: np.ndarray, rows: int, cols: int
) -> None:
    """Write ``merged/baselines/SEC/SEC`` (float32 Bperp grid (lines, samples), m) with ``.xml``
    and ``.vrt``, and ``SEC.full.vrt`` resampling it to the ``rows`` x ``cols`` merged raster, as
    baselineGrid.py does."""
    n_grid_a, n_grid_r = grid_bperp.shape
    gpath = outdir / "merged" / "baselines" / sec / sec
    with atomic_output(gpath) as tmp:
        grid_bperp.astype("<f4").tofile(tmp)
    write_sidecars(
        gpath, width=n_grid_r, length=n_grid_a, dtype="f4", scheme="BIP",
        recorded_path=f"{ISCE_ROOT}/merged/baselines/{sec}/{sec}", envi=False,
    )  # fmt: skip
    _write_text(
        gpath.with_name(f"{sec}.full.vrt"),
        resampled_vrt(
            source_vrt=f"{sec}.vrt", src_width=n_grid_r, src_length=n_grid_a,
            dst_width=cols, dst_length=rows,
        ),
    )  # fmt: skip


_GEOM_DESCRIPTIONS = {
    "hgt": "Pixel-by-pixel height in meters.",
    "lat": "Pixel-by-pixel latitude in degrees.",
    "lon": "Pixel-by-pixel longitude in degrees.",
    "los": (
        "Two channel Line-Of-Sight geometry image (all angles in degrees). Represents vector "
        "drawn from target to platform. Channel 1: Incidence angle measured from vertical at "
        "target (always +ve). Channel 2: Azimuth angle measured from North in Anti-clockwise "
        "direction."
    ),
    "incLocal": (
        "Two channel angle file. Channel 1: Angle between ray to target and the vertical at the "
        "sensor. Channel 2: Local incidence angle accounting for DEM slope at target"
    ),
    "shadowMask": "Radar shadow-layover mask. 1 - Radar Shadow. 2 - Radar Layover. 3 - Both.",
}


def _nearest_looks(a: np.ndarray) -> np.ndarray:
    """GDAL ``-outsize`` nearest-neighbour multilook by 3 (azimuth) x 9 (range) of (..., L, W)."""
    n_l = a.shape[-2] // AZIMUTH_LOOKS
    n_w = a.shape[-1] // RANGE_LOOKS
    sub = a[..., AZIMUTH_LOOKS // 2 :: AZIMUTH_LOOKS, RANGE_LOOKS // 2 :: RANGE_LOOKS]
    return np.ascontiguousarray(sub[..., :n_l, :n_w])


def _mean_looks(a: np.ndarray) -> np.ndarray:
    """ISCE ``Looks`` block mean by 3 x 9 (integer types truncated)."""
    n_l = a.shape[0] // AZIMUTH_LOOKS
    n_w = a.shape[1] // RANGE_LOOKS
    blocks = a[: n_l * AZIMUTH_LOOKS, : n_w * RANGE_LOOKS].reshape(
        n_l, AZIMUTH_LOOKS, n_w, RANGE_LOOKS
    )
    return blocks.mean(axis=(1, 3)).astype(a.dtype)


def _write_geometry_layer(geom_dir: Path, name: str, arr: np.ndarray, multilooked: bool) -> None:
    """Write ``<name>.rdr.full`` and (``multilooked``) the 3x9-look ``<name>.rdr``, as topsStack's
    mergeBursts.py does (GDAL nearest-neighbour looks; ISCE block-mean looks for shadowMask)."""
    image_type = "bil" if name == "los" else None
    root = f"{ISCE_ROOT}/merged/geom_reference"
    write_raster(
        geom_dir / f"{name}.rdr.full",
        arr,
        recorded_path=f"{root}/{name}.rdr.full",
        description=_GEOM_DESCRIPTIONS[name],
        image_type=image_type,
    )
    if multilooked:
        write_raster(
            geom_dir / f"{name}.rdr",
            _mean_looks(arr) if name == "shadowMask" else _nearest_looks(arr),
            recorded_path=f"{root}/{name}.rdr",
            description=_GEOM_DESCRIPTIONS[name],
            image_type=image_type,
        )

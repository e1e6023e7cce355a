"""Independent raw readers for ISCE rasters through their ``.xml`` (no GDAL), for tests only.

They check that what the generator writes is self-consistent, independently of the GDAL-based
readers in ``stamps_python.io.isce`` that the product uses.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stamps_python.utils import StampsError

_ISCE_TO_NUMPY = {
    "CFLOAT": np.complex64,
    "FLOAT": np.float32,
    "DOUBLE": np.float64,
    "BYTE": np.uint8,
    "SHORT": np.int16,
    "INT": np.int32,
    "CDOUBLE": np.complex128,
}


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsceImageInfo:
    """What an ISCE ``imageFile`` XML says about its raster."""

    width: int
    length: int
    bands: int
    dtype: np.dtype
    scheme: str
    file_name: str


def read_isce_xml(xml_path: str | Path) -> IsceImageInfo:
    """Parse an ISCE image ``.xml`` (width, length, bands, numpy dtype, scheme, file name)."""
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise StampsError(f"{xml_path}: cannot read ISCE XML ({exc})") from None
    values = {
        p.get("name", "").lower(): (p.findtext("value") or "").strip()
        for p in root.findall("property")
    }
    try:
        dtype = np.dtype(_ISCE_TO_NUMPY[values["data_type"].upper()]).newbyteorder("<")
        return IsceImageInfo(
            width=int(values["width"]),
            length=int(values["length"]),
            bands=int(values.get("number_bands", "1")),
            dtype=dtype,
            scheme=values.get("scheme", "BIL").upper(),
            file_name=values.get("file_name", ""),
        )
    except (KeyError, ValueError):
        raise StampsError(f"{xml_path}: not an ISCE image XML (width/length/data_type)") from None


def read_raster(raster_path: str | Path) -> np.ndarray:
    """Read a raw ISCE raster through its ``.xml``: (lines, samples) or (bands, lines, samples)."""
    raster_path = Path(raster_path)
    info = read_isce_xml(raster_path.with_name(raster_path.name + ".xml"))
    data = np.fromfile(raster_path, dtype=info.dtype)
    n = info.width * info.length * info.bands
    if data.size != n:
        raise StampsError(f"{raster_path}: {data.size} values on disk, the .xml says {n}")
    if info.scheme == "BIL":
        a = data.reshape(info.length, info.bands, info.width).transpose(1, 0, 2)
    elif info.scheme == "BIP":
        a = data.reshape(info.length, info.width, info.bands).transpose(2, 0, 1)
    else:
        a = data.reshape(info.bands, info.length, info.width)
    return a[0] if info.bands == 1 else a

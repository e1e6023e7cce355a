"""Writers (and a small reader) of the sidecar files that describe raw rasters in ISCE2 stacks.

An ISCE2 topsStack raster is a headerless little-endian binary file (``hgt.rdr.full``,
``20210105.slc.full``, ...) with up to three sidecars:

- ``<file>.xml``: the ISCE ``imageFile`` description (width, length, data type, bands, scheme);
- ``<file>.vrt``: a GDAL VRT (``VRTRawRasterBand``) so that GDAL/rasterio can open the raster;
- an ENVI header, named the way GDAL's ENVI driver names it: the raster's last extension is
  replaced by ``.hdr`` (``hgt.rdr.full`` -> ``hgt.rdr.hdr``, ``20210105.slc.full`` ->
  ``20210105.slc.hdr``). topsStack gets those from ``gdal.Translate(..., '-of ENVI')``.

The layouts reproduce the byte format of the stack in the golden dataset (ISCE-style XML with
four-space indentation, GDAL VRTs, GDAL ENVI headers). Products written by ISCE itself without
GDAL (``baselineGrid.py``) only have ``.xml`` and ``.vrt``; :func:`write_resampled_vrt` writes
the bilinear ``.full.vrt`` that ``gdal_translate -of VRT -r bilinear -outsize`` makes for them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from stamps_python.utils import StampsError, atomic_output

DEFAULT_ISCE_VERSION = "synthetic stack (layout mimics ISCE2 2.6 topsStack)"

# numpy dtype string -> (ISCE data_type, GDAL dataType, ENVI data type code)
_TYPES: dict[str, tuple[str, str, int]] = {
    "u1": ("BYTE", "Byte", 1),
    "i2": ("SHORT", "Int16", 2),
    "i4": ("INT", "Int32", 3),
    "f4": ("FLOAT", "Float32", 4),
    "f8": ("DOUBLE", "Float64", 5),
    "c8": ("CFLOAT", "CFloat32", 6),
    "c16": ("CDOUBLE", "CFloat64", 9),
}


def _type_key(dtype: np.dtype | str) -> str:
    """Key of ``_TYPES`` for a numpy dtype (always little-endian on disk)."""
    dt = np.dtype(dtype)
    key = f"{dt.kind}{dt.itemsize}"
    if key not in _TYPES:
        raise StampsError(f"data type {dt} has no ISCE/GDAL equivalent")
    return key


def isce_type(dtype: np.dtype | str) -> str:
    """ISCE ``data_type`` name (``FLOAT``, ``CFLOAT``, ...) of a numpy dtype."""
    return _TYPES[_type_key(dtype)][0]


def gdal_type(dtype: np.dtype | str) -> str:
    """GDAL ``dataType`` name (``Float32``, ``CFloat32``, ...) of a numpy dtype."""
    return _TYPES[_type_key(dtype)][1]


def envi_type(dtype: np.dtype | str) -> int:
    """ENVI ``data type`` code (4 = float32, 6 = complex64, ...) of a numpy dtype."""
    return _TYPES[_type_key(dtype)][2]


# --------------------------------------------------------------------------------------------
# ISCE XML documents
# --------------------------------------------------------------------------------------------


@dataclass
class Prop:
    """An ISCE ``<property name=...>`` with a value and optional doc and units."""

    name: str
    value: object
    doc: str | None = None
    units: str | None = None


@dataclass
class Comp:
    """An ISCE ``<component name=...>`` holding properties and sub-components."""

    name: str
    children: list[Prop | Comp] = field(default_factory=list)
    factorymodule: str | None = None
    factoryname: str | None = None
    doc: str | None = None


def _fmt_value(value: object) -> str:
    """Text of an ISCE property value (Python ``str``, as ISCE's XML dumper writes it)."""
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    return str(value)


def _render(node: Prop | Comp, depth: int, out: list[str]) -> None:
    pad = "    " * depth
    inner = "    " * (depth + 1)
    if isinstance(node, Prop):
        out.append(f"{pad}<property name={quoteattr(node.name)}>")
        out.append(f"{inner}<value>{escape(_fmt_value(node.value))}</value>")
        if node.doc is not None:
            out.append(f"{inner}<doc>{escape(node.doc)}</doc>")
        if node.units is not None:
            out.append(f"{inner}<units>{escape(node.units)}</units>")
        out.append(f"{pad}</property>")
        return
    out.append(f"{pad}<component name={quoteattr(node.name)}>")
    if node.factorymodule is not None:
        out.append(f"{inner}<factorymodule>{escape(node.factorymodule)}</factorymodule>")
    if node.factoryname is not None:
        out.append(f"{inner}<factoryname>{escape(node.factoryname)}</factoryname>")
    if node.doc is not None:
        out.append(f"{inner}<doc>{escape(node.doc)}</doc>")
    for child in node.children:
        _render(child, depth + 1, out)
    out.append(f"{pad}</component>")


def render_isce_xml(root_tag: str, children: Sequence[Prop | Comp]) -> str:
    """ISCE-style XML text: ``<root_tag>`` with the given properties/components, 4-space indent."""
    out = [f"<{root_tag}>"]
    for child in children:
        _render(child, 1, out)
    out.append(f"</{root_tag}>")
    return "\n".join(out)


def _write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _coordinate(name: str, doc: str, size: int) -> Comp:
    return Comp(
        name,
        [
            Prop("delta", 1.0, "Coordinate quantization."),
            Prop("endingvalue", float(size), "Ending value of the coordinate."),
            Prop("family", "imagecoordinate", "Instance family name"),
            Prop("name", "imagecoordinate_name", "Instance name"),
            Prop("size", int(size), "Coordinate size."),
            Prop("startingvalue", 0.0, "Starting value of the coordinate."),
        ],
        factorymodule="isceobj.Image",
        factoryname="createCoordinate",
        doc=doc,
    )


def isce_image_xml(
    *,
    file_name: str,
    width: int,
    length: int,
    dtype: np.dtype | str,
    bands: int = 1,
    scheme: str = "BIL",
    extra_file_name: str | None = None,
    description: str | None = None,
    image_type: str | None = None,
    isce_version: str = DEFAULT_ISCE_VERSION,
) -> str:
    """Text of an ISCE ``imageFile`` XML for a raw raster of ``length`` lines x ``width`` samples.

    ``file_name`` is the path recorded inside the XML (ISCE records an absolute path; readers
    should locate the raster next to the XML instead). ``extra_file_name`` is the VRT's name.
    """
    props: list[Prop | Comp] = [
        Prop("access_mode", "read", "Image access mode."),
        Prop("byte_order", "l", "Endianness of the image."),
        _coordinate("coordinate1", "First coordinate of a 2D image (width).", width),
        _coordinate("coordinate2", "Second coordinate of a 2D image (length).", length),
        Prop("data_type", isce_type(dtype), "Image data type."),
    ]
    if description is not None:
        props.append(Prop("description", description, "Image description"))
    props += [
        Prop(
            "extra_file_name",
            extra_file_name
            if extra_file_name is not None
            else os.path.basename(file_name) + ".vrt",
            "For example name of vrt metadata.",
        ),
        Prop("family", "image", "Instance family name"),
        Prop("file_name", file_name, "Name of the image file."),
    ]
    if image_type is not None:
        props.append(Prop("image_type", image_type, "Image type used for displaying."))
    props += [
        Prop("isce_version", isce_version, "Information about the isce release version."),
        Prop("length", int(length), "Image length"),
        Prop("name", "image_name", "Instance name"),
        Prop("number_bands", int(bands), "Number of image bands."),
        Prop("scheme", scheme.upper(), "Interleaving scheme of the image."),
        Prop("width", int(width), "Image width"),
        Prop("xmax", float(width), "Maximum range value"),
        Prop("xmin", 0.0, "Minimum range value"),
    ]
    return render_isce_xml("imageFile", props)


# --------------------------------------------------------------------------------------------
# GDAL VRT and ENVI header
# --------------------------------------------------------------------------------------------


def raw_vrt(
    *,
    source_filename: str,
    width: int,
    length: int,
    dtype: np.dtype | str,
    bands: int = 1,
    scheme: str = "BIL",
    nodata: float | None = None,
) -> str:
    """Text of a GDAL VRT with one ``VRTRawRasterBand`` per band over a headerless raster.

    Offsets (bytes) follow the interleave: BIL lines hold ``bands`` consecutive rows of
    ``width`` samples; BIP pixels hold ``bands`` consecutive samples; BSQ stores whole bands.
    """
    size = np.dtype(dtype).itemsize
    scheme = scheme.upper()
    out = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{length}">']
    for b in range(bands):
        if scheme == "BIL":
            image, pixel, line = b * width * size, size, bands * width * size
        elif scheme == "BIP":
            image, pixel, line = b * size, bands * size, bands * width * size
        elif scheme == "BSQ":
            image, pixel, line = b * width * length * size, size, width * size
        else:
            raise StampsError(f"interleave scheme '{scheme}' is not BIL, BIP or BSQ")
        out.append(
            f'    <VRTRasterBand dataType="{gdal_type(dtype)}" band="{b + 1}" '
            'subClass="VRTRawRasterBand">'
        )
        if nodata is not None:
            out.append(f"        <NoDataValue>{nodata!r}</NoDataValue>")
        out.append(
            f'        <SourceFilename relativeToVRT="1">{escape(source_filename)}</SourceFilename>'
        )
        out.append("        <ByteOrder>LSB</ByteOrder>")
        out.append(f"        <ImageOffset>{image}</ImageOffset>")
        out.append(f"        <PixelOffset>{pixel}</PixelOffset>")
        out.append(f"        <LineOffset>{line}</LineOffset>")
        out.append("    </VRTRasterBand>")
    out.append("</VRTDataset>")
    return "\n".join(out)


def resampled_vrt(
    *,
    source_vrt: str,
    src_width: int,
    src_length: int,
    dst_width: int,
    dst_length: int,
    dtype: np.dtype | str = "f4",
    resampling: str = "bilinear",
) -> str:
    """Text of the VRT ``gdal_translate -of VRT -r <resampling> -outsize W L src.vrt`` writes.

    GDAL resamples on read: each output pixel centre is mapped onto the source grid (pixel
    centres at half-integers), so a source of a few samples becomes a smooth full-size raster.
    """
    t = gdal_type(dtype)
    return "\n".join(
        [
            f'<VRTDataset rasterXSize="{dst_width}" rasterYSize="{dst_length}">',
            f'  <VRTRasterBand dataType="{t}" band="1">',
            f'    <SimpleSource resampling="{resampling}">',
            f'      <SourceFilename relativeToVRT="1">{escape(source_vrt)}</SourceFilename>',
            "      <SourceBand>1</SourceBand>",
            f'      <SourceProperties RasterXSize="{src_width}" RasterYSize="{src_length}" '
            f'DataType="{t}" BlockXSize="{src_width}" BlockYSize="1" />',
            f'      <SrcRect xOff="0" yOff="0" xSize="{src_width}" ySize="{src_length}" />',
            f'      <DstRect xOff="0" yOff="0" xSize="{dst_width}" ySize="{dst_length}" />',
            "    </SimpleSource>",
            "  </VRTRasterBand>",
            "</VRTDataset>",
            "",
        ]
    )


def envi_hdr_path(raster_path: str | Path) -> Path:
    """ENVI header GDAL writes for ``raster_path``: last extension replaced by ``.hdr``."""
    p = Path(raster_path)
    return p.with_suffix(".hdr") if p.suffix else p.with_name(p.name + ".hdr")


def envi_hdr(
    *,
    description: str,
    width: int,
    length: int,
    dtype: np.dtype | str,
    bands: int = 1,
    interleave: str = "bil",
) -> str:
    """Text of the ENVI header GDAL's ENVI driver writes (little-endian, no map info)."""
    names = ",\n".join(f"Band {b + 1}" for b in range(bands))
    return (
        "ENVI\n"
        f"description = {{\n{description}}}\n"
        f"samples = {width}\n"
        f"lines   = {length}\n"
        f"bands   = {bands}\n"
        "header offset = 0\n"
        "file type = ENVI Standard\n"
        f"data type = {envi_type(dtype)}\n"
        f"interleave = {interleave.lower()}\n"
        "byte order = 0\n"
        f"band names = {{\n{names}}}\n"
    )


# --------------------------------------------------------------------------------------------
# Writing a raster with its sidecars
# --------------------------------------------------------------------------------------------


def _as_bands(array: np.ndarray) -> np.ndarray:
    """(bands, length, width) view of a (length, width) or (bands, length, width) array."""
    if array.ndim == 2:
        return array[None]
    if array.ndim == 3:
        return array
    raise StampsError(f"raster must be 2-D or 3-D (bands, lines, samples), got shape {array.shape}")


def interleave(array: np.ndarray, scheme: str) -> np.ndarray:
    """Array laid out in file order for ``scheme`` (BIL: lines, bands, samples; BIP; BSQ)."""
    a = _as_bands(array)
    scheme = scheme.upper()
    if scheme == "BIL":
        return np.ascontiguousarray(a.transpose(1, 0, 2))
    if scheme == "BIP":
        return np.ascontiguousarray(a.transpose(1, 2, 0))
    if scheme == "BSQ":
        return np.ascontiguousarray(a)
    raise StampsError(f"interleave scheme '{scheme}' is not BIL, BIP or BSQ")


def write_sidecars(
    raster_path: str | Path,
    *,
    width: int,
    length: int,
    dtype: np.dtype | str,
    bands: int = 1,
    scheme: str = "BIL",
    recorded_path: str | None = None,
    description: str | None = None,
    image_type: str | None = None,
    envi: bool = True,
    isce_version: str = DEFAULT_ISCE_VERSION,
) -> dict[str, Path]:
    """Write ``.xml``, ``.vrt`` and (``envi=True``) the GDAL-named ENVI ``.hdr`` of a raster.

    ``recorded_path`` is the path written into the XML ``file_name`` and the header
    ``description`` (default: the absolute path of ``raster_path``).
    """
    raster_path = Path(raster_path)
    recorded = recorded_path if recorded_path is not None else str(raster_path.resolve())
    vrt_name = raster_path.name + ".vrt"
    paths = {
        "vrt": _write_text(
            raster_path.with_name(vrt_name),
            raw_vrt(
                source_filename=raster_path.name,
                width=width,
                length=length,
                dtype=dtype,
                bands=bands,
                scheme=scheme,
            ),
        ),
        "xml": _write_text(
            raster_path.with_name(raster_path.name + ".xml"),
            isce_image_xml(
                file_name=recorded,
                width=width,
                length=length,
                dtype=dtype,
                bands=bands,
                scheme=scheme,
                extra_file_name=vrt_name,
                description=description,
                image_type=image_type,
                isce_version=isce_version,
            ),
        ),
    }
    if envi:
        paths["hdr"] = _write_text(
            envi_hdr_path(raster_path),
            envi_hdr(
                description=recorded,
                width=width,
                length=length,
                dtype=dtype,
                bands=bands,
                interleave=scheme,
            ),
        )
    return paths


def write_raster(
    raster_path: str | Path,
    array: np.ndarray,
    *,
    scheme: str = "BIL",
    recorded_path: str | None = None,
    description: str | None = None,
    image_type: str | None = None,
    envi: bool = True,
    isce_version: str = DEFAULT_ISCE_VERSION,
) -> dict[str, Path]:
    """Write ``array`` ((lines, samples) or (bands, lines, samples)) as a little-endian raw
    raster in ``scheme`` interleave, atomically, with its sidecars (see :func:`write_sidecars`).
    """
    a = _as_bands(array)
    bands, length, width = a.shape
    dtype = a.dtype.newbyteorder("<")
    raster_path = Path(raster_path)
    with atomic_output(raster_path) as tmp:
        interleave(a.astype(dtype, copy=False), scheme).tofile(tmp)
    paths = write_sidecars(
        raster_path,
        width=width,
        length=length,
        dtype=dtype,
        bands=bands,
        scheme=scheme,
        recorded_path=recorded_path,
        description=description,
        image_type=image_type,
        envi=envi,
        isce_version=isce_version,
    )
    paths["raster"] = raster_path
    return paths

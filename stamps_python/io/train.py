"""TRAIN files: MATLAB ``tca2.mat`` / ``tca_sb2.mat`` (``-v7`` and ``-v7.3``), the non-deforming
polygon (``non_defo.mat`` and the vector and text files users draw it in), and the ``tca2.h5`` /
``tca_sb2.h5`` products, updated as TRAIN's ``aps_save`` appends to its ``.mat`` file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stamps_python.io.products import load_product, save_product
from stamps_python.numerics.tropo_linear import polygon_from_vertices
from stamps_python.utils import StampsError

VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".kml", ".gml", ".fgb")


def read_mat(path: str | Path) -> dict[str, np.ndarray]:
    """The numeric variables of a MATLAB ``.mat`` file, as arrays in MATLAB's (row, column)
    orientation: ``-v7`` and older through scipy.io, ``-v7.3`` (HDF5) through h5py."""
    path = Path(path)
    if not path.is_file():
        raise StampsError(f"{path}: file not found")
    if h5py.is_hdf5(path):  # -v7.3: HDF5 behind MATLAB's 512-byte header
        return _read_mat73(path)
    from scipy.io import loadmat

    try:
        raw = loadmat(path, squeeze_me=False, mat_dtype=False)
    except Exception as exc:
        raise StampsError(f"{path}: not a readable MATLAB .mat file ({exc})") from None
    return {
        k: np.asarray(v)
        for k, v in raw.items()
        if not k.startswith("__") and isinstance(v, np.ndarray) and v.dtype.kind in "biuf"
    }


def _read_mat73(path: Path) -> dict[str, np.ndarray]:
    """Variables of a MATLAB v7.3 file: HDF5 datasets stored column-major, so transposed back."""
    try:
        with h5py.File(path, "r") as f:
            out = {}
            for name, obj in f.items():
                if name.startswith("#") or not isinstance(obj, h5py.Dataset):
                    continue
                if obj.attrs.get("MATLAB_empty", 0):
                    continue
                arr = obj[()]
                if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
                    continue
                out[name] = arr.T
            return out
    except OSError as exc:
        raise StampsError(f"{path}: not a readable MATLAB -v7.3 file ({exc})") from None


def read_polygon(path: str | Path) -> Any:
    """The non-deforming area of ``path`` as a shapely (multi)polygon in lon/lat (deg).

    ``.mat``: TRAIN's ``non_defo.mat`` with variable ``poly`` (m, 2: lon, lat);
    a vector file (GeoPackage, GeoJSON, Shapefile, KML...): the union of its polygons,
    reprojected to EPSG:4326; any other file: text with one ``lon lat`` (or ``lon,lat``) vertex
    per line, ``#`` comments allowed.
    """
    path = Path(path)
    if not path.exists():
        raise StampsError(f"{path}: non-deforming polygon file not found")
    suffix = path.suffix.lower()
    if suffix == ".mat":
        mat = read_mat(path)
        if "poly" not in mat:
            raise StampsError(f"{path}: no variable 'poly' (lon/lat vertices) in this .mat file")
        return polygon_from_vertices(mat["poly"], str(path))
    if suffix in VECTOR_SUFFIXES:
        return _read_vector_polygon(path)
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].replace(",", " ").split()
        if not text:
            continue
        try:
            if len(text) != 2:
                raise ValueError
            rows.append((float(text[0]), float(text[1])))
        except ValueError:
            raise StampsError(
                f"{path}, line {n}: expected 'lon lat', got '{line.strip()}'"
            ) from None
    return polygon_from_vertices(np.array(rows).reshape(-1, 2), str(path))


def _read_vector_polygon(path: Path) -> Any:
    import geopandas as gpd
    import shapely

    try:
        gdf = gpd.read_file(path)
    except Exception as exc:
        raise StampsError(f"{path}: not a readable vector file ({exc})") from None
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs("EPSG:4326")
    kinds = ("Polygon", "MultiPolygon")
    polys = [g for g in gdf.geometry if g is not None and g.geom_type in kinds]
    if not polys:
        raise StampsError(f"{path}: holds no polygon")
    geom = shapely.union_all(polys)
    if geom.area == 0.0:
        raise StampsError(f"{path}: the polygon has no area")
    return geom


def update_tca(path: str | Path, datasets: Mapping[str, Any], attrs: Mapping[str, Any]) -> Path:
    """Write ``datasets`` into the TRAIN product ``path``, keeping the datasets of other methods
    already there (as TRAIN's aps_save appends to tca2.mat); atomic: a failure leaves the old
    file as it was."""
    path = Path(path)
    merged: dict[str, Any] = {}
    if path.is_file():
        merged.update(load_product(path))
    merged.update(datasets)
    return save_product(path, merged, attrs)

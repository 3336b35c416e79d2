"""Sensor products as inputs: Sentinel-2 SAFE, Landsat Collection 2 Level-2, STAC Items.

`read_product(path)` recognises a product from what the user named (a folder, a zip, a
metadata file, GDAL's subdataset name, a STAC JSON file; each local, or by s3:// or https://
URL, but for https:// folders) and returns its `Product`, or None
when `path` is no product (a plain raster file): the bands, their radiometry and their masks,
each saying where it came from. `choose_bands` picks the files a scene reads from it.
"""

from __future__ import annotations

import os

from bandfusion.errors import SceneError
from bandfusion.io.products.choose import choose_bands
from bandfusion.io.products.folders import folder_metadata, is_folder_url
from bandfusion.io.products.landsat import MTL_SUFFIXES, mtl_file, read_landsat
from bandfusion.io.products.model import BandAsset, MaskLayer, Product
from bandfusion.io.products.sentinel2 import metadata_file, read_sentinel2
from bandfusion.io.products.stac_item import read_stac, stac_document

__all__ = ["BandAsset", "MaskLayer", "Product", "choose_bands", "is_product", "read_product"]


def read_product(path: str | os.PathLike[str]) -> Product | None:
    """The product at `path`, or None when `path` is not one; a SceneError naming the file
    when it is one but its metadata cannot be read."""
    name = os.fspath(path)
    if is_folder_url(name):
        found = folder_metadata(name)
        reader = read_landsat if found.endswith(MTL_SUFFIXES) else read_sentinel2
        return reader(name, found)
    if (metadata := metadata_file(name)) is not None:
        return read_sentinel2(name, metadata)
    if (mtl := mtl_file(name)) is not None:
        return read_landsat(name, mtl)
    if (doc := stac_document(name)) is not None:
        return read_stac(name, doc)
    return None


def is_product(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a product, from its name, listing or JSON type alone (no metadata
    parsed): a folder or zip that is one is one scene, not a folder of rasters. A folder URL
    is one by its name (`folders.is_folder_url`)."""
    name = os.fspath(path)
    if is_folder_url(name) or metadata_file(name) is not None or mtl_file(name) is not None:
        return True
    try:
        return stac_document(name) is not None
    except SceneError:  # not JSON: whoever reads it says so in their own words
        return False

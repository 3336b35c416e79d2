"""Sentinel-2 L2A and L1C products as ESA delivers them: a SAFE folder, a zipped .SAFE, its
MTD_MSIL2A.xml / MTD_MSIL1C.xml, or GDAL's subdataset name for it.

The product metadata lists every image file; a band is available at each resolution whose file
is present (real products are often cut down), found in R10m/R20m/R60m (L2A) or IMG_DATA (L1C).
Radiometry: reflectance = (DN + ADD_OFFSET) / QUANTIFICATION_VALUE, per band, from
BOA_ADD_OFFSET (L2A) or RADIO_ADD_OFFSET (L1C) where the product lists them (processing
baseline 04.00 and later), else no offset. 0 is the product's NO_DATA; the scene classification
(SCL) of L2A products is its mask layer.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree.ElementTree import Element

from bandfusion.errors import SceneError
from bandfusion.io.bands import sensor_band
from bandfusion.io.products.files import (
    find_all,
    find_text,
    local_name,
    number,
    parse_xml,
    present,
    sibling,
    zip_href,
    zip_members,
)
from bandfusion.io.products.model import BandAsset, MaskLayer, Product
from bandfusion.io.remote import is_remote

METADATA_NAMES = ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml")
SUBDATASET = re.compile(r"^SENTINEL2_L(?:1C|2A):(.+):[^:]+:[^:]+$")
"""GDAL's subdataset name: SENTINEL2_L2A:<metadata file>:<resolution>:<EPSG_code>."""
_IMAGE = re.compile(r"_(B\d{2}|B8A|SCL)(?:_(\d{2})m)?$")
_NATIVE = {"B02": 10, "B03": 10, "B04": 10, "B08": 10, "B01": 60, "B09": 60, "B10": 60}
"""L1C files carry no resolution in their names: each band is at its native one (else 20 m)."""
_BAND_ORDER = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
"""The product's bandId order, where its Spectral_Information does not say."""
FIRST_OFFSET_BASELINE = 4.0
"""Processing baseline 04.00 (January 2022) added the offsets; earlier products have none."""


def metadata_file(path: str) -> str | None:
    """The metadata file (a path, a URL, or a /vsizip/ path) of the S2 product at `path`, or
    None; a folder URL is `bandfusion.io.products.folders`' to resolve."""
    if match := SUBDATASET.match(path):
        return match.group(1)
    local = Path(path)
    if local.name in METADATA_NAMES:
        return path
    if not is_remote(path) and local.is_dir():
        return next((str(local / n) for n in METADATA_NAMES if (local / n).is_file()), None)
    if local.suffix.lower() == ".zip" and (is_remote(path) or local.is_file()):
        return _zipped_metadata(path)
    return None


def _zipped_metadata(archive: str) -> str | None:
    """The metadata file inside a zipped SAFE (a local file or a URL, read in place): at its
    root or in the one .SAFE folder."""
    for member in zip_members(archive):
        parts = member.split("/")
        if parts[-1] in METADATA_NAMES and len(parts) <= 2:
            return zip_href(archive, member)
    return None


def read_sentinel2(path: str, metadata: str) -> Product:
    """The product whose metadata file is `metadata` (what the user named is `path`)."""
    root = parse_xml(metadata)
    level = "L1C" if local_name(root).startswith("Level-1C") else "L2A"
    name = metadata.rsplit("/", 1)[-1]
    nodata = _nodata(root, metadata)
    scales = _radiometry(root, metadata, level)
    bands: list[BandAsset] = []
    masks: list[MaskLayer] = []
    listed = [(find.text or "").strip() for find in find_all(root, "IMAGE_FILE")]
    images = {  # TCI, AOT, WVP are not reflectance
        sibling(metadata, f"{image}.jp2"): match
        for image in listed
        if (match := _IMAGE.search(image)) is not None
    }
    held = present(images)  # one listing, or HEAD requests by URL: each file looked for once
    for href, match in images.items():
        if href not in held:
            continue
        band, res = match.group(1), match.group(2)
        resolution = float(res) if res else float(_NATIVE.get(band, 20))
        if band == "SCL":
            masks.append(MaskLayer("s2_scl", href, resolution))
            continue
        scale, offset = scales.get(band, scales["*"])
        bands.append(BandAsset(band, href, resolution, scale, offset, nodata, name))
    if not bands:
        raise SceneError(f"{metadata}: none of the {len(listed)} image files it lists is present")
    return Product(
        path=path,
        sensor=(find_text(root, "SPACECRAFT_NAME") or "sentinel-2").lower(),
        datetime=find_text(root, "PRODUCT_START_TIME"),
        level=level,
        bands=tuple(sorted(bands, key=_band_order)),
        masks=tuple(masks),
    )


def _band_order(band: BandAsset) -> tuple[int, float]:
    physical = "B8A" if band.name == "B8A" else f"B{int(band.name[1:])}"
    return _BAND_ORDER.index(physical), band.resolution or 0.0


def _nodata(root: Element, metadata: str) -> float:
    """The SPECIAL_VALUE_INDEX the product calls NODATA (0 where it says nothing)."""
    for special in find_all(root, "Special_Values"):
        if find_text(special, "SPECIAL_VALUE_TEXT") == "NODATA":
            value = find_text(special, "SPECIAL_VALUE_INDEX")
            return number(metadata, "NODATA SPECIAL_VALUE_INDEX", value)
    return 0.0


def _radiometry(root: Element, metadata: str, level: str) -> dict[str, tuple[float, float]]:
    """(scale, offset) per band, "*" for any band without its own offset."""
    field = "BOA_QUANTIFICATION_VALUE" if level == "L2A" else "QUANTIFICATION_VALUE"
    text = find_text(root, field)
    if text is None:
        raise SceneError(f"{metadata}: {field} is missing")
    quantification = number(metadata, field, text)
    if quantification <= 0:
        raise SceneError(f"{metadata}: {field} is {text!r}, not a positive number")
    offset_field = "BOA_ADD_OFFSET" if level == "L2A" else "RADIO_ADD_OFFSET"
    offsets = find_all(root, offset_field)
    baseline = find_text(root, "PROCESSING_BASELINE")
    since = baseline is not None and number(metadata, "PROCESSING_BASELINE", baseline)
    if not offsets and since and since >= FIRST_OFFSET_BASELINE:
        raise SceneError(
            f"{metadata}: processing baseline {baseline} lists no {offset_field}; "
            "its reflectance would be off by the missing offset"
        )
    physical = _physical_bands(root)
    scale = 1.0 / quantification
    result = {"*": (scale, 0.0)}
    for element in offsets:
        index = element.get("band_id", "")
        if index not in physical:
            raise SceneError(f"{metadata}: {offset_field} band_id={index!r} names no band")
        add = number(metadata, f"{offset_field} band_id={index}", (element.text or "").strip())
        result[sensor_band(physical[index], "sentinel-2")] = (scale, add / quantification)
    return result


def _physical_bands(root: Element) -> dict[str, str]:
    """bandId → physical band name ("3" → "B4"), from Spectral_Information or ESA's order."""
    listed = {
        e.get("bandId", ""): e.get("physicalBand", "")
        for e in find_all(root, "Spectral_Information")
    }
    return listed or {str(i): band for i, band in enumerate(_BAND_ORDER)}

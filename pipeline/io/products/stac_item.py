"""Reading sensor products described by STAC: an Item, or an ItemCollection of one Item, in a
JSON file, local or by https:// or s3:// URL (`bandfusion.io.stac` writes the Items of our maps;
this reads others').

Bands are the single-band assets with `eo:bands` (or STAC 1.1 `bands`), named by their band id
or common name in the platform's canonical names; `raster:bands` gives scale, offset, nodata and
resolution. Relative hrefs are resolved against the Item's file; http(s) and s3 hrefs are kept
as URLs. Assets `scl` and `qa_pixel` are the product's mask layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bandfusion.errors import SceneError, first_line
from bandfusion.io.bands import sensor_band
from bandfusion.io.products.files import number, parse_json
from bandfusion.io.products.model import BandAsset, MaskLayer, Product
from bandfusion.io.remote import fetch_json, is_http, is_remote, url_scheme

if TYPE_CHECKING:
    import pystac

STAC_TYPES = ("Feature", "FeatureCollection")
MASK_ASSETS = {"scl": "s2_scl", "qa_pixel": "landsat_qa_pixel"}
_LEVELS = (("l2a", "L2A"), ("l1c", "L1C"), ("c2-l2", "L2SP"), ("l2sp", "L2SP"))


def stac_document(path: str) -> dict[str, Any] | None:
    """The parsed JSON at `path` (a file, an http(s):// URL fetched with the network timeouts
    rasters get, or an s3:// object) when it is a STAC Item or ItemCollection, else None."""
    if not path.lower().endswith(".json"):
        return None
    if is_http(path):
        doc = fetch_json(path)
    elif is_remote(path) or Path(path).is_file():
        doc = parse_json(path)
    else:
        return None
    if isinstance(doc, dict) and doc.get("type") in STAC_TYPES and _is_stac(doc):
        return doc
    return None


def _is_stac(doc: dict[str, Any]) -> bool:
    if "stac_version" in doc:
        return True
    features = doc.get("features")
    return isinstance(features, list) and any(
        isinstance(f, dict) and "stac_version" in f for f in features
    )


def read_stac(path: str, doc: dict[str, Any]) -> Product:
    """The product the STAC document `doc` (read from `path`) describes."""
    import pystac  # loaded only when a STAC document is read

    # pystac reads fields as it is asked for them, each failing its own way on hostile input
    errors = (pystac.STACError, pystac.STACTypeError, pystac.RequiredPropertyMissing,
              pystac.ExtensionTypeError, pystac.errors.DuplicateObjectKeyError, KeyError,
              TypeError, ValueError, AttributeError, IndexError, RecursionError)  # fmt: skip
    try:
        return _product(path, _the_item(path, doc))
    except errors as exc:
        problem = f"{type(exc).__name__}: {first_line(exc)}"
        raise SceneError(f"{path}: not a valid STAC item ({problem})") from exc


def _product(path: str, item: pystac.Item) -> Product:
    platform = str(item.properties.get("platform") or item.collection_id or "unknown").lower()
    bands: dict[tuple[str, float | None], BandAsset] = {}
    masks = []
    for key, asset in item.assets.items():
        href = _href(asset)
        if key.lower() in MASK_ASSETS:
            masks.append(MaskLayer(MASK_ASSETS[key.lower()], href, _resolution(path, asset)))
            continue
        band = _band_of(path, key, asset, href, platform)
        if band is not None and not _is_jp2_duplicate(bands, band, asset):
            bands[(band.name, band.resolution)] = band
    if not bands:
        raise SceneError(f"{path}: STAC item {item.id!r} has no single-band asset with eo:bands")
    when = item.datetime or item.common_metadata.start_datetime
    return Product(
        path=path,
        sensor=platform,
        datetime=when.isoformat() if when else None,
        level=_level(item),
        bands=tuple(bands.values()),
        masks=tuple(masks),
    )


def _the_item(path: str, doc: dict[str, Any]) -> pystac.Item:
    import pystac

    features = doc.get("features") if doc.get("type") == "FeatureCollection" else [doc]
    if not isinstance(features, list) or len(features) != 1:
        count = len(features) if isinstance(features, list) else 0
        raise SceneError(
            f"{path}: an ItemCollection of {count} items; a scene is one item (give each its file)"
        )
    where = path if is_remote(path) else str(Path(path).absolute())  # relative hrefs: from here
    return pystac.Item.from_dict(features[0], href=where, migrate=True)


def _href(asset: pystac.Asset) -> str:
    """The asset's file: URLs as they are, anything else absolute against the item's file."""
    if url_scheme(asset.href) not in (None, "file"):
        return asset.href
    return str(asset.get_absolute_href() or asset.href)


def _band_of(
    path: str, key: str, asset: pystac.Asset, href: str, platform: str
) -> BandAsset | None:
    described = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands")
    if not isinstance(described, list) or len(described) != 1 or not isinstance(described[0], dict):
        return None
    eo = described[0]
    common = eo.get("common_name") or eo.get("eo:common_name")
    name = sensor_band(str(eo.get("name") or common or key), platform)
    raster = _raster_band(asset) or {}
    scale = _raster_field(raster, "scale", 1.0)
    offset = _raster_field(raster, "offset", 0.0)
    nodata = raster.get("nodata", eo.get("nodata"))
    return BandAsset(
        name=name,
        href=href,
        resolution=_resolution(path, asset),
        scale=number(path, f"asset {key!r} scale", scale),
        offset=number(path, f"asset {key!r} offset", offset),
        nodata=None if nodata is None else _nodata(path, key, nodata),
        origin="raster:bands" if raster else "STAC item (no raster:bands)",
    )


def _nodata(path: str, key: str, value: Any) -> float:
    if isinstance(value, str) and value.lower() in ("nan", "inf", "-inf"):
        return float(value)
    return number(path, f"asset {key!r} nodata", value)


def _raster_band(asset: pystac.Asset) -> dict[str, Any] | None:
    listed = asset.extra_fields.get("raster:bands")
    if isinstance(listed, list) and listed and isinstance(listed[0], dict):
        return listed[0]
    described = asset.extra_fields.get("bands")
    if isinstance(described, list) and described and isinstance(described[0], dict):
        return described[0]
    return None


def _raster_field(raster: dict[str, Any], name: str, default: Any) -> Any:
    """A raster:bands field (`scale`), or its STAC 1.1 `bands` form (`raster:scale`)."""
    return raster.get(name, raster.get(f"raster:{name}", default))


def _resolution(path: str, asset: pystac.Asset) -> float | None:
    raster = _raster_band(asset) or {}
    value = _raster_field(raster, "spatial_resolution", asset.extra_fields.get("gsd"))
    return None if value is None else number(path, "spatial_resolution", value)


def _is_jp2_duplicate(
    bands: dict[tuple[str, float | None], BandAsset], band: BandAsset, asset: pystac.Asset
) -> bool:
    """A JPEG 2000 copy of a band already held (earth-search lists both): the GeoTIFF wins."""
    return (band.name, band.resolution) in bands and "jp2" in (asset.media_type or "")


def _level(item: pystac.Item) -> str:
    level = item.properties.get("processing:level")
    if level:
        return str(level)
    collection = (item.collection_id or "").lower()
    return next((name for token, name in _LEVELS if token in collection), "")

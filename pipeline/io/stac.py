"""STAC metadata for maps: an Item beside each map, a Collection for a folder of them.

Built with pystac from the map file itself (grid, class names and colours as the writer stored
them), so an Item says what the file holds whoever wrote it: the `proj` extension for the grid,
the `classification` extension for the classes and their colours, bbox and geometry in WGS84.
Written atomically as JSON beside the map: MAP.tif → MAP.stac.json.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pystac
import rasterio
from bandfusion.io.atomic import write_json
from bandfusion.io.legend import legend_from_raster
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.projection import ProjectionExtension
from rasterio.warp import transform_bounds

MAP_ASSET = "map"
COG_MEDIA_TYPE = pystac.MediaType.COG


def item_path(map_path: str | Path) -> Path:
    """Where the Item of the map at `map_path` goes: MAP.stac.json beside it."""
    path = Path(map_path)
    return path.with_name(f"{path.stem}.stac.json")


def map_item(map_path: str | Path, *, when: datetime | None = None) -> pystac.Item:
    """The STAC Item of the map file at `map_path`, its asset linked relative to the Item.

    `when` is the Item's datetime (the acquisition, where known); None means now.
    """
    path = Path(map_path)
    with rasterio.open(path) as src:
        legend = legend_from_raster(src)
        crs, shape, transform = src.crs, (src.height, src.width), src.transform
        left, bottom, right, top = src.bounds
    if crs is not None:
        left, bottom, right, top = transform_bounds(crs, "EPSG:4326", left, bottom, right, top)
    bbox = [left, bottom, right, top]
    item = pystac.Item(
        id=path.stem,
        geometry=_polygon(bbox),
        bbox=bbox,
        datetime=when or datetime.now(timezone.utc),
        properties={},
    )
    asset = pystac.Asset(
        href=f"./{path.name}", media_type=COG_MEDIA_TYPE, title=path.name, roles=["data"]
    )
    item.add_asset(MAP_ASSET, asset)
    projection = ProjectionExtension.ext(asset, add_if_missing=True)
    epsg = crs.to_epsg() if crs is not None else None
    projection.apply(
        epsg=epsg,
        wkt2=None if epsg or crs is None else crs.to_wkt(),
        shape=list(shape),
        transform=list(transform)[:6],
    )
    if legend.names:
        classes = [
            Classification.create(value=value, name=name, color_hint=_hex(legend.colors.get(value)))
            for value, name in sorted(legend.names.items())
        ]
        ClassificationExtension.ext(asset, add_if_missing=True).classes = classes
    return item


def write_item(map_path: str | Path, *, when: datetime | None = None) -> Path:
    """Write the Item of the map at `map_path` beside it (see `item_path`); returns its path."""
    target = item_path(map_path)
    item = map_item(map_path, when=when)
    return write_json(target, item.to_dict(include_self_link=False), indent=2)


def write_collection(
    map_paths: Sequence[Path], folder: Path, *, collection_id: str, description: str
) -> Path:
    """Write an Item beside each map and FOLDER/collection.json linking them; returns its path."""
    folder = folder.resolve()
    map_paths = [path.resolve() for path in map_paths]
    items = [map_item(path) for path in map_paths]
    collection = pystac.Collection(
        id=collection_id,
        description=description,
        extent=pystac.Extent(
            pystac.SpatialExtent([_union([item.bbox for item in items if item.bbox])]),
            pystac.TemporalExtent([[min(i.datetime for i in items if i.datetime), None]])
            if items
            else pystac.TemporalExtent([[datetime.now(timezone.utc), None]]),
        ),
    )
    target = folder / "collection.json"
    for path, item in zip(map_paths, items, strict=True):
        item_file = item_path(path)
        collection.add_link(
            pystac.Link("item", _relative(item_file, target), pystac.MediaType.JSON)
        )
        item.add_link(pystac.Link("collection", _relative(target, item_file), "application/json"))
        item.collection_id = collection_id
        write_json(item_file, item.to_dict(include_self_link=False), indent=2)
    return write_json(target, collection.to_dict(include_self_link=False), indent=2)


def _polygon(bbox: list[float]) -> dict[str, Any]:
    left, bottom, right, top = bbox
    ring = [[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]
    return {"type": "Polygon", "coordinates": [ring]}


def _union(boxes: list[list[float]]) -> list[float]:
    if not boxes:
        return [-180.0, -90.0, 180.0, 90.0]
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def _relative(target: Path, start: Path) -> str:
    """`target` as an href relative to the file `start`."""
    return Path(os.path.relpath(target, start.parent)).as_posix()


def _hex(rgb: tuple[int, int, int] | None) -> str | None:
    """A STAC color_hint: RRGGBB in hex, without '#'."""
    return None if rgb is None else "".join(f"{channel:02X}" for channel in rgb[:3])

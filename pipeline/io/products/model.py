"""What a sensor product holds, independent of how it is delivered: bands, masks, radiometry.

Every reader (Sentinel-2 SAFE, Landsat Collection 2, STAC) returns a `Product`; `open_scene`
builds its scene from the product's `BandAsset`s, so a band's scale, offset and nodata come
from the product's own metadata and say where they came from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BandAsset:
    """One band file of a product at one resolution, with the radiometry the product declares."""

    name: str  # canonical band name (B02, B8A, SR_B4)
    href: str  # what rasterio.open takes: a local path or a GDAL path (/vsizip/..., /vsicurl/...)
    resolution: float | None  # metres
    scale: float  # reflectance = DN * scale + offset
    offset: float
    nodata: float | None
    origin: str  # where scale/offset/nodata came from: "MTD_MSIL2A.xml", "MTL", "raster:bands"


@dataclass(frozen=True)
class MaskLayer:
    """A product's own per-pixel quality layer (scene classification, QA bits)."""

    kind: str  # "s2_scl" | "landsat_qa_pixel"
    href: str
    resolution: float | None


@dataclass(frozen=True)
class Product:
    """A sensor product as delivered: what the user named, the sensor, date, level and layers."""

    path: str  # what the user named
    sensor: str  # "sentinel-2a", "landsat-8", ...
    datetime: str | None  # ISO 8601
    level: str  # "L2A", "L1C", "L2SP", ...
    bands: tuple[BandAsset, ...]
    masks: tuple[MaskLayer, ...]

    def band_names(self) -> list[str]:
        """The distinct band names the product holds, in the product's order."""
        return list(dict.fromkeys(band.name for band in self.bands))

    def resolutions(self) -> list[float]:
        """The distinct resolutions of the product's bands, finest first (unknown ones left out)."""
        return sorted({b.resolution for b in self.bands if b.resolution is not None})

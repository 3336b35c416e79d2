"""What the map writer attaches besides pixels, kept together to apply it and then check it.

Nodata, the colour table, class names (as the CLASS_NAMES tag that `legend_from_raster` reads
back, and for a class map as GDAL category names: see `pam`), other dataset tags, band
descriptions and band scales: GDAL drops some of them silently in some layouts, so the writer
checks the finished file for every one.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
from bandfusion.colours import RGBA
from bandfusion.errors import BandfusionWarning
from bandfusion.io.legend import CLASS_NAMES_TAG

Colormap = Mapping[int, RGBA]
_COLORMAP_DTYPES = frozenset({"uint8", "uint16"})


@dataclass(frozen=True)
class MapMetadata:
    """Nodata, colour table, tags, band descriptions and scales of one map."""

    nodata: float | None
    colormap: Colormap | None
    tags: dict[str, str]
    descriptions: tuple[str, ...] | None
    scales: tuple[float, ...] | None = None
    categories: dict[int, str] | None = None
    """Class names of a single-band integer map: what GDAL shows as its category names."""

    @classmethod
    def build(
        cls,
        data: da.Array,
        nodata: float | None,
        *,
        colormap: Colormap | None,
        class_names: Mapping[int, str] | None,
        band_names: Sequence[str] | None,
        tags: Mapping[str, str] | None,
        scales: Sequence[float] | None = None,
    ) -> MapMetadata:
        """Validate the writer's metadata arguments against the (band, y, x) data."""
        for what, values in (("band names", band_names), ("scales", scales)):
            if values is not None and len(values) != data.shape[0]:
                raise ValueError(f"{len(values)} {what} for {data.shape[0]} bands")
        if colormap is not None and (data.shape[0] != 1 or data.dtype.name not in _COLORMAP_DTYPES):
            warnings.warn(
                BandfusionWarning(
                    f"no colour map written: GeoTIFF keeps one only for a single uint8 or uint16 "
                    f"band, not {data.shape[0]} band(s) of {data.dtype.name}"
                ),
                stacklevel=3,
            )
            colormap = None
        all_tags = dict(tags or {})
        categories = None
        if class_names is not None:
            names = {str(key): name for key, name in sorted(class_names.items())}
            all_tags[CLASS_NAMES_TAG] = json.dumps(names)
            if data.shape[0] == 1 and data.dtype.kind in "iu":
                categories = {int(key): name for key, name in class_names.items()}
        return cls(
            nodata,
            colormap,
            all_tags,
            tuple(band_names) if band_names else None,
            tuple(float(scale) for scale in scales) if scales is not None else None,
            categories,
        )

    def apply(self, dst: rasterio.io.DatasetWriter) -> None:
        """Write colour map, tags and band descriptions (nodata is a creation option)."""
        if self.colormap:
            dst.write_colormap(1, self.colormap)
        dst.update_tags(**self.tags)
        for bidx, name in enumerate(self.descriptions or (), start=1):
            dst.set_band_description(bidx, name)
        if self.scales is not None:
            dst.scales = self.scales
            dst.offsets = (0.0,) * len(self.scales)

    def lost_in(self, src: rasterio.io.DatasetReader) -> list[str]:
        """Names of the parts of this metadata that `src` does not hold."""
        checks = {
            "nodata": _same_nodata(src.nodata, self.nodata),
            "colour map": not self.colormap or _has_colormap(src, self.colormap),
            "tags": self.tags.items() <= src.tags().items(),
            "band descriptions": self.descriptions is None or src.descriptions == self.descriptions,
            "band scales": self.scales is None or src.scales == self.scales,
        }
        return [name for name, kept in checks.items() if not kept]

    def check(self, written: str | Path, path: str | Path) -> None:
        """Raise RuntimeError if GDAL dropped any of this metadata from the file `written`."""
        with rasterio.open(written) as src:
            lost = self.lost_in(src)
        if lost:
            raise RuntimeError(f"{path}: GDAL did not keep the {', '.join(lost)}")


def _same_nodata(found: float | None, expected: float | None) -> bool:
    """Nodata equality where NaN equals NaN."""
    if found is None or expected is None:
        return found is expected
    return found == expected or (np.isnan(found) and np.isnan(expected))


def _has_colormap(src: rasterio.io.DatasetReader, colormap: Colormap) -> bool:
    """True when band 1's colour table holds every entry of `colormap`."""
    try:
        table = src.colormap(1)
    except ValueError:  # rasterio's answer for a band without a colour table
        return False
    return all(table.get(key) == tuple(rgba) for key, rgba in colormap.items())

"""The pixel grid of a scene (CRS, transform, shape) and how it rides on a DataArray's attrs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS


@dataclass(frozen=True)
class Grid:
    """A raster grid: `crs` may be None for rasters without georeferencing."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def coords(self) -> dict[str, np.ndarray]:
        """Pixel-centre coordinates along y and x, as rasterio and rioxarray give them."""
        t = self.transform
        cols = np.arange(self.width) + 0.5
        rows = np.arange(self.height) + 0.5
        return {"y": t.f + rows * t.e, "x": t.c + cols * t.a}

    def to_attrs(self) -> dict[str, object]:
        """Attrs that survive pickling: CRS as WKT ('' if none), transform as 6 floats."""
        return {
            "crs": self.crs.to_wkt() if self.crs else "",
            "transform": tuple(self.transform)[:6],
        }

    @classmethod
    def of(cls, array: xr.DataArray) -> Grid:
        """The grid of a scene or map DataArray made by bandfusion (dims ..., y, x)."""
        wkt = array.attrs.get("crs") or ""
        return cls(
            crs=CRS.from_wkt(wkt) if wkt else None,
            transform=Affine(*array.attrs["transform"]),
            width=int(array.sizes["x"]),
            height=int(array.sizes["y"]),
        )

    def same_as(self, other: Grid) -> bool:
        """True when both grids put the same pixels at the same places."""
        return (
            self.shape == other.shape
            and self.crs == other.crs
            and self.transform.almost_equals(other.transform, precision=1e-9)
        )

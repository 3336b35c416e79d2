"""A human description of a raster file: what `bandfusion info` prints."""

from __future__ import annotations

import os

from bandfusion.display.tables import align
from bandfusion.io.scene import inspect_raster
from rasterio.io import DatasetReader


def describe_raster(path: str | os.PathLike[str], nodata: float | None = None) -> str:
    """Bands, data types, size, CRS, resolution, nodata, internal blocks, compression, overviews.

    Each band's nodata and scale/offset say where they come from: the file's tags, or `nodata`
    given in place of the file's (what reading the raster as a scene with it would use).
    """
    dataset, name = inspect_raster(path)
    with dataset:
        crs = dataset.crs.to_string() if dataset.crs else "none"
        lines = [
            f"file:        {name}",
            f"driver:      {dataset.driver}",
            f"size:        {dataset.width} x {dataset.height} px, {dataset.count} bands",
            f"crs:         {crs}",
            f"resolution:  {dataset.res[0]:.6g} x {dataset.res[1]:.6g}",
            f"bounds:      {tuple(round(v, 6) for v in dataset.bounds)}",
            f"blocks:      {dataset.block_shapes[0][0]} x {dataset.block_shapes[0][1]}"
            f" ({'tiled' if dataset.profile.get('tiled') else 'striped'})",
            f"compression: {dataset.compression.value if dataset.compression else 'none'}",
            f"overviews:   {dataset.overviews(1) or 'none'}",
            "bands:",
        ]
        bands = [
            [
                str(index),
                dataset.descriptions[index - 1] or f"b{index}",
                dataset.dtypes[index - 1],
                *_radiometry(dataset, index, nodata),
            ]
            for index in dataset.indexes
        ]
        lines.extend(align(bands, right={0}, indent="  "))
        if entries := _colormap_size(dataset):
            lines.append(f"colour map:  {entries} entries")
    return "\n".join(lines)


def _radiometry(dataset: DatasetReader, index: int, nodata: float | None) -> list[str]:
    """The band's nodata, scale and offset as a scene reads them, and where each comes from."""
    if nodata is None:
        nodata_text = f"nodata={dataset.nodatavals[index - 1]} (file)"
    else:
        nodata_text = f"nodata={float(nodata)} (given)"
    scale, offset = dataset.scales[index - 1], dataset.offsets[index - 1]
    if scale == 1.0 and offset == 0.0:
        return [nodata_text, "values as stored (no scale/offset)"]
    return [nodata_text, f"value x {scale:g} + {offset:g} (GDAL scale/offset tags)"]


def _colormap_size(dataset: DatasetReader) -> int:
    """Entries in band 1's colour table; 0 when it has none."""
    try:
        return len(dataset.colormap(1))
    except ValueError:
        return 0

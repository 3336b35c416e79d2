"""Where a GeoTIFF's blocks lie in its file, from GDAL's TIFF metadata domain.

GDAL hands out pixels, not the file's layout; its "TIFF" domain names each block's offset and
byte count. Read here once for the reader (which skips blocks of nodata by their bytes) and
the writer (which checks that no tile ends past the end of a file it wrote).
"""

from __future__ import annotations

from rasterio.io import DatasetReader


def block_place(dataset: DatasetReader, band: int, row: int, col: int) -> tuple[int, int] | None:
    """The (offset, byte count) of block (`row`, `col`) of `band`; None for one never written."""
    tags = [f"BLOCK_{what}_{col}_{row}" for what in ("OFFSET", "SIZE")]
    offset, size = (dataset.get_tag_item(tag, "TIFF", bidx=band) for tag in tags)
    return (int(offset), int(size)) if offset and size else None

"""Blocks of a compressed GeoTIFF known to hold nothing but nodata, so that a window of them is
filled instead of decoded.

Outside a swath every tile of a scene holds nodata, and a writer compresses every such tile to
the same bytes. A block decoded once and found to be nodata everywhere is remembered by its
compressed bytes; a window whose blocks all have remembered bytes is then filled with nodata
without decoding. Identical bytes in one file decode to identical pixels, so the pixels are
GDAL's, bit for bit. Filling costs a fraction of decoding and de-interleaving a chunk of
pixel-interleaved bands (figures in docs/engine.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from bandfusion.io.tiff_blocks import block_place
from rasterio.enums import Compression, Interleaving
from rasterio.io import DatasetReader
from rasterio.windows import Window

MAX_REMEMBERED = 8
"""Distinct nodata blocks remembered per file: a writer encodes them one way, or a few."""

MAX_BLOCK_BYTES = 1 << 16
"""Largest compressed block remembered: a tile of nodata compresses to a few kB, and comparing
larger blocks would cost as much as decoding them."""


class EmptyBlocks:
    """What one open GeoTIFF's blocks of nodata look like compressed, learned as it is read."""

    def __init__(self, dataset: DatasetReader, nodata: np.generic) -> None:
        self.nodata = nodata
        self._dataset = dataset
        self._path = Path(dataset.name)
        # A pixel-interleaved block holds every band; otherwise each band has its own blocks.
        self._interleaved = dataset.interleaving == Interleaving.pixel
        self._bands = (1,) if self._interleaved else tuple(dataset.indexes)
        self._remembered: set[bytes] = set()
        self._sizes: set[int] = set()

    @classmethod
    def of(cls, dataset: DatasetReader, nodata: np.generic | None) -> EmptyBlocks | None:
        """The learner for `dataset`, or None where blocks of `nodata` cannot be recognised:
        no nodata value, no compression to skip, or no local GeoTIFF to read blocks from."""
        if nodata is None or dataset.driver != "GTiff" or not Path(dataset.name).is_file():
            return None
        if dataset.compression in (None, Compression.none):
            return None
        return cls(dataset, nodata)

    def all_empty(self, window: Window) -> bool:
        """Whether every block that `window` touches, in every band, is remembered as nodata."""
        if not self._remembered:
            return False
        for band, row, col in self._blocks(window, inside=False):
            place = block_place(self._dataset, band, row, col)
            if place is None or place[1] not in self._sizes:
                return False
            if self._bytes(*place) not in self._remembered:
                return False
        return True

    def learn(self, window: Window, data: np.ndarray) -> None:
        """Remember the bytes of the blocks inside `window` that are nodata everywhere.

        `data` holds the window's pixels as decoded, every band of the file in order. Blocks
        cut by the raster's edge are never inside a window, so no block is judged by part of it.
        """
        height, width = self._dataset.block_shapes[0]
        for band, row, col in self._blocks(window, inside=True):
            if len(self._remembered) >= MAX_REMEMBERED:
                return
            rows = slice(row * height - window.row_off, (row + 1) * height - window.row_off)
            cols = slice(col * width - window.col_off, (col + 1) * width - window.col_off)
            bands = range(len(data)) if self._interleaved else [band - 1]
            pixels = [data[b, rows, cols] for b in bands]
            if not _only(pixels[0][:1, :1], self.nodata):
                continue  # a block holding data mostly tells at its first pixel
            place = block_place(self._dataset, band, row, col)
            if place is None or place[1] > MAX_BLOCK_BYTES:
                continue
            compressed = self._bytes(*place)
            if compressed not in self._remembered and all(_only(p, self.nodata) for p in pixels):
                self._remembered.add(compressed)
                self._sizes.add(place[1])

    def _blocks(self, window: Window, *, inside: bool) -> Iterator[tuple[int, int, int]]:
        """(band, block row, block column) of the blocks `window` touches, or only of those
        wholly inside it."""
        height, width = self._dataset.block_shapes[0]
        top, left = window.row_off, window.col_off
        bottom, right = top + window.height, left + window.width
        if inside:
            rows = range(-(-top // height), bottom // height)
            cols = range(-(-left // width), right // width)
        else:
            rows = range(top // height, -(-bottom // height))
            cols = range(left // width, -(-right // width))
        for band in self._bands:
            for row in rows:
                for col in cols:
                    yield band, row, col

    def _bytes(self, offset: int, size: int) -> bytes:
        """A block's compressed bytes, read from the file itself: GDAL hands out only pixels."""
        with self._path.open("rb") as file:
            file.seek(offset)
            return file.read(size)


def _only(pixels: np.ndarray, value: np.generic) -> bool:
    """Whether every pixel has `value`'s very bits (a fill must reproduce -0.0 or a NaN's)."""
    unsigned = np.dtype(f"u{pixels.itemsize}")
    return bool((pixels.view(unsigned) == np.asarray(value).view(unsigned)).all())

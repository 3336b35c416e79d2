"""Pixels per class of a class map, counted as its chunks pass on their way to the file.

A batch record carries its map's class counts; counting while the writer takes the chunks
costs no second read of the output.
"""

from __future__ import annotations

import threading
from collections import Counter
from uuid import uuid4

import numpy as np
import xarray as xr


class PixelTally:
    """Pixels per class of a map's chunks, counted as the writer takes them: no second read."""

    def __init__(self) -> None:
        self._counts: Counter[float] = Counter()
        self._lock = threading.Lock()
        self._nodata: float | None = None
        self._masked: dict[int, str] = {}

    def counted(self, classes: xr.DataArray) -> xr.DataArray:
        """`classes` with every chunk passing through this tally on its way to the file."""
        self._nodata = classes.attrs["nodata"]
        names = classes.attrs.get("class_names", {})
        self._masked = {value: names[value] for value in classes.attrs.get("masked", {})}
        data = classes.data.map_blocks(
            self._add,
            dtype=classes.dtype,
            meta=np.empty((0, 0), dtype=classes.dtype),
            name=f"tally-{uuid4().hex}",
        )
        return classes.copy(data=data)

    def _add(self, block: np.ndarray) -> np.ndarray:
        counts = value_counts(block)
        with self._lock:
            self._counts.update(counts)
        return block

    def pixels(self) -> dict[str, int]:
        """Counts by class id (as text, for JSON), nodata pixels under 'nodata', masked
        pixels under the map's name for them ('masked: cloud')."""
        return {self._key(value): count for value, count in sorted(self._counts.items())}

    def _key(self, value: float) -> str:
        if value == self._nodata:
            return "nodata"
        if value in self._masked:
            return self._masked[int(value)]
        return str(value)


def value_counts(block: np.ndarray) -> dict[float, int]:
    """How often each value occurs; bincount for small unsigned types (sorting is slower)."""
    if block.dtype.kind == "u" and block.dtype.itemsize <= 2:
        sizes = np.bincount(block.ravel())
        values = np.flatnonzero(sizes)
        return dict(zip(values.tolist(), sizes[values].tolist(), strict=True))
    values, sizes = np.unique(block, return_counts=True)
    return dict(zip(values.tolist(), sizes.tolist(), strict=True))

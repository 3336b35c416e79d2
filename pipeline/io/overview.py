"""A class map's "mode" overview levels, computed chunk by chunk while the map streams.

GDAL's "mode" resampling is its slowest, and most of its time goes into the finest levels. Each
level is a plain 2 × 2 reduction of the one before, so the writer reduces every level whose
2 × 2 cells lie inside chunks from each chunk on the worker threads, exactly as GDAL would, level
after level, and GDAL builds only the coarser levels from the last one (see
`bandfusion.io.geotiff`). Measured figures: docs/engine.md.
"""

from __future__ import annotations

import numpy as np


def mode_2x2(block: np.ndarray, nodata: float | None) -> np.ndarray:
    """(h, w) → (h/2, w/2): the most frequent value of each 2 × 2 cell, as GDAL's "mode".

    Cells are scanned row by row; nodata values are not counted; on ties the value whose
    count reaches the maximum first wins (GDAL's rule); a cell of nodata stays nodata. `h`
    and `w` must be even.
    """
    height, width = block.shape
    if height % 2 or width % 2:
        raise ValueError(f"mode_2x2 needs even sides, got {block.shape}")
    if nodata is not None and not (block != nodata).any():
        # A chunk outside the swath: one comparison instead of counting every cell's values.
        return np.full((height // 2, width // 2), nodata, dtype=block.dtype)
    # The four values of every cell, in scan order, as contiguous (h/2, w/2) arrays.
    cells = [np.ascontiguousarray(block[dy::2, dx::2]) for dy in (0, 1) for dx in (0, 1)]
    out = cells[0].copy()
    best = np.ones(out.shape, np.uint8)  # the winner's count so far
    if nodata is not None:
        best &= cells[0] != nodata
    for i in range(1, 4):
        # How often cell value i has occurred up to and including position i: a value's count
        # is complete at its last occurrence, so a strictly larger one is a new leader, and the
        # first value to reach the mode's count keeps the cell.
        seen = np.ones(out.shape, np.uint8)
        for j in range(i):
            seen += cells[i] == cells[j]
        if nodata is not None:
            seen *= cells[i] != nodata
        lead = seen > best
        np.copyto(out, cells[i], where=lead)
        np.maximum(best, seen, out=best)
    if nodata is not None:
        out[best == 0] = nodata
    return out

"""The chunk grid over a raster, aligned to its internal blocks so that no block is decoded twice.

A 1x1-conv model needs no overlap between chunks, so a scene is cut into plain, disjoint windows.
"""

from __future__ import annotations

import math

DEFAULT_CHUNK_PIXELS = 1 << 20  # ~1 Mpx a chunk: 1024² tiles, or full-width strips of that area


def aligned_sizes(length: int, block: int, target: int) -> tuple[int, ...]:
    """Cut `length` into runs of whole blocks near `target` long; the last run takes the rest."""
    if length <= 0:
        return (0,)
    block = max(1, min(block, length))
    step = max(block, (target // block) * block)
    step = min(step, length)
    sizes = [step] * (length // step)
    if length % step:
        sizes.append(length % step)
    return tuple(sizes)


def chunk_grid(
    height: int,
    width: int,
    block_shape: tuple[int, int],
    chunk_pixels: int = DEFAULT_CHUNK_PIXELS,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Row and column chunk sizes for a raster with internal blocks `block_shape` (rows, cols).

    Striped files (blocks as wide as the raster) get full-width strips of about `chunk_pixels`;
    tiled files get square-ish chunks of whole tiles.
    """
    block_rows, block_cols = block_shape
    if block_cols >= width:
        rows = max(1, chunk_pixels // max(width, 1))
        return aligned_sizes(height, block_rows, rows), (width,)
    edge = math.isqrt(chunk_pixels)
    return aligned_sizes(height, block_rows, edge), aligned_sizes(width, block_cols, edge)

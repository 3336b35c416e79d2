"""The chunk grid: disjoint, complete, aligned to the file's internal blocks."""

from __future__ import annotations

from itertools import accumulate

from bandfusion.io.windows import aligned_sizes, chunk_grid
from hypothesis import given
from hypothesis import strategies as st

lengths = st.integers(min_value=1, max_value=20000)
blocks = st.sampled_from([1, 8, 16, 128, 256, 512, 1024])


@given(length=lengths, block=blocks, target=st.integers(min_value=1, max_value=5000))
def test_aligned_sizes_cover_the_length_in_whole_blocks(length: int, block: int, target: int):
    sizes = aligned_sizes(length, block, target)
    assert sum(sizes) == length
    assert all(s > 0 for s in sizes)
    step = min(block, length)
    assert all(s % step == 0 for s in sizes[:-1])
    assert all(s == sizes[0] for s in sizes[:-1])


@given(
    height=lengths,
    width=lengths,
    block=st.sampled_from([(256, 256), (512, 512), (128, 128), (1, 791), (8, 512)]),
    chunk_pixels=st.integers(min_value=1, max_value=1 << 22),
)
def test_chunks_tile_the_raster_exactly_once_at_block_edges(height, width, block, chunk_pixels):
    block = (block[0], min(block[1], width)) if block[1] >= 512 and block[0] <= 8 else block
    rows, cols = chunk_grid(height, width, block, chunk_pixels)
    assert sum(rows) == height and sum(cols) == width
    assert all(size > 0 for size in (*rows, *cols))
    assert all(start % min(block[0], height) == 0 for start in accumulate(rows[:-1]))
    assert all(start % min(block[1], width) == 0 for start in accumulate(cols[:-1]))


def test_striped_files_get_full_width_strips():
    rows, cols = chunk_grid(718, 791, (3, 791), chunk_pixels=100_000)
    assert cols == (791,)
    assert all(r % 3 == 0 for r in rows[:-1])
    assert sum(rows) == 718


def test_tiled_files_get_square_chunks_of_whole_tiles():
    rows, cols = chunk_grid(10980, 10980, (512, 512), chunk_pixels=1 << 20)
    assert rows[0] == cols[0] == 1024
    assert sum(rows) == 10980

"""Stratified pixel sampling (chunk by chunk, nodata-free) and spatial block splits."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pytest
import rasterio
import xarray as xr
from bandfusion.engine.sampling import (
    block_ids,
    cap_weights,
    class_counts,
    sample_pixels,
    spatial_block_split,
)
from bandfusion.io.grid import Grid
from bandfusion.io.labels import Labels, read_labels
from bandfusion.io.legend import default_legend
from bandfusion.io.nodata import nodata_coord
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

S2 = "sen1floods11_spain/Spain_7370579_S2Hand.tif"
WATER = "sen1floods11_spain/Spain_7370579_LabelHand.tif"
CHUNK = 128
NODATA_PATCH = (3, slice(200, 240), slice(300, 340))  # B4 set to nodata 0 here


class CountingArray:
    """An array dask reads through, recording the (rows, cols) of every non-empty read."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.reads: list[tuple[slice, slice]] = []

    def __getitem__(self, key: Any) -> np.ndarray:
        block = self.array[key]
        if block.size:
            self.reads.append((key[1], key[2]))
        return block


def make_scene(
    source: Any, grid: Grid, names: Sequence[str], nodata: Sequence[Any]
) -> xr.DataArray:
    """A scene as open_scene makes it, over any array dask can read."""
    return xr.DataArray(
        da.from_array(source, chunks=(-1, CHUNK, CHUNK)),
        dims=("band", "y", "x"),
        coords={"band": list(names), "nodata": nodata_coord(nodata), **grid.coords()},
        attrs=grid.to_attrs(),
    )


@pytest.fixture(scope="module")
def s2(data_dir: Path) -> tuple[np.ndarray, Grid, list[str], tuple[Any, ...]]:
    """The Sentinel-2 chip with a patch of nodata added (the chip itself has none)."""
    with rasterio.open(data_dir / S2) as src:
        array = src.read()
        grid = Grid(src.crs, src.transform, src.width, src.height)
        names, nodata = list(src.descriptions), tuple(src.nodatavals)
    array[NODATA_PATCH] = 0
    return array, grid, names, nodata


@pytest.fixture(scope="module")
def scene(s2: tuple[np.ndarray, Grid, list[str], tuple[Any, ...]]) -> xr.DataArray:
    return make_scene(*s2)


@pytest.fixture(scope="module")
def labels(data_dir: Path, s2: tuple[np.ndarray, Grid, list[str], tuple[Any, ...]]) -> Labels:
    return read_labels(data_dir / WATER, s2[1], unlabelled=-1)


def window(rows: slice, cols: slice, shape: tuple[int, int]) -> np.ndarray:
    where = np.zeros(shape, dtype=bool)
    where[rows, cols] = True
    return where


# --- sample_pixels ------------------------------------------------------------------------------


def test_cap_holds_per_class(scene: xr.DataArray, labels: Labels) -> None:
    x, y = sample_pixels(scene, labels, per_class_cap=3000, seed=0)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (len(y), 13)
    ids, counts = np.unique(y, return_counts=True)
    assert ids.tolist() == [0, 1]
    # at most the cap; the 1600-pixel nodata patch drops only a few of the drawn pixels
    assert all(2950 <= n <= 3000 for n in counts)


def test_rows_are_the_scene_values_in_chunk_then_row_order(
    s2: tuple[np.ndarray, Grid, list[str], tuple[Any, ...]], scene: xr.DataArray, labels: Labels
) -> None:
    array = s2[0]
    rows, left, right = slice(100, 110), slice(120, CHUNK), slice(CHUNK, 136)
    where = window(rows, slice(120, 136), labels.values.shape)
    x, y = sample_pixels(scene, labels, where=where, per_class_cap=None)
    parts = [(rows, left), (rows, right)]  # the window spans two chunks, read in chunk order
    expected_x = np.concatenate([array[:, r, c][:, labels.labelled[r, c]].T for r, c in parts])
    expected_y = np.concatenate([labels.values[r, c][labels.labelled[r, c]] for r, c in parts])
    np.testing.assert_array_equal(x, expected_x.astype(np.float32))
    np.testing.assert_array_equal(y, expected_y)


def test_same_seed_same_rows_other_seed_other_rows(scene: xr.DataArray, labels: Labels) -> None:
    first = sample_pixels(scene, labels, per_class_cap=500, seed=3)
    again = sample_pixels(scene, labels, per_class_cap=500, seed=3)
    other = sample_pixels(scene, labels, per_class_cap=500, seed=4)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_nodata_pixels_are_never_sampled(
    s2: tuple[np.ndarray, Grid, list[str], tuple[Any, ...]], scene: xr.DataArray, labels: Labels
) -> None:
    x, y = sample_pixels(scene, labels, per_class_cap=None)
    valid = (s2[0] != 0).all(axis=0)
    assert len(y) == np.count_nonzero(labels.labelled & valid) < labels.labelled.sum()
    assert (x != 0).all()


def test_only_chunks_with_drawn_pixels_are_read(
    s2: tuple[np.ndarray, Grid, list[str], tuple[Any, ...]], labels: Labels
) -> None:
    source = CountingArray(s2[0])
    scene = make_scene(source, *s2[1:])
    where = window(slice(10, 20), slice(300, 310), labels.values.shape)
    sample_pixels(scene, labels, where=where)
    assert [(r.start, c.start) for r, c in source.reads] == [(0, 2 * CHUNK)]

    source.reads.clear()
    sample_pixels(scene, labels, per_class_cap=2, seed=0)
    assert 1 <= len(source.reads) <= 4  # 4 drawn pixels, 16 chunks
    assert all(r.stop - r.start <= CHUNK and c.stop - c.start <= CHUNK for r, c in source.reads)


def test_numpy_backed_scene_is_one_chunk(scene: xr.DataArray, labels: Labels) -> None:
    where = window(slice(0, 50), slice(0, 50), labels.values.shape)
    lazy = sample_pixels(scene, labels, where=where, per_class_cap=100)
    eager = sample_pixels(scene.compute(), labels, where=where, per_class_cap=100)
    np.testing.assert_array_equal(lazy[0], eager[0])
    np.testing.assert_array_equal(lazy[1], eager[1])


def test_labels_on_another_grid_are_refused(scene: xr.DataArray, labels: Labels) -> None:
    with pytest.raises(ValueError, match="share one grid"):
        sample_pixels(scene[:, :100], labels)


# --- spatial_block_split ------------------------------------------------------------------------


def make_labels(values: np.ndarray, labelled: np.ndarray) -> Labels:
    return Labels(values, labelled, default_legend(np.unique(values[labelled]).tolist()), "test")


def blocks_of(shape: tuple[int, int], size: int) -> list[tuple[slice, slice]]:
    return [
        (slice(i, i + size), slice(j, j + size))
        for i in range(0, shape[0], size)
        for j in range(0, shape[1], size)
    ]


def is_whole_blocks(mask: np.ndarray, size: int) -> bool:
    return all(len(np.unique(mask[b])) == 1 for b in blocks_of(mask.shape, size))


def classes_in(labels: Labels, mask: np.ndarray) -> set[int]:
    return set(np.unique(labels.values[labels.labelled & mask]).tolist())


def block_count(labels: Labels, class_id: int, size: int) -> int:
    in_class = labels.labelled & (labels.values == class_id)
    return sum(bool(in_class[b].any()) for b in blocks_of(in_class.shape, size))


def test_split_of_the_water_labels(labels: Labels) -> None:
    mask = spatial_block_split(labels, block_size=64, val_fraction=0.2, seed=0)
    assert mask.shape == labels.values.shape and mask.dtype == bool
    assert is_whole_blocks(mask, 64)
    fraction = (mask & labels.labelled).sum() / labels.labelled.sum()
    assert abs(fraction - 0.2) < 64 * 64 / labels.labelled.sum()
    assert classes_in(labels, mask) == classes_in(labels, ~mask) == {0, 1}
    np.testing.assert_array_equal(mask, spatial_block_split(labels, val_fraction=0.2, seed=0))
    assert not np.array_equal(mask, spatial_block_split(labels, val_fraction=0.2, seed=1))


def test_split_puts_rare_classes_on_both_sides(data_dir: Path) -> None:
    path = data_dir / "eolearn_slovenia/lulc.tif"
    with rasterio.open(path) as src:
        labels = read_labels(path, Grid(src.crs, src.transform, src.width, src.height))
    assert all(block_count(labels, c, 16) >= 2 for c in labels.legend.ids)
    for seed in range(5):
        mask = spatial_block_split(labels, block_size=16, val_fraction=0.2, seed=seed)
        assert classes_in(labels, mask) == classes_in(labels, ~mask) == {1, 2, 3, 4, 8}


@pytest.mark.parametrize(("block_size", "fraction"), [(0, 0.2), (64, 0.0), (64, 1.0)])
def test_split_refuses_bad_parameters(labels: Labels, block_size: int, fraction: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        spatial_block_split(labels, block_size=block_size, val_fraction=fraction)


@st.composite
def noisy_labels(draw: st.DrawFn) -> Labels:
    """Random classes -1..3 per pixel, -1 meaning unlabelled; at least one labelled pixel."""
    values = draw(
        arrays(
            np.int16,
            st.tuples(st.integers(1, 30), st.integers(1, 30)),
            elements=st.integers(-1, 3),
        ).filter(lambda v: (v >= 0).any())
    )
    return make_labels(values, values >= 0)


@st.composite
def patchy_labels(draw: st.DrawFn, size: int) -> Labels:
    """One class (or none, 0) per block of `size`, cropped so that edge blocks can be partial."""
    classes = draw(
        arrays(
            np.int16, st.tuples(st.integers(1, 6), st.integers(1, 6)), elements=st.integers(0, 4)
        )
    )
    values = np.kron(classes, np.ones((size, size), np.int16))
    height = draw(st.integers(values.shape[0] - size + 1, values.shape[0]))
    width = draw(st.integers(values.shape[1] - size + 1, values.shape[1]))
    values = values[:height, :width]
    return make_labels(values, values > 0)


split_settings = settings(max_examples=150, deadline=None)


@split_settings
@given(noisy_labels(), st.integers(1, 9), st.floats(0.05, 0.6), st.integers(0, 2**32 - 1))
def test_split_invariants(labels: Labels, size: int, fraction: float, seed: int) -> None:
    mask = spatial_block_split(labels, block_size=size, val_fraction=fraction, seed=seed)
    assert is_whole_blocks(mask, size)
    assert classes_in(labels, ~mask) == set(labels.legend.ids)  # training keeps every class
    target = fraction * labels.labelled.sum()
    overshoot = max(len(labels.legend.ids) * size * size, target + size * size / 2)
    assert (mask & labels.labelled).sum() <= overshoot
    np.testing.assert_array_equal(
        mask, spatial_block_split(labels, block_size=size, val_fraction=fraction, seed=seed)
    )


@split_settings
@given(st.data(), st.integers(1, 5), st.floats(0.05, 0.6), st.integers(0, 2**32 - 1))
def test_split_puts_every_class_of_two_blocks_on_both_sides(
    data: st.DataObject, size: int, fraction: float, seed: int
) -> None:
    labels = data.draw(patchy_labels(size))
    mask = spatial_block_split(labels, block_size=size, val_fraction=fraction, seed=seed)
    for class_id in labels.legend.ids:
        in_both = {class_id} <= classes_in(labels, mask) & classes_in(labels, ~mask)
        assert in_both == (block_count(labels, class_id, size) >= 2)


@settings(max_examples=100, deadline=None)
@given(
    height=st.integers(1, 40), width=st.integers(1, 40), block=st.integers(1, 16), data=st.data()
)
def test_block_ids_name_each_grid_aligned_block_once(
    height: int, width: int, block: int, data: st.DataObject
) -> None:
    """Two pixels share an id exactly when they share a block; ids are row-major from 0."""
    ids = block_ids(np.arange(height * width), width, block).reshape(height, width)
    rows, cols = np.indices((height, width))
    expected = (rows // block) * (-(-width // block)) + cols // block
    np.testing.assert_array_equal(ids, expected)
    picked = data.draw(st.lists(st.integers(0, height * width - 1), min_size=1, max_size=30))
    np.testing.assert_array_equal(block_ids(np.array(picked), width, block), ids.flat[picked])
    assert np.unique(ids).tolist() == list(range(ids.max() + 1))


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 3000)), min_size=1, max_size=8)
)
def test_cap_weights_restore_the_population_mix(counts: list[tuple[int, int]]) -> None:
    """Weighted, the sample holds each class in its population share, and as many pixels."""
    population = np.array([max(p, s) for p, s in counts])  # a sample never outnumbers its class
    sampled = np.array([s for _, s in counts])
    weights = cap_weights(population, sampled)
    assert (weights[sampled == 0] == 0).all() and (weights >= 0).all()
    if sampled.sum() == 0:
        return
    weighted = sampled * weights
    assert weighted.sum() == pytest.approx(sampled.sum())
    drawn = sampled > 0
    share = population[drawn] / population[drawn].sum()
    np.testing.assert_allclose(weighted[drawn] / weighted.sum(), share, rtol=1e-9)


def test_class_counts_count_labelled_pixels_of_each_legend_class() -> None:
    values = np.array([[1, 1, 2], [3, 2, 2]])
    labelled = np.array([[True, True, True], [False, True, True]])
    labels = Labels(values, labelled, default_legend([1, 2, 3]), "synthetic")
    assert class_counts(labels) == {1: 2, 2: 3, 3: 0}
    where = np.array([[True, False, True], [True, True, False]])
    assert class_counts(labels, where) == {1: 1, 2: 2, 3: 0}

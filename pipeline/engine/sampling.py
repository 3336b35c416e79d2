"""Which labelled pixels train and which validate: spatial block splits, stratified sampling."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import xarray as xr
from bandfusion.errors import BandfusionWarning
from bandfusion.io.cloudmask import clear_in
from bandfusion.io.labels import Labels
from bandfusion.io.legend import default_name
from bandfusion.io.nodata import band_nodata, valid_mask


def spatial_block_split(
    labels: Labels, *, block_size: int = 64, val_fraction: float = 0.2, seed: int = 0
) -> np.ndarray:
    """Bool (H, W) mask of validation pixels: whole grid-aligned blocks, picked at random.

    Validation gets about `val_fraction` of the labelled pixels, in whole blocks so that it is
    spatially disjoint from training. Every class keeps a block in training; every class found
    in two or more blocks also gets one in validation unless every such block would take the
    last training block of some other class (a class found in one block only stays in
    training). Greedy: first, per class (fewest blocks first), a random block holding it if
    validation has none yet; then random blocks while they bring validation closer to the
    target. The same seed gives the same mask.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be at least 1, not {block_size}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, not {val_fraction}")
    height, width = labels.values.shape
    blocks_shape = (-(-height // block_size), -(-width // block_size))
    counts = np.zeros((blocks_shape[0] * blocks_shape[1], len(labels.legend.ids)), np.int64)
    for k, class_id in enumerate(labels.legend.ids):
        in_class = labels.labelled & (labels.values == class_id)
        counts[:, k] = _count_per_block(in_class, block_size).ravel()
    chosen = _choose_blocks(counts, val_fraction, np.random.default_rng(seed))
    grid = chosen.reshape(blocks_shape)
    return np.repeat(np.repeat(grid, block_size, axis=0), block_size, axis=1)[:height, :width]


def class_counts(labels: Labels, where: np.ndarray | None = None) -> dict[int, int]:
    """Labelled pixels of each legend class (within `where` when given): the population a
    per-class capped sample is drawn from."""
    candidates = labels.labelled if where is None else labels.labelled & where
    ids = labels.legend.ids
    return dict(zip(map(int, ids), _class_counts(labels.values, candidates, ids), strict=True))


def warn_of_lost_classes(labels: Labels, class_ids: Iterable[int]) -> None:
    """A warning naming the classes that have labelled pixels but none among `class_ids`, the
    classes of the valid pixels there are to train on (the rest nodata, or masked as cloud or
    shadow): no model learns them, and a user who labelled them should not have to find out
    from a class list."""
    kept = set(class_ids)
    lost = [c for c, n in class_counts(labels).items() if n and c not in kept]
    if lost:
        named = (labels.legend.name_of(c) for c in lost)
        listed = ", ".join(
            str(c) if name == default_name(c) else f"{c} ({name})"
            for c, name in zip(lost, named, strict=True)
        )
        warnings.warn(
            f"{labels.source}: labelled classes with no valid pixel to train on (nodata, or "
            f"masked as a product's clouds and shadows are), left out: {listed}",
            BandfusionWarning,
            stacklevel=4,
        )


def cap_weights(population: np.ndarray, sampled: np.ndarray) -> np.ndarray:
    """Per class, the weight that makes a per-class capped sample stand for its population.

    A cap draws each class at its own rate (all of a rare class, a sliver of a common one), so
    the sample's class mix is not the scene's. Weighting each class by the inverse of its rate
    (population / sampled; Horvitz-Thompson) restores that mix; the weights are scaled so the
    weighted sample counts as many pixels as it holds. Classes not sampled get weight 0.
    """
    population = np.asarray(population, dtype=np.float64)
    sampled = np.asarray(sampled, dtype=np.float64)
    drawn = sampled > 0
    inverse_rate = np.where(drawn, population / np.where(drawn, sampled, 1.0), 0.0)
    total = float((sampled * inverse_rate).sum())
    return inverse_rate * (sampled.sum() / total) if total > 0 else inverse_rate


def cap_class_weights(population: Mapping[int, int], y: np.ndarray) -> dict[int, float]:
    """{class id: weight} for the classes in `y`, a capped sample of `population` (pixels per
    class id, as `class_counts` gives them): `cap_weights` by class id."""
    ids = np.array(sorted(population))
    sampled = np.array([np.count_nonzero(y == c) for c in ids])
    weights = cap_weights(np.array([population[c] for c in ids]), sampled)
    return {int(c): float(w) for c, w, n in zip(ids, weights, sampled, strict=True) if n}


def block_ids(positions: np.ndarray, width: int, block_size: int) -> np.ndarray:
    """The grid-aligned `block_size` block (row-major id) of each flat pixel position of a grid
    `width` pixels wide: the groups that keep neighbouring pixels in one CV fold."""
    rows, cols = np.divmod(np.asarray(positions), width)
    return (rows // block_size) * (-(-width // block_size)) + cols // block_size


def _count_per_block(mask: np.ndarray, block_size: int) -> np.ndarray:
    """(blocks down, blocks across) numbers of True pixels in each grid-aligned block."""
    down = np.add.reduceat(mask, np.arange(0, mask.shape[0], block_size), axis=0, dtype=np.int64)
    return np.add.reduceat(down, np.arange(0, mask.shape[1], block_size), axis=1)


def _choose_blocks(counts: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Bool per block: the greedy choice of `spatial_block_split` on (block, class) counts."""
    present = counts > 0
    pixels = counts.sum(axis=1)
    target = fraction * pixels.sum()
    order = rng.permutation(np.flatnonzero(pixels))
    chosen = np.zeros(len(counts), dtype=bool)
    train_blocks = present.sum(axis=0)  # per class: blocks holding it still in training

    def take_if_allowed(block: int) -> bool:
        """Move a block to validation unless a class would lose its last training block."""
        if chosen[block] or np.any(train_blocks[present[block]] < 2):
            return False
        chosen[block] = True
        train_blocks[:] -= present[block]
        return True

    for c in np.argsort(present.sum(axis=0), kind="stable"):
        if np.any(chosen & present[:, c]):
            continue
        for block in order[present[order, c]]:
            if take_if_allowed(block):
                break
    in_validation = pixels[chosen].sum()
    for block in order:
        if in_validation + pixels[block] / 2 < target and take_if_allowed(block):
            in_validation += pixels[block]
    return chosen


def sample_pixels(
    scene: xr.DataArray,
    labels: Labels,
    *,
    where: np.ndarray | None = None,
    per_class_cap: int | None = 20000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """X (n, band) and y (n,) of `sample_located_pixels` (which see), without the positions."""
    x, y, _ = sample_located_pixels(
        scene, labels, where=where, per_class_cap=per_class_cap, seed=seed
    )
    return x, y


def sample_located_pixels(
    scene: xr.DataArray,
    labels: Labels,
    *,
    where: np.ndarray | None = None,
    per_class_cap: int | None = 20000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified pixel table: X (n, band) float32 scene values and y (n,) int64 class ids.

    Candidates are labelled pixels (within `where` when given). Per class, at most
    `per_class_cap` of them are drawn at random (all with None); then their scene values are
    read and pixels that are nodata in any band, or masked by the scene's `mask` coordinate, are
    dropped, so a class can end up slightly below the cap. The scene is read one spatial chunk
    at a time, and only chunks holding drawn pixels are computed, so memory is bounded by one
    chunk (and the labels) whatever the scene size. Rows come in chunk order, then row-major;
    the same seed gives the same rows.
    The third array holds each row's flat (row-major) position in the labels' grid.
    """
    if labels.values.shape != scene.shape[1:] or (
        where is not None and where.shape != labels.values.shape
    ):
        raise ValueError(f"{labels.source}: labels, scene and `where` must share one grid")
    candidates = labels.labelled if where is None else labels.labelled & where
    chunks = scene.chunks or tuple((n,) for n in scene.shape)  # numpy-backed: one chunk
    row_strips, col_strips = _slices(chunks[1]), _slices(chunks[2])
    class_ids = labels.legend.ids
    strip_counts = np.array(
        [_class_counts(labels.values[rows], candidates[rows], class_ids) for rows in row_strips],
        dtype=np.int64,
    ).reshape(len(row_strips), len(class_ids))
    ranks = _draw_ranks(strip_counts.sum(axis=0), per_class_cap, np.random.default_rng(seed))
    offsets = np.cumsum(strip_counts, axis=0) - strip_counts  # ranks before each strip
    nodata = band_nodata(scene)
    xs, ys, at = [], [], []
    width = labels.values.shape[1]
    for k, rows in enumerate(row_strips):
        drawn = _drawn_in_strip(
            labels.values[rows], candidates[rows], class_ids, ranks, offsets[k], strip_counts[k]
        )
        for cols in col_strips:
            if drawn[:, cols].any():
                block = np.asarray(scene.data[:, rows, cols])  # computes this one chunk
                keep = drawn[:, cols] & valid_mask(block, nodata) & clear_in(scene, rows, cols)
                xs.append(block[:, keep].T.astype(np.float32))
                ys.append(labels.values[rows, cols][keep].astype(np.int64))
                down, across = np.nonzero(keep)
                at.append((rows.start + down) * width + cols.start + across)
    if not xs:
        return np.empty((0, scene.shape[0]), np.float32), np.empty(0, np.int64), np.empty(0, int)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(at)


def _slices(sizes: Sequence[int]) -> list[slice]:
    """Consecutive slices of the given sizes: the chunk boundaries along one axis."""
    ends = np.cumsum(sizes).tolist()
    return [slice(end - size, end) for size, end in zip(sizes, ends, strict=True)]


def _class_counts(
    values: np.ndarray, candidates: np.ndarray, class_ids: Sequence[int]
) -> list[int]:
    """Number of candidate pixels of each class within one strip of rows."""
    return [int(np.count_nonzero(candidates & (values == c))) for c in class_ids]


def _draw_ranks(totals: np.ndarray, cap: int | None, rng: np.random.Generator) -> list[np.ndarray]:
    """Per class, the sorted ranks (in row-major order of its candidates) of the pixels drawn."""
    return [
        np.arange(n) if cap is None or n <= cap else np.sort(rng.choice(n, cap, replace=False))
        for n in totals.tolist()
    ]


def _drawn_in_strip(
    values: np.ndarray,
    candidates: np.ndarray,
    class_ids: Sequence[int],
    ranks: Sequence[np.ndarray],
    offsets: np.ndarray,
    counts: np.ndarray,
) -> np.ndarray:
    """Bool mask of the drawn pixels within one strip of rows."""
    drawn = np.zeros(values.shape, dtype=bool)
    for class_id, class_ranks, offset, count in zip(class_ids, ranks, offsets, counts, strict=True):
        lo, hi = np.searchsorted(class_ranks, [offset, offset + count])
        if hi > lo:
            positions = np.flatnonzero(candidates & (values == class_id))
            drawn.flat[positions[class_ranks[lo:hi] - offset]] = True
    return drawn

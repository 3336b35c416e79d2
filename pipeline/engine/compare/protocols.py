"""How labelled pixels are split into training and test pixels: benchmark protocols, and a
spatial cross-validation for tuning on training pixels alone.

Protocols that draw random pixels are marked optimistic: their test pixels sit next to training
pixels, so they score higher than maps of new places will.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import dask.array as da
import numpy as np
import xarray as xr
from bandfusion.engine.sampling import sample_pixels, spatial_block_split, warn_of_lost_classes
from bandfusion.io.cloudmask import clear_in
from bandfusion.io.labels import Labels
from bandfusion.io.nodata import band_nodata, valid_mask
from scipy.ndimage import maximum_filter
from sklearn.model_selection import PredefinedSplit

PROTOCOLS = ("block", "fixed-per-class", "fraction")


@dataclass(frozen=True)
class Protocol:
    """How labelled pixels are split into training and test pixels for one seed.

    block: whole `block_size` blocks, about `test_fraction` of the pixels, test (spatially
    disjoint; see `spatial_block_split`); training pixels within `buffer` pixels (Chebyshev
    distance) of a test block are dropped from training, so that no training pixel touches a
    test pixel's neighbourhood (mixed pixels, shared objects). fixed-per-class: `per_class`
    random training pixels per class (at most half of a class), the rest test, as in Hu et
    al. 2015. fraction: `fraction` of each class's pixels, at random, for training, the rest
    test.
    """

    name: str = "block"
    block_size: int = 64
    test_fraction: float = 0.3
    per_class: int = 200
    fraction: float = 0.1
    buffer: int = 0

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {self.name!r}")
        if self.per_class < 1 or self.block_size < 1:
            raise ValueError("per_class and block_size must be at least 1")
        if self.buffer < 0:
            raise ValueError(f"buffer must be 0 or more, not {self.buffer}")
        if not (0 < self.test_fraction < 1 and 0 < self.fraction < 1):
            raise ValueError("test_fraction and fraction must lie between 0 and 1")

    @property
    def optimistic(self) -> bool:
        """Random-pixel protocols: test pixels neighbour training pixels, inflating scores."""
        return self.name != "block"

    def describe(self) -> str:
        """One line saying what the protocol does, with the optimism warning where it applies."""
        if self.name == "block":
            buffer = f", {self.buffer}-px buffer around them out of training" if self.buffer else ""
            return (
                f"block: spatially disjoint {self.block_size}-px blocks, "
                f"~{self.test_fraction:.0%} of labelled pixels for test{buffer}"
            )
        what = (
            f"fixed-per-class: {self.per_class} random training pixels per class"
            if self.name == "fixed-per-class"
            else f"fraction: {self.fraction:.0%} of each class's pixels at random for training"
        )
        return f"{what}, the rest for test (random pixels: OPTIMISTIC, for literature comparison)"

    def split(self, labels: Labels, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Bool (H, W) masks (train, test) over the labelled pixels; disjoint, seed-determined."""
        if self.name == "block":
            blocks = spatial_block_split(
                labels, block_size=self.block_size, val_fraction=self.test_fraction, seed=seed
            )
            near = maximum_filter(blocks, size=2 * self.buffer + 1) if self.buffer else blocks
            return labels.labelled & ~near, labels.labelled & blocks
        rng = np.random.default_rng(seed)
        train = np.zeros(labels.values.shape, dtype=bool)
        for class_id in labels.legend.ids:
            where = np.flatnonzero(labels.labelled & (labels.values == class_id))
            train.flat[rng.choice(where, self._n_train(len(where)), replace=False)] = True
        return train, labels.labelled & ~train

    def _n_train(self, n: int) -> int:
        """Training pixels taken from a class of n pixels: at least one, never all of two+."""
        wanted = self.per_class if self.name == "fixed-per-class" else round(self.fraction * n)
        limit = n // 2 if self.name == "fixed-per-class" else n - 1
        return max(1, min(wanted, limit)) if n > 1 else n


def usable_labels(scene: xr.DataArray, labels: Labels) -> Labels:
    """`labels` without the pixels that are nodata in the scene or that its mask marks (clouds,
    shadows, ...), so splits count the pixels that sampling can draw."""
    data = scene.data if isinstance(scene.data, da.Array) else da.from_array(scene.data)
    nodata = band_nodata(scene)
    valid = da.map_blocks(valid_mask, data, nodata, drop_axis=0, dtype=bool).compute()
    valid &= clear_in(scene, slice(None), slice(None))
    usable = labels.labelled & valid
    warn_of_lost_classes(labels, np.unique(labels.values[usable]).tolist())
    return replace(labels, labelled=usable)


def spatial_cv(
    scene: xr.DataArray,
    labels: Labels,
    where: np.ndarray,
    *,
    n_folds: int = 3,
    block_size: int = 64,
    per_class_cap: int | None = 20000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, PredefinedSplit]:
    """Pixels of `where` and a spatial cross-validation over them, for tuning on training data.

    The blocks holding labelled pixels of `where` are dealt at random to `n_folds` folds;
    each fold's pixels (at most per_class_cap / n_folds per class) are sampled in turn.
    Returns X, y and a PredefinedSplit for GridSearchCV / cross_val_score(cv=...).
    """
    height, width = labels.values.shape
    candidates = labels.labelled & where
    blocks = (np.arange(height)[:, None] // block_size) * (-(-width // block_size)) + (
        np.arange(width)[None, :] // block_size
    )
    used = np.unique(blocks[candidates])
    fold_of_block = np.full(blocks.max() + 1, -1)
    fold_of_block[used] = np.random.default_rng(seed).permutation(len(used)) % n_folds
    pixel_fold = np.where(candidates, fold_of_block[blocks], -1)
    cap = None if per_class_cap is None else max(1, per_class_cap // n_folds)
    tables = [
        sample_pixels(scene, labels, where=pixel_fold == fold, per_class_cap=cap, seed=seed + fold)
        for fold in range(n_folds)
    ]
    folds = np.concatenate([np.full(len(y), k) for k, (_, y) in enumerate(tables)])
    x = np.concatenate([x for x, _ in tables])
    y = np.concatenate([y for _, y in tables])
    return x, y, PredefinedSplit(folds)

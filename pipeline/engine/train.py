"""Training on sampled pixels: a spatially disjoint validation split, class weights, early stopping.

A 1x1-conv network needs no patches: it trains on a table of labelled pixels, which is fast and
keeps memory bounded by the number of samples, not the scene.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, cast

import numpy as np
import xarray as xr
from bandfusion import __version__
from bandfusion.engine.evaluate import EvaluationReport, evaluate
from bandfusion.engine.sampling import (
    block_ids,
    cap_class_weights,
    class_counts,
    sample_located_pixels,
    sample_pixels,
    spatial_block_split,
    warn_of_lost_classes,
)
from bandfusion.errors import LabelError, ModelFileError, SceneError
from bandfusion.io.bands import canonical_bands
from bandfusion.io.grid import Grid
from bandfusion.io.labels import Labels, read_labels
from bandfusion.io.radiometry import scene_radiometry
from bandfusion.io.sources import scene_sources
from bandfusion.models.blend import fit_blend
from bandfusion.models.checkpoint import TrainedModel
from bandfusion.models.devices import resolve_device
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.indices import append_indices, resolve_roles
from bandfusion.models.metadata import ModelMetadata
from bandfusion.models.selection import Selection, select_settings
from bandfusion.models.training import FitSettings
from bandfusion.progress import Progress
from sklearn.utils.class_weight import compute_class_weight


@dataclass(frozen=True)
class TrainingSettings(FitSettings):
    """Everything that shapes a trained model; stored in model.json so a run can be repeated.

    The network and optimiser fields (and their defaults) are those of FitSettings, which the
    shared training loop takes; these add how pixels are sampled and split, and which
    spectral indices (NDVI, NDWI, MNDWI, NDBI) join the bands as inputs, from the bands that
    `band_roles` names ({"nir": "B8", ...}; default: Sentinel-2 band names). With `search`,
    the network settings are those of the candidate that cross-validation over spatial blocks
    of `block_size` px of the training pixels scores best (bandfusion.models.selection), or
    with `blend` k > 1 the k best candidates' networks averaged as one
    (bandfusion.models.blend); without it, exactly the given ones (one fit). `class_weight`
    balances the classes; without it each labelled training pixel counts the same, the
    capped sample weighted back to the labels' class mix (`cap_class_weights`).
    """

    per_class_cap: int | None = 20000
    val_fraction: float = 0.2
    block_size: int = 64
    class_weight: bool = True
    indices: tuple[str, ...] = ()
    band_roles: dict[str, str] | None = None
    search: bool = True
    blend: int = 1


@dataclass
class TrainingResult:
    """The trained model, its per-epoch history, the report on held-out validation pixels and
    how its settings were chosen (None without a search)."""

    model: TrainedModel
    validation: EvaluationReport | None
    history: list[dict[str, float]] = field(default_factory=list)
    selection: Selection | None = None


@dataclass(frozen=True)
class PixelSplit:
    """Sampled pixel tables, as class indices into `class_ids`."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_ids: list[int]
    train_at: np.ndarray  # flat (row-major) grid position of each training pixel


def train(
    scene: xr.DataArray,
    labels: Labels | str | os.PathLike[str],
    *,
    device: str = "auto",
    progress: Progress | None = None,
    **settings: Any,
) -> TrainingResult:
    """Fit a SpectralFusionNet on labelled pixels of `scene`; keywords are TrainingSettings fields.

    Validation pixels come from whole blocks of `block_size` px that training never sees, so
    the report is not inflated by neighbouring, near-identical pixels. `progress` is told of
    each epoch.
    """
    config = TrainingSettings(**settings)
    if not isinstance(labels, Labels):
        labels = read_labels(labels, Grid.of(scene))
    bands = [str(b) for b in scene["band"].values]
    try:
        roles = resolve_roles(config.indices, bands, config.band_roles)
    except ValueError as exc:
        sources = scene_sources(scene)
        raise SceneError(f"{sources}: {exc}", setting="band_roles") from None
    val_mask = _validation_mask(labels, config.block_size, config.val_fraction, config.seed)
    split = _sample(scene, labels, val_mask, config, roles)
    n_classes = len(split.class_ids)

    unbalanced = None  # without class weighting each training-region pixel counts the same
    if not config.class_weight:
        ids = np.asarray(split.class_ids)
        undone = cap_class_weights(class_counts(labels, ~val_mask), ids[split.y_train])
        unbalanced = np.array([undone[c] for c in split.class_ids])

    def class_weights(y: np.ndarray) -> np.ndarray:
        """Balanced; or, without class weighting, the cap's per-class rates undone."""
        if unbalanced is not None:
            return unbalanced
        return compute_class_weight("balanced", classes=np.arange(n_classes), y=y)

    selection = None
    if config.search:
        selection = select_settings(
            split.x_train,
            split.y_train,
            n_classes=n_classes,
            settings=config,
            class_weights=class_weights,
            groups=block_ids(split.train_at, labels.values.shape[1], config.block_size),
            device=resolve_device(device),
            blend=config.blend,
        )
        config = cast(TrainingSettings, selection.settings)
    weights = class_weights(split.y_train)
    fit = fit_blend(
        split.x_train,
        split.y_train,
        n_classes=n_classes,
        members=[config] if selection is None else selection.members(),
        x_val=split.x_val,
        y_val=split.y_val,
        class_weights=weights,
        device=resolve_device(device),
        progress=progress,
    )
    meta = _metadata(scene, labels, split, config, fit.net, roles)
    meta.training["class_weights"] = {
        str(c): float(w) for c, w in zip(split.class_ids, weights, strict=True)
    }
    if selection is not None:
        meta.training["selection"] = selection.to_dict()
    model = TrainedModel(fit.net, meta)
    validation = None
    if len(split.y_val):
        validation = evaluate(model, scene, labels, where=val_mask, device=device)
        model.meta.metrics = {"validation": validation.to_dict()}
    return TrainingResult(model, validation, fit.history, selection)


def _validation_mask(labels: Labels, block_size: int, val_fraction: float, seed: int) -> np.ndarray:
    """Whole blocks held out for validation (none when val_fraction is 0)."""
    if val_fraction <= 0:
        return np.zeros(labels.values.shape, dtype=bool)
    return spatial_block_split(labels, block_size=block_size, val_fraction=val_fraction, seed=seed)


def held_out_blocks(model: TrainedModel, labels: Labels) -> np.ndarray:
    """The validation blocks `train` drew for `model`, redrawn from the settings it stored.

    Equal to training's own mask when `labels` are read as they were for training.
    """
    settings = model.meta.training
    try:
        block_size = int(settings["block_size"])
        val_fraction = float(settings["val_fraction"])
        seed = int(settings["seed"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError("model.json records no validation split") from exc
    return _validation_mask(labels, block_size, val_fraction, seed)


def _sample(
    scene: xr.DataArray,
    labels: Labels,
    val_mask: np.ndarray,
    config: TrainingSettings,
    roles: dict[str, str],
) -> PixelSplit:
    """Training and validation pixels as network inputs: bands, then the declared indices."""
    cap, seed = config.per_class_cap, config.seed
    x_train, y_train, train_at = sample_located_pixels(
        scene, labels, where=~val_mask, per_class_cap=cap, seed=seed
    )
    x_val, y_val = sample_pixels(scene, labels, where=val_mask, per_class_cap=cap, seed=seed + 1)
    if config.indices:
        bands = [str(b) for b in scene["band"].values]
        x_train = append_indices(x_train, bands, config.indices, roles)
        x_val = append_indices(x_val, bands, config.indices, roles)
    class_ids = sorted(int(c) for c in np.unique(y_train))
    if len(class_ids) < 2:
        raise LabelError(
            f"{labels.source}: training needs at least two classes with valid pixels, "
            f"found {class_ids or 'none'}"
        )
    warn_of_lost_classes(labels, class_ids)
    known = np.isin(y_val, class_ids)
    return PixelSplit(
        x_train,
        np.searchsorted(class_ids, y_train),
        x_val[known],
        np.searchsorted(class_ids, y_val[known]),
        class_ids,
        train_at,
    )


def _metadata(
    scene: xr.DataArray,
    labels: Labels,
    split: PixelSplit,
    config: TrainingSettings,
    net: SpectralFusionNet,
    roles: dict[str, str],
) -> ModelMetadata:
    legend = labels.legend.restrict(split.class_ids)
    training = {
        **asdict(config),
        "hidden": list(config.hidden),
        "labels": labels.source,
        "inputs": sorted({str(s) for s in scene["source"].values}),
        "samples": {"train": len(split.y_train), "validation": len(split.y_val)},
    }
    names = [str(b) for b in scene["band"].values]
    canonical = dict(zip(names, canonical_bands(names), strict=True))
    return ModelMetadata(
        bands=list(canonical.values()),
        class_ids=list(split.class_ids),
        class_names=list(legend.names),
        class_colors=list(legend.colors),
        architecture=net.config(),
        training=training,
        package_version=__version__,
        indices=list(config.indices),
        band_roles={role: canonical[band] for role, band in roles.items()},
        radiometry=scene_radiometry(scene),
    )

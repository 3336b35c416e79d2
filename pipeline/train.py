"""Training on sampled pixels: a spatially disjoint validation split, class weights, early stopping.

A 1x1-conv network needs no patches: it trains on a table of labelled pixels, which is fast and
keeps memory bounded by the number of samples, not the scene.
"""

from __future__ import annotations

import copy
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr
from bandfusion.models.checkpoint import ModelMetadata, TrainedModel
from bandfusion.models.fusion import SpectralFusionNet
from sklearn.metrics import f1_score
from tqdm.auto import tqdm

from . import __version__
from .errors import LabelError
from .evaluate import EvaluationReport, evaluate
from .grid import Grid
from .labels import Labels, read_labels
from .predict import resolve_device
from .sampling import sample_pixels, spatial_block_split


@dataclass(frozen=True)
class TrainingSettings:
    """Everything that shapes a trained model; stored in model.json so a run can be repeated."""

    hidden: tuple[int, ...] = (64, 64)
    norm: str = "batch"
    activation: str = "relu"
    dropout: float = 0.1
    epochs: int = 100
    batch_size: int = 1024
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 12
    per_class_cap: int | None = 20000
    val_fraction: float = 0.2
    block_size: int = 64
    class_weight: bool = True
    seed: int = 0


@dataclass
class TrainingResult:
    """The trained model, its per-epoch history and the report on held-out validation pixels."""

    model: TrainedModel
    validation: EvaluationReport | None
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class PixelSplit:
    """Sampled pixel tables, as class indices into `class_ids`."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_ids: list[int]


def train(
    scene: xr.DataArray,
    labels: Labels | str | os.PathLike[str],
    *,
    device: str = "auto",
    progress: bool = False,
    **settings: Any,
) -> TrainingResult:
    """Fit a SpectralFusionNet on labelled pixels of `scene`; keywords are TrainingSettings fields.

    Validation pixels come from whole blocks of `block_size` px that training never sees, so
    the report is not inflated by neighbouring, near-identical pixels.
    """
    config = TrainingSettings(**settings)
    if not isinstance(labels, Labels):
        labels = read_labels(labels, Grid.of(scene))
    torch.manual_seed(config.seed)
    val_mask = _validation_mask(labels, config)
    split = _sample(scene, labels, val_mask, config)
    target = resolve_device(device)
    net = _build_net(split, config, len(scene["band"])).to(target)
    history = _fit(net, split, config, target, progress)
    model = TrainedModel(net.cpu().eval(), _metadata(scene, labels, split, config, net))
    validation = None
    if len(split.y_val):
        validation = evaluate(model, scene, labels, where=val_mask, device=device)
        model.meta.metrics = {"validation": validation.to_dict()}
    return TrainingResult(model, validation, history)


def _validation_mask(labels: Labels, config: TrainingSettings) -> np.ndarray:
    """Whole blocks held out for validation (none when val_fraction is 0)."""
    return (
        spatial_block_split(
            labels,
            block_size=config.block_size,
            val_fraction=config.val_fraction,
            seed=config.seed,
        )
        if config.val_fraction > 0
        else np.zeros(labels.values.shape, dtype=bool)
    )


def _sample(
    scene: xr.DataArray, labels: Labels, val_mask: np.ndarray, config: TrainingSettings
) -> PixelSplit:
    cap, seed = config.per_class_cap, config.seed
    x_train, y_train = sample_pixels(scene, labels, where=~val_mask, per_class_cap=cap, seed=seed)
    x_val, y_val = sample_pixels(scene, labels, where=val_mask, per_class_cap=cap, seed=seed + 1)
    class_ids = sorted(int(c) for c in np.unique(y_train))
    if len(class_ids) < 2:
        raise LabelError(
            f"{labels.source}: training needs at least two classes with valid pixels, "
            f"found {class_ids or 'none'}"
        )
    known = np.isin(y_val, class_ids)
    return PixelSplit(
        x_train,
        np.searchsorted(class_ids, y_train),
        x_val[known],
        np.searchsorted(class_ids, y_val[known]),
        class_ids,
    )


def _build_net(split: PixelSplit, config: TrainingSettings, n_bands: int) -> SpectralFusionNet:
    net = SpectralFusionNet(
        n_bands,
        len(split.class_ids),
        hidden=config.hidden,
        norm=config.norm,  # type: ignore[arg-type]
        activation=config.activation,  # type: ignore[arg-type]
        dropout=config.dropout,
    )
    x = split.x_train.astype(np.float64)
    net.set_standardisation(torch.from_numpy(x.mean(0)).float(), torch.from_numpy(x.std(0)).float())
    return net


def _class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """'Balanced' weights, n / (k · count): rare classes count as much as common ones."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = len(y) / (n_classes * np.maximum(counts, 1.0))
    return torch.from_numpy(weights).float()


def _fit(
    net: SpectralFusionNet,
    split: PixelSplit,
    config: TrainingSettings,
    device: torch.device,
    progress: bool,
) -> list[dict[str, float]]:
    """Mini-batch AdamW; keeps the weights of the epoch with the best validation macro-F1."""
    n_classes = len(split.class_ids)
    weight = _class_weights(split.y_train, n_classes).to(device) if config.class_weight else None
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    optimizer = torch.optim.AdamW(
        net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    x_train = torch.from_numpy(split.x_train).to(device)
    y_train = torch.from_numpy(split.y_train).long().to(device)
    generator = torch.Generator().manual_seed(config.seed)
    best: tuple[float, dict[str, torch.Tensor]] = (-1.0, copy.deepcopy(net.state_dict()))
    history: list[dict[str, float]] = []
    stale = 0
    bar = tqdm(range(config.epochs), desc="train", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        net.train()
        order = torch.randperm(len(x_train), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            if len(batch) < 2:
                continue  # batch norm needs two samples
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        scheduler.step()
        score = _val_macro_f1(net, split, device)
        history.append({"epoch": epoch + 1, "loss": total / len(order), "val_macro_f1": score})
        bar.set_postfix(loss=f"{total / len(order):.4f}", val_f1=f"{score:.4f}")
        if score > best[0]:
            best, stale = (score, copy.deepcopy(net.state_dict())), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    net.load_state_dict(best[1])
    return history


def _predict_indices(net: SpectralFusionNet, x: np.ndarray, device: torch.device) -> np.ndarray:
    net.eval()
    with torch.inference_mode():
        return net(torch.from_numpy(x).to(device)).argmax(1).cpu().numpy()


def _val_macro_f1(net: SpectralFusionNet, split: PixelSplit, device: torch.device) -> float:
    """Validation macro-F1; without validation pixels, training macro-F1 stands in."""
    x, y = (split.x_val, split.y_val) if len(split.y_val) else (split.x_train, split.y_train)
    predicted = _predict_indices(net, x, device)
    return float(f1_score(y, predicted, average="macro", zero_division=0))


def _metadata(
    scene: xr.DataArray,
    labels: Labels,
    split: PixelSplit,
    config: TrainingSettings,
    net: SpectralFusionNet,
) -> ModelMetadata:
    legend = labels.legend.restrict(split.class_ids)
    training = {
        **asdict(config),
        "hidden": list(config.hidden),
        "labels": labels.source,
        "inputs": sorted({str(s) for s in scene["source"].values}),
        "samples": {"train": len(split.y_train), "validation": len(split.y_val)},
    }
    return ModelMetadata(
        bands=[str(b) for b in scene["band"].values],
        class_ids=list(split.class_ids),
        class_names=list(legend.names),
        class_colors=list(legend.colors),
        architecture=net.config(),
        training=training,
        package_version=__version__,
    )


def parse_widths(text: str) -> tuple[int, ...]:
    """'128,32,128' → (128, 32, 128); '' or 'none' → () (a linear model)."""
    if text.strip().lower() in ("", "none"):
        return ()
    widths = tuple(int(part) for part in text.split(","))
    if any(w <= 0 for w in widths):
        raise ValueError(f"layer widths must be positive: {text}")
    return widths

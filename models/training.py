"""The one training loop for SpectralFusionNet on pixel tables, shared by `bandfusion.train` and
the scikit-learn estimator: standardise, AdamW with a cosine schedule, early stopping.

It takes plain arrays (class indices 0..K-1), so it knows nothing of scenes, splits or files.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from bandfusion.errors import SettingError
from bandfusion.models.checkpoint import MAX_WEIGHTS_BYTES
from bandfusion.models.embedding import BinnedFusionNet, check_clip, quantile_bins
from bandfusion.models.fusion import (
    Activation,
    Norm,
    SpectralFusionNet,
    UniformDropout,
    combination_problem,
)
from bandfusion.models.metadata import parameter_count
from bandfusion.models.threads import one_thread_on_cpu
from bandfusion.progress import Progress, Step

MAX_TRAINING_BYTES = 8 * 1024**3
"""Memory a training run's network may take: its parameters five times over (weights,
gradients, AdamW's two moments, the best epoch's copy) and the activations of one batch kept
for the backward pass, or of one layer when scoring. Wider networks are refused before any
is built, as loading refuses weights that do not fit their model.json."""
Trainable = SpectralFusionNet | BinnedFusionNet
"""A network as it trains: binned bands train in their own form and are saved exported."""
SCORED_TRAINING_PIXELS = 1 << 15
"""Training pixels that score each epoch when no validation pixels are given, at most (a
stratified sample): past it the score's noise is below what one epoch changes, while its
cost would keep growing with the table."""
PATIENCE_EPOCH_STEPS = 16
"""Optimiser steps an epoch counts for in `patience`, at least: an epoch of a small table
(3,000 pixels in batches of 1,024 make 3 steps) counts for its share of these, so early
stopping cannot end a fit a few dozen steps in, on the noise of its first epochs."""
_SCORING_PIXELS = 1 << 16  # pixels per batch of `predict_logits`, which scores each epoch
_SEEDING = threading.Lock()
"""Held while a fit seeds torch's global generator and draws its initial weights, so that fits
in threads of one process each get the weights their seed gives."""


@dataclass(frozen=True)
class FitSettings:
    """The architecture and optimisation settings of one training run; the package defaults.

    `bins` > 0 encodes each band piecewise-linearly in that many quantile bins before the
    first layer (bandfusion.models.embedding); 0 feeds the standardised bands as they are.
    `clip` > 0 saturates each band beyond its `clip` and 1 − `clip` quantiles of the training
    pixels (the bins' outer edges; with no bins, the network clamps the band to that range).
    """

    hidden: tuple[int, ...] = (64, 64)
    norm: Norm = "batch"
    activation: Activation = "relu"
    dropout: float = 0.1
    epochs: int = 100
    batch_size: int = 1024
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 12
    members: int = 1
    bins: int = 0
    clip: float = 0.0
    seed: int = 0


@dataclass
class FitResult:
    """A trained network (on the CPU, in eval mode) and its per-epoch history."""

    net: SpectralFusionNet
    history: list[dict[str, float]]


def fit_pixels(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    settings: FitSettings | None = None,
    class_weights: np.ndarray | None = None,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> FitResult:
    """Train a SpectralFusionNet on float32 pixels `x` (n, bands) and class indices `y` (n,).

    The network standardises with the mean and std of `x`. Each epoch is scored by macro-F1
    on (x_val, y_val), or on the training pixels when no validation is given, each pixel
    counted with its class weight as in the loss; the weights of the best epoch are kept,
    and training stops after `patience` epochs without improvement (epochs of fewer than
    PATIENCE_EPOCH_STEPS batches count for their share). `class_weights` (one per
    class index) weight the cross-entropy. `settings.seed` seeds torch;
    None takes the FitSettings defaults. `progress` is told of each epoch (stage "train").
    """
    settings = settings or FitSettings()
    problem = settings_problem(settings)
    if problem is not None:
        raise SettingError(problem[0], getattr(settings, problem[0]), problem[1])
    check_network_fits(x.shape[1], n_classes, settings)
    target = torch.device(device)
    with _SEEDING:
        torch.manual_seed(settings.seed)
        trained = _build_net(x, n_classes, settings).to(target)
    if x_val is None or y_val is None or len(y_val) == 0:
        rng = np.random.default_rng(settings.seed)
        scored = stratified_sample(y, np.arange(len(y)), SCORED_TRAINING_PIXELS, rng)
        x_val, y_val = x[scored], y[scored]
    weight = None if class_weights is None else torch.as_tensor(class_weights).float().to(target)
    with one_thread_on_cpu(target), _dropout_stream(trained, settings.seed, target):
        history = _train(trained, (x, y), (x_val, y_val), settings, weight, target, progress)
    trained = trained.cpu().eval()
    net = trained.export() if isinstance(trained, BinnedFusionNet) else trained
    return FitResult(net, history)


def settings_problem(settings: FitSettings) -> tuple[str, str] | None:
    """(setting, why) where settings that are each valid cannot build a network together;
    None where they can (fusion.combination_problem). The search skips such candidates; a
    fit refuses them."""
    return combination_problem(settings.norm, settings.activation, settings.members, settings.bins)


def check_network_fits(in_bands: int, n_classes: int, settings: FitSettings) -> None:
    """SettingError when the network would not fit MAX_TRAINING_BYTES while training, or its
    weights would not fit the largest model file that loading accepts: on `bins` where the
    bins' encoding is what breaks it, else on `hidden`."""
    bins = settings.bins if isinstance(settings.bins, int) and settings.bins > 0 else 0
    widths = [in_bands, *settings.hidden, n_classes]
    if not all(isinstance(w, int) and w >= 1 for w in widths):
        return  # the network itself says what is wrong with such widths
    k = settings.members if isinstance(settings.members, int) and settings.members >= 1 else 1
    problem = _size_problem(widths, k, settings.batch_size)
    if problem is not None:
        raise SettingError("hidden", ",".join(map(str, settings.hidden)), problem)
    if bins:  # a hinge per bin edge, as saved
        problem = _size_problem(
            [in_bands, (bins + 1) * in_bands, *widths[1:]], k, settings.batch_size
        )
        if problem is not None:
            raise SettingError("bins", bins, problem.replace("narrower layers", "fewer bins"))


def _size_problem(widths: list[int], members: int, batch_size: int) -> str | None:
    """Why a network of these widths is too large to train or to save, or None."""
    parameters = parameter_count(widths, members)
    batch = batch_size * members * sum(widths[1:]) * 4  # conv, norm, activation, dropout
    scoring = _SCORING_PIXELS * 2 * members * max(widths)  # one layer's input and output
    needed = 4 * (5 * parameters + max(batch, scoring))
    if 4 * parameters > MAX_WEIGHTS_BYTES:
        return (
            f"a network of {parameters:,} parameters would save {_gib(4 * parameters)} of "
            f"weights, over the {_gib(MAX_WEIGHTS_BYTES)} a model file may hold"
        )
    if needed > MAX_TRAINING_BYTES:
        return (
            f"training a network of {parameters:,} parameters would take about {_gib(needed)} "
            f"of memory, over the {_gib(MAX_TRAINING_BYTES)} budget; use narrower layers"
        )
    return None


def _gib(size: int) -> str:
    return f"{size / 1024**3:.3g} GiB"


def _build_net(
    x: np.ndarray, n_classes: int, settings: FitSettings
) -> SpectralFusionNet | BinnedFusionNet:
    """A fresh network standardised on the training pixels (statistics in float64)."""
    options: dict[str, Any] = {
        "hidden": settings.hidden,
        "norm": settings.norm,
        "activation": settings.activation,
        "dropout": settings.dropout,
        "members": settings.members,
    }
    if settings.bins:
        return BinnedFusionNet(x, n_classes, settings.bins, settings.clip, **options)
    clip = settings.clip
    check_clip(clip)
    net = SpectralFusionNet(x.shape[1], n_classes, clamped=clip > 0, **options)
    x64 = x.astype(np.float64)
    net.set_standardisation(
        torch.from_numpy(x64.mean(0)).float(), torch.from_numpy(x64.std(0)).float()
    )
    if clip > 0:  # the central range of each standardised band, as one bin of `clip` has it
        standard = (x64 - net.band_mean.double().numpy()) / net.band_std.double().numpy()
        _, low, width = quantile_bins(standard, 1, clip)
        net.set_clamp(torch.from_numpy(low).float(), torch.from_numpy(low + width).float())
    return net


@contextmanager
def _dropout_stream(net: Trainable, seed: int, device: torch.device) -> Iterator[None]:
    """Dropout masks drawn from a generator of the fit's own, seeded as the batch order is, so
    a fit does not depend on what else draws from torch's global generator."""
    dropouts = [module for module in net.modules() if isinstance(module, UniformDropout)]
    masks = torch.Generator(device=device).manual_seed(seed)
    for dropout in dropouts:
        dropout.generator = masks
    try:
        yield
    finally:
        for dropout in dropouts:
            dropout.generator = None  # a generator does not pickle, and the fit is over


def _train(
    net: Trainable,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    settings: FitSettings,
    weight: torch.Tensor | None,
    device: torch.device,
    progress: Progress | None,
) -> list[dict[str, float]]:
    """Mini-batch AdamW; keeps the weights of the epoch with the best validation macro-F1,
    its pixels counted with the loss's class weights."""
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight)
    scoring_weights = None if weight is None else weight.cpu().double().numpy()
    optimizer = torch.optim.AdamW(
        net.parameters(),
        lr=settings.learning_rate,
        weight_decay=settings.weight_decay,
        fused=True,  # one kernel for all parameters: a quarter less time per step on a CPU
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    x_train = torch.from_numpy(np.ascontiguousarray(train[0], dtype=np.float32)).to(device)
    y_train = torch.from_numpy(np.asarray(train[1])).long().to(device)
    generator = torch.Generator().manual_seed(settings.seed)
    best: tuple[float, dict[str, torch.Tensor]] = (-1.0, copy.deepcopy(net.state_dict()))
    history: list[dict[str, float]] = []
    stale = 0
    steps = math.ceil(len(x_train) / settings.batch_size)
    for epoch in range(settings.epochs):
        net.train()
        order = torch.randperm(len(x_train), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(order), settings.batch_size):
            batch = order[start : start + settings.batch_size]
            if len(batch) < 2:
                continue  # batch norm needs two samples
            optimizer.zero_grad(set_to_none=True)
            logits = net.member_logits(x_train[batch])  # each member learns on its own loss
            targets = y_train[batch].repeat_interleave(net.members)
            loss = loss_fn(logits.reshape(-1, net.n_classes), targets)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        _check_finite(net, total, epoch + 1, settings.learning_rate)
        scheduler.step()
        score = _macro_f1(net, val, device, scoring_weights)
        mean_loss = total / max(len(order), 1)
        history.append({"epoch": epoch + 1, "loss": mean_loss, "val_macro_f1": score})
        if progress is not None:
            info = {"loss": mean_loss, "val_f1": score}
            progress(Step("train", 1, settings.epochs, "epoch", info))
        if score > best[0]:
            best, stale = (score, copy.deepcopy(net.state_dict())), 0
        else:
            stale += 1
            if stale * steps >= settings.patience * max(steps, PATIENCE_EPOCH_STEPS):
                break
    net.load_state_dict(best[1])
    return history


def _check_finite(net: Trainable, loss: float, epoch: int, learning_rate: float) -> None:
    """SettingError (on `learning_rate`) once the loss or a weight is NaN or infinite: training
    has diverged, and nothing it would go on to learn, or save, is usable."""
    if math.isfinite(loss) and all(bool(torch.isfinite(p).all()) for p in net.parameters()):
        return
    raise SettingError(
        "learning_rate",
        learning_rate,
        f"training diverged in epoch {epoch} (the loss or the weights became NaN or "
        "infinite); use a lower learning rate",
    )


def stratified_sample(
    y: np.ndarray, rows: np.ndarray, cap: int, rng: np.random.Generator
) -> np.ndarray:
    """`rows`, or a sorted random `cap` of them (each class in proportion, at least one)."""
    if len(rows) <= cap:
        return rows
    share = cap / len(rows)
    kept = [
        rng.permutation(of_class)[: max(1, round(share * len(of_class)))]
        for of_class in (rows[y[rows] == k] for k in np.unique(y[rows]))
    ]
    return np.sort(np.concatenate(kept))


def predict_logits(
    net: Trainable,
    x: np.ndarray,
    device: torch.device | str = "cpu",
    batch_pixels: int = 1 << 16,
) -> torch.Tensor:
    """Eval-mode logits (n, K) on the CPU for a float pixel table (n, bands), batch by batch."""
    net.eval()
    table = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    with torch.inference_mode():
        parts = [
            net(table[start : start + batch_pixels].to(device)).float().cpu()
            for start in range(0, len(table), batch_pixels)
        ]
    return torch.cat(parts) if parts else torch.empty((0, net.n_classes))


def _macro_f1(
    net: Trainable,
    data: tuple[np.ndarray, np.ndarray],
    device: torch.device,
    class_weights: np.ndarray | None,
) -> float:
    predicted = predict_logits(net, data[0], device).argmax(1).numpy()
    return macro_f1(np.asarray(data[1]), predicted, net.n_classes, class_weights)


def macro_f1(
    truth: np.ndarray,
    predicted: np.ndarray,
    n_classes: int,
    class_weights: np.ndarray | None = None,
) -> float:
    """scikit-learn's f1_score(average="macro", zero_division=0) for class indices 0..K-1, from
    one bincount: it scores every epoch, where f1_score's input checks cost more than the count.

    Classes neither true nor predicted are left out of the mean, as f1_score leaves them out.
    `class_weights` (one per class index) count each pixel as the loss counts it, as
    f1_score's `sample_weight` would: the score then judges the class mix the fit is weighted
    to, not the sample's (a per-class cap's balanced sample scored unweighted would prefer
    the least trained epoch of a fit weighted back to the scene's mix).
    """
    weights = None if class_weights is None else np.asarray(class_weights, np.float64)[truth]
    cells = truth * n_classes + predicted
    confusion = np.bincount(cells, weights=weights, minlength=n_classes * n_classes)
    confusion = confusion.reshape(n_classes, n_classes)
    hits = np.diag(confusion)
    seen = confusion.sum(0) + confusion.sum(1)  # 2·tp + fp + fn, counting tp twice
    present = seen > 0
    return float(np.mean(2 * hits[present] / seen[present])) if present.any() else 0.0

"""Training settings chosen inside the training pixels: a few fixed candidates scored by CV.

No fixed recipe suits every data set, and settings tuned on one set's test pixels are tuning on
the test set by another name. So a default fit scores a small fixed list of candidates (each a
few overrides of the caller's settings) by k-fold cross-validation on its own training pixels:
folds of whole spatial blocks when the pixels come from a raster (`groups`: each pixel's block),
stratified folds for a table, and keeps the best by mean macro-F1, or blends the best few (their
networks' logits averaged, bandfusion.models.blend). Fold fits run on a capped stratified sample
of the fold's pixels, side by side on the usable cores, so the search costs a bounded multiple
of one fit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import torch
from bandfusion.models.blend import blend_problem as networks_blend_problem
from bandfusion.models.parallel import side_by_side
from bandfusion.models.training import (
    FitSettings,
    fit_pixels,
    macro_f1,
    predict_logits,
    settings_problem,
    stratified_sample,
)
from sklearn.model_selection import GroupKFold, StratifiedKFold

CANDIDATES: Mapping[str, Mapping[str, Any]] = {
    "given": {},
    "regularised": {"dropout": 0.3, "weight_decay": 1e-2},
    "ensemble": {"members": 4, "hidden": (32, 32)},
    "binned": {"bins": 16, "dropout": 0.5, "weight_decay": 1e-2},
}
"""The candidates a search scores, as overrides of the caller's settings ("given": none)."""

FOLDS = 3
FOLD_PIXELS = 4000
"""Training pixels a fold's fit takes at most (a stratified sample); test pixels at most 4×."""

ClassWeights = Callable[[np.ndarray], np.ndarray | None]


@dataclass(frozen=True)
class Selection:
    """The candidate chosen, its settings, and each candidate's mean CV macro-F1.

    `protocol` says how folds were drawn ("spatial blocks", "stratified") or why no search ran.
    `blended` names the candidates whose networks are to be fitted and averaged, best first,
    with `blended_settings` theirs (the chosen alone where no blend was asked for or none can
    be built; `unblended` then says why).
    """

    chosen: str
    settings: FitSettings
    protocol: str
    folds: int = 0
    scores: dict[str, float] = field(default_factory=dict)
    blended: tuple[str, ...] = ()
    blended_settings: tuple[FitSettings, ...] = ()
    unblended: str = ""

    def members(self) -> list[FitSettings]:
        """The settings of each network the final model is made of (one unless blended)."""
        return list(self.blended_settings) or [self.settings]

    def to_dict(self) -> dict[str, Any]:
        """The record model.json keeps under training["selection"]."""
        record: dict[str, Any] = {
            "chosen": self.chosen,
            "protocol": self.protocol,
            "folds": self.folds,
            "cv_macro_f1": dict(self.scores),
        }
        if len(self.blended) > 1:
            record["blended"] = list(self.blended)
        if self.unblended:
            record["unblended"] = self.unblended
        return record


def select_settings(
    x: np.ndarray,
    y: np.ndarray,
    *,
    n_classes: int,
    settings: FitSettings,
    class_weights: ClassWeights,
    groups: np.ndarray | None = None,
    device: torch.device | str = "cpu",
    blend: int = 1,
) -> Selection:
    """Score CANDIDATES on (x, y) by FOLDS-fold CV and return the best (ties: the earlier),
    and with `blend` k > 1 the k best, to be fitted and averaged. Candidates that cannot
    combine with the caller's settings (an ensemble or binned bands under a layer norm,
    binned bands with GELU) are left out.

    `groups` (one id per pixel, e.g. its spatial block) keeps each group inside one fold;
    without it, or where the groups cannot give every fold every class, folds are stratified
    by class. `class_weights(y_train)` weights each fold's loss as the final fit's is
    weighted. When the pixels cannot make FOLDS folds holding every class, the given settings
    are kept and `protocol` says why.
    """
    drawn = _folds(y, groups, settings.seed)
    if isinstance(drawn, str):
        return Selection("given", settings, f"skipped: {drawn}")
    folds, protocol = drawn
    rng = np.random.default_rng(settings.seed)
    splits = [
        (
            stratified_sample(y, train, FOLD_PIXELS, rng),
            stratified_sample(y, test, 4 * FOLD_PIXELS, rng),
        )
        for train, test in folds
    ]
    every = {name: replace(settings, **overrides) for name, overrides in CANDIDATES.items()}
    candidates = {
        name: candidate
        for name, candidate in every.items()
        if name == "given" or settings_problem(candidate) is None
    }  # e.g. an ensemble or binned bands under a layer norm the caller chose are left out
    folded = [  # each fold's rows, and its class weights, drawn here: tasks get only data
        ((x[train], y[train]), (x[test], y[test]), class_weights(y[train]))
        for train, test in splits
    ]
    tasks = [
        partial(_fold_score, train, test, n_classes, candidate, weights, device)
        for candidate in candidates.values()
        for train, test, weights in folded
    ]
    fold_scores = np.reshape(side_by_side(tasks, torch.device(device)), (len(candidates), -1))
    scores = {name: float(np.mean(row)) for name, row in zip(candidates, fold_scores, strict=True)}
    ranked = sorted(scores, key=lambda name: -scores[name])  # stable: ties keep list order
    chosen = ranked[0]
    selection = Selection(chosen, candidates[chosen], protocol, FOLDS, scores)
    if blend <= 1:
        return selection
    best = ranked[:blend]
    problem = blend_problem([candidates[name] for name in best])
    if problem is not None:
        return replace(selection, unblended=problem)
    return replace(
        selection,
        blended=tuple(best),
        blended_settings=tuple(candidates[name] for name in best),
    )


def blend_problem(members: list[FitSettings]) -> str | None:
    """Why networks trained with these settings cannot be averaged as one network
    (bandfusion.models.blend), or None."""
    if len(members) < 2:
        return "fewer than two candidates to blend"
    return networks_blend_problem(
        norms=[member.norm for member in members],
        activations=[member.activation for member in members],
        depths=[len(member.hidden) + (1 if member.bins else 0) for member in members],
        clamped=[member.clip > 0 for member in members],
    )


def _folds(
    y: np.ndarray, groups: np.ndarray | None, seed: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str] | str:
    """FOLDS (train, test) row splits and how they were drawn, or why there cannot be any:
    every class must train in each. Groups that cannot hold every class in each fold's
    training (a class in one block, too few blocks) give way to stratified folds, and the
    protocol says so: a search on those still beats none."""
    counts = np.bincount(y)
    present = counts[counts > 0]
    if len(present) < 2 or present.min() < FOLDS:
        return f"a class has fewer than {FOLDS} pixels"
    stratified = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    if groups is None:
        return list(stratified.split(y, y)), "stratified"
    if len(np.unique(groups)) < FOLDS:
        why = f"fewer than {FOLDS} spatial blocks"
    else:
        splits = list(GroupKFold(FOLDS).split(y, y, groups))
        if all(len(np.unique(y[train])) == len(present) for train, _ in splits):
            return splits, "spatial blocks"
        why = "a class lies in one block only"
    return list(stratified.split(y, y)), f"stratified ({why})"


def _fold_score(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    n_classes: int,
    settings: FitSettings,
    weights: np.ndarray | None,
    device: torch.device | str,
) -> float:
    """Macro-F1 on the `test` (pixels, labels), each pixel counted with its class weight, of
    a net fitted on `train` with those class weights (epochs scored on its own pixels)."""
    fit = fit_pixels(
        train[0],
        train[1],
        n_classes=n_classes,
        settings=settings,
        class_weights=weights,
        device=device,
    )
    predicted = predict_logits(fit.net, test[0], device).argmax(1).numpy()
    return macro_f1(test[1], predicted, n_classes, weights)

"""The methods a benchmark compares: the fusion net (with or without spectral indices) and the
scikit-learn baselines, each built unfitted for one seed.

Two families of baselines: `BASELINES` (bandfusion.models.baselines: balanced class weights and
settings chosen for maps) and `SKLEARN_DEFAULTS` ("sk:" names: each classifier exactly as
scikit-learn builds it, with standardisation in front of the scale-sensitive ones), which is
what a user fitting "a random forest in ten lines" gets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from bandfusion.models.baselines import BASELINES
from bandfusion.models.estimator import SpectralFusionClassifier
from bandfusion.models.indices import INDICES, resolve_roles
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.utils.validation import has_fit_parameter

FUSION = "fusion"
FUSION_INDICES = "fusion+indices"

SKLEARN_DEFAULTS: dict[str, Callable[[int], BaseEstimator]] = {
    "sk:random-forest": lambda seed: RandomForestClassifier(random_state=seed),
    "sk:hist-gb": lambda seed: HistGradientBoostingClassifier(random_state=seed),
    "sk:svm-rbf": lambda seed: make_pipeline(StandardScaler(), SVC(random_state=seed)),
    "sk:logistic": lambda seed: make_pipeline(
        StandardScaler(), LogisticRegression(random_state=seed)
    ),
    "sk:knn": lambda seed: make_pipeline(StandardScaler(), KNeighborsClassifier()),
}
"""scikit-learn's classifiers with their default settings, by name, built for a seed."""


def available_methods(bands: Sequence[str]) -> list[str]:
    """Every method that can run on these bands: fusion, fusion+indices when Sentinel-2 band
    names give the index roles, then the baselines."""
    try:
        resolve_roles(tuple(INDICES), bands)
        with_indices = [FUSION_INDICES]
    except ValueError:
        with_indices = []
    return [FUSION, *with_indices, *BASELINES]


def build_method(
    name: str, seed: int, bands: Sequence[str], fusion_params: Mapping[str, Any]
) -> tuple[BaseEstimator, int | None]:
    """An unfitted estimator for method `name`, and the most training pixels per class it takes.

    fusion+indices appends every index of INDICES; rows are plain arrays, so the index roles
    are given as the positional band names (b1..bn) the estimator uses for them.
    """
    if name in BASELINES:
        return BASELINES[name].build(seed), BASELINES[name].max_train_per_class
    if name in SKLEARN_DEFAULTS:
        return SKLEARN_DEFAULTS[name](seed), None
    if name == FUSION:
        return SpectralFusionClassifier(**fusion_params, random_state=seed), None
    if name == FUSION_INDICES:
        roles = resolve_roles(tuple(INDICES), bands)
        positional = {role: f"b{list(bands).index(band) + 1}" for role, band in roles.items()}
        clf = SpectralFusionClassifier(
            **fusion_params, indices=tuple(INDICES), band_roles=positional, random_state=seed
        )
        return clf, None
    raise ValueError(
        f"unknown method {name!r}; known: {FUSION}, {FUSION_INDICES}, "
        f"{', '.join([*BASELINES, *SKLEARN_DEFAULTS])}"
    )


def baseline_settings(methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each chosen baseline's estimator (as its repr) and training-pixel cap, for the record."""
    return {
        name: {
            "estimator": " ".join(repr(estimator).split()),
            "max_train_per_class": cap,
        }
        for name in methods
        if name in BASELINES or name in SKLEARN_DEFAULTS
        for estimator, cap in [build_method(name, 0, [], {})]
    }


def cap_per_class(y: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """The rows to keep: at most `cap` random rows of each class, in their original order."""
    if cap is None:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    return np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(y == c))[:cap] for c in np.unique(y)])
    )


def fit_arguments(
    estimator: BaseEstimator,
    y: np.ndarray,
    weights: Mapping[int, float],
    groups: np.ndarray | None,
) -> tuple[BaseEstimator, dict[str, Any]]:
    """The estimator and its `fit` keywords: the per-class `weights` that undo the cap, and the
    fusion net's search `groups` (None: stratified folds).

    Weights go only where class weights are unset (None: each pixel counts the same), so that
    each pixel of the training region, not of the capped sample, counts the same; balanced or
    given weights already say how classes count. The fusion net takes them as `class_weight`,
    scikit-learn's classifiers as `sample_weight` (HistGradientBoosting reads a class_weight
    dict by its encoded class indices, not by the labels), k-NN takes none.
    """
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    unweighted = getattr(final, "class_weight", "none taken") is None
    if isinstance(final, SpectralFusionClassifier):
        if unweighted:
            final.set_params(class_weight=dict(weights))
        return estimator, {} if groups is None else {"groups": groups}
    if not (unweighted and has_fit_parameter(final, "sample_weight")):
        return estimator, {}
    ids = np.array(sorted(weights))
    per_row = np.array([weights[c] for c in ids])[np.searchsorted(ids, y)]
    if final is estimator:
        return estimator, {"sample_weight": per_row}
    return estimator, {f"{estimator.steps[-1][0]}__sample_weight": per_row}


def with_jobs(estimator: BaseEstimator, threads: int) -> BaseEstimator:
    """Every `n_jobs` parameter that is set (the random forest's) set to `threads` instead."""
    params = estimator.get_params()
    jobs = {key: threads for key, value in params.items() if key.endswith("n_jobs") and value}
    return estimator.set_params(**jobs)

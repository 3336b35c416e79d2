"""The methods a benchmark compares: the fusion net (with or without spectral indices) and the
scikit-learn baselines, each built unfitted for one seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from bandfusion.models.baselines import BASELINES
from bandfusion.models.estimator import SpectralFusionClassifier
from bandfusion.models.indices import INDICES, resolve_roles
from sklearn.base import BaseEstimator

FUSION = "fusion"
FUSION_INDICES = "fusion+indices"


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
        f"unknown method {name!r}; known: {FUSION}, {FUSION_INDICES}, {', '.join(BASELINES)}"
    )


def baseline_settings(methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each chosen baseline's estimator (as its repr) and training-pixel cap, for the record."""
    return {
        name: {
            "estimator": " ".join(repr(b.build(0)).split()),
            "max_train_per_class": b.max_train_per_class,
        }
        for name, b in BASELINES.items()
        if name in methods
    }


def cap_per_class(
    x: np.ndarray, y: np.ndarray, cap: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """At most `cap` random rows of each class, in their original order."""
    if cap is None:
        return x, y
    rng = np.random.default_rng(seed)
    keep = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(y == c))[:cap] for c in np.unique(y)])
    )
    return x[keep], y[keep]


def with_jobs(estimator: BaseEstimator, threads: int) -> BaseEstimator:
    """Every `n_jobs` parameter that is set (the random forest's) set to `threads` instead."""
    params = estimator.get_params()
    jobs = {key: threads for key, value in params.items() if key.endswith("n_jobs") and value}
    return estimator.set_params(**jobs)

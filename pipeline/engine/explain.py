"""Which bands a model relies on: permutation importance, first-layer mixing weights, and the
per-class spectral signatures they act on.

Permutation importance (scikit-learn's) shuffles one band at a time over held-out pixels and
measures the score lost; the first layer's weights act on standardised bands, so their sizes
are comparable across bands; signatures show the class means (± std) the model separates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from bandfusion.engine.domain import check_domain
from bandfusion.engine.sampling import sample_pixels
from bandfusion.engine.task_steps import report_tasks
from bandfusion.errors import LabelError, SceneError
from bandfusion.io.bands import pick_bands
from bandfusion.io.labels import Labels
from bandfusion.io.sources import scene_sources
from bandfusion.models.checkpoint import TrainedModel
from bandfusion.models.estimator import SpectralFusionClassifier
from bandfusion.progress import Progress
from sklearn.inspection import permutation_importance
from sklearn.metrics import get_scorer


@dataclass(frozen=True)
class Explanation:
    """Band importance of one model on one set of labelled pixels."""

    bands: list[str]  # the input bands, in the model's order
    importance_mean: np.ndarray  # (bands,) score lost when the band is shuffled
    importance_std: np.ndarray  # (bands,) over the repeats
    scoring: str
    score: float  # the unshuffled score
    n_repeats: int
    inputs: list[str]  # the network's inputs: the bands, then derived indices
    mixing_weights: np.ndarray  # (first-layer channels, inputs)
    class_ids: list[int]
    class_names: list[str]
    class_colors: list[tuple[int, int, int]]
    signature_mean: np.ndarray  # (classes, bands)
    signature_std: np.ndarray  # (classes, bands)
    class_pixels: np.ndarray  # (classes,) pixels behind each signature

    def ranking(self) -> list[str]:
        """Bands from most to least important (ties keep the band order)."""
        order = np.argsort(-self.importance_mean, kind="stable")
        return [self.bands[k] for k in order]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: importance per band, the ranking, mixing weights and signatures."""
        return {
            "scoring": self.scoring,
            "score": self.score,
            "n_repeats": self.n_repeats,
            "ranking": self.ranking(),
            "importance": {
                band: {"mean": float(m), "std": float(s)}
                for band, m, s in zip(
                    self.bands, self.importance_mean, self.importance_std, strict=True
                )
            },
            "mixing_weights": {"inputs": self.inputs, "weights": self.mixing_weights.tolist()},
            "signatures": {
                str(cid): {
                    "name": name,
                    "pixels": int(n),
                    "mean": dict(zip(self.bands, mean.tolist(), strict=True)),
                    "std": dict(zip(self.bands, std.tolist(), strict=True)),
                }
                for cid, name, n, mean, std in zip(
                    self.class_ids,
                    self.class_names,
                    self.class_pixels,
                    self.signature_mean,
                    self.signature_std,
                    strict=True,
                )
            },
        }


def explain(
    model: TrainedModel,
    scene: xr.DataArray,
    labels: Labels,
    *,
    where: np.ndarray | None = None,
    per_class_cap: int | None = 5000,
    n_repeats: int = 5,
    scoring: str = "f1_macro",
    seed: int = 0,
    progress: Progress | None = None,
) -> Explanation:
    """Explain `model` on labelled pixels of `scene` (within `where`: pass held-out pixels).

    At most `per_class_cap` pixels per class of the model's classes are drawn; each band is
    shuffled `n_repeats` times. `scoring` is a scikit-learn scorer name. `progress` is told of
    every dask task that reads the pixels (stage "read pixels").
    """
    check_domain(scene, model)
    classifier = SpectralFusionClassifier.from_model(model)
    with report_tasks(progress, "read pixels"):
        x, y = sample_pixels(
            _model_bands(scene, classifier.bands_),
            labels,
            where=where,
            per_class_cap=per_class_cap,
            seed=seed,
        )
    known = np.isin(y, classifier.classes_)
    x, y = x[known], y[known]
    if len(y) == 0:
        raise LabelError(f"{labels.source}: no valid labelled pixels of the model's classes here")
    result = permutation_importance(
        classifier, x, y, scoring=scoring, n_repeats=n_repeats, random_state=seed
    )
    meta = model.meta
    per_class = [x[y == c] for c in meta.class_ids]
    return Explanation(
        bands=list(classifier.bands_),
        importance_mean=result.importances_mean,
        importance_std=result.importances_std,
        scoring=scoring,
        score=float(get_scorer(scoring)(classifier, x, y)),
        n_repeats=n_repeats,
        inputs=meta.inputs,
        mixing_weights=_mixing_weights(model),
        class_ids=list(meta.class_ids),
        class_names=list(meta.class_names),
        class_colors=list(meta.class_colors),
        signature_mean=np.array([_stat(p, np.mean) for p in per_class]),
        signature_std=np.array([_stat(p, np.std) for p in per_class]),
        class_pixels=np.array([len(p) for p in per_class]),
    )


def _stat(pixels: np.ndarray, reduce: Any) -> np.ndarray:
    """Per-band statistic of a class's pixels (float64); NaN for a class without pixels."""
    if len(pixels) == 0:
        return np.full(pixels.shape[1], np.nan)
    return np.asarray(reduce(pixels.astype(np.float64), axis=0))


def _model_bands(scene: xr.DataArray, bands: list[str]) -> xr.DataArray:
    """The scene's bands the model takes, in its order; SceneError naming missing ones."""
    picked, missing = pick_bands(scene, bands)
    if missing:
        have = [str(b) for b in scene["band"].values]
        raise SceneError(f"{scene_sources(scene)}: lacks the model's bands {missing} (has {have})")
    return picked


def _mixing_weights(model: TrainedModel) -> np.ndarray:
    """The first layer's band-mixing weights (channels, inputs); none (0 rows) for binned
    bands, whose first layer encodes each band on its own and mixes nothing, and for a blend,
    whose first layer is several networks' side by side (bandfusion.models.blend)."""
    training = model.meta.training
    if training.get("bins") or "blended" in training.get("selection", {}):
        return np.zeros((0, len(model.meta.inputs)), dtype=np.float32)
    return model.net.first_layer_weights().numpy()

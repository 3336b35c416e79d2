"""scikit-learn baselines to compare the fusion net with, on the same pixels.

Each is a Pipeline of per-band standardisation (what the fusion net does inside itself) and a
classifier with balanced class weights (as the fusion net is trained), with fixed, sensible
defaults rather than per-dataset tuning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC


@dataclass(frozen=True)
class Baseline:
    """A named baseline: how to build it for a seed, and the most pixels per class it fits on.

    `max_train_per_class` caps the training set of methods whose cost grows faster than
    linearly with it (RBF-SVM: quadratic or worse); None fits on every training pixel.
    """

    name: str
    build_classifier: Callable[[int], BaseEstimator]
    max_train_per_class: int | None = None

    def build(self, random_state: int = 0) -> Pipeline:
        """A fresh unfitted pipeline: standardisation, then the classifier."""
        return make_pipeline(StandardScaler(), self.build_classifier(random_state))


BASELINES: dict[str, Baseline] = {
    baseline.name: baseline
    for baseline in (
        Baseline(
            "random-forest",
            lambda seed: RandomForestClassifier(
                n_estimators=200, class_weight="balanced", n_jobs=-1, random_state=seed
            ),
        ),
        Baseline(
            "svm",
            lambda seed: SVC(C=10.0, gamma="scale", class_weight="balanced", random_state=seed),
            max_train_per_class=5000,
        ),
        Baseline(
            "logistic",
            lambda seed: LogisticRegression(
                C=1.0, max_iter=2000, class_weight="balanced", random_state=seed
            ),
        ),
        Baseline(
            "hist-gb",
            lambda seed: HistGradientBoostingClassifier(
                max_iter=300, class_weight="balanced", random_state=seed
            ),
        ),
    )
}
"""Random forest, RBF-SVM, logistic regression and histogram gradient boosting, by name."""


def make_baseline(name: str, random_state: int = 0) -> Pipeline:
    """The baseline `name` (a key of BASELINES) as an unfitted pipeline; KeyError if unknown."""
    if name not in BASELINES:
        raise KeyError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    return BASELINES[name].build(random_state)

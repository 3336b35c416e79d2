"""scikit-learn baselines: the same preprocessing and class weighting as the fusion net."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from bandfusion.models import BASELINES, make_baseline
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """OpenMP's spinning threads slow small fits many times over on a busy machine."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An imbalanced 3-class pixel table on a reflectance-like scale: train, then test."""
    x, y = make_classification(
        n_samples=900,
        n_features=8,
        n_informative=5,
        n_classes=3,
        weights=[0.7, 0.2, 0.1],
        class_sep=1.5,
        random_state=0,
    )
    x = (x * 800 + 3000).astype(np.float32)
    return x[:600], y[:600], x[600:], y[600:]


def test_the_four_baselines() -> None:
    assert list(BASELINES) == ["random-forest", "svm", "logistic", "hist-gb"]


@pytest.mark.parametrize("name", list(BASELINES))
def test_standardised_balanced_and_accurate(
    name: str, table: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
) -> None:
    x, y, x_test, y_test = table
    model = make_baseline(name, random_state=0)
    assert isinstance(model.steps[0][1], StandardScaler)
    assert model.steps[-1][1].get_params()["class_weight"] == "balanced"
    assert model.fit(x, y).score(x_test, y_test) > 0.8


@pytest.mark.parametrize("name", ["random-forest", "hist-gb"])
def test_seeded_baselines_repeat(
    name: str, table: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
) -> None:
    x, y, x_test, _ = table
    first = make_baseline(name, random_state=1).fit(x, y).predict(x_test)
    again = make_baseline(name, random_state=1).fit(x, y).predict(x_test)
    np.testing.assert_array_equal(first, again)


def test_only_the_svm_fits_on_a_capped_training_set() -> None:
    caps = {name: baseline.max_train_per_class for name, baseline in BASELINES.items()}
    assert caps == {"random-forest": None, "svm": 5000, "logistic": None, "hist-gb": None}


def test_unknown_baseline() -> None:
    with pytest.raises(KeyError, match="unknown baseline 'knn'"):
        make_baseline("knn")

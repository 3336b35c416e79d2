"""SpectralFusionClassifier: scikit-learn's estimator checks, model selection, derived indices,
and round trips through the bandfusion model format."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from bandfusion.models import (
    SpectralFusionClassifier,
    load_model,
)
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.inspection import permutation_importance
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

FAST = {"hidden": (16,), "epochs": 20, "patience": 20, "batch_size": 64, "search": False}

EXPECTED_FAILURES = {
    "check_class_weight_classifiers": (
        "early stopping keeps the epoch with the best macro-F1 (of the training pixels by "
        "default, each counted with its class weight), a mean over classes that counts each "
        "class once, which undoes the check's extreme class weights ({0: 1000, 1: 0.0001})"
    ),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@parametrize_with_checks(
    [SpectralFusionClassifier(**FAST)],
    expected_failed_checks=lambda _estimator: EXPECTED_FAILURES,
)
def test_scikit_learn_estimator_checks(
    estimator: SpectralFusionClassifier, check: Callable[[SpectralFusionClassifier], None]
) -> None:
    check(estimator)


def pixels(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A separable 3-class table with 6 'bands' of reflectance-like values."""
    x, y = make_classification(
        n_samples=n,
        n_features=6,
        n_informative=4,
        n_classes=3,
        class_sep=2.0,
        random_state=seed,
    )
    return (x * 500 + 2000).astype(np.float32), np.array([3, 7, 255])[y]


def test_model_selection_tools_accept_it() -> None:
    x, y = pixels()
    scores = cross_val_score(SpectralFusionClassifier(**FAST), x, y, cv=3, scoring="f1_macro")
    assert scores.min() > 0.8
    pipeline = make_pipeline(StandardScaler(), SpectralFusionClassifier(**FAST)).fit(x, y)
    assert pipeline.score(x, y) > 0.85
    search = GridSearchCV(
        SpectralFusionClassifier(**FAST), {"hidden": [(4,), (16,)], "dropout": [0.0, 0.2]}, cv=2
    ).fit(x, y)
    assert set(search.best_params_) == {"hidden", "dropout"}
    assert search.best_estimator_.classes_.tolist() == [3, 7, 255]
    result = permutation_importance(search.best_estimator_, x, y, n_repeats=2, random_state=0)
    assert result.importances_mean.shape == (6,)


def test_fitted_attributes_and_probabilities() -> None:
    x, y = pixels()
    clf = SpectralFusionClassifier(**FAST).fit(x, y)
    assert clf.n_features_in_ == 6
    assert clf.bands_ == [f"b{i}" for i in range(1, 7)]
    assert not hasattr(clf, "feature_names_in_")
    assert clf.n_iter_ == len(clf.history_) >= 1
    proba = clf.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(x))


def test_by_default_every_pixel_trains_and_scores_the_epochs() -> None:
    x, y = pixels()
    clf = SpectralFusionClassifier(**FAST).fit(x, y)
    best = max(epoch["val_macro_f1"] for epoch in clf.history_)
    assert best == pytest.approx(f1_score(y, clf.predict(x), average="macro"))


def test_dataframe_columns_name_the_bands() -> None:
    pd = pytest.importorskip("pandas")
    x, y = pixels()
    frame = pd.DataFrame(x, columns=["B2", "B3", "B4", "B8", "B11", "B12"])
    clf = SpectralFusionClassifier(**FAST, indices=("NDWI", "MNDWI")).fit(frame, y)
    assert clf.feature_names_in_.tolist() == list(frame.columns)
    assert clf.band_roles_ == {"green": "B3", "nir": "B8", "swir1": "B11"}
    assert clf.net_.in_bands == 8
    assert clf.predict(frame).shape == (len(y),)


def test_same_seed_same_model_other_seed_other_model() -> None:
    x, y = pixels()
    first = SpectralFusionClassifier(**FAST, random_state=3).fit(x, y).predict_proba(x)
    again = SpectralFusionClassifier(**FAST, random_state=3).fit(x, y).predict_proba(x)
    other = SpectralFusionClassifier(**FAST, random_state=4).fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_class_weight_takes_the_scikit_learn_forms() -> None:
    x, y = pixels()
    for weight in ("balanced", None, {3: 1.0, 7: 2.0, 255: 1.0}):
        assert SpectralFusionClassifier(**FAST, class_weight=weight).fit(x, y).score(x, y) > 0.8
    with pytest.raises(ValueError, match="class"):
        SpectralFusionClassifier(**FAST, class_weight={99: 1.0}).fit(x, y)


def test_like_every_scikit_learn_classifier_no_class_weight_and_accuracy_as_score() -> None:
    assert SpectralFusionClassifier().get_params()["class_weight"] is None
    x, y = pixels(n=300)
    x_test, y_test = pixels(n=200, seed=1)
    fitted = SpectralFusionClassifier(**FAST).fit(x, y)
    assert fitted.score(x_test, y_test) == accuracy_score(y_test, fitted.predict(x_test))


def test_an_estimator_with_indices_needs_their_bands() -> None:
    x, y = pixels()
    with pytest.raises(ValueError, match="role 'green'"):
        SpectralFusionClassifier(**FAST, indices=("NDWI",)).fit(x, y)


def test_prediction_recomputes_declared_indices(tmp_path: Path) -> None:
    x, y = pixels()
    roles = {"green": "b2", "nir": "b4"}
    clf = SpectralFusionClassifier(**FAST, indices=("NDWI",), band_roles=roles).fit(x, y)
    path = clf.save(tmp_path / "model", class_names=["a", "b", "c"])
    stored = load_model(path)  # the ordinary model format, checked by the ordinary loader
    assert stored.meta.bands == ["b1", "b2", "b3", "b4", "b5", "b6"]
    assert stored.meta.indices == ["NDWI"] and stored.meta.band_roles == roles
    assert stored.meta.inputs == [*stored.meta.bands, "NDWI"]
    assert stored.meta.class_ids == [3, 7, 255]
    loaded = SpectralFusionClassifier.load(path)
    assert loaded.indices == ("NDWI",) and loaded.band_roles_ == roles
    np.testing.assert_array_equal(loaded.predict_proba(x), clf.predict_proba(x))
    refit = clone(loaded).fit(x, y)  # the recorded parameters refit the same model
    np.testing.assert_array_equal(refit.predict_proba(x), clf.predict_proba(x))


def test_only_integer_labels_can_be_saved(tmp_path: Path) -> None:
    x, y = pixels()
    clf = SpectralFusionClassifier(**FAST).fit(x, np.array(["a", "b", "c"])[y % 3])
    with pytest.raises(ValueError, match="integer class labels"):
        clf.save(tmp_path / "model")


def test_by_default_fit_blends_the_two_best_candidates_and_the_model_records_them(
    tmp_path: Path,
) -> None:
    x, y = pixels(300)
    fast = {k: v for k, v in FAST.items() if k != "search"}
    estimator = SpectralFusionClassifier(**fast).fit(x, y)
    record = estimator.selection_
    assert record["protocol"] == "stratified" and record["folds"] == 3
    scores = record["cv_macro_f1"]
    assert record["chosen"] == record["blended"][0]
    assert sorted(scores, key=lambda name: -scores[name])[:2] == record["blended"]
    assert estimator.get_params()["hidden"] == (16,)  # parameters are never changed by fit
    loaded = SpectralFusionClassifier.load(estimator.save(tmp_path / "m"))
    assert load_model(tmp_path / "m").meta.training["selection"] == record
    assert loaded.get_params()["search"] is True and loaded.get_params()["blend"] == 2
    assert loaded.get_params()["hidden"] == (16,)
    np.testing.assert_array_equal(loaded.predict(x), estimator.predict(x))
    refit = clone(loaded).fit(x, y)  # the recorded parameters search and blend again
    np.testing.assert_array_equal(refit.predict_proba(x), estimator.predict_proba(x))


def test_blend_1_fits_the_chosen_candidate_alone_and_the_model_records_it(
    tmp_path: Path,
) -> None:
    x, y = pixels(300)
    fast = {k: v for k, v in FAST.items() if k != "search"}
    estimator = SpectralFusionClassifier(**fast, blend=1).fit(x, y)
    record = estimator.selection_
    assert record["cv_macro_f1"][record["chosen"]] == max(record["cv_macro_f1"].values())
    assert "blended" not in record
    loaded = SpectralFusionClassifier.load(estimator.save(tmp_path / "m"))
    assert loaded.get_params()["search"] is False  # a clone refits the chosen settings
    assert loaded.get_params()["members"] == estimator.net_.members
    np.testing.assert_array_equal(loaded.predict(x), estimator.predict(x))


def test_blend_must_be_a_positive_integer() -> None:
    x, y = pixels()
    with pytest.raises(ValueError, match="blend must be a positive integer"):
        SpectralFusionClassifier(**FAST, blend=0).fit(x, y)


def test_given_groups_the_search_holds_out_whole_groups() -> None:
    x, y = pixels(300)
    fast = {k: v for k, v in FAST.items() if k != "search"}
    groups = np.arange(len(y)) // 20  # 15 groups of 20 neighbouring rows
    estimator = SpectralFusionClassifier(**fast).fit(x, y, groups=groups)
    assert estimator.selection_["protocol"] == "spatial blocks"
    with pytest.raises(ValueError, match="one id per row"):
        SpectralFusionClassifier(**fast).fit(x, y, groups=groups[:-1])

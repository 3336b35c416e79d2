"""Evaluation (bandfusion.engine.evaluate): scores equal scikit-learn's, and evaluating a
scene chunk by chunk gives the one-pass confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest
from bandfusion.engine.evaluate import evaluate, report_from_pixels
from sklearn.metrics import cohen_kappa_score, f1_score, jaccard_score, precision_score


def test_report_scores_equal_scikit_learns():
    rng = np.random.default_rng(0)
    truth = rng.choice([1, 2, 8], size=2000, p=[0.5, 0.3, 0.2])
    predicted = np.where(rng.random(2000) < 0.7, truth, rng.choice([1, 2, 8], size=2000))
    report = report_from_pixels(truth, predicted, [1, 2, 8], ["a", "b", "c"])
    ids = [1, 2, 8]
    assert report.kappa == pytest.approx(cohen_kappa_score(truth, predicted))
    np.testing.assert_allclose(report.f1, f1_score(truth, predicted, labels=ids, average=None))
    np.testing.assert_allclose(
        report.precision, precision_score(truth, predicted, labels=ids, average=None)
    )
    np.testing.assert_allclose(
        report.iou, jaccard_score(truth, predicted, labels=ids, average=None)
    )
    assert report.macro_f1 == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert report.overall_accuracy == pytest.approx((truth == predicted).mean())


def test_evaluation_over_chunks_equals_one_pass(water, trained):
    scene, labels = water
    whole = evaluate(trained.model, scene.chunk({"y": -1, "x": -1}), labels)
    tiled = evaluate(trained.model, scene.chunk({"y": 100, "x": 130}), labels)
    np.testing.assert_array_equal(whole.confusion, tiled.confusion)
    assert whole.n_pixels == labels.labelled.sum() - 0  # the chip has no nodata pixels

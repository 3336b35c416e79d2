"""Accuracy of a class map against labels: confusion matrix, OA, kappa, per-class P/R/F1/IoU.

The confusion matrix is summed chunk by chunk over the same lazy map `predict_scene` gives, so an
evaluation of a whole scene needs no more memory than a prediction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from bandfusion.engine.masked import excluded_values
from bandfusion.engine.predict import predict_scene
from bandfusion.engine.task_steps import report_tasks
from bandfusion.io.labels import Labels
from bandfusion.models.checkpoint import TrainedModel
from bandfusion.progress import Progress
from sklearn.metrics import confusion_matrix


@dataclass(frozen=True)
class EvaluationReport:
    """Scores derived from a confusion matrix (rows: true class, columns: predicted class)."""

    class_ids: list[int]
    class_names: list[str]
    confusion: np.ndarray

    @property
    def support(self) -> np.ndarray:
        return self.confusion.sum(axis=1)

    @property
    def n_pixels(self) -> int:
        return int(self.confusion.sum())

    @property
    def overall_accuracy(self) -> float:
        return _ratio(np.trace(self.confusion), self.n_pixels)

    @property
    def kappa(self) -> float:
        """Cohen's kappa: agreement beyond what the class frequencies give by chance."""
        total = self.n_pixels
        expected = _ratio(float(self.confusion.sum(0) @ self.confusion.sum(1)), total * total)
        observed = self.overall_accuracy
        return _ratio(observed - expected, 1.0 - expected) if expected < 1.0 else 1.0

    @property
    def precision(self) -> np.ndarray:
        return _ratios(np.diag(self.confusion), self.confusion.sum(axis=0))

    @property
    def recall(self) -> np.ndarray:
        return _ratios(np.diag(self.confusion), self.support)

    @property
    def f1(self) -> np.ndarray:
        p, r = self.precision, self.recall
        return _ratios(2 * p * r, p + r)

    @property
    def iou(self) -> np.ndarray:
        tp = np.diag(self.confusion)
        return _ratios(tp, self.confusion.sum(0) + self.confusion.sum(1) - tp)

    @property
    def macro_f1(self) -> float:
        """Mean F1 over the classes present in the reference (support > 0)."""
        present = self.support > 0
        return float(self.f1[present].mean()) if present.any() else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: scalar scores, per-class scores keyed by class id, the matrix."""
        per_class = {
            str(cid): {
                "name": name,
                "precision": float(self.precision[i]),
                "recall": float(self.recall[i]),
                "f1": float(self.f1[i]),
                "iou": float(self.iou[i]),
                "support": int(self.support[i]),
            }
            for i, (cid, name) in enumerate(zip(self.class_ids, self.class_names, strict=True))
        }
        return {
            "overall_accuracy": self.overall_accuracy,
            "kappa": self.kappa,
            "macro_f1": self.macro_f1,
            "n_pixels": self.n_pixels,
            "classes": per_class,
            "confusion_matrix": self.confusion.tolist(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def _ratios(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def report_from_pixels(
    y_true: np.ndarray, y_pred: np.ndarray, class_ids: list[int], class_names: list[str]
) -> EvaluationReport:
    """Report for paired label and prediction vectors (scikit-learn's confusion matrix)."""
    matrix = confusion_matrix(y_true, y_pred, labels=class_ids)
    return EvaluationReport(list(class_ids), list(class_names), matrix)


def evaluate(
    model: TrainedModel,
    scene: xr.DataArray,
    labels: Labels,
    *,
    where: np.ndarray | None = None,
    device: str = "auto",
    progress: Progress | None = None,
) -> EvaluationReport:
    """Compare the model's map of `scene` with `labels` on labelled (and `where`) pixels.

    Classes in the labels that the model never learnt are kept as rows where scored pixels
    hold them: they count as errors.
    Pixels the scene's mask marks (clouds, shadows, ...) are not scored, as nodata is not.
    `progress` is told of every finished dask task (stage "evaluate").
    """
    class_map = predict_scene(scene, model, device=device)
    ids = sorted(set(model.meta.class_ids) | set(labels.legend.ids))
    names = [_class_name(cid, model, labels) for cid in ids]
    scored = labels.labelled if where is None else labels.labelled & where
    chunks = class_map.data.chunks
    parts = [
        dask.delayed(_chunk_confusion)(pred, truth, mask, ids, excluded_values(class_map))
        for pred, truth, mask in zip(
            class_map.data.to_delayed().ravel(),
            da.from_array(labels.values, chunks=chunks).to_delayed().ravel(),
            da.from_array(scored, chunks=chunks).to_delayed().ravel(),
            strict=True,
        )
    ]
    with report_tasks(progress, "evaluate"):
        (matrices,) = dask.compute(parts)
    return _without_absent_classes(
        EvaluationReport(ids, names, np.sum(matrices, axis=0)), model.meta.class_ids
    )


def _without_absent_classes(report: EvaluationReport, known: list[int]) -> EvaluationReport:
    """`report` without the legend's classes that the model does not know and no scored
    pixel holds (classes masked away, or outside the scored region): their rows and columns
    are all zeros and would only pad the table."""
    keep = [
        i
        for i, (cid, n) in enumerate(zip(report.class_ids, report.support, strict=True))
        if cid in known or n > 0
    ]
    return EvaluationReport(
        [report.class_ids[i] for i in keep],
        [report.class_names[i] for i in keep],
        report.confusion[np.ix_(keep, keep)],
    )


def _chunk_confusion(
    predicted: np.ndarray,
    truth: np.ndarray,
    scored: np.ndarray,
    ids: list[int],
    excluded: tuple[int, ...],
) -> np.ndarray:
    """The chunk's confusion matrix; zeros for a chunk without a scored, valid pixel (one
    that the labels miss, or all nodata or masked), which is skipped rather than scored."""
    keep = scored & ~np.isin(predicted, excluded)
    if not keep.any():
        return np.zeros((len(ids), len(ids)), dtype=np.int64)
    return confusion_matrix(truth[keep], predicted[keep], labels=ids)


def _class_name(class_id: int, model: TrainedModel, labels: Labels) -> str:
    """The model's name for a class it knows; the labels' name for one it never learnt."""
    if class_id in model.meta.class_ids:
        return model.meta.class_names[model.meta.class_ids.index(class_id)]
    return labels.legend.name_of(class_id)

"""What a benchmark returns: every method's run on every seed, and their mean ± std over seeds.

Plain data with numbers; `bandfusion.display` turns it into tables, Markdown and a bar chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bandfusion.engine.compare.protocols import Protocol
from bandfusion.engine.evaluate import EvaluationReport
from scipy.stats import t

SCORES = ("overall_accuracy", "average_accuracy", "kappa", "macro_f1")


@dataclass(frozen=True)
class MethodRun:
    """One method fitted and scored for one seed."""

    method: str
    seed: int
    report: EvaluationReport
    fit_seconds: float
    predict_seconds: float
    n_train: int
    selection: dict[str, Any] | None = None
    """The fusion net's search record (its `selection_`: chosen, protocol, CV scores), if any."""

    def scores(self) -> dict[str, float]:
        """OA, AA (mean recall over classes present in the test pixels), kappa and macro-F1."""
        present = self.report.support > 0
        return {
            "overall_accuracy": self.report.overall_accuracy,
            "average_accuracy": float(self.report.recall[present].mean()),
            "kappa": self.report.kappa,
            "macro_f1": self.report.macro_f1,
        }

    def iou(self) -> np.ndarray:
        """IoU per class; NaN for classes without test pixels in this run."""
        return np.where(self.report.support > 0, self.report.iou, np.nan)


@dataclass
class Benchmark:
    """Every run of a benchmark, with what is needed to repeat and to read it."""

    dataset: str
    protocol: Protocol
    methods: list[str]
    seeds: list[int]
    class_ids: list[int]
    class_names: list[str]
    settings: dict[str, Any]
    environment: dict[str, Any]
    runs: list[MethodRun] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per method: mean and std (over seeds; ddof=1) of scores, per-class IoU and times."""
        result = {}
        for method in self.methods:
            runs = [r for r in self.runs if r.method == method]
            columns = {
                **{key: [r.scores()[key] for r in runs] for key in SCORES},
                "fit_seconds": [r.fit_seconds for r in runs],
                "predict_seconds": [r.predict_seconds for r in runs],
            }
            entry: dict[str, Any] = {key: mean_std(v) for key, v in columns.items()}
            ious = np.array([r.iou() for r in runs])
            entry["iou"] = {str(cid): mean_std(ious[:, k]) for k, cid in enumerate(self.class_ids)}
            result[method] = entry
        return result

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, environment, summary and every run's report."""
        return {
            "dataset": self.dataset,
            "protocol": {**vars(self.protocol), "description": self.protocol.describe()},
            "optimistic": self.protocol.optimistic,
            "methods": self.methods,
            "seeds": self.seeds,
            "classes": dict(zip(map(str, self.class_ids), self.class_names, strict=True)),
            "settings": self.settings,
            "environment": self.environment,
            "summary": self.summary(),
            "runs": [
                {
                    "method": r.method,
                    "seed": r.seed,
                    "n_train": r.n_train,
                    "fit_seconds": r.fit_seconds,
                    "predict_seconds": r.predict_seconds,
                    "selection": r.selection,
                    **r.scores(),
                    "report": r.report.to_dict(),
                }
                for r in self.runs
            ],
        }


def paired_differences(
    bench: Benchmark, reference: str, score: str = "overall_accuracy", level: float = 0.95
) -> dict[str, tuple[float, float, float] | None]:
    """Per other method: mean of (reference − method) over the seeds both ran, and its
    `level` confidence interval (Student t over the seeds; each seed shares split and pixels,
    so the pairs are matched). None where fewer than two seeds pair up."""
    by_seed = {(r.method, r.seed): r.scores()[score] for r in bench.runs}
    result: dict[str, tuple[float, float, float] | None] = {}
    for method in bench.methods:
        if method == reference:
            continue
        diffs = np.array(
            [
                by_seed[(reference, seed)] - by_seed[(method, seed)]
                for seed in bench.seeds
                if (reference, seed) in by_seed and (method, seed) in by_seed
            ]
        )
        if len(diffs) < 2:
            result[method] = None
            continue
        mean = float(diffs.mean())
        half = float(
            t.ppf(0.5 + level / 2, len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(len(diffs))
        )
        result[method] = (mean, mean - half, mean + half)
    return result


def mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float] | None:
    """(mean, std) over the finite values (std 0 for one), or None when there are none."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return float(finite.mean()), std

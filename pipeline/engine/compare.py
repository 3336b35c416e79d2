"""Benchmarks: the fusion net and scikit-learn baselines on the same pixels, over several seeds.

A protocol turns the labelled pixels into train and test masks for each seed; every method then
fits on the same training pixels (capped per class) and is scored on every test pixel. Results
are reported as mean ± std over the seeds, with versions, settings and load average, as a table,
JSON, Markdown and a bar chart. Protocols that draw random pixels are marked optimistic: their
test pixels sit next to training pixels, so they score higher than maps of new places will.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import sklearn
import torch
import xarray as xr
from bandfusion import __version__
from bandfusion.engine.evaluate import EvaluationReport, report_from_pixels
from bandfusion.engine.sampling import sample_pixels, spatial_block_split
from bandfusion.io.geotiff import atomic_output
from bandfusion.io.labels import Labels
from bandfusion.io.nodata import band_nodata, valid_mask
from bandfusion.models.baselines import BASELINES
from bandfusion.models.estimator import SpectralFusionClassifier
from bandfusion.models.indices import INDICES, resolve_roles
from bandfusion.progress import Progress, Step, silent
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator
from sklearn.model_selection import PredefinedSplit
from threadpoolctl import threadpool_limits

PROTOCOLS = ("block", "fixed-per-class", "fraction")
FUSION = "fusion"
FUSION_INDICES = "fusion+indices"
SCORES = ("overall_accuracy", "average_accuracy", "kappa", "macro_f1")
_SCORE_LABELS = {
    "overall_accuracy": "OA",
    "average_accuracy": "AA",
    "kappa": "kappa",
    "macro_f1": "macro-F1",
}


# ---------------------------------------------------------------------------------------------
# protocols


@dataclass(frozen=True)
class Protocol:
    """How labelled pixels are split into training and test pixels for one seed.

    block: whole `block_size` blocks, about `test_fraction` of the pixels, test (spatially
    disjoint; see `spatial_block_split`). fixed-per-class: `per_class` random training pixels
    per class (at most half of a class), the rest test, as in Hu et al. 2015. fraction:
    `fraction` of each class's pixels, at random, for training, the rest test.
    """

    name: str = "block"
    block_size: int = 64
    test_fraction: float = 0.3
    per_class: int = 200
    fraction: float = 0.1

    def __post_init__(self) -> None:
        if self.name not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {self.name!r}")
        if self.per_class < 1 or self.block_size < 1:
            raise ValueError("per_class and block_size must be at least 1")
        if not (0 < self.test_fraction < 1 and 0 < self.fraction < 1):
            raise ValueError("test_fraction and fraction must lie between 0 and 1")

    @property
    def optimistic(self) -> bool:
        """Random-pixel protocols: test pixels neighbour training pixels, inflating scores."""
        return self.name != "block"

    def describe(self) -> str:
        """One line saying what the protocol does, with the optimism warning where it applies."""
        if self.name == "block":
            return (
                f"block: spatially disjoint {self.block_size}-px blocks, "
                f"~{self.test_fraction:.0%} of labelled pixels for test"
            )
        what = (
            f"fixed-per-class: {self.per_class} random training pixels per class"
            if self.name == "fixed-per-class"
            else f"fraction: {self.fraction:.0%} of each class's pixels at random for training"
        )
        return f"{what}, the rest for test (random pixels: OPTIMISTIC, for literature comparison)"

    def split(self, labels: Labels, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Bool (H, W) masks (train, test) over the labelled pixels; disjoint, seed-determined."""
        if self.name == "block":
            test = labels.labelled & spatial_block_split(
                labels, block_size=self.block_size, val_fraction=self.test_fraction, seed=seed
            )
            return labels.labelled & ~test, test
        rng = np.random.default_rng(seed)
        train = np.zeros(labels.values.shape, dtype=bool)
        for class_id in labels.legend.ids:
            where = np.flatnonzero(labels.labelled & (labels.values == class_id))
            train.flat[rng.choice(where, self._n_train(len(where)), replace=False)] = True
        return train, labels.labelled & ~train

    def _n_train(self, n: int) -> int:
        """Training pixels taken from a class of n pixels: at least one, never all of two+."""
        wanted = self.per_class if self.name == "fixed-per-class" else round(self.fraction * n)
        limit = n // 2 if self.name == "fixed-per-class" else n - 1
        return max(1, min(wanted, limit)) if n > 1 else n


def usable_labels(scene: xr.DataArray, labels: Labels) -> Labels:
    """`labels` without the pixels that are nodata in the scene, so splits count real pixels."""
    data = scene.data if isinstance(scene.data, da.Array) else da.from_array(scene.data)
    nodata = band_nodata(scene)
    valid = da.map_blocks(valid_mask, data, nodata, drop_axis=0, dtype=bool).compute()
    return replace(labels, labelled=labels.labelled & valid)


def spatial_cv(
    scene: xr.DataArray,
    labels: Labels,
    where: np.ndarray,
    *,
    n_folds: int = 3,
    block_size: int = 64,
    per_class_cap: int | None = 20000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, PredefinedSplit]:
    """Pixels of `where` and a spatial cross-validation over them, for tuning on training data.

    The blocks holding labelled pixels of `where` are dealt at random to `n_folds` folds;
    each fold's pixels (at most per_class_cap / n_folds per class) are sampled in turn.
    Returns X, y and a PredefinedSplit for GridSearchCV / cross_val_score(cv=...).
    """
    height, width = labels.values.shape
    candidates = labels.labelled & where
    blocks = (np.arange(height)[:, None] // block_size) * (-(-width // block_size)) + (
        np.arange(width)[None, :] // block_size
    )
    used = np.unique(blocks[candidates])
    fold_of_block = np.full(blocks.max() + 1, -1)
    fold_of_block[used] = np.random.default_rng(seed).permutation(len(used)) % n_folds
    pixel_fold = np.where(candidates, fold_of_block[blocks], -1)
    cap = None if per_class_cap is None else max(1, per_class_cap // n_folds)
    tables = [
        sample_pixels(scene, labels, where=pixel_fold == fold, per_class_cap=cap, seed=seed + fold)
        for fold in range(n_folds)
    ]
    folds = np.concatenate([np.full(len(y), k) for k, (_, y) in enumerate(tables)])
    x = np.concatenate([x for x, _ in tables])
    y = np.concatenate([y for _, y in tables])
    return x, y, PredefinedSplit(folds)


# ---------------------------------------------------------------------------------------------
# methods


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


def _cap_per_class(
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


@contextmanager
def _thread_limit(threads: int) -> Iterator[None]:
    """torch, OpenMP and BLAS limited to `threads`: comparable timings, repeatable sums."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)


def _with_jobs(estimator: BaseEstimator, threads: int) -> BaseEstimator:
    """Every `n_jobs` parameter that is set (the random forest's) set to `threads` instead."""
    params = estimator.get_params()
    jobs = {key: threads for key, value in params.items() if key.endswith("n_jobs") and value}
    return estimator.set_params(**jobs)


# ---------------------------------------------------------------------------------------------
# runs and results


@dataclass(frozen=True)
class MethodRun:
    """One method fitted and scored for one seed."""

    method: str
    seed: int
    report: EvaluationReport
    fit_seconds: float
    predict_seconds: float
    n_train: int

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
            entry: dict[str, Any] = {key: _mean_std(v) for key, v in columns.items()}
            ious = np.array([r.iou() for r in runs])
            entry["iou"] = {str(cid): _mean_std(ious[:, k]) for k, cid in enumerate(self.class_ids)}
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
                    **r.scores(),
                    "report": r.report.to_dict(),
                }
                for r in self.runs
            ],
        }

    def table_rows(self) -> list[list[str]]:
        """Header and one row per method: scores, IoU per class, fit and predict seconds."""
        header = [
            "method",
            *(_SCORE_LABELS[key] for key in SCORES),
            *(f"IoU {name}" for name in self.class_names),
            "fit s",
            "predict s",
        ]
        rows = [header]
        for method, entry in self.summary().items():
            rows.append(
                [
                    method,
                    *(_format(entry[key]) for key in SCORES),
                    *(_format(entry["iou"][str(cid)]) for cid in self.class_ids),
                    _format(entry["fit_seconds"]),
                    _format(entry["predict_seconds"]),
                ]
            )
        return rows

    def versions(self) -> str:
        """One line: package versions, threads, device and load average before → after."""
        env = self.environment
        load = [env[key][0] for key in ("load_average_start", "load_average_end") if key in env]
        return (
            f"bandfusion {env['bandfusion']}, torch {env['torch']}, "
            f"scikit-learn {env['scikit-learn']}, numpy {env['numpy']}, python {env['python']}; "
            f"{env['threads']} thread(s), device {env['device']}; "
            f"load average {' → '.join(f'{v:.2f}' for v in load)}"
        )

    def format_report(self) -> str:
        """Versions, protocol, settings and the table: what `bandfusion benchmark` prints."""
        return "\n".join(
            [
                self.versions(),
                f"protocol: {self.protocol.describe()}",
                f"fusion: {json.dumps(self.settings['fusion_params'])}, "
                f"per-class cap {self.settings['per_class_cap']}",
                self.format_table(),
            ]
        )

    def format_table(self) -> str:
        """The table for terminals, under a title line naming dataset, protocol and seeds."""
        rows = self.table_rows()
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
        lines = [
            "  ".join(
                cell.ljust(w) if k == 0 else cell.rjust(w)
                for k, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
            for row in rows
        ]
        return "\n".join([self._title(), *lines])

    def to_markdown(self) -> str:
        """The table, protocol, settings and environment as a Markdown section."""
        rows = self.table_rows()
        table = [
            "| " + " | ".join(rows[0]) + " |",
            "|" + "|".join(" --- " for _ in rows[0]) + "|",
            *("| " + " | ".join(row) + " |" for row in rows[1:]),
        ]
        return "\n".join(
            [
                f"## {self._title()}",
                "",
                f"Protocol: {self.protocol.describe()}.",
                "",
                *table,
                "",
                "Mean ± std over the seeds (std with ddof=1); times are wall-clock seconds.",
                "",
                *(f"- {key}: `{json.dumps(value)}`" for key, value in self.settings.items()),
                *(f"- {key}: `{json.dumps(value)}`" for key, value in self.environment.items()),
                "",
            ]
        )

    def figure(self) -> Figure:
        """Bar chart of OA, AA, kappa and macro-F1 per method, with ±std error bars."""
        summary = self.summary()
        figure = Figure(figsize=(4.0 + 1.6 * len(SCORES), 4.5), dpi=100)
        axes = figure.add_subplot()
        width = 0.8 / len(self.methods)
        for k, method in enumerate(self.methods):
            means = [summary[method][key][0] for key in SCORES]
            stds = [summary[method][key][1] for key in SCORES]
            positions = np.arange(len(SCORES)) + (k - (len(self.methods) - 1) / 2) * width
            axes.bar(positions, means, width, yerr=stds, capsize=2, label=method)
        axes.set_xticks(np.arange(len(SCORES)), [_SCORE_LABELS[key] for key in SCORES])
        lowest = min(summary[m][key][0] for m in self.methods for key in SCORES)
        axes.set_ylim(max(0.0, lowest - 0.1), 1.0)
        axes.set_title(self._title(), fontsize=9)
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        figure.tight_layout()
        return figure

    def write(self, directory: str | Path) -> list[Path]:
        """Write benchmark.json, benchmark.md and benchmark.png into `directory`."""
        directory = Path(directory)
        paths = [directory / f"benchmark.{ext}" for ext in ("json", "md", "png")]
        with atomic_output(paths[0]) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False, default=_plain))
        with atomic_output(paths[1]) as tmp:
            tmp.write_text(self.to_markdown())
        with atomic_output(paths[2]) as tmp:
            FigureCanvasAgg(self.figure()).print_png(tmp)
        return paths

    def _title(self) -> str:
        marker = " (OPTIMISTIC: random pixels)" if self.protocol.optimistic else ""
        return (
            f"{self.dataset} — protocol {self.protocol.name}{marker}, "
            f"{len(self.seeds)} seeds {self.seeds[0]}..{self.seeds[-1]}"
        )


def _mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float] | None:
    """(mean, std) over the finite values (std 0 for one), or None when there are none."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return None
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return float(finite.mean()), std


def _format(value: tuple[float, float] | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"


def _plain(value: object) -> object:
    """numpy values as JSON numbers (json.dumps' fallback)."""
    return value.tolist() if isinstance(value, np.generic | np.ndarray) else str(value)


def collect_environment(threads: int, device: str) -> dict[str, Any]:
    """Versions, threads and load average: what numbers and timings depend on."""
    return {
        "bandfusion": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "device": device,
        "load_average_start": list(os.getloadavg()),
        "command": " ".join(sys.argv),
    }


def run_benchmark(
    scene: xr.DataArray,
    labels: Labels,
    *,
    dataset: str,
    protocol: Protocol | None = None,
    methods: Sequence[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    per_class_cap: int | None = 20000,
    fusion_params: Mapping[str, Any] | None = None,
    threads: int = 1,
    progress: Progress | None = None,
) -> Benchmark:
    """Fit and score every method on every seed's split of the labelled pixels of `scene`.

    Each seed draws its own split and seeds every method; all methods fit on the same training
    pixels (at most `per_class_cap` per class, fewer for methods with a smaller cap) and are
    scored on every test pixel. `fusion_params` are SpectralFusionClassifier parameters.
    `progress` is told of each fit as it starts (its seed and method) and ends (stage "fits").
    """
    protocol = protocol or Protocol()
    bands = [str(b) for b in scene["band"].values]
    methods = list(methods or available_methods(bands))
    fusion_params = dict(fusion_params or {})
    labels = usable_labels(scene, labels)
    bench = Benchmark(
        dataset=dataset,
        protocol=protocol,
        methods=methods,
        seeds=list(seeds),
        class_ids=list(labels.legend.ids),
        class_names=list(labels.legend.names),
        settings={
            "per_class_cap": per_class_cap,
            "fusion_params": fusion_params,
            "baselines": {
                name: {
                    "estimator": " ".join(repr(b.build(0)).split()),
                    "max_train_per_class": b.max_train_per_class,
                }
                for name, b in BASELINES.items()
                if name in methods
            },
            "bands": bands,
        },
        environment=collect_environment(threads, str(fusion_params.get("device", "cpu"))),
    )
    report = progress or silent
    total = len(bench.seeds) * len(methods)
    with _thread_limit(threads):
        for seed in bench.seeds:
            train, test = protocol.split(labels, seed)
            x_train, y_train = sample_pixels(
                scene, labels, where=train, per_class_cap=per_class_cap, seed=seed
            )
            x_test, y_test = sample_pixels(scene, labels, where=test, per_class_cap=None)
            for method in methods:
                report(Step("fits", 0, total, "fit", {"seed": seed, "method": method}))
                estimator, cap = build_method(method, seed, bands, fusion_params)
                x, y = _cap_per_class(x_train, y_train, cap, seed)
                bench.runs.append(
                    _run(
                        method,
                        seed,
                        _with_jobs(estimator, threads),
                        (x, y),
                        (x_test, y_test),
                        bench,
                    )
                )
                report(Step("fits", 1, total, "fit"))
    bench.environment["load_average_end"] = list(os.getloadavg())
    return bench


def _run(
    method: str,
    seed: int,
    estimator: BaseEstimator,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    bench: Benchmark,
) -> MethodRun:
    start = time.perf_counter()
    estimator.fit(*train)
    fitted = time.perf_counter()
    predicted = estimator.predict(test[0])
    done = time.perf_counter()
    report = report_from_pixels(test[1], predicted, bench.class_ids, bench.class_names)
    return MethodRun(method, seed, report, fitted - start, done - fitted, len(train[1]))

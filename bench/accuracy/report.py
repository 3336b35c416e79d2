"""docs/accuracy.md from the suite's benchmarks: one table per set, then a summary table.

Differences are paired: fusion minus a baseline on the same seed (same split, same pixels),
with a 95 % Student-t interval over the seeds (`paired_differences`).
"""

from __future__ import annotations

from collections.abc import Sequence

from bandfusion.display.markdown import markdown_table
from bandfusion.engine.compare import FUSION, Benchmark
from bandfusion.engine.compare.results import paired_differences

from .datasets import Dataset

SCORED = (("overall_accuracy", "OA"), ("macro_f1", "macro-F1"))


def dataset_section(dataset: Dataset, bench: Benchmark) -> list[str]:
    """A set's heading, description, protocol and its table of every method."""
    summary = bench.summary()
    deltas = {score: paired_differences(bench, FUSION, score) for score, _ in SCORED}
    header = ["method", "OA", "macro-F1"]
    header += [f"IoU {name}" for name in bench.class_names]
    header += ["Δ OA fusion − method [95 % CI]", "Δ macro-F1 [95 % CI]", "fit s", "predict s"]
    rows = [header]
    for method in bench.methods:
        entry = summary[method]
        row = [method, _pm(entry["overall_accuracy"]), _pm(entry["macro_f1"])]
        row += [_iou(entry["iou"][str(cid)]) for cid in bench.class_ids]
        row += [_delta(deltas[score].get(method)) for score, _ in SCORED]
        row += [_seconds(entry["fit_seconds"]), _seconds(entry["predict_seconds"])]
        rows.append(row)
    n_train = sorted({r.n_train for r in bench.runs})
    n_test = sorted({int(r.report.support.sum()) for r in bench.runs})
    return [
        f"## {dataset.name}",
        "",
        f"{dataset.about}. Classes: {', '.join(bench.class_names)}.",
        f"Protocol: {bench.protocol.describe()}; seeds {_seeds(bench.seeds)} (each seed draws "
        f"the split and seeds every model). Training pixels per seed: {_span(n_train)}; "
        f"test pixels per seed: {_span(n_test)}. Load average (1 min) "
        f"{bench.environment['load_average_start'][0]:.1f} at the start of this set, "
        f"{bench.environment['load_average_end'][0]:.1f} at its end.{_choices(bench)}",
        "",
        *markdown_table(rows),
        "",
    ]


def _choices(bench: Benchmark) -> str:
    """The sentence naming what the fusion net's search kept on each seed (the candidate
    chosen, or the candidates blended), and its folds."""
    chosen: dict[str, list[str]] = {}
    protocols = set()
    for run in bench.runs:
        if run.method == FUSION and run.selection is not None:
            kept = " + ".join(run.selection.get("blended") or [run.selection["chosen"]])
            chosen.setdefault(kept, []).append(str(run.seed))
            protocols.add(run.selection["protocol"])
    if not chosen:
        return ""
    picks = ", ".join(
        f"{name} (seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)})"
        for name, seeds in chosen.items()
    )
    return f" The fusion net's search kept: {picks}; folds: {', '.join(sorted(protocols))}."


def summary_table(benches: Sequence[tuple[Dataset, Benchmark]]) -> list[str]:
    """Per set: fusion against the best baseline (by mean) on OA and macro-F1, paired."""
    header = ["set", "fusion OA", "best baseline (OA)", "Δ OA [95 % CI]"]
    header += ["fusion macro-F1", "best baseline (macro-F1)", "Δ macro-F1 [95 % CI]", "verdict"]
    rows = [header]
    for dataset, bench in benches:
        summary = bench.summary()
        row = [dataset.name]
        verdicts = []
        for score, _ in SCORED:
            best = max(
                (m for m in bench.methods if m != FUSION),
                key=lambda m: summary[m][score][0],
            )
            delta = paired_differences(bench, FUSION, score)[best]
            row += [
                _pm(summary[FUSION][score]),
                f"{best} {_pm(summary[best][score])}",
                _delta(delta),
            ]
            verdicts.append(_verdict(delta))
        rows.append([*row, " / ".join(verdicts)])
    return markdown_table(rows)


def _verdict(delta: tuple[float, float, float] | None) -> str:
    """better / worse where the interval excludes 0, else tie."""
    if delta is None:
        return "n/a"
    _, low, high = delta
    return "better" if low > 0 else "worse" if high < 0 else "tie"


def _pm(value: tuple[float, float] | None) -> str:
    return "–" if value is None else f"{value[0]:.4f} ± {value[1]:.4f}"


def _iou(value: tuple[float, float] | None) -> str:
    return "–" if value is None else f"{value[0]:.3f}"


def _delta(value: tuple[float, float, float] | None) -> str:
    if value is None:
        return "–"
    mean, low, high = value
    return f"{mean:+.4f} [{low:+.4f}, {high:+.4f}]"


def _seconds(value: tuple[float, float] | None) -> str:
    return "–" if value is None else f"{value[0]:.2f}"


def _seeds(seeds: Sequence[int]) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])


def _span(values: Sequence[int]) -> str:
    return str(values[0]) if len(values) == 1 else f"{values[0]}–{values[-1]}"

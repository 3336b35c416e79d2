"""Plain-text tables for terminals: evaluation reports, band importance, benchmarks, batch runs.

Every table goes through `align`, so columns line up the same way in every command.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bandfusion.batch.run import BatchResult, SceneRecord
    from bandfusion.engine.compare.results import Benchmark
    from bandfusion.engine.evaluate import EvaluationReport
    from bandfusion.engine.explain import Explanation

SCORE_LABELS = {
    "overall_accuracy": "OA",
    "average_accuracy": "AA",
    "kappa": "kappa",
    "macro_f1": "macro-F1",
}
"""The benchmark scores shown, in column order, with their column heads."""


def align(
    rows: Sequence[Sequence[str]], *, right: Collection[int] = (), indent: str = ""
) -> list[str]:
    """Rows of cells as lines of columns two spaces apart, each as wide as its widest cell.

    Columns whose index is in `right` are right-aligned (numbers), the others left-aligned
    (names); trailing spaces are dropped, so a last column of free text is not padded.
    """
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return [
        (
            indent
            + "  ".join(
                cell.rjust(width) if k in right else cell.ljust(width)
                for k, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        ).rstrip()
        for row in rows
    ]


def evaluation_table(report: EvaluationReport) -> str:
    """Per-class precision, recall, F1, IoU and support, then the overall scores, like
    scikit-learn's classification_report."""
    header = ["class", "id", "precision", "recall", "f1", "iou", "support"]
    rows = [
        [
            name,
            str(cid),
            *(f"{score[i]:.3f}" for score in (report.precision, report.recall, report.f1)),
            f"{report.iou[i]:.3f}",
            str(int(report.support[i])),
        ]
        for i, (cid, name) in enumerate(zip(report.class_ids, report.class_names, strict=True))
    ]
    totals = (
        f"overall accuracy {report.overall_accuracy:.4f}   kappa {report.kappa:.4f}   "
        f"macro F1 {report.macro_f1:.4f}   pixels {report.n_pixels}"
    )
    return "\n".join([*align([header, *rows], right=range(len(header))), "", totals])


def importance_table(explanation: Explanation) -> str:
    """Rank, band and permutation importance ± std, most important first."""
    rows = []
    for rank, band in enumerate(explanation.ranking(), start=1):
        k = explanation.bands.index(band)
        mean, std = explanation.importance_mean[k], explanation.importance_std[k]
        rows.append([str(rank), band, f"{mean:.4f}", "±", f"{std:.4f}"])
    title = (
        f"permutation importance ({explanation.scoring} lost; unshuffled {explanation.score:.4f}):"
    )
    return "\n".join([title, *align(rows, right={0, 2, 4}, indent="  ")])


def benchmark_title(bench: Benchmark) -> str:
    """Dataset, protocol (marked when optimistic) and seeds: the heading of every view."""
    marker = " (OPTIMISTIC: random pixels)" if bench.protocol.optimistic else ""
    return (
        f"{bench.dataset} — protocol {bench.protocol.name}{marker}, "
        f"{len(bench.seeds)} seeds {bench.seeds[0]}..{bench.seeds[-1]}"
    )


def benchmark_rows(bench: Benchmark) -> list[list[str]]:
    """Header and one row per method: scores, IoU per class, fit and predict seconds."""
    header = [
        "method",
        *SCORE_LABELS.values(),
        *(f"IoU {name}" for name in bench.class_names),
        "fit s",
        "predict s",
    ]
    rows = [header]
    for method, entry in bench.summary().items():
        rows.append(
            [
                method,
                *(_mean_std(entry[key]) for key in SCORE_LABELS),
                *(_mean_std(entry["iou"][str(cid)]) for cid in bench.class_ids),
                _mean_std(entry["fit_seconds"]),
                _mean_std(entry["predict_seconds"]),
            ]
        )
    return rows


def benchmark_table(bench: Benchmark) -> str:
    """The benchmark's table under its title line."""
    rows = benchmark_rows(bench)
    return "\n".join([benchmark_title(bench), *align(rows, right=range(1, len(rows[0])))])


def benchmark_report(bench: Benchmark) -> str:
    """Versions, protocol, settings and the table: what `bandfusion benchmark` prints."""
    return "\n".join(
        [
            environment_line(bench),
            f"protocol: {bench.protocol.describe()}",
            f"fusion: {json.dumps(bench.settings['fusion_params'])}, "
            f"per-class cap {bench.settings['per_class_cap']}",
            benchmark_table(bench),
        ]
    )


def environment_line(bench: Benchmark) -> str:
    """One line: package versions, threads, device and load average before → after."""
    env = bench.environment
    load = [env[key][0] for key in ("load_average_start", "load_average_end") if key in env]
    return (
        f"bandfusion {env['bandfusion']}, torch {env['torch']}, "
        f"scikit-learn {env['scikit-learn']}, numpy {env['numpy']}, python {env['python']}; "
        f"{env['threads']} thread(s), device {env['device']}; "
        f"load average {' → '.join(f'{v:.2f}' for v in load)}"
    )


def batch_summary(result: BatchResult) -> str:
    """One row a scene and a totals line, as `bandfusion batch` prints them."""
    header = ["status", "output", "seconds", "pixels", "worker / error"]
    lines = align([header, *(_scene_row(record) for record in result.records)], right={2, 3})
    rate = len(result.records) / result.seconds if result.seconds > 0 else 0.0
    counts = ", ".join(f"{result.count(s)} {s}" for s in ("done", "skipped", "failed"))
    lines.append(
        f"{len(result.records)} scenes in {result.seconds:.1f} s ({rate:.2f} scenes/s): "
        f"{counts}; manifest: {result.manifest}"
    )
    masked = masked_summary(r.pixels for r in result.records if r.pixels)
    return "\n".join([*lines, *([masked] if masked else [])])


def masked_summary(counts: Iterable[Mapping[str, int]]) -> str | None:
    """'masked pixels: cloud 1,234, shadow 56' (most first) over pixel counts by map name (a
    tally's, a manifest record's); None where nothing was masked."""
    from bandfusion.engine.masked import MASKED_PREFIX  # the engine's imports: only when asked

    total: Counter[str] = Counter()
    for pixels in counts:
        total.update(
            {
                k.removeprefix(MASKED_PREFIX): n
                for k, n in pixels.items()
                if k.startswith(MASKED_PREFIX)
            }
        )
    if not total:
        return None
    return "masked pixels: " + ", ".join(f"{reason} {n:,}" for reason, n in total.most_common())


def _scene_row(record: SceneRecord) -> list[str]:
    seconds = "-" if record.duration_s is None else f"{record.duration_s:.2f}"
    pixels = "-" if record.pixels is None else f"{sum(record.pixels.values()):,}"
    note = record.error if record.status == "failed" else record.worker
    return [record.status, record.output, seconds, pixels, note or "-"]


def _mean_std(value: tuple[float, float] | None, digits: int = 3) -> str:
    """A (mean, std) pair as 'mean ± std'; 'n/a' where there was nothing to average."""
    return "n/a" if value is None else f"{value[0]:.{digits}f} ± {value[1]:.{digits}f}"


def selection_text(record: Mapping[str, Any]) -> str:
    """How training chose its settings (model.json's training["selection"]): one line each."""
    scores = record.get("cv_macro_f1") or {}
    if not scores:
        return f"settings: as given ({record.get('protocol', 'no search')})"
    kept = record.get("blended") or [record["chosen"]]
    lines = [f"settings chosen by {record['folds']}-fold CV ({record['protocol']}), macro-F1:"]
    lines += [
        f"  {'*' if name in kept else ' '} {name:10s} {score:.4f}" for name, score in scores.items()
    ]
    if len(kept) > 1:
        lines.append(f"  the model averages the networks of {' and '.join(kept)}")
    elif record.get("unblended"):
        lines.append(f"  not blended: {record['unblended']}")
    return "\n".join(lines)

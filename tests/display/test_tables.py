"""Plain-text tables: one column aligner, and the tables of every engine result."""

from __future__ import annotations

import torch
from bandfusion.batch.run import BatchResult
from bandfusion.display.tables import (
    align,
    batch_summary,
    benchmark_report,
    evaluation_table,
    importance_table,
    selection_text,
)
from bandfusion.engine.compare import Benchmark
from bandfusion.engine.evaluate import EvaluationReport
from bandfusion.engine.explain import Explanation


def test_align_pads_each_column_to_its_widest_cell() -> None:
    lines = align([["id", "name", "note"], ["1", "water", ""], ["12", "forest", "new"]], right={0})
    assert lines == [
        "id  name    note",
        " 1  water",  # nothing trails: the empty last cell leaves no spaces
        "12  forest  new",
    ]
    assert align([["a", "bb"]], indent="  ") == ["  a  bb"]


def test_evaluation_table_lists_every_class_then_the_totals(report: EvaluationReport) -> None:
    lines = evaluation_table(report).splitlines()
    assert lines[0].split() == ["class", "id", "precision", "recall", "f1", "iou", "support"]
    assert lines[1].split() == ["water", "1", "0.889", "0.800", "0.842", "0.727", "10"]
    assert lines[2] == "broadleaf forest   2      0.818   0.900  0.857  0.750       10"
    assert len({len(line) for line in lines[:3]}) == 1  # every column right-aligned
    assert lines[3] == ""
    assert lines[4] == ("overall accuracy 0.8500   kappa 0.7000   macro F1 0.8496   pixels 20")


def test_importance_table_ranks_the_bands(explanation: Explanation) -> None:
    lines = importance_table(explanation).splitlines()
    assert lines[0] == "permutation importance (f1_macro lost; unshuffled 0.9530):"
    assert [line.split() for line in lines[1:]] == [
        ["1", "b2", "0.4100", "±", "0.0300"],
        ["2", "b1", "0.0120", "±", "0.0040"],
        ["3", "b3", "-0.0020", "±", "0.0010"],
    ]
    assert lines[1].index("±") == lines[3].index("±")


def test_benchmark_report_gives_versions_protocol_settings_and_the_table(
    benchmark: Benchmark,
) -> None:
    lines = benchmark_report(benchmark).splitlines()
    assert "torch " + torch.__version__ in lines[0] and "load average" in lines[0]
    assert lines[1] == f"protocol: {benchmark.protocol.describe()}"
    assert lines[2] == 'fusion: {"hidden": [16], "epochs": 5, "patience": 5}, per-class cap 500'
    assert lines[3] == "synthetic — protocol block, 2 seeds 0..1"
    header, fusion, logistic = lines[4:]
    assert header.split("  ")[0] == "method" and "IoU broadleaf forest" in header
    assert fusion.startswith("fusion  ") and logistic.startswith("logistic")
    assert len({len(header), len(fusion), len(logistic)}) == 1
    assert fusion.split("  ")[-1] == "0.010 ± 0.000"  # predict seconds
    assert "1.000 ± 0.707" in fusion  # fit seconds 0.5 and 1.5


def test_batch_summary_lists_every_scene_and_the_totals(batch_result: BatchResult) -> None:
    lines = batch_summary(batch_result).splitlines()
    assert lines[0].split() == ["status", "output", "seconds", "pixels", "worker", "/", "error"]
    assert lines[1].split() == ["done", "out.tif", "0.50", "4", "tcp://127.0.0.1:1"]
    assert lines[3].split()[:4] == ["failed", "bad.tif", "-", "-"]
    assert lines[3].endswith("bad.tif: not a raster")
    assert lines[4] == (
        "3 scenes in 2.0 s (1.50 scenes/s): 1 done, 1 skipped, 1 failed; manifest: m.json"
    )


def test_the_search_record_marks_what_the_model_is_made_of() -> None:
    record = {
        "chosen": "given",
        "protocol": "spatial blocks",
        "folds": 3,
        "cv_macro_f1": {"given": 0.91, "regularised": 0.9, "binned": 0.88},
    }
    alone = selection_text(record).splitlines()
    assert alone[0] == "settings chosen by 3-fold CV (spatial blocks), macro-F1:"
    assert [line[2] for line in alone[1:]] == ["*", " ", " "]
    blended = selection_text({**record, "blended": ["given", "binned"]}).splitlines()
    assert [line[2] for line in blended[1:4]] == ["*", " ", "*"]
    assert blended[4] == "  the model averages the networks of given and binned"
    refused = selection_text({**record, "unblended": "clipped bands are not blended"})
    assert refused.endswith("  not blended: clipped bands are not blended")
    assert selection_text({"protocol": "skipped: a class has fewer than 3 pixels"}) == (
        "settings: as given (skipped: a class has fewer than 3 pixels)"
    )

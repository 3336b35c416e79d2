"""The accuracy suite: its sets load as documented, and its Markdown holds one table per set and
a summary whose verdicts follow the paired intervals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bandfusion.engine.compare import FUSION, Protocol, run_benchmark

from bench.accuracy.datasets import DATASETS, SCL_CLASSES, Dataset, s2_safe_scl, slovenia
from bench.accuracy.report import dataset_section, summary_table
from tests.engine.test_compare_heldout import TINY_FUSION, coded_scene
from tests.helpers import REPO


def test_tables_hold_every_method_class_and_a_verdict() -> None:
    scene, labels = coded_scene((32, 32))
    protocol = Protocol(block_size=8, buffer=1)
    bench = run_benchmark(
        scene,
        labels,
        dataset="coded",
        protocol=protocol,
        methods=[FUSION, "sk:knn"],
        seeds=(0, 1),
        fusion_params=TINY_FUSION,
    )
    dataset = Dataset("coded", lambda: (scene, labels), protocol, "a coded scene")
    section = dataset_section(dataset, bench)
    assert section[0] == "## coded"
    table = [line for line in section if line.startswith("|")]
    assert len(table) == 2 + 2  # header, rule, one row per method
    assert table[0].count("IoU") == 3
    records = [run.selection for run in bench.runs if run.method == FUSION and run.selection]
    kept = {" + ".join(record.get("blended") or [record["chosen"]]) for record in records}
    text = "\n".join(section)
    assert records and "search kept:" in text and all(name in text for name in kept)
    summary = summary_table([(dataset, bench)])
    assert summary[2].startswith("| coded |") and "sk:knn" in summary[2]
    assert summary[2].rstrip(" |").split("/")[-1].strip() in {"better", "worse", "tie"}


def test_the_suite_has_five_sets_or_more_each_split_by_buffered_blocks() -> None:
    assert len({d.name for d in DATASETS}) == len(DATASETS) >= 5
    assert all(d.protocol.name == "block" and d.protocol.buffer > 0 for d in DATASETS)


def test_vector_and_raster_labels_of_slovenia_agree(data_dir: Path) -> None:
    _, raster = slovenia("lulc.tif")
    _, vector = slovenia("LULC.gpkg", "LULC_ID")
    np.testing.assert_array_equal(raster.labelled, vector.labelled)
    np.testing.assert_array_equal(raster.values[raster.labelled], vector.values[vector.labelled])


@pytest.mark.slow
def test_safe_scl_set_reads_reflectance_and_leaves_fill_unlabelled() -> None:
    scene, labels = s2_safe_scl()  # the shared whole tile, or the bundled cut
    assert scene.shape[0] == 11 and scene.shape[1:] == labels.values.shape
    data = scene.values
    fill = np.isnan(data[3])
    assert fill.any() and not labels.labelled[fill].any()  # the swath edge, DN 0
    water = labels.values == 3
    assert np.nanmedian(data[3][water]) < 0.05  # B04 over water: dark, offset applied
    assert set(np.unique(labels.values[labels.labelled])) <= set(SCL_CLASSES)


@pytest.mark.slow
def test_one_command_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "accuracy.md"
    argv = [sys.executable, "-m", "bench.accuracy", "--sets", "slovenia-raster", "--seeds", "2"]
    argv += ["--train-per-class", "100", "--out", str(out), "--json", str(tmp_path)]
    subprocess.run(argv, cwd=REPO, check=True, capture_output=True)
    text = out.read_text()
    assert "## Summary" in text and "## slovenia-raster" in text
    assert (tmp_path / "slovenia-raster.json").is_file()

"""run_batch without a cluster: refusals before any work, splitting a scene into row groups,
counting class pixels, and the summary of a run (tests/batch/test_cluster.py runs it on
clusters)."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bandfusion.batch.manifest import SceneRecord, SceneSpec
from bandfusion.batch.run import BatchResult, run_batch
from bandfusion.batch.tally import value_counts
from bandfusion.batch.tasks import row_groups
from bandfusion.errors import BandfusionError, OutputError

from tests.helpers import no_cluster, pending_like


def test_run_refuses_an_escaping_name_before_any_work(tmp_path: Path, model_dir: Path):
    scenes = tmp_path / "scenes.json"
    scenes.write_text(json.dumps([{"inputs": "a.tif", "output": "../../evil.tif"}]))
    with pytest.raises(BandfusionError, match=r"evil\.tif"):
        run_batch(scenes, model_dir, tmp_path / "out", start_client=no_cluster)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_run_refuses_two_scenes_writing_one_output(tmp_path: Path, model_dir: Path):
    specs = [SceneSpec(("a/x.tif",), "x.tif"), SceneSpec(("b/x.tif",), "./x.tif")]
    with pytest.raises(BandfusionError, match=r"several scenes would write x\.tif"):
        run_batch(specs, model_dir, tmp_path / "out", start_client=no_cluster)


def test_run_batch_refuses_an_output_onto_its_input(tmp_path: Path, model_dir: Path):
    """The CLI's check, in the Python API too: a scene in the out-dir would become its map."""
    (tmp_path / "a.tif").write_bytes(b"a scene")
    with pytest.raises(OutputError, match=r"a\.tif: is the input .*a\.tif; never replacing"):
        run_batch(tmp_path / "a.tif", model_dir, tmp_path, start_client=no_cluster)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]


@pytest.mark.parametrize("inside", [".", "maps"])
def test_run_batch_writes_nothing_into_an_input_product(
    tmp_path: Path, model_dir: Path, inside: str
):
    """A product folder is one input as a whole: an out-dir that is it, or lies in it, is
    refused before anything is created there."""
    product = tmp_path / "S2A_MSIL2A_X.SAFE"
    product.mkdir()
    (product / "MTD_MSIL2A.xml").write_text("<metadata/>")
    before = sorted(product.rglob("*"))
    with pytest.raises(OutputError, match=r"is inside the input product .*SAFE; never writing"):
        run_batch([SceneSpec((str(product),), "x.tif")], model_dir, product / inside,
                  start_client=no_cluster)  # fmt: skip
    assert sorted(product.rglob("*")) == before


@pytest.mark.parametrize("inside", ["", "/", "/maps"])
@pytest.mark.parametrize("given", ["s3://b/p/S2A_MSIL2A_X.SAFE", "s3://b/p/S2A_MSIL2A_X.SAFE/"])
def test_run_batch_writes_nothing_into_an_input_product_in_object_storage(
    model_dir: Path, given: str, inside: str
):
    """The same for a product named by its folder URL: refused before any request is made."""
    out_dir = given.rstrip("/") + inside
    with pytest.raises(OutputError, match=r"is inside the input product .*SAFE/?; never writing"):
        run_batch([SceneSpec((given,), "x.tif")], model_dir, out_dir, start_client=no_cluster)


# ---------------------------------------------------------------------------------------------
# splitting and reporting


@pytest.mark.parametrize(
    ("chunks", "parts"), [((4, 4, 4, 2), 2), ((4, 4, 4, 2), 8), ((7,), 3), ((2,) * 9, 4)]
)
def test_row_groups_cover_the_rows_in_whole_chunks(chunks: tuple[int, ...], parts: int):
    groups = row_groups(chunks, parts)
    bounds = set(np.cumsum((0, *chunks)).tolist())
    assert len(groups) == min(parts, len(chunks))
    assert groups[0][0] == 0 and groups[-1][1] == sum(chunks)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(groups))
    assert all(start in bounds and stop in bounds and start < stop for start, stop in groups)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_value_counts_count_every_value(dtype: str):
    block = np.array([[3, 3, 255, 0], [7, 3, 255, 1]]).astype(dtype)
    if dtype == "int16":
        block[0, 0] = -1
    values, sizes = np.unique(block, return_counts=True)
    assert value_counts(block) == dict(zip(values.tolist(), sizes.tolist(), strict=True))


def test_result_counts_and_lists_the_failed_scenes(done: SceneRecord):
    bad = replace(
        pending_like(done), output="bad.tif", status="failed", error="bad.tif: not a raster"
    )
    result = BatchResult((done, replace(done, status="skipped"), bad), Path("m.json"), 2.0)
    assert [result.count(s) for s in ("done", "skipped", "failed")] == [1, 1, 1]
    assert [r.output for r in result.failed] == ["bad.tif"]


@pytest.mark.parametrize("out_dir", ["https://example.invalid/maps", "gs://bucket/maps"])
def test_run_batch_refuses_an_out_dir_url_it_cannot_write(
    tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch, out_dir: str
):
    """Not taken for a local folder named `https:` under the working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.tif").write_bytes(b"")  # never opened: the out-dir is refused first
    with pytest.raises(OutputError, match=f"^{out_dir}: maps are written to a local folder"):
        run_batch(tmp_path / "a.tif", model_dir, out_dir, start_client=no_cluster)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]

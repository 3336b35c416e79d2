"""Inputs checked before any cluster starts (bandfusion.batch.checks): every missing input is
named on its own line, locally and in object storage, and a scene list's relative paths are
read relative to the list file, wherever the command runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from bandfusion.batch.checks import MissingInputs, check_inputs
from bandfusion.batch.manifest import collect_scenes
from bandfusion.batch.run import run_batch

from tests.conftest import S3_BUCKET
from tests.fuzzing import run_cli
from tests.helpers import chip_bands, no_cluster


def test_every_missing_input_is_one_line_and_no_cluster_starts(tmp_path: Path, model_dir: Path):
    present = chip_bands("adwp")[0]
    with pytest.raises(MissingInputs) as caught:
        run_batch([present, tmp_path / "a.tif", tmp_path / "b.tif"], model_dir, tmp_path / "out",
                  start_client=no_cluster)  # fmt: skip
    lines = str(caught.value).splitlines()
    assert lines[0] == "2 of 3 inputs cannot be read; nothing was started:"
    assert lines[1:] == [
        f"  {tmp_path / 'a.tif'}: no such file",
        f"  {tmp_path / 'b.tif'}: no such file",
    ]


def test_a_scene_lists_paths_are_relative_to_the_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    lists = tmp_path / "lists"
    lists.mkdir()
    band = chip_bands("adwp")[0]
    (tmp_path / "b02.tif").write_bytes(band.read_bytes())
    (lists / "scenes.json").write_text(json.dumps([{"inputs": "../b02.tif", "output": "a.tif"}]))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    stamps = check_inputs(collect_scenes([lists / "scenes.json"]))
    [stamp] = stamps.values()
    assert Path(stamp.path).resolve() == (tmp_path / "b02.tif").resolve()
    assert stamp.size == band.stat().st_size


def test_missing_objects_are_named_and_present_ones_stamped(s3_env: Any):
    band = chip_bands("adwp")[0]
    s3_env.upload_file(str(band), S3_BUCKET, "checks/B02.tif")
    here, gone = f"s3://{S3_BUCKET}/checks/B02.tif", f"s3://{S3_BUCKET}/checks/gone.tif"
    assert check_inputs(collect_scenes([here]))[here].size == band.stat().st_size
    with pytest.raises(MissingInputs, match=f"(?m)^  {gone}: no such object$"):
        check_inputs(collect_scenes([here, gone]))


def test_the_command_names_each_missing_input_at_once(tmp_path: Path, model_dir: Path):
    start = time.perf_counter()
    code, err = run_cli(["batch", str(tmp_path / "x.tif"), str(tmp_path / "y.tif"), "-m",
                         str(model_dir), "--out-dir", str(tmp_path / "out"), "-q"])  # fmt: skip
    assert code == 2
    assert err.splitlines()[1:] == [f"  {tmp_path / n}: no such file" for n in ("x.tif", "y.tif")]
    assert time.perf_counter() - start < 5  # no cluster was started


def test_folders_of_band_files_are_scenes_of_one_band_each_so_names_clash(
    tmp_path: Path, model_dir: Path
):
    """Each raster of a folder is a scene: two chips' folders of band files clash on B02.tif
    and the rest, in one line that says how to give band files as one scene."""
    folders = [str(chip_bands(chip)[0].parent) for chip in ("adwp", "akny")]
    code, err = run_cli(["batch", *folders, "-m", str(model_dir), "--out-dir",
                         str(tmp_path / "out"), "-q"])  # fmt: skip
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "several scenes would write B02.tif" in err
    assert "band files of one scene are one row of a scene list, joined by ';'" in err
    assert not (tmp_path / "out" / "B02.tif").exists()

"""The batch job's inputs, manifest and planning, without a cluster (see test_batch_cluster.py).

Also home of the helpers both batch test files use: a small model for the On Cloud N chips,
multi-band copies of the chips, and the map `bandfusion predict` writes for a scene.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from bandfusion.batch.manifest import (
    InputStamp,
    Manifest,
    SceneRecord,
    SceneSpec,
    collect_scenes,
    file_sha256,
    output_path,
)
from bandfusion.batch.run import BatchResult, _value_counts, row_groups, run_batch
from bandfusion.cli import main
from bandfusion.engine.predict import predict_scene
from bandfusion.errors import BandfusionError, BandfusionWarning
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import load_model, save_model

from tests.helpers import REPO, no_cluster, random_model

CHIPS = REPO / "data" / "oncloudn_s2"
BANDS = ("B02", "B03", "B04", "B08")


def chip_bands(chip: str) -> list[Path]:
    """The band files of a bundled On Cloud N chip ("adwp" or "akny")."""
    return [CHIPS / chip / f"{band}.tif" for band in BANDS]


def save_chip_model(path: Path, seed: int = 0) -> Path:
    """A small random-weight model over the chips' four bands, saved at `path`; with seed 0
    its maps of both chips hold all three classes."""
    scene = open_scene(chip_bands("adwp"))
    return save_model(random_model(scene, [1, 2, 3], hidden=(8,), seed=seed), path)


def stack_chip(chip: str, path: Path, tiles: tuple[int, int] = (1, 1)) -> Path:
    """The chip's bands as one multi-band GeoTIFF (band names kept), tiled `tiles` times."""
    data = np.tile(open_scene(chip_bands(chip)).values, (1, *tiles))
    with rasterio.open(chip_bands(chip)[0]) as src:
        profile = {**src.profile, "count": 4, "height": data.shape[1], "width": data.shape[2]}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for index, band in enumerate(BANDS, start=1):
            dst.set_band_description(index, band)
    return path


def predict_sha256(inputs: list[Path], model_dir: Path, path: Path) -> str:
    """sha256 of the map `bandfusion predict` writes for `inputs` (written at `path`)."""
    model = load_model(model_dir)
    write_geotiff(predict_scene(open_scene(inputs), model), path)
    return file_sha256(path)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_chip_model(tmp_path_factory.mktemp("model") / "chip-model")


# ---------------------------------------------------------------------------------------------
# inputs


def test_files_globs_and_directories_become_one_scene_per_raster(tmp_path: Path):
    for name in ("b.tif", "a.TIF", "c.jp2", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.tif").write_bytes(b"")
    by_dir = collect_scenes([tmp_path])
    assert [s.inputs for s in by_dir] == [(str(tmp_path / n),) for n in ("a.TIF", "b.tif", "c.jp2")]
    assert [s.output for s in by_dir] == ["a.tif", "b.tif", "c.tif"]
    by_glob = collect_scenes([str(tmp_path / "*.tif"), str(tmp_path / "**" / "d.tif")])
    assert [Path(s.inputs[0]).name for s in by_glob] == ["b.tif", "d.tif"]
    assert collect_scenes([tmp_path / "missing.tif"]) == [
        SceneSpec((str(tmp_path / "missing.tif"),), "missing.tif")
    ]


def test_relative_globs_stay_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiles").mkdir()
    (tmp_path / "tiles" / "x.tif").write_bytes(b"")
    assert collect_scenes(["tiles/*.tif"]) == [SceneSpec(("tiles/x.tif",), "x.tif")]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["{tmp}/*.tif"], "no files match"),
        (["{tmp}"], "holds no raster files"),
        ([], "no scenes"),
    ],
)
def test_inputs_without_scenes_are_refused(tmp_path: Path, inputs: list[str], message: str):
    with pytest.raises(BandfusionError, match=message):
        collect_scenes([item.format(tmp=tmp_path) for item in inputs])


def test_csv_scene_list_with_band_files_and_output_names(tmp_path: Path):
    (tmp_path / "lists").mkdir()
    scenes = tmp_path / "lists" / "scenes.csv"
    scenes.write_text(
        "inputs,output,comment\n"
        "../s1/B02.tif; ../s1/B03.tif,first.tif,x\n"
        ",,\n"
        "/abs/one.tif,,\n"
        "../s2/B02.tif;../s2/B03.tif,,\n"
    )
    got = collect_scenes([scenes])
    lists = tmp_path / "lists"
    assert got == [
        SceneSpec((str(lists / "../s1/B02.tif"), str(lists / "../s1/B03.tif")), "first.tif"),
        SceneSpec(("/abs/one.tif",), "one.tif"),
        SceneSpec((str(lists / "../s2/B02.tif"), str(lists / "../s2/B03.tif")), "s2.tif"),
    ]


def test_json_scene_list_in_every_form(tmp_path: Path):
    doc = {
        "scenes": [
            "a.tif",
            ["s/B02.tif", "s/B03.tif"],
            {"inputs": "c.tif", "output": "maps/c-map.tif"},
            {"inputs": ["t/B02.tif"]},
        ]
    }
    (tmp_path / "scenes.json").write_text(json.dumps(doc))
    got = collect_scenes([tmp_path / "scenes.json"])
    assert [s.output for s in got] == ["a.tif", "s.tif", "maps/c-map.tif", "B02.tif"]
    assert got[1].inputs == (str(tmp_path / "s/B02.tif"), str(tmp_path / "s/B03.tif"))
    (tmp_path / "list.json").write_text(json.dumps(["a.tif"]))
    assert collect_scenes([tmp_path / "list.json"]) == [got[0]]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("s.csv", "file,output\na.tif,\n", "needs an 'inputs' column"),
        ("s.csv", "inputs\n", "scene list is empty"),
        ("s.json", "{not json", "not valid JSON"),
        ("s.json", '{"items": []}', "expected a list of scenes"),
        ("s.json", '[{"inputs": []}]', "scene 1: inputs must be a file or a list"),
        ("s.json", '["a.tif", {"inputs": "b.tif", "output": 3}]', "scene 2: output must be"),
    ],
)
def test_bad_scene_lists_are_one_line_errors(tmp_path: Path, name: str, text: str, message: str):
    (tmp_path / name).write_text(text)
    with pytest.raises(BandfusionError, match=message) as info:
        collect_scenes([tmp_path / name])
    assert str(tmp_path / name) in str(info.value)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------------------------
# output names


@pytest.mark.parametrize(
    "name", ["../x.tif", "/etc/x.tif", "sub/../../x.tif", "link/x.tif", "manifest.json", "."]
)
def test_output_names_leaving_the_output_dir_are_refused(tmp_path: Path, name: str):
    out = tmp_path / "out"
    out.mkdir()
    (out / "link").symlink_to(tmp_path)
    with pytest.raises(BandfusionError, match="not a file inside the output dir"):
        output_path(out, name)


def test_output_names_may_use_subfolders(tmp_path: Path):
    assert output_path(tmp_path, "a/b/../c.tif") == tmp_path.resolve() / "a" / "c.tif"


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


def test_cli_refuses_workers_with_a_scheduler(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as info:
        main(
            ["batch", "x.tif", "-m", "m", "--out-dir", "o", "--scheduler", "h:1", "--workers", "2"]
        )
    assert info.value.code == 2
    assert "local cluster only" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# the manifest: what counts as done


@pytest.fixture
def done(tmp_path: Path) -> SceneRecord:
    """A finished record whose output and input exist in tmp_path."""
    (tmp_path / "in.tif").write_bytes(b"input")
    (tmp_path / "out.tif").write_bytes(b"map")
    return SceneRecord(
        output="out.tif",
        inputs=(InputStamp.of(tmp_path / "in.tif"),),
        model_sha256="m1",
        status="done",
        sha256=file_sha256(tmp_path / "out.tif"),
        pixels={"1": 3, "nodata": 1},
        duration_s=0.5,
        worker="tcp://127.0.0.1:1",
        parts=1,
    )


def pending_like(record: SceneRecord) -> SceneRecord:
    return SceneRecord(record.output, record.inputs, record.model_sha256)


def test_manifest_round_trips_and_skips_only_current_outputs(tmp_path: Path, done: SceneRecord):
    manifest = Manifest(tmp_path / "manifest.json", {}, {"sha256": "m1"})
    manifest.update(done)
    loaded = Manifest.load(tmp_path)
    assert loaded.records == {"out.tif": done}
    assert loaded.model == {"sha256": "m1"}
    [planned] = loaded.plan([pending_like(done)], tmp_path, force=False)
    assert planned == replace(done, status="skipped")
    [forced] = loaded.plan([pending_like(done)], tmp_path, force=True)
    assert forced.status == "pending"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_updates_in_quick_succession_are_all_saved_by_flush(tmp_path: Path, done: SceneRecord):
    manifest = Manifest(tmp_path / "manifest.json", {}, {})
    others = [replace(done, output=f"{i}.tif") for i in range(50)]
    for record in others:
        manifest.update(record)
    manifest.flush()
    assert list(Manifest.load(tmp_path).records.values()) == others


@pytest.mark.parametrize("change", ["output bytes", "output gone", "input", "model", "failed"])
def test_any_change_means_a_redo(tmp_path: Path, done: SceneRecord, change: str):
    pending = pending_like(done)
    if change == "output bytes":
        (tmp_path / "out.tif").write_bytes(b"map, half")
    elif change == "output gone":
        (tmp_path / "out.tif").unlink()
    elif change == "input":
        (tmp_path / "in.tif").write_bytes(b"input, edited")
        pending = replace(pending, inputs=(InputStamp.of(tmp_path / "in.tif"),))
    elif change == "model":
        pending = replace(pending, model_sha256="m2")
    else:
        done = replace(done, status="failed")
    assert not pending.is_current(done, tmp_path / "out.tif")


@pytest.mark.parametrize("text", ["{", '{"scenes": [{"output": "x"}]}', '{"scenes": 3}'])
def test_an_unreadable_manifest_means_redo_everything(tmp_path: Path, text: str):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.warns(BandfusionWarning, match="unreadable manifest"):
        assert Manifest.load(tmp_path).records == {}


def test_a_missing_input_is_stamped_without_size(tmp_path: Path):
    stamp = InputStamp.of(tmp_path / "gone.tif")
    assert (stamp.size, stamp.mtime_ns) == (None, None)
    assert Path(stamp.path).is_absolute()


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
    assert _value_counts(block) == dict(zip(values.tolist(), sizes.tolist(), strict=True))


def test_summary_lists_every_scene_and_the_totals(done: SceneRecord):
    bad = replace(
        pending_like(done), output="bad.tif", status="failed", error="bad.tif: not a raster"
    )
    result = BatchResult((done, replace(done, status="skipped"), bad), Path("m.json"), 2.0)
    lines = result.format_summary().splitlines()
    assert lines[0].split() == ["status", "output", "seconds", "pixels", "worker", "/", "error"]
    assert lines[1].split() == ["done", "out.tif", "0.50", "4", "tcp://127.0.0.1:1"]
    assert lines[3].split()[:4] == ["failed", "bad.tif", "-", "-"]
    assert lines[3].endswith("bad.tif: not a raster")
    assert lines[4] == (
        "3 scenes in 2.0 s (1.50 scenes/s): 1 done, 1 skipped, 1 failed; manifest: m.json"
    )
    assert [r.output for r in result.failed] == ["bad.tif"]

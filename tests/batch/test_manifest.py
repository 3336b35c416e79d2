"""The batch job's two manifests (bandfusion.batch.manifest): the scenes it is given (files,
globs, directories, CSV and JSON scene lists), output names that stay inside the output dir, and
the record in DIR/manifest.json that tells a rerun what is done."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bandfusion.batch.manifest import (
    STATUSES,
    InputStamp,
    Manifest,
    SceneRecord,
    SceneSpec,
    collect_scenes,
    file_sha256,
    output_path,
    read_scene_list,
)
from bandfusion.errors import BandfusionError, BandfusionWarning, OutputError
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import pending_like

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


# ---------------------------------------------------------------------------------------------
# the manifest: what counts as done


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
    manifest = Manifest(tmp_path / "manifest.json", {done.output: done}, {"sha256": "m1"})
    assert manifest.plan([pending], tmp_path, force=False) == [pending]


@pytest.mark.parametrize("text", ["{", '{"scenes": [{"output": "x"}]}', '{"scenes": 3}'])
def test_an_unreadable_manifest_means_redo_everything(tmp_path: Path, text: str):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.warns(BandfusionWarning, match="unreadable manifest"):
        assert Manifest.load(tmp_path).records == {}


@pytest.mark.parametrize(
    ("field", "value"),
    [("output", ["a.tif"]), ("output", 3), ("sha256", 7), ("pixels", [1]), ("pixels", {"1": "x"})],
)
def test_a_manifest_with_a_field_of_the_wrong_type_is_a_warning_and_a_redo(
    tmp_path: Path, done: SceneRecord, field: str, value: object
):
    entry = {**done.to_json(), field: value}
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 1, "scenes": [entry]}))
    with pytest.warns(BandfusionWarning, match="unreadable manifest") as caught:
        manifest = Manifest.load(tmp_path)
    assert manifest.records == {} and manifest.damaged
    assert len(str(caught[0].message).splitlines()) == 1


def test_a_missing_input_is_stamped_without_size(tmp_path: Path):
    stamp = InputStamp.of(tmp_path / "gone.tif")
    assert (stamp.size, stamp.mtime_ns) == (None, None)
    assert Path(stamp.path).is_absolute()


def test_a_manifest_in_a_missing_directory_is_an_output_error(tmp_path: Path, done: SceneRecord):
    manifest = Manifest(tmp_path / "gone" / "manifest.json", {}, {})
    with pytest.raises(OutputError, match="does not exist") as caught:
        manifest.update(done)
    assert str(caught.value).startswith(f"{tmp_path / 'gone' / 'manifest.json'}: ")
    assert not (tmp_path / "gone").exists()


def test_records_of_outputs_a_run_does_not_touch_are_kept(tmp_path: Path, done: SceneRecord):
    other = replace(done, output="other.tif", status="failed", error="other.tif: broken")
    first = Manifest(tmp_path / "manifest.json", {}, {"sha256": "m1"})
    first.update(other)
    first.update(done)
    second = Manifest.load(tmp_path)
    second.update(replace(done, duration_s=9.0))
    second.flush()
    records = Manifest.load(tmp_path).records
    assert records == {"other.tif": other, "out.tif": replace(done, duration_s=9.0)}
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["version"] == 1 and doc["model"] == {"sha256": "m1"}
    assert doc["scenes"] == [other.to_json(), replace(done, duration_s=9.0).to_json()]


def test_an_unknown_status_makes_the_manifest_unreadable(tmp_path: Path, done: SceneRecord):
    entry = {**done.to_json(), "status": "finished"}
    (tmp_path / "manifest.json").write_text(json.dumps({"scenes": [entry]}))
    with pytest.warns(BandfusionWarning, match="unknown status 'finished'"):
        assert Manifest.load(tmp_path).records == {}


def test_plan_keeps_new_outputs_pending_and_skips_a_skipped_one_again(
    tmp_path: Path, done: SceneRecord
):
    skipped = replace(done, status="skipped")
    manifest = Manifest(tmp_path / "manifest.json", {"out.tif": skipped}, {})
    new = SceneRecord("new.tif", done.inputs, "m1")
    assert manifest.plan([new, pending_like(done)], tmp_path, force=False) == [new, skipped]


def test_a_scene_of_band_files_is_named_after_their_folder(tmp_path: Path):
    bands = [tmp_path / "S2A_tile" / f"B0{i}.tif" for i in (2, 3)]
    assert SceneSpec.of(bands).output == "S2A_tile.tif"
    assert SceneSpec.of(bands[0]).output == "B02.tif"
    assert SceneSpec.of(bands, "mine.tif").inputs == tuple(str(b) for b in bands)
    with pytest.raises(BandfusionError, match="at least one input file"):
        SceneSpec.of([])


def test_file_sha256_reads_files_larger_than_a_block(tmp_path: Path):
    data = np.random.default_rng(0).bytes(5 << 19)  # two and a half blocks of 1 MiB
    (tmp_path / "big.tif").write_bytes(data)
    assert file_sha256(tmp_path / "big.tif") == hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------------------------
# properties: any record round-trips; any scene list is scenes or one line naming the list

texts = st.text(max_size=12)
stamps = st.builds(
    InputStamp,
    path=texts,
    size=st.none() | st.integers(0, 2**50),
    mtime_ns=st.none() | st.integers(0, 2**63),
)
records = st.builds(
    SceneRecord,
    output=st.text(min_size=1, max_size=12),
    inputs=st.lists(stamps, max_size=3).map(tuple),
    model_sha256=texts,
    status=st.sampled_from(STATUSES),
    sha256=st.none() | texts,
    pixels=st.none() | st.dictionaries(texts, st.integers(0, 2**50), max_size=4),
    duration_s=st.none() | st.floats(0, 1e9),
    worker=st.none() | texts,
    parts=st.none() | st.integers(1, 1024),
    error=st.none() | texts,
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    batch=st.lists(records, max_size=6, unique_by=lambda r: r.output),
    model=st.dictionaries(texts, texts, max_size=2),
)
def test_any_records_round_trip_through_the_manifest_file(
    tmp_path_factory: pytest.TempPathFactory, batch: list[SceneRecord], model: dict[str, str]
):
    out = tmp_path_factory.mktemp("manifest")
    manifest = Manifest(out / "manifest.json", {}, model)
    for record in batch:
        manifest.update(record)
    manifest.save()
    loaded = Manifest.load(out)
    assert list(loaded.records.values()) == batch
    assert loaded.model == model
    assert [p.name for p in out.iterdir()] == ["manifest.json"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=10,
)
scene_entries = (
    texts
    | st.lists(texts, max_size=3)
    | st.dictionaries(st.sampled_from(["inputs", "output"]), json_values | texts | st.lists(texts))
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    document=json_values
    | st.lists(scene_entries, max_size=4)
    | st.fixed_dictionaries({"scenes": st.lists(scene_entries, max_size=4)})
)
def test_any_json_scene_list_gives_scenes_or_one_line_naming_it(
    tmp_path_factory: pytest.TempPathFactory, document: object
):
    path = tmp_path_factory.mktemp("lists") / "scenes.json"
    path.write_text(json.dumps(document))
    scenes_or_error(path)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    lines=st.lists(
        st.lists(
            st.text(alphabet=st.sampled_from('ab.tif/;" ,\t\r\x00é'), max_size=8), max_size=3
        ).map(",".join),
        max_size=5,
    ),
    header=st.sampled_from(["inputs,output", "inputs", "output,inputs,notes", "files"]),
)
def test_any_csv_scene_list_gives_scenes_or_one_line_naming_it(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], header: str
):
    path = tmp_path_factory.mktemp("lists") / "scenes.csv"
    path.write_text("\n".join([header, *lines]), encoding="utf-8")
    scenes_or_error(path)


def scenes_or_error(path: Path) -> None:
    """read_scene_list(path): scenes with at least one input each, or a BandfusionError of one
    line naming `path`; nothing else."""
    try:
        scenes = read_scene_list(path)
    except BandfusionError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc), str(exc)
        return
    assert scenes and all(scene.inputs and scene.output for scene in scenes)

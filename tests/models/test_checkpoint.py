"""Model directories: round trips, atomic saves, and refusal of every bad or unsafe model file."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from bandfusion.errors import ModelFileError, OutputError
from bandfusion.models import (
    FORMAT_VERSION,
    ModelMetadata,
    SpectralFusionNet,
    TrainedModel,
    load_model,
    save_model,
)
from safetensors.torch import load_file, save_file

from tests.helpers import copy_model

BANDS = ["B02", "B03", "B04", "B08"]
CLASS_IDS = [0, 1, 8, 255]

Edit = Callable[[dict[str, Any]], None]


def make_model(**arch: Any) -> TrainedModel:
    """A small model with non-trivial weights, standardisation and BatchNorm statistics."""
    torch.manual_seed(0)
    net = SpectralFusionNet(len(BANDS), len(CLASS_IDS), **{"hidden": (8, 4), **arch})
    net.set_standardisation([500.0, 700.0, 900.0, 2500.0], [100.0, 150.0, 200.0, 800.0])
    net.train()
    with torch.no_grad():
        net(torch.randn(64, len(BANDS)) * 300 + 1000)
    meta = ModelMetadata(
        bands=list(BANDS),
        class_ids=list(CLASS_IDS),
        class_names=["background", "water", "cloud", "unknown"],
        class_colors=[(0, 0, 0), (0, 90, 255), (255, 255, 255), (128, 128, 128)],
        architecture=net.config(),
        training={"seed": 0, "split": "blocks of 64 px, 20% validation", "samples": 5000},
        metrics={"overall_accuracy": 0.9375, "per_class_f1": {"water": 0.9}},
    )
    return TrainedModel(net=net.eval(), meta=meta)


def logits(net: SpectralFusionNet) -> torch.Tensor:
    x = torch.randn(2, len(BANDS), 5, 5, generator=torch.Generator().manual_seed(1)) * 300 + 1000
    with torch.no_grad():
        return net(x)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return save_model(make_model(), tmp_path / "model")


def assert_refused(path: Path, fragment: str) -> str:
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    assert fragment in message
    return message


# ---------------------------------------------------------------------------------------------
# round trips and saving


@pytest.mark.parametrize(
    "arch",
    [{}, {"hidden": (16, 4, 16), "norm": "layer", "activation": "gelu"}, {"hidden": ()}],
    ids=str,
)
def test_round_trip_gives_identical_outputs_and_metadata(tmp_path: Path, arch: Any) -> None:
    model = make_model(**arch)
    path = save_model(model, str(tmp_path / "model"))
    loaded = load_model(path)
    assert path == tmp_path / "model"
    assert loaded.meta == model.meta
    assert not loaded.net.training
    assert torch.equal(logits(loaded.net), logits(model.net))
    for name, tensor in model.net.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[name], tensor), name


def test_model_directory_is_readable_json_and_float32_safetensors(model_dir: Path) -> None:
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.json", "weights.safetensors"]
    text = (model_dir / "model.json").read_text(encoding="utf-8")
    assert '\n  "bands": ["B02", "B03", "B04", "B08"],\n' in text
    assert json.loads(text)["class_ids"] == CLASS_IDS
    weights = load_file(model_dir / "weights.safetensors")
    assert all(t.dtype == torch.float32 and t.is_contiguous() for t in weights.values())
    assert set(weights) == set(make_model().net.state_dict())


def test_metadata_is_stored_as_plain_json(tmp_path: Path) -> None:
    model = make_model()
    model.meta.class_ids = list(np.array(CLASS_IDS, dtype=np.int64))
    model.meta.metrics = {"kappa": float("nan"), "recall": np.float32(0.5), 8: [np.int64(3)]}
    loaded = load_model(save_model(model, tmp_path / "model"))
    assert loaded.meta.class_ids == CLASS_IDS
    assert all(type(i) is int for i in loaded.meta.class_ids)
    assert loaded.meta.metrics == {"kappa": None, "recall": 0.5, "8": [3]}


def test_saving_over_a_model_replaces_it_and_leaves_no_temporary_directories(
    tmp_path: Path,
) -> None:
    path = save_model(make_model(), tmp_path / "model")
    replacement = make_model(hidden=(3,), norm="none")
    save_model(replacement, path)
    assert load_model(path).meta.architecture == replacement.net.config()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_saved_directory_gets_ordinary_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = save_model(make_model(), tmp_path / "model")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o755
    assert (path / "model.json").stat().st_mode & 0o777 == 0o644


def test_saving_into_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    save_model(make_model(), tmp_path / "model")
    assert load_model(tmp_path / "model").meta.bands == BANDS


def test_missing_parent_directory_raises_output_error(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "model"
    with pytest.raises(OutputError, match=str(path)):
        save_model(make_model(), path)


@pytest.mark.parametrize("existing", ["file", "directory"])
def test_saving_never_replaces_something_that_is_not_a_model(tmp_path: Path, existing: str) -> None:
    path = tmp_path / "target"
    if existing == "file":
        path.write_text("precious")
        precious = path
    else:
        path.mkdir()
        precious = path / "notes.txt"
        precious.write_text("precious")
    with pytest.raises(OutputError, match=str(path)):
        save_model(make_model(), path)
    assert precious.read_text() == "precious"


def _short_class_names(model: TrainedModel) -> None:
    model.meta.class_names = model.meta.class_names[:-1]


def _nan_weight(model: TrainedModel) -> None:
    with torch.no_grad():
        model.net.convs[0].weight[0, 0] = float("nan")


def _other_activation(model: TrainedModel) -> None:
    model.meta.architecture = {**model.meta.architecture, "activation": "gelu"}


def _unserialisable_metrics(model: TrainedModel) -> None:
    model.meta.metrics = {"when": object()}


@pytest.mark.parametrize(
    ("spoil", "fragment"),
    [
        (_short_class_names, "4 class_ids but 3 class_names"),
        (_nan_weight, "NaN"),
        (_other_activation, "architecture differs"),
        (_unserialisable_metrics, "not JSON-serialisable"),
    ],
)
def test_an_inconsistent_model_is_not_saved_and_the_old_one_survives(
    model_dir: Path, spoil: Callable[[TrainedModel], None], fragment: str
) -> None:
    model = make_model(hidden=(5,))
    spoil(model)
    with pytest.raises(ValueError, match=fragment):
        save_model(model, model_dir)
    assert load_model(model_dir).meta.architecture["hidden"] == [8, 4]
    assert [p.name for p in model_dir.parent.iterdir()] == ["model"]


# ---------------------------------------------------------------------------------------------
# refused paths: missing, plain files, pickles


class CreatesMarker:
    """Unpickling this creates `marker`: proof that something called pickle on the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def write_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"weights": CreatesMarker(marker)}))


def write_torch_zip(path: Path, marker: Path) -> None:
    torch.save({"weights": CreatesMarker(marker)}, path)


def write_torch_legacy(path: Path, marker: Path) -> None:
    torch.save({"weights": CreatesMarker(marker)}, path, _use_new_zipfile_serialization=False)


PICKLE_WRITERS = [write_pickle, write_torch_zip, write_torch_legacy]


def test_marker_payload_really_runs_when_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    write_pickle(tmp_path / "model.pkl", marker)
    pickle.loads((tmp_path / "model.pkl").read_bytes())["weights"].close()
    assert marker.exists()


@pytest.mark.parametrize("write", PICKLE_WRITERS)
def test_pickle_checkpoints_are_refused_without_unpickling(
    tmp_path: Path, write: Callable[[Path, Path], None]
) -> None:
    path, marker = tmp_path / "model.pt", tmp_path / "marker"
    write(path, marker)
    assert_refused(path, "never unpickles")
    assert not marker.exists()


@pytest.mark.parametrize("write", PICKLE_WRITERS)
def test_pickle_disguised_as_safetensors_is_refused_without_unpickling(
    model_dir: Path, write: Callable[[Path, Path], None]
) -> None:
    marker = model_dir.parent / "marker"
    write(model_dir / "weights.safetensors", marker)
    assert_refused(model_dir, "weights.safetensors is a pickle/torch.save file")
    assert not marker.exists()


def test_missing_path_is_refused(tmp_path: Path) -> None:
    assert_refused(tmp_path / "nothing", "no such model directory")


@pytest.mark.parametrize("content", [b"just text", b'{"bands": []}', b""])
def test_plain_file_is_not_a_model_directory(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.json"
    path.write_bytes(content)
    assert_refused(path, "not a bandfusion model directory")


# ---------------------------------------------------------------------------------------------
# refused model.json


def set_field(key: str, value: Any) -> Edit:
    return lambda doc: doc.update({key: value})


def drop_field(key: str) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        del doc[key]

    return edit


def drop_arch_key(key: str) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        del doc["architecture"][key]

    return edit


def set_arch(key: str, value: Any) -> Edit:
    return lambda doc: doc["architecture"].update({key: value})


def add_band_consistently(doc: dict[str, Any]) -> None:
    doc["bands"].append("B11")
    doc["architecture"]["in_bands"] = 5


def add_class_consistently(doc: dict[str, Any]) -> None:
    for key, value in [("class_ids", 9), ("class_names", "snow"), ("class_colors", [1, 2, 3])]:
        doc[key].append(value)
    doc["architecture"]["n_classes"] = 5


JSON_EDITS = {
    "missing field": (drop_field("bands"), "lacks the field 'bands'"),
    "missing training": (drop_field("training"), "lacks the field 'training'"),
    "ids not a list": (set_field("class_ids", "abc"), "field 'class_ids' must be"),
    "float id": (set_field("class_ids", [0, 1.5, 8, 255]), "field 'class_ids' must be"),
    "bool id": (set_field("class_ids", [0, True, 8, 255]), "field 'class_ids' must be"),
    "band numbers": (set_field("bands", [2, 3, 4, 8]), "field 'bands' must be"),
    "bad colour": (set_field("class_colors", [[300, 0, 0]] * 4), "field 'class_colors'"),
    "rgba colour": (set_field("class_colors", [[0, 0, 0, 0]] * 4), "field 'class_colors'"),
    "metrics list": (set_field("metrics", []), "field 'metrics' must be"),
    "newer format": (
        set_field("format_version", FORMAT_VERSION + 1),
        f"written by a newer bandfusion (format {FORMAT_VERSION + 1}); upgrade",
    ),
    "format string": (set_field("format_version", "1"), "field 'format_version'"),
    "format zero": (set_field("format_version", 0), "invalid format_version"),
    "short names": (set_field("class_names", ["a", "b", "c"]), "4 class_ids but 3 class_names"),
    "short colours": (set_field("class_colors", [[0, 0, 0]] * 5), "5 class_colors"),
    "no classes": (set_field("class_ids", []), "lists no classes"),
    "duplicate id": (set_field("class_ids", [0, 1, 1, 255]), "class id 1 appears more than once"),
    "id > int32": (set_field("class_ids", [0, 1, 8, 2**31]), "does not fit in int32"),
    "id < int32": (set_field("class_ids", [0, 1, 8, -(2**31) - 1]), "does not fit in int32"),
    "in_bands": (set_arch("in_bands", 5), "takes 5 input bands but lists 4 bands"),
    "an index more than the weights": (
        set_field("indices", ["NDVI"]),
        "takes 4 input bands but lists 4 bands and 1 indices",
    ),
    "unknown index": (set_field("indices", ["EVI"]), "unknown spectral index 'EVI'"),
    "index without its band": (
        lambda doc: doc.update(indices=["NDVI"], band_roles={"nir": "B99"}),
        "no band for role 'nir'",
    ),
    "indices not a list": (set_field("indices", "NDVI"), "field 'indices' must be"),
    "roles not strings": (set_field("band_roles", {"nir": 8}), "field 'band_roles' must be"),
    "n_classes": (set_arch("n_classes", 3), "has 3 outputs but lists 4 classes"),
    "norm name": (set_arch("norm", "group"), "architecture is invalid"),
    "arch key": (drop_arch_key("dropout"), "architecture is invalid"),
    "one more band": (
        add_band_consistently,
        "weights do not match model.json (layer 0 expects 5 input bands, weights have 4)",
    ),
    "one more class": (
        add_class_consistently,
        "weights do not match model.json (layer 2 has 5 outputs, weights have 4)",
    ),
    "hidden width": (set_arch("hidden", [8, 5]), "layer 1 has 5 outputs, weights have 4"),
    "layer norm": (set_arch("norm", "layer"), "unexpected 'norms.0.num_batches_tracked'"),
    "no norm": (set_arch("norm", "none"), "unexpected 'norms.0.bias'"),
    "extra layer": (set_arch("hidden", [8, 4, 4]), "tensor 'convs.3.weight' is missing"),
}


@pytest.mark.parametrize(("edit", "fragment"), JSON_EDITS.values(), ids=JSON_EDITS.keys())
def test_tampered_model_json_is_refused(model_dir: Path, edit: Edit, fragment: str) -> None:
    doc = json.loads((model_dir / "model.json").read_text())
    edit(doc)
    (model_dir / "model.json").write_text(json.dumps(doc))
    assert_refused(model_dir, fragment)


def test_format_1_models_without_indices_still_load(model_dir: Path) -> None:
    doc = json.loads((model_dir / "model.json").read_text())
    for key in ("indices", "band_roles"):
        del doc[key]
    (model_dir / "model.json").write_text(json.dumps({**doc, "format_version": 1}))
    meta = load_model(model_dir).meta
    assert meta.format_version == 1 and meta.indices == [] and meta.inputs == BANDS


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"{oops", "model.json is not valid JSON"),
        (b"\xc3\x28", "model.json is not valid JSON"),
        (b"[" * 100_000, "model.json is not valid JSON"),
        (b"[1, 2]", "model.json must hold a JSON object"),
        (b"{}" + b" " * 1024**2, "over the 1048576-byte limit"),
    ],
    ids=["syntax", "encoding", "deep", "list", "huge"],
)
def test_unreadable_model_json_is_refused(model_dir: Path, content: bytes, fragment: str) -> None:
    (model_dir / "model.json").write_bytes(content)
    assert_refused(model_dir, fragment)


def test_missing_model_json_is_refused(model_dir: Path) -> None:
    (model_dir / "model.json").unlink()
    assert_refused(model_dir, "model.json is missing")


# ---------------------------------------------------------------------------------------------
# refused weights


def set_tensor(name: str, value: torch.Tensor) -> Callable[[dict[str, torch.Tensor]], None]:
    return lambda tensors: tensors.update({name: value})


def drop_tensor(name: str) -> Callable[[dict[str, torch.Tensor]], None]:
    def edit(tensors: dict[str, torch.Tensor]) -> None:
        del tensors[name]

    return edit


def spoil_value(name: str, value: float) -> Callable[[dict[str, torch.Tensor]], None]:
    def spoil(tensors: dict[str, torch.Tensor]) -> None:
        tensors[name] = tensors[name].clone()
        tensors[name].view(-1)[0] = value

    return spoil


WEIGHT_EDITS = {
    "missing": (drop_tensor("convs.0.bias"), "tensor 'convs.0.bias' is missing"),
    "unexpected": (set_tensor("extra", torch.zeros(2)), "unexpected 'extra'"),
    "bands": (set_tensor("convs.0.weight", torch.zeros(8, 3, 1, 1)), "layer 0 expects 4 input"),
    "band_mean": (set_tensor("band_mean", torch.zeros(3)), "band_mean has 3 entries"),
    "kernel": (
        set_tensor("convs.0.weight", torch.zeros(8, 4, 3, 3)),
        "tensor 'convs.0.weight' has shape (8, 4, 3, 3), the architecture needs (8, 4, 1, 1)",
    ),
    "bias shape": (set_tensor("convs.1.bias", torch.zeros(5)), "tensor 'convs.1.bias' has shape"),
    "int": (
        set_tensor("norms.0.num_batches_tracked", torch.tensor(1)),
        "'norms.0.num_batches_tracked' is torch.int64, not torch.float32",
    ),
    "double": (set_tensor("convs.0.bias", torch.zeros(8, dtype=torch.float64)), "float64"),
    "nan": (spoil_value("convs.1.weight", float("nan")), "'convs.1.weight' holds NaN"),
    "inf": (spoil_value("norms.1.running_var", float("inf")), "infinite"),
    "zero std": (spoil_value("band_std", 0.0), "'band_std' holds values <= 0"),
}


@pytest.mark.parametrize(("edit", "fragment"), WEIGHT_EDITS.values(), ids=WEIGHT_EDITS.keys())
def test_tampered_weights_are_refused(
    model_dir: Path, edit: Callable[[dict[str, torch.Tensor]], None], fragment: str
) -> None:
    tensors = load_file(model_dir / "weights.safetensors")
    edit(tensors)
    save_file(tensors, model_dir / "weights.safetensors")
    assert_refused(model_dir, fragment)


@pytest.mark.parametrize(
    "spoil",
    [lambda data: b"not safetensors at all", lambda data: data[:-7], lambda data: b""],
    ids=["garbage", "truncated", "empty"],
)
def test_corrupt_weights_are_refused(model_dir: Path, spoil: Callable[[bytes], bytes]) -> None:
    file = model_dir / "weights.safetensors"
    file.write_bytes(spoil(file.read_bytes()))
    assert_refused(model_dir, "weights.safetensors is corrupt")


def test_missing_weights_are_refused(model_dir: Path) -> None:
    (model_dir / "weights.safetensors").unlink()
    assert_refused(model_dir, "weights.safetensors is missing")


def test_oversized_weights_are_refused_unread(model_dir: Path) -> None:
    with (model_dir / "weights.safetensors").open("r+b") as f:
        f.truncate(2 * 1024**3 + 1)  # sparse: no disk space used
    assert_refused(model_dir, "over the 2147483648-byte limit")


def test_weights_whose_header_length_starts_with_0x80_are_not_taken_for_a_pickle(
    model_dir: Path,
) -> None:
    """safetensors opens with its header length; a low byte of 0x80 matches pickle's magic."""
    weights = model_dir / "weights.safetensors"
    tensors = load_file(weights)
    lead_bytes = set()
    for pad in range(256):
        save_file(tensors, weights, metadata={"pad": "x" * pad})
        lead_bytes.add(weights.read_bytes()[0])
        load_model(model_dir)
    assert 0x80 in lead_bytes


def test_an_enormous_architecture_is_refused_before_it_is_built(tmp_path: Path, saved_model):
    """Hidden widths of 2**31: torch allocated (and initialised) 34 GB before the check."""
    model = copy_model(saved_model, tmp_path)
    doc = json.loads((model / "model.json").read_text())
    doc["architecture"]["hidden"] = [2**31, 8]
    (model / "model.json").write_text(json.dumps(doc))
    with pytest.raises(
        ModelFileError, match=r"architecture has .* parameters, the weights hold .* values"
    ):
        load_model(model)


def test_a_clamped_net_round_trips_with_an_open_side(tmp_path: Path) -> None:
    model = make_model(clamped=True)
    model.net.set_clamp([-1.0, -2.0, -torch.inf, -1.5], [1.0, torch.inf, 2.0, 1.5])
    model.meta.architecture = model.net.config()
    loaded = load_model(save_model(model, tmp_path / "model"))
    assert loaded.net.clamped and torch.equal(loaded.net.band_high, model.net.band_high)
    assert torch.equal(logits(loaded.net), logits(model.net))


def test_a_clamp_whose_low_is_above_its_high_is_refused(tmp_path: Path) -> None:
    model = make_model(clamped=True)
    path = save_model(model, tmp_path / "model")
    tensors = load_file(path / "weights.safetensors")
    tensors["band_low"] = torch.full((4,), 3.0)
    tensors["band_high"] = torch.full((4,), 2.0)
    save_file(tensors, path / "weights.safetensors")
    assert_refused(path, "'band_low' is above 'band_high'")

"""Fuzzing load_model with mutated model directories: random bytes as either file, random and
mutated model.json, mutated safetensors headers and bytes. Each gives a usable model or one
ModelFileError line naming the directory, and nothing is ever unpickled."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import torch
from bandfusion.errors import ModelFileError
from bandfusion.models.checkpoint import load_model
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzzing import case_dir, check_ours, fuzz
from tests.helpers import copy_model

PWNED = Path(tempfile.gettempdir()) / f"bandfusion-fuzz-pwned-{os.getpid()}"


class _Exploit:
    """Unpickling this creates a file: proof that loading never unpickles."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.makedirs, (self.marker,))


def _no_unpickling(*args: object, **kwargs: object) -> None:
    raise AssertionError("load_model unpickled something")


def load_survives(path: Path) -> None:
    """load_model(path): a usable model or one ModelFileError line naming `path`; never a
    call into pickle or torch.load."""
    guards = [
        mock.patch.object(pickle, name, _no_unpickling) for name in ("load", "loads", "Unpickler")
    ]
    with contextlib.ExitStack() as stack:
        for guard in guards:
            stack.enter_context(guard)
        stack.enter_context(mock.patch.object(torch, "load", _no_unpickling))
        try:
            model = load_model(path)
        except Exception as exc:
            check_ours(exc, path)
            assert isinstance(exc, ModelFileError)
            return
    event("loaded")
    assert model.net.in_bands == len(model.meta.inputs)
    assert model.net.n_classes == len(model.meta.class_ids)


@fuzz(40)
@given(
    blob=st.binary(max_size=4096)
    | st.binary(max_size=64).map(lambda tail: pickle.dumps(_Exploit(str(PWNED))) + tail),
    where=st.sampled_from(["weights", "metadata", "path"]),
)
def test_random_bytes_as_model_files(scratch: Path, saved_model: Path, blob: bytes, where: str):
    with case_dir(scratch) as directory:
        model = copy_model(saved_model, directory)
        if where == "path":  # the model path is a file, not a directory
            shutil.rmtree(model)
            model.write_bytes(blob)
        else:
            name = "weights.safetensors" if where == "weights" else "model.json"
            (model / name).write_bytes(blob)
        load_survives(model)
        assert not PWNED.exists()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from([2**31, 2**63, -(2**31) - 1, 10**30, -1, 0, 1, 1.5, "F32", "b1"]),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)

META_KEYS = [
    "format_version",
    "bands",
    "class_ids",
    "class_names",
    "class_colors",
    "architecture",
    "training",
    "metrics",
    "package_version",
    "indices",
    "band_roles",
]


@fuzz(60)
@given(
    doc=json_values
    | st.dictionaries(st.sampled_from(META_KEYS), json_values, max_size=len(META_KEYS)),
)
def test_random_model_json(scratch: Path, saved_model: Path, doc: object):
    with case_dir(scratch) as directory:
        model = copy_model(saved_model, directory)
        (model / "model.json").write_text(json.dumps(doc))  # NaN and Infinity included
        load_survives(model)


def json_paths(value: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indices) to a node of a JSON value, the root excluded."""
    paths = []
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, child in children:
        paths.append((*prefix, key))
        paths.extend(json_paths(child, (*prefix, key)))
    return paths


def mutate_json(doc: Any, data: st.DataObject, edits: int) -> Any:
    """`doc` with `edits` nodes deleted, replaced by odd JSON, or duplicated."""
    doc = json.loads(json.dumps(doc))
    for _ in range(edits):
        paths = json_paths(doc)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["delete", "replace", "replace", "duplicate"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = data.draw(json_values)
        elif isinstance(parent, list):
            parent.append(parent[path[-1]])
    return doc


@fuzz(80)
@given(data=st.data(), edits=st.integers(1, 4))
def test_mutated_model_json(scratch: Path, saved_model: Path, data: st.DataObject, edits: int):
    with case_dir(scratch) as directory:
        model = copy_model(saved_model, directory)
        doc = json.loads((model / "model.json").read_text())
        (model / "model.json").write_text(json.dumps(mutate_json(doc, data, edits)))
        load_survives(model)


def safetensors_parts(blob: bytes) -> tuple[dict[str, Any], bytes]:
    length = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + length]), blob[8 + length :]


@fuzz(80)
@given(
    data=st.data(),
    edits=st.integers(1, 3),
    length_delta=st.sampled_from([0, 0, 0, 1, -1, 8, 2**40]),
    body_cut=st.none() | st.integers(0, 2000),
)
def test_mutated_safetensors_headers(
    scratch: Path,
    saved_model: Path,
    data: st.DataObject,
    edits: int,
    length_delta: int,
    body_cut: int | None,
):
    with case_dir(scratch) as directory:
        model = copy_model(saved_model, directory)
        weights = model / "weights.safetensors"
        header, body = safetensors_parts(weights.read_bytes())
        text = json.dumps(mutate_json(header, data, edits)).encode()
        length = (len(text) + length_delta) % 2**64
        weights.write_bytes(length.to_bytes(8, "little") + text + body[:body_cut])
        load_survives(model)


@fuzz(60)
@given(
    flips=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8
    ),
    cut=st.none() | st.floats(0, 1, exclude_max=True),
)
def test_mutated_safetensors_bytes(
    scratch: Path, saved_model: Path, flips: list[tuple[float, int]], cut: float | None
):
    with case_dir(scratch) as directory:
        model = copy_model(saved_model, directory)
        weights = model / "weights.safetensors"
        blob = bytearray(weights.read_bytes())
        for where, value in flips:
            blob[int(where * len(blob))] = value
        weights.write_bytes(bytes(blob[: None if cut is None else int(cut * len(blob))]))
        load_survives(model)

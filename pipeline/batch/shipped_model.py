"""The model as a batch ships it to workers: its two files' bytes, checked by digest.

Workers share no file system with the client, so the client reads the model directory (a local
folder, an `s3://` prefix or an `https://` URL) once and registers its bytes (`model.json` and
`weights.safetensors`: data, never a pickled network) as a worker plugin: the scheduler hands
it to each worker once, and to every worker that joins or is restarted later, so a dying
worker loses nothing its replacement needs. A worker checks the bytes against the digest its
tasks carry and loads them with the one safe loader, `load_model`, from a folder of its own
temporary space.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bandfusion.batch.store import PathLike, read_bytes
from bandfusion.errors import ModelFileError, SceneError, first_line
from bandfusion.io.remote import is_http, is_remote
from bandfusion.io.remote_bytes import read_object
from bandfusion.models.checkpoint import (
    MAX_METADATA_BYTES,
    MAX_WEIGHTS_BYTES,
    METADATA_FILE,
    WEIGHTS_FILE,
    TrainedModel,
    load_model,
)
from distributed import WorkerPlugin, get_worker

ModelFiles = tuple[bytes, bytes]
"""A model's (model.json, weights.safetensors) bytes."""


@dataclass(frozen=True)
class ModelRef:
    """What a task carries besides the shipped bytes: the model's name as the user gave it
    (for messages and the manifest) and the digest its bytes must have."""

    path: str
    sha256: str


class ShippedModel(WorkerPlugin):
    """A model's bytes, kept by every worker of the cluster under `plugin_name(ref)`."""

    def __init__(self, ref: ModelRef, files: ModelFiles) -> None:
        self.ref, self.files = ref, files

    @property
    def name(self) -> str:
        return plugin_name(self.ref)


def plugin_name(ref: ModelRef) -> str:
    return f"bandfusion-model-{ref.sha256}"


def shipped_files(ref: ModelRef) -> ModelFiles:
    """On a worker: the bytes of the model `ref`, as the batch's client registered them."""
    plugin = get_worker().plugins.get(plugin_name(ref))
    if not isinstance(plugin, ShippedModel):
        raise ModelFileError(f"{ref.path}: the model was not shipped to this worker")
    return plugin.files


def model_digest(files: ModelFiles) -> str:
    """sha256 over the model's files, so a model retrained in the same place is noticed."""
    digest = hashlib.sha256()
    for name, data in zip((METADATA_FILE, WEIGHTS_FILE), files, strict=True):
        digest.update(f"{name}:{hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


def read_model(where: PathLike) -> tuple[ModelRef, ModelFiles, TrainedModel]:
    """The model directory `where` (a folder, or a prefix in object storage): its reference,
    its bytes, and the model loaded from those very bytes (so what was checked is what ships).
    Raises ModelFileError naming `where` for anything missing, too large or invalid."""
    remote = is_remote(os.fspath(where))
    name = os.fspath(where).rstrip("/") if remote else str(Path(where).absolute())
    if not remote:
        load_model(Path(where))  # its own messages: not a directory, a pickle, ...
    try:
        files = (
            _model_file(f"{name}/{METADATA_FILE}", MAX_METADATA_BYTES),
            _model_file(f"{name}/{WEIGHTS_FILE}", MAX_WEIGHTS_BYTES),
        )
    except (OSError, SceneError) as exc:
        raise ModelFileError(f"{name}: cannot read model ({first_line(exc)})") from exc
    ref = ModelRef(name, model_digest(files))
    return ref, files, load_shipped(ref, files)


def _model_file(where: str, limit: int) -> bytes:
    """One file of a model directory: on disk or in object storage (boto3), or over https."""
    if is_http(where):
        return read_object(where, limit, kind="a model file")
    return read_bytes(where, limit)


def load_shipped(ref: ModelRef, files: ModelFiles) -> TrainedModel:
    """The model in `files`, once they match `ref`'s digest, through `load_model`."""
    if model_digest(files) != ref.sha256:
        raise ModelFileError(f"{ref.path}: the model's bytes do not match the batch's digest")
    folder = tempfile.mkdtemp(prefix="bandfusion-model-")
    try:
        for file, data in zip((METADATA_FILE, WEIGHTS_FILE), files, strict=True):
            Path(folder, file).write_bytes(data)
        return load_model(folder)
    except ModelFileError as exc:
        raise ModelFileError(str(exc).replace(folder, ref.path)) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)

"""Saving and loading trained models as a directory of safetensors weights plus JSON metadata.

A model directory holds `weights.safetensors` (every state_dict tensor, float32) and `model.json`
(band and class lists, architecture, training record). Nothing is ever unpickled: a model file
is data, so opening one from an untrusted source cannot run code. Loading checks everything and
reports any problem as a one-line ModelFileError naming the path.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from bandfusion.atomic import replacing, sweep_temporaries
from bandfusion.errors import ModelFileError, OutputError
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.metadata import (
    METADATA_FILE,
    InvalidModel,
    ModelMetadata,
    build_net,
    check_parameter_count,
    metadata_from_json,
    metadata_text,
)
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

WEIGHTS_FILE = "weights.safetensors"
MAX_METADATA_BYTES = 1024**2
MAX_WEIGHTS_BYTES = 2 * 1024**3

_MODEL_FILES = frozenset({WEIGHTS_FILE, METADATA_FILE})
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol >= 2; zip, as torch.save writes
_BAND_BUFFERS = ("band_mean", "band_std", "band_low", "band_high")
_CLAMP_BUFFERS = ("band_low", "band_high")  # a clamped net's range: ±inf leaves a side open


@dataclass
class TrainedModel:
    """A network together with the metadata that says how to feed it and read its logits."""

    net: SpectralFusionNet
    meta: ModelMetadata


# ---------------------------------------------------------------------------------------------
# weights


def _shape_problem(name: str, want: torch.Size, got: torch.Size) -> str:
    """Why tensor `name` of shape `got` cannot stand where the architecture has `want`."""
    if name in _BAND_BUFFERS:
        return f"{name} has {got.numel()} entries, the architecture takes {want.numel()} bands"
    parts = name.split(".")
    if parts[0] == "convs" and parts[-1] == "weight" and len(got) == 4:
        layer = int(parts[1])
        if want[1] != got[1]:
            unit = "bands" if layer == 0 else "channels"
            return f"layer {layer} expects {want[1]} input {unit}, weights have {got[1]}"
        if want[0] != got[0]:
            return f"layer {layer} has {want[0]} outputs, weights have {got[0]}"
    return f"tensor '{name}' has shape {tuple(got)}, the architecture needs {tuple(want)}"


def _check_tensors(tensors: dict[str, torch.Tensor], net: SpectralFusionNet) -> None:
    """The tensors are exactly those `net` holds, in its shapes, float32 and finite (a clamp's
    range may be open: ±inf, low <= high)."""
    expected = net.state_dict()
    # Layers first: a wrong band count then reads "layer 0 expects 13 input bands, ...".
    for name in sorted(expected, key=lambda key: key in _BAND_BUFFERS):
        want = expected[name]
        if name not in tensors:
            raise InvalidModel(f"weights do not match {METADATA_FILE} (tensor '{name}' is missing)")
        if tensors[name].shape != want.shape:
            problem = _shape_problem(name, want.shape, tensors[name].shape)
            raise InvalidModel(f"weights do not match {METADATA_FILE} ({problem})")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise InvalidModel(f"weights do not match {METADATA_FILE} (unexpected '{unexpected[0]}')")
    for name, tensor in tensors.items():
        if tensor.dtype != torch.float32:
            raise InvalidModel(f"weight tensor '{name}' is {tensor.dtype}, not torch.float32")
        numbers = ~torch.isnan(tensor) if name in _CLAMP_BUFFERS else torch.isfinite(tensor)
        if not bool(numbers.all()):
            raise InvalidModel(f"weight tensor '{name}' holds NaN or infinite values")
    if bool((tensors["band_std"] <= 0).any()):
        raise InvalidModel("weight tensor 'band_std' holds values <= 0")
    if "band_low" in tensors and bool((tensors["band_low"] > tensors["band_high"]).any()):
        raise InvalidModel("weight tensor 'band_low' is above 'band_high'")


def _weights_of(net: SpectralFusionNet) -> dict[str, torch.Tensor]:
    """Every state_dict tensor, buffers included, as contiguous float32 on the CPU.

    Integer bookkeeping (BatchNorm's num_batches_tracked) is stored as float32 too; loading
    casts it back to the dtype the freshly built network holds.
    """
    return {
        name: tensor.detach().to("cpu", torch.float32).contiguous()
        for name, tensor in net.state_dict().items()
    }


# ---------------------------------------------------------------------------------------------
# save


def _serialise(model: TrainedModel) -> tuple[bytes, bytes]:
    """(model.json, weights.safetensors) contents, after the checks `load_model` makes."""
    text, net = metadata_text(model.meta)
    if net.config() != model.net.config():
        raise InvalidModel("metadata architecture differs from the network's config()")
    weights = _weights_of(model.net)
    _check_tensors(weights, net)
    return text.encode("utf-8"), safetensors_bytes(weights, metadata={"format": "pt"})


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def check_model_path(path: str | Path) -> Path:
    """OutputError unless a model can be saved at `path`: its parent exists, and `path` is
    absent, an empty directory, or a model directory. Callers check before long work."""
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"{path}: parent directory {path.parent} does not exist")
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OutputError(f"{path}: exists and is not a model directory; not replacing it")
    if path.is_dir() and not {p.name for p in path.iterdir()} <= _MODEL_FILES:
        raise OutputError(f"{path}: directory holds other files than a model; not replacing it")
    return path


def save_model(model: TrainedModel, path: str | Path) -> Path:
    """Write `model` as the directory `path`, atomically; returns `path`.

    The files are written into a temporary sibling directory that is then renamed into place
    (see `bandfusion.atomic`), so `path` is never half-written; what an earlier, killed save
    left beside it is removed first. An existing model directory at `path` is replaced.
    Raises ValueError for an inconsistent model, OutputError when `path` cannot be written.
    """
    path = Path(path)
    try:
        metadata, weights = _serialise(model)
    except InvalidModel as exc:
        raise ValueError(f"{path}: cannot save model: {exc}") from None
    check_model_path(path)
    try:
        sweep_temporaries([path])
        with replacing(path) as staged:
            staged.mkdir()  # not tempfile.mkdtemp: its 0700 mode would stick to the saved model
            _write_synced(staged / WEIGHTS_FILE, weights)
            _write_synced(staged / METADATA_FILE, metadata)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write model ({exc.strerror or exc})") from exc
    return path


# ---------------------------------------------------------------------------------------------
# load


def _looks_pickled(file: Path) -> bool:
    """Whether `file` starts like a pickle or a torch.save zip; only its first bytes are read."""
    with file.open("rb") as f:
        return f.read(4).startswith(_PICKLE_MAGIC)


def _check_is_model_dir(path: Path) -> None:
    """InvalidModel unless `path` is a directory; pickle and torch.save files are named as such."""
    if not path.exists():
        raise InvalidModel("no such model directory")
    if path.is_dir():
        return
    if path.is_file() and _looks_pickled(path):
        raise InvalidModel(
            "is a pickle/torch.save checkpoint; refused because bandfusion never unpickles "
            "(a bandfusion model is a directory with model.json and weights.safetensors)"
        )
    raise InvalidModel(
        "not a bandfusion model directory (expected model.json + weights.safetensors)"
    )


def _check_size(file: Path, limit: int) -> None:
    if not file.is_file():
        raise InvalidModel(f"{file.name} is missing")
    size = file.stat().st_size
    if size > limit:
        raise InvalidModel(f"{file.name} is {size} bytes, over the {limit}-byte limit; refused")


def _read_metadata(path: Path) -> ModelMetadata:
    file = path / METADATA_FILE
    _check_size(file, MAX_METADATA_BYTES)
    try:
        doc = json.loads(file.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise InvalidModel(f"{METADATA_FILE} is not valid JSON ({exc})") from None
    return metadata_from_json(doc)


def _looks_like_safetensors(file: Path) -> bool:
    """A safetensors file opens with its header's length (u64, little-endian), then '{'.

    Checked before the pickle test: that length's first byte can itself be 0x80.
    """
    with file.open("rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    header_length = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 8 + header_length <= file.stat().st_size


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    file = path / WEIGHTS_FILE
    _check_size(file, MAX_WEIGHTS_BYTES)
    if not _looks_like_safetensors(file) and _looks_pickled(file):
        raise InvalidModel(
            f"{WEIGHTS_FILE} is a pickle/torch.save file; bandfusion never unpickles"
        )
    try:
        return load_file(file)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise InvalidModel(f"{WEIGHTS_FILE} is corrupt ({exc})") from None


def load_model(path: str | Path) -> TrainedModel:
    """Read and check the model directory `path`; the network comes back in eval mode.

    Raises ModelFileError, naming the path and the problem, for anything missing, malformed,
    inconsistent or unsafe (pickle files are refused without being opened as pickle).
    """
    path = Path(path)
    try:
        _check_is_model_dir(path)
        meta = _read_metadata(path)
        weights = _read_weights(path)
        check_parameter_count(meta.architecture, sum(t.numel() for t in weights.values()))
        net = build_net(meta)
        _check_tensors(weights, net)
    except InvalidModel as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read model ({exc.strerror or exc})") from exc
    net.load_state_dict(weights)
    return TrainedModel(net=net.eval(), meta=meta)

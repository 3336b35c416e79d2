"""Saving and loading trained models as a directory of safetensors weights plus JSON metadata.

A model directory holds `weights.safetensors` (every state_dict tensor, float32) and `model.json`
(band and class lists, architecture, training record). Nothing is ever unpickled: a model file
is data, so opening one from an untrusted source cannot run code. Loading checks everything and
reports any problem as a one-line ModelFileError naming the path.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
from bandfusion import __version__
from bandfusion.errors import ModelFileError, OutputError
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.indices import resolve_roles
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes

FORMAT_VERSION = 2
"""2 added derived spectral indices (`indices`, `band_roles`); version 1 files still load."""
WEIGHTS_FILE = "weights.safetensors"
METADATA_FILE = "model.json"
MAX_METADATA_BYTES = 1024**2
MAX_WEIGHTS_BYTES = 2 * 1024**3

_MODEL_FILES = frozenset({WEIGHTS_FILE, METADATA_FILE})
_PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")  # pickle protocol >= 2; zip, as torch.save writes
_INT32 = range(-(2**31), 2**31)
_BAND_BUFFERS = ("band_mean", "band_std")


@dataclass
class ModelMetadata:
    """Everything about a model except its weights; stored as model.json.

    Logit k of the network belongs to class `class_ids[k]`, the label value used in training.
    The network's inputs are `bands` (what a scene must provide), then `indices`: spectral
    indices prediction recomputes from the bands that `band_roles` names ({"nir": "B8", ...}).
    """

    bands: list[str]
    class_ids: list[int]
    class_names: list[str]
    class_colors: list[tuple[int, int, int]]
    architecture: dict[str, Any]
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    indices: list[str] = field(default_factory=list)
    band_roles: dict[str, str] = field(default_factory=dict)
    package_version: str = __version__
    format_version: int = FORMAT_VERSION

    @property
    def inputs(self) -> list[str]:
        """The network's input channels in order: the bands, then the derived indices."""
        return [*self.bands, *self.indices]


@dataclass
class TrainedModel:
    """A network together with the metadata that says how to feed it and read its logits."""

    net: SpectralFusionNet
    meta: ModelMetadata


class _Invalid(Exception):
    """A problem with a model's content; save and load add the path and pick the error type."""


# ---------------------------------------------------------------------------------------------
# model.json: schema and consistency


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_dict(value: object) -> bool:
    return isinstance(value, dict)


def _is_rgb(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(_is_int(v) and 0 <= v <= 255 for v in value)
    )


def _list_of(is_item: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: isinstance(value, list) and all(is_item(v) for v in value)


def _field(doc: dict[str, Any], key: str, is_valid: Callable[[object], bool], what: str) -> Any:
    """`doc[key]`, or _Invalid when it is missing or `is_valid` rejects it."""
    if key not in doc:
        raise _Invalid(f"{METADATA_FILE} lacks the field '{key}'")
    value = doc[key]
    if not is_valid(value):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise _Invalid(f"{METADATA_FILE} field '{key}' must be {what}, got {shown}")
    return value


def _metadata_from_json(doc: object) -> ModelMetadata:
    """Check the types of a parsed model.json (format version first) and build the metadata."""
    if not isinstance(doc, dict):
        raise _Invalid(f"{METADATA_FILE} must hold a JSON object")
    version = _field(doc, "format_version", _is_int, "an integer")
    if version > FORMAT_VERSION:
        raise _Invalid(f"written by a newer bandfusion (format {version}); upgrade bandfusion")
    if version < 1:
        raise _Invalid(f"{METADATA_FILE} has an invalid format_version {version}")
    colors = _field(doc, "class_colors", _list_of(_is_rgb), "a list of [r, g, b] 0..255 triples")
    return ModelMetadata(
        bands=_field(doc, "bands", _list_of(_is_str), "a list of strings"),
        class_ids=_field(doc, "class_ids", _list_of(_is_int), "a list of integers"),
        class_names=_field(doc, "class_names", _list_of(_is_str), "a list of strings"),
        class_colors=[(r, g, b) for r, g, b in colors],
        architecture=_field(doc, "architecture", _is_dict, "an object"),
        training=_field(doc, "training", _is_dict, "an object"),
        metrics=_field(doc, "metrics", _is_dict, "an object"),
        indices=_optional_field(doc, "indices", _list_of(_is_str), "a list of strings", []),
        band_roles=_optional_field(doc, "band_roles", _is_str_dict, "an object of strings", {}),
        package_version=_field(doc, "package_version", _is_str, "a string"),
        format_version=version,
    )


def _optional_field(
    doc: dict[str, Any], key: str, is_valid: Callable[[object], bool], what: str, default: Any
) -> Any:
    """`doc[key]` checked as `_field` does, or `default` when absent (fields added in format 2)."""
    return _field(doc, key, is_valid, what) if key in doc else default


def _is_str_dict(value: object) -> bool:
    return isinstance(value, dict) and all(_is_str(v) for v in value.values())


def _check_indices(meta: ModelMetadata) -> None:
    """Every derived index is known and its roles name bands the model takes."""
    try:
        resolve_roles(meta.indices, meta.bands, meta.band_roles)
    except ValueError as exc:
        raise _Invalid(f"{METADATA_FILE} indices: {exc}") from None


def _check_classes(meta: ModelMetadata) -> None:
    """The class lists agree in length and hold distinct int32 ids."""
    n = len(meta.class_ids)
    if n == 0:
        raise _Invalid(f"{METADATA_FILE} lists no classes")
    for name, values in (("class_names", meta.class_names), ("class_colors", meta.class_colors)):
        if len(values) != n:
            raise _Invalid(f"{METADATA_FILE} lists {n} class_ids but {len(values)} {name}")
    outside = [i for i in meta.class_ids if i not in _INT32]
    if outside:
        raise _Invalid(f"class id {outside[0]} does not fit in int32")
    repeated = [i for i, count in Counter(meta.class_ids).items() if count > 1]
    if repeated:
        raise _Invalid(f"class id {repeated[0]} appears more than once in class_ids")


def _build_net(meta: ModelMetadata) -> SpectralFusionNet:
    """A fresh network of the metadata's architecture, after checking that it fits the lists."""
    _check_classes(meta)
    _check_indices(meta)
    try:
        net = SpectralFusionNet.from_config(meta.architecture)
    except ValueError as exc:
        raise _Invalid(f"{METADATA_FILE} architecture is invalid: {exc}") from None
    if net.in_bands != len(meta.inputs):
        derived = f" and {len(meta.indices)} indices" if meta.indices else ""
        raise _Invalid(
            f"{METADATA_FILE} architecture takes {net.in_bands} input bands "
            f"but lists {len(meta.bands)} bands{derived}"
        )
    if net.n_classes != len(meta.class_ids):
        raise _Invalid(
            f"{METADATA_FILE} architecture has {net.n_classes} outputs "
            f"but lists {len(meta.class_ids)} classes"
        )
    return net


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
    """The tensors are exactly those `net` holds, in its shapes, float32 and finite."""
    expected = net.state_dict()
    # Layers first: a wrong band count then reads "layer 0 expects 13 input bands, ...".
    for name in sorted(expected, key=lambda key: key in _BAND_BUFFERS):
        want = expected[name]
        if name not in tensors:
            raise _Invalid(f"weights do not match {METADATA_FILE} (tensor '{name}' is missing)")
        if tensors[name].shape != want.shape:
            problem = _shape_problem(name, want.shape, tensors[name].shape)
            raise _Invalid(f"weights do not match {METADATA_FILE} ({problem})")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise _Invalid(f"weights do not match {METADATA_FILE} (unexpected '{unexpected[0]}')")
    for name, tensor in tensors.items():
        if tensor.dtype != torch.float32:
            raise _Invalid(f"weight tensor '{name}' is {tensor.dtype}, not torch.float32")
        if not bool(torch.isfinite(tensor).all()):
            raise _Invalid(f"weight tensor '{name}' holds NaN or infinite values")
    if bool((tensors["band_std"] <= 0).any()):
        raise _Invalid("weight tensor 'band_std' holds values <= 0")


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


def _plain(value: object) -> object:
    """`value` as plain JSON data: tuples → lists, numpy/torch numbers → Python, NaN/inf → null.

    Keys that are not strings become their JSON text (1 → "1"), as json.dumps would do.
    """
    if isinstance(value, dict):
        return {
            key if isinstance(key, str) else json.dumps(_plain(key)): _plain(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _plain(tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _is_short(value: object) -> bool:
    """A scalar, or a list of scalars or of lists of scalars: written on one line."""
    if isinstance(value, list):
        return all(
            not isinstance(item, dict | list)
            or (isinstance(item, list) and not any(isinstance(x, dict | list) for x in item))
            for item in value
        )
    return not isinstance(value, dict)


def _json_text(value: object, indent: str = "") -> str:
    """Strict JSON, one object key per line, short lists (band names, colours) on one line."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {_json_text(v, inner)}" for k, v in value.items()]
    elif isinstance(value, list) and not _is_short(value):
        items = [inner + _json_text(v, inner) for v in value]
    else:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    brackets = "{}" if isinstance(value, dict) else "[]"
    return brackets[0] + "\n" + ",\n".join(items) + "\n" + indent + brackets[1]


def _serialise(model: TrainedModel) -> tuple[bytes, bytes]:
    """(model.json, weights.safetensors) contents, after the checks `load_model` makes."""
    try:
        doc = _plain(asdict(model.meta))
        text = _json_text(doc) + "\n"
    except (TypeError, ValueError) as exc:
        raise _Invalid(f"metadata is not JSON-serialisable: {exc}") from None
    net = _build_net(_metadata_from_json(doc))
    if net.config() != model.net.config():
        raise _Invalid("metadata architecture differs from the network's config()")
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


def _sibling(path: Path, purpose: str) -> Path:
    """A fresh hidden name next to `path`, on the same file system so renames are atomic."""
    return path.with_name(f".{path.name}.{purpose}-{uuid.uuid4().hex}")


def _move_into_place(staged: Path, path: Path) -> None:
    """Rename `staged` to `path`; a previous model there is set aside, then deleted."""
    if not path.exists():
        staged.replace(path)
        return
    aside = _sibling(path, "old")
    path.replace(aside)
    try:
        staged.replace(path)
    except OSError:
        aside.replace(path)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def save_model(model: TrainedModel, path: str | Path) -> Path:
    """Write `model` as the directory `path`, atomically; returns `path`.

    The files are written into a temporary sibling directory that is then renamed into place,
    so `path` is never half-written. An existing model directory at `path` is replaced.
    Raises ValueError for an inconsistent model, OutputError when `path` cannot be written.
    """
    path = Path(path)
    try:
        metadata, weights = _serialise(model)
    except _Invalid as exc:
        raise ValueError(f"{path}: cannot save model: {exc}") from None
    check_model_path(path)
    staged = _sibling(path, "tmp")
    try:
        staged.mkdir()  # not tempfile.mkdtemp: its 0700 mode would stick to the saved model
        _write_synced(staged / WEIGHTS_FILE, weights)
        _write_synced(staged / METADATA_FILE, metadata)
        _move_into_place(staged, path)
    except OSError as exc:
        shutil.rmtree(staged, ignore_errors=True)
        raise OutputError(f"{path}: cannot write model ({exc.strerror or exc})") from exc
    return path


# ---------------------------------------------------------------------------------------------
# load


def _looks_pickled(file: Path) -> bool:
    """Whether `file` starts like a pickle or a torch.save zip; only its first bytes are read."""
    with file.open("rb") as f:
        return f.read(4).startswith(_PICKLE_MAGIC)


def _check_is_model_dir(path: Path) -> None:
    """_Invalid unless `path` is a directory; pickle and torch.save files are named as such."""
    if not path.exists():
        raise _Invalid("no such model directory")
    if path.is_dir():
        return
    if path.is_file() and _looks_pickled(path):
        raise _Invalid(
            "is a pickle/torch.save checkpoint; refused because bandfusion never unpickles "
            "(a bandfusion model is a directory with model.json and weights.safetensors)"
        )
    raise _Invalid("not a bandfusion model directory (expected model.json + weights.safetensors)")


def _check_size(file: Path, limit: int) -> None:
    if not file.is_file():
        raise _Invalid(f"{file.name} is missing")
    size = file.stat().st_size
    if size > limit:
        raise _Invalid(f"{file.name} is {size} bytes, over the {limit}-byte limit; refused")


def _read_metadata(path: Path) -> ModelMetadata:
    file = path / METADATA_FILE
    _check_size(file, MAX_METADATA_BYTES)
    try:
        doc = json.loads(file.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise _Invalid(f"{METADATA_FILE} is not valid JSON ({exc})") from None
    return _metadata_from_json(doc)


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


def _check_weights_can_hold(architecture: dict[str, Any], weights: dict[str, torch.Tensor]) -> None:
    """_Invalid when the weights hold fewer values than the architecture has parameters.

    Checked before the network is built: hidden widths edited to 2**31 would otherwise have
    torch allocate and initialise terabytes. Malformed widths are left to `from_config`.
    """
    hidden = architecture.get("hidden")
    hidden_widths = hidden if isinstance(hidden, list) else []
    widths = [architecture.get("in_bands"), *hidden_widths, architecture.get("n_classes")]
    if not all(_is_int(w) and w >= 1 for w in widths):
        return
    parameters = sum((c_in + 1) * c_out for c_in, c_out in pairwise(widths))
    held = sum(tensor.numel() for tensor in weights.values())
    if parameters > held:
        raise _Invalid(
            f"weights do not match {METADATA_FILE} (its architecture has {parameters:,} "
            f"parameters, the weights hold {held:,} values)"
        )


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    file = path / WEIGHTS_FILE
    _check_size(file, MAX_WEIGHTS_BYTES)
    if not _looks_like_safetensors(file) and _looks_pickled(file):
        raise _Invalid(f"{WEIGHTS_FILE} is a pickle/torch.save file; bandfusion never unpickles")
    try:
        return load_file(file)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise _Invalid(f"{WEIGHTS_FILE} is corrupt ({exc})") from None


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
        _check_weights_can_hold(meta.architecture, weights)
        net = _build_net(meta)
        _check_tensors(weights, net)
    except _Invalid as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read model ({exc.strerror or exc})") from exc
    net.load_state_dict(weights)
    return TrainedModel(net=net.eval(), meta=meta)

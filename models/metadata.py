"""model.json: a model's metadata, its schema, its consistency checks and its text.

Everything about a model except its weights: the bands it takes, its classes, the architecture
and the training record. `metadata_from_json` checks a parsed file field by field (format
version first), `build_net` checks that the lists fit the architecture, and `metadata_text`
writes the file with one key a line and short lists on one line, so that it reads and diffs
well. Every problem is an InvalidModel that the caller turns into an error naming the path.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from typing import Any

from bandfusion import __version__
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.indices import resolve_roles

FORMAT_VERSION = 3
"""2 added derived spectral indices (`indices`, `band_roles`); 3 the radiometric domain
(`radiometry`) and canonical band names; version 1 and 2 files still load."""
METADATA_FILE = "model.json"
_INT32 = range(-(2**31), 2**31)


@dataclass
class ModelMetadata:
    """Everything about a model except its weights; stored as model.json.

    Logit k of the network belongs to class `class_ids[k]`, the label value used in training.
    The network's inputs are `bands` (what a scene must provide), then `indices`: spectral
    indices prediction recomputes from the bands that `band_roles` names ({"nir": "B8", ...}).
    `radiometry` is the domain the model was trained in, `{"domain": "dn" | "reflectance" |
    "mixed", "source": "scale/offset from ..."}`; empty (files before format 3): unknown.
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
    radiometry: dict[str, str] = field(default_factory=dict)
    package_version: str = __version__
    format_version: int = FORMAT_VERSION

    @property
    def inputs(self) -> list[str]:
        """The network's input channels in order: the bands, then the derived indices."""
        return [*self.bands, *self.indices]


class InvalidModel(Exception):
    """A problem with a model's content; save and load add the path and pick the error type."""


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
    """`doc[key]`, or InvalidModel when it is missing or `is_valid` rejects it."""
    if key not in doc:
        raise InvalidModel(f"{METADATA_FILE} lacks the field '{key}'")
    value = doc[key]
    if not is_valid(value):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise InvalidModel(f"{METADATA_FILE} field '{key}' must be {what}, got {shown}")
    return value


def metadata_from_json(doc: object) -> ModelMetadata:
    """Check the types of a parsed model.json (format version first) and build the metadata."""
    if not isinstance(doc, dict):
        raise InvalidModel(f"{METADATA_FILE} must hold a JSON object")
    version = _field(doc, "format_version", _is_int, "an integer")
    if version > FORMAT_VERSION:
        raise InvalidModel(f"written by a newer bandfusion (format {version}); upgrade bandfusion")
    if version < 1:
        raise InvalidModel(f"{METADATA_FILE} has an invalid format_version {version}")
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
        radiometry=_optional_field(doc, "radiometry", _is_str_dict, "an object of strings", {}),
        package_version=_field(doc, "package_version", _is_str, "a string"),
        format_version=version,
    )


def _optional_field(
    doc: dict[str, Any], key: str, is_valid: Callable[[object], bool], what: str, default: Any
) -> Any:
    """`doc[key]` checked as `_field` does, or `default` when absent (fields added in format 2
    and 3)."""
    return _field(doc, key, is_valid, what) if key in doc else default


def _is_str_dict(value: object) -> bool:
    return isinstance(value, dict) and all(_is_str(v) for v in value.values())


def _check_indices(meta: ModelMetadata) -> None:
    """Every derived index is known and its roles name bands the model takes."""
    try:
        resolve_roles(meta.indices, meta.bands, meta.band_roles)
    except ValueError as exc:
        raise InvalidModel(f"{METADATA_FILE} indices: {exc}") from None


def _check_classes(meta: ModelMetadata) -> None:
    """The class lists agree in length and hold distinct int32 ids."""
    n = len(meta.class_ids)
    if n == 0:
        raise InvalidModel(f"{METADATA_FILE} lists no classes")
    for name, values in (("class_names", meta.class_names), ("class_colors", meta.class_colors)):
        if len(values) != n:
            raise InvalidModel(f"{METADATA_FILE} lists {n} class_ids but {len(values)} {name}")
    outside = [i for i in meta.class_ids if i not in _INT32]
    if outside:
        raise InvalidModel(f"class id {outside[0]} does not fit in int32")
    repeated = [i for i, count in Counter(meta.class_ids).items() if count > 1]
    if repeated:
        raise InvalidModel(f"class id {repeated[0]} appears more than once in class_ids")


def build_net(meta: ModelMetadata) -> SpectralFusionNet:
    """A fresh network of the metadata's architecture, after checking that it fits the lists."""
    _check_classes(meta)
    _check_indices(meta)
    try:
        net = SpectralFusionNet.from_config(meta.architecture)
    except ValueError as exc:
        raise InvalidModel(f"{METADATA_FILE} architecture is invalid: {exc}") from None
    if net.in_bands != len(meta.inputs):
        derived = f" and {len(meta.indices)} indices" if meta.indices else ""
        raise InvalidModel(
            f"{METADATA_FILE} architecture takes {net.in_bands} input bands "
            f"but lists {len(meta.bands)} bands{derived}"
        )
    if net.n_classes != len(meta.class_ids):
        raise InvalidModel(
            f"{METADATA_FILE} architecture has {net.n_classes} outputs "
            f"but lists {len(meta.class_ids)} classes"
        )
    return net


def metadata_text(meta: ModelMetadata) -> tuple[str, SpectralFusionNet]:
    """model.json's text for `meta`, after the checks loading makes, and a fresh network of
    its architecture to check the weights against (InvalidModel for any problem)."""
    try:
        doc = _json_ready(asdict(meta))
        text = _json_text(doc) + "\n"
    except (TypeError, ValueError) as exc:
        raise InvalidModel(f"metadata is not JSON-serialisable: {exc}") from None
    return text, build_net(metadata_from_json(doc))


def parameter_count(widths: list[int], members: int = 1) -> int:
    """The weights and biases of the 1x1 convolutions between channel counts `widths`
    ([in_bands, *hidden, n_classes]) in each of `members` ensemble members: what a network of
    them holds, counted without building it (a grouped layer holds each member's weights)."""
    return members * sum((c_in + 1) * c_out for c_in, c_out in pairwise(widths))


def check_parameter_count(architecture: dict[str, Any], held: int) -> None:
    """InvalidModel when weights holding `held` values are fewer than the architecture's
    parameters.

    Checked before the network is built: hidden widths edited to 2**31 would otherwise have
    torch allocate and initialise terabytes. Malformed widths are left to `from_config`.
    """
    hidden = architecture.get("hidden")
    hidden_widths = hidden if isinstance(hidden, list) else []
    widths = [architecture.get("in_bands"), *hidden_widths, architecture.get("n_classes")]
    members = architecture.get("members", 1)
    if not all(_is_int(w) and w >= 1 for w in [*widths, members]):
        return
    parameters = parameter_count(widths, members)
    if parameters > held:
        raise InvalidModel(
            f"weights do not match {METADATA_FILE} (its architecture has {parameters:,} "
            f"parameters, the weights hold {held:,} values)"
        )


def _json_ready(value: object) -> object:
    """`value` as plain JSON data: tuples → lists, numpy/torch numbers → Python, NaN/inf → null.

    Keys that are not strings become their JSON text (1 → "1"), as json.dumps would do.
    """
    if isinstance(value, dict):
        return {
            key if isinstance(key, str) else json.dumps(_json_ready(key)): _json_ready(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _json_ready(tolist())
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

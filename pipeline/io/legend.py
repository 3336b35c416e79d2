"""Class legends: ids, names and colours, from JSON files, label rasters or defaults."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bandfusion.colours import RGB, RGBA, colour_table, default_colours
from bandfusion.errors import LabelError
from bandfusion.io.inputs import refuse_special
from rasterio.io import DatasetReader

# The metadata tag (dataset or band 1) in which bandfusion's GeoTIFF writer stores class names.
CLASS_NAMES_TAG = "CLASS_NAMES"


@dataclass(frozen=True)
class PartialLegend:
    """Names and colours known for some ids: what one source (file, raster, vector) tells."""

    names: Mapping[int, str] = field(default_factory=dict)
    colors: Mapping[int, RGB] = field(default_factory=dict)

    @property
    def ids(self) -> tuple[int, ...]:
        """Every id this source mentions, sorted."""
        return tuple(sorted({*self.names, *self.colors}))


@dataclass(frozen=True)
class Legend:
    """A complete legend: one name and one RGB colour per class id, ids sorted and unique."""

    ids: tuple[int, ...]
    names: tuple[str, ...]
    colors: tuple[RGB, ...]

    def __post_init__(self) -> None:
        if not len(self.ids) == len(self.names) == len(self.colors):
            raise ValueError("Legend needs exactly one name and one colour per id")
        if list(self.ids) != sorted(set(self.ids)):
            raise ValueError(f"Legend ids must be sorted and unique, got {self.ids}")

    def name_of(self, class_id: int) -> str:
        """The name of a class id (KeyError for ids the legend does not hold)."""
        return self.names[self._index(class_id)]

    def color_of(self, class_id: int) -> RGB:
        """The RGB colour of a class id (KeyError for ids the legend does not hold)."""
        return self.colors[self._index(class_id)]

    def colormap(self) -> dict[int, RGBA] | None:
        """The GeoTIFF colour table of this legend (None where ids cannot index one)."""
        return colour_table(self.ids, self.colors)

    def restrict(self, ids: Iterable[int]) -> Legend:
        """The sub-legend for `ids` (KeyError for ids the legend does not hold)."""
        keep = sorted(set(ids))
        return Legend(
            ids=tuple(keep),
            names=tuple(self.name_of(i) for i in keep),
            colors=tuple(self.color_of(i) for i in keep),
        )

    def merge(self, partial: PartialLegend) -> Legend:
        """This legend with names and colours replaced where `partial` gives them; ids unchanged."""
        return Legend(
            ids=self.ids,
            names=tuple(partial.names.get(i, n) for i, n in zip(self.ids, self.names, strict=True)),
            colors=tuple(
                partial.colors.get(i, c) for i, c in zip(self.ids, self.colors, strict=True)
            ),
        )

    def partial(self) -> PartialLegend:
        """Everything this legend says, as a source to merge into another legend."""
        return PartialLegend(
            names=dict(zip(self.ids, self.names, strict=True)),
            colors=dict(zip(self.ids, self.colors, strict=True)),
        )

    def _index(self, class_id: int) -> int:
        try:
            return self.ids.index(class_id)
        except ValueError:
            raise KeyError(f"class id {class_id} is not in the legend {self.ids}") from None


def default_name(class_id: int) -> str:
    """The name a class gets where no source names it: 'class <id>'."""
    return f"class {class_id}"


def default_legend(ids: Iterable[int]) -> Legend:
    """Names 'class <id>' and palette colours by position, so any id set gets distinct colours."""
    keep = tuple(sorted({int(i) for i in ids}))
    return Legend(
        ids=keep,
        names=tuple(default_name(i) for i in keep),
        colors=tuple(default_colours(len(keep))),
    )


def resolve_legend(ids: Iterable[int], *sources: PartialLegend) -> Legend:
    """The legend for `ids`: defaults overridden by each source in turn (the last one wins)."""
    legend = default_legend(ids)
    for source in sources:
        legend = legend.merge(source)
    return legend


def load_legend(path: str | os.PathLike[str]) -> Legend:
    """Read a legend JSON file; ids without a colour get palette colours."""
    partial = read_legend_file(path)
    return resolve_legend(partial.ids, partial)


def read_legend_file(path: str | os.PathLike[str]) -> PartialLegend:
    """What a legend JSON file says, in either form.

    `{"classes": [{"id": 1, "name": "forest", "color": "#1f7a1f"}, ...]}` (colour optional) or
    a plain mapping `{"1": "forest", ...}`.
    """
    refuse_special(path, LabelError)
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelError(f"{path}: legend file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(f"{path}: legend is not readable JSON ({exc})") from None
    try:
        return _parse_legend(document)
    except ValueError as exc:
        raise LabelError(f"{path}: bad legend: {exc}") from None


def _parse_legend(document: Any) -> PartialLegend:
    """Either legend form as a PartialLegend; ValueError says what is wrong."""
    if not (isinstance(document, dict) and "classes" in document):
        return PartialLegend(names=_parse_names(document))
    entries = document["classes"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError('"classes" must be a list of objects with "id" and "name"')
    names: dict[int, str] = {}
    colors: dict[int, RGB] = {}
    for entry in entries:
        class_id = _parse_id(entry.get("id"))
        if class_id in names:
            raise ValueError(f"class id {class_id} appears twice")
        names[class_id] = _parse_name(entry.get("name"), class_id)
        if entry.get("color") is not None:
            colors[class_id] = parse_color(entry["color"])
    return PartialLegend(names=names, colors=colors)


def _parse_names(mapping: Any) -> dict[int, str]:
    """A `{"<id>": "name"}` JSON object with its keys as ints."""
    if not isinstance(mapping, dict):
        raise ValueError('expected a JSON object {"<id>": "<name>", ...} or {"classes": [...]}')
    names = {_parse_id(key): _parse_name(name, key) for key, name in mapping.items()}
    if len(names) != len(mapping):
        raise ValueError("a class id appears twice")
    return names


def _parse_id(value: Any) -> int:
    """A class id from an int or a decimal string such as "8" or "-1"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    raise ValueError(f"class id {value!r} is not an integer")


def _parse_name(value: Any, class_id: object) -> str:
    """A non-empty class name."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"class {class_id} has no name (got {value!r})")
    return value


def parse_color(value: Any) -> RGB:
    """An RGB triple from '#rrggbb', '#rgb' or a list of three ints 0-255; ValueError otherwise."""
    if isinstance(value, str) and value.startswith("#") and len(value) in (4, 7):
        digits = value[1:] if len(value) == 7 else "".join(2 * d for d in value[1:])
        try:
            red, green, blue = (int(digits[k : k + 2], 16) for k in (0, 2, 4))
        except ValueError:
            raise ValueError(f"colour {value!r} is not a hex colour like '#1f7a1f'") from None
        return (red, green, blue)
    if (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    ):
        return (value[0], value[1], value[2])
    raise ValueError(f"colour {value!r} is not '#rrggbb' or [r, g, b] with values 0-255")


def legend_from_raster(dataset: DatasetReader) -> PartialLegend:
    """Colours from band 1's colour map and names from the CLASS_NAMES tag, where present.

    Colour-map entries with alpha 0 are GDAL's unset entries and are skipped.
    """
    try:
        colormap = dataset.colormap(1)
    except ValueError:  # rasterio's answer for a band without a colour table
        colormap = {}
    colors = {int(i): (r, g, b) for i, (r, g, b, a) in colormap.items() if a > 0}
    tags = {**dataset.tags(), **dataset.tags(1)}
    if CLASS_NAMES_TAG not in tags:
        return PartialLegend(colors=colors)
    try:
        names = _parse_names(json.loads(tags[CLASS_NAMES_TAG]))
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise LabelError(
            f"{dataset.name}: tag {CLASS_NAMES_TAG} is not a JSON object of id to name ({exc})"
        ) from None
    return PartialLegend(names=names, colors=colors)

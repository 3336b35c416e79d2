"""Class legends (bandfusion.io.legend): legend files in both forms, defaults, merging, colours
and what a label raster's colour map and tags say; every bad file is one line naming it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from bandfusion.colours import PALETTE
from bandfusion.errors import LabelError
from bandfusion.io.legend import (
    CLASS_NAMES_TAG,
    Legend,
    PartialLegend,
    default_legend,
    legend_from_raster,
    load_legend,
    parse_color,
    resolve_legend,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def test_plain_mapping_legend_gets_default_colours(tmp_path: Path) -> None:
    path = tmp_path / "legend.json"
    path.write_text(json.dumps({"8": "urban", "1": "crops"}))
    legend = load_legend(path)
    assert legend.ids == (1, 8)
    assert legend.names == ("crops", "urban")
    assert legend.colors == PALETTE[:2]


def test_colormap_restrict_and_lookups(data_dir: Path) -> None:
    legend = load_legend(data_dir / "eolearn_slovenia/legend.json")
    assert legend.colormap()[2] == (31, 122, 31, 255)
    forest_and_urban = legend.restrict([8, 2])
    assert forest_and_urban.ids == (2, 8)
    assert forest_and_urban.names == ("forest", "artificial surface")
    with pytest.raises(KeyError):
        legend.name_of(5)


def test_default_legend_colours_are_distinct() -> None:
    legend = default_legend(range(0, 200, 10))
    assert legend.names[3] == "class 30"
    assert len(set(legend.colors)) == 20


@pytest.mark.parametrize(
    ("text", "rgb"),
    [("#1f7a1f", (31, 122, 31)), ("#FFF", (255, 255, 255)), ([0, 128, 255], (0, 128, 255))],
)
def test_parse_color(text: Any, rgb: tuple[int, int, int]) -> None:
    assert parse_color(text) == rgb


@pytest.mark.parametrize("text", ["1f7a1f", "#1f7a1", [0, 0, 256], [0, 0], "#ggg"])
def test_parse_color_rejects(text: Any) -> None:
    with pytest.raises(ValueError, match="colour"):
        parse_color(text)


def test_classes_form_with_some_colours_fills_the_rest_from_the_palette(tmp_path: Path) -> None:
    path = tmp_path / "legend.json"
    classes = [
        {"id": 9, "name": "urban"},
        {"id": "-1", "name": "nodata", "color": [0, 0, 0]},
        {"id": 3, "name": "water", "color": "#00f"},
    ]
    path.write_text(json.dumps({"classes": classes}))
    legend = load_legend(path)
    assert legend.ids == (-1, 3, 9)
    assert legend.names == ("nodata", "water", "urban")
    assert legend.colors == ((0, 0, 0), (0, 0, 255), PALETTE[2])


def test_a_missing_legend_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "legend.json"
    with pytest.raises(LabelError, match="legend file not found") as caught:
        load_legend(path)
    assert str(caught.value) == f"{path}: legend file not found"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfe not utf-8", "not readable JSON"),
        (b"", "not readable JSON"),
        (b'{"classes": {"id": 1}}', '"classes" must be a list of objects'),
        (b'{"classes": [{"id": 1}]}', "class 1 has no name"),
        (b'{"classes": [{"id": 1, "name": "  "}]}', "class 1 has no name"),
        (b'{"classes": [{"id": true, "name": "yes"}]}', "True is not an integer"),
        (b'{"1": "a", "+1": "b"}', "appears twice"),
        (b'{"1": 5}', "class 1 has no name"),
    ],
)
def test_bad_legend_files_are_one_line_naming_the_file(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "legend.json"
    path.write_bytes(content)
    with pytest.raises(LabelError, match=problem) as caught:
        load_legend(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_a_directory_is_not_a_legend_file(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="legend is not readable JSON") as caught:
        load_legend(tmp_path)
    assert str(caught.value).startswith(f"{tmp_path}: ")


def test_the_last_source_wins_and_ids_stay_those_asked_for() -> None:
    raster = PartialLegend(names={1: "from raster", 2: "two"}, colors={1: (1, 1, 1)})
    file = PartialLegend(names={1: "from file", 7: "not asked for"})
    legend = resolve_legend([2, 1, 1, 5], raster, file)
    assert legend.ids == (1, 2, 5)
    assert legend.names == ("from file", "two", "class 5")
    assert legend.colors == ((1, 1, 1), PALETTE[1], PALETTE[2])
    assert resolve_legend([1, 2, 5], legend.partial()) == legend


@pytest.mark.parametrize(
    ("ids", "names", "colors"),
    [
        ((2, 1), ("b", "a"), ((0, 0, 0),) * 2),
        ((1, 1), ("a", "a"), ((0, 0, 0),) * 2),
        ((1,), ("a", "b"), ((0, 0, 0),)),
    ],
)
def test_a_legend_needs_sorted_unique_ids_with_one_name_and_colour_each(
    ids: tuple[int, ...], names: tuple[str, ...], colors: tuple[tuple[int, int, int], ...]
) -> None:
    with pytest.raises(ValueError, match="Legend"):
        Legend(ids, names, colors)


def write_label_raster(
    path: Path, colormap: dict[int, tuple[int, ...]], tags: dict[str, str]
) -> Path:
    """A 2 x 2 uint8 label raster with `colormap` on band 1 (if any) and dataset `tags`."""
    profile = {"driver": "GTiff", "width": 2, "height": 2, "count": 1, "dtype": "uint8",
               "crs": "EPSG:32633", "transform": Affine(10, 0, 0, 0, -10, 0)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.array([[[1, 2], [3, 4]]], dtype=np.uint8))
        if colormap:
            dst.write_colormap(1, colormap)
        dst.update_tags(**tags)
    return path


def test_a_label_rasters_colour_map_and_names_tag_are_read(tmp_path: Path) -> None:
    path = write_label_raster(
        tmp_path / "labels.tif",
        {1: (10, 20, 30, 255), 2: (40, 50, 60, 255)},
        {CLASS_NAMES_TAG: json.dumps({"1": "crops", "2": "forest"})},
    )
    with rasterio.open(path) as src:
        partial = legend_from_raster(src)
    assert partial.names == {1: "crops", 2: "forest"}
    assert (partial.colors[1], partial.colors[2]) == ((10, 20, 30), (40, 50, 60))


def test_a_label_raster_without_colours_or_names_says_nothing(tmp_path: Path) -> None:
    with rasterio.open(write_label_raster(tmp_path / "plain.tif", {}, {})) as src:
        assert legend_from_raster(src) == PartialLegend()


def test_a_bad_names_tag_is_one_line_naming_the_raster(tmp_path: Path) -> None:
    path = write_label_raster(tmp_path / "labels.tif", {}, {CLASS_NAMES_TAG: "[1, 2"})
    with rasterio.open(path) as src, pytest.raises(LabelError, match=CLASS_NAMES_TAG) as caught:
        legend_from_raster(src)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


# ---------------------------------------------------------------------------------------------
# properties of the legend file parser

class_ids = st.integers(-(2**31), 2**31 - 1)
names = st.text(min_size=1, max_size=12).filter(str.strip)
rgbs = st.tuples(*[st.integers(0, 255)] * 3)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(legend=st.dictionaries(class_ids, st.tuples(names, rgbs), min_size=1, max_size=8))
def test_any_legend_written_in_the_classes_form_loads_back(
    tmp_path_factory: pytest.TempPathFactory, legend: dict[int, tuple[str, tuple[int, ...]]]
) -> None:
    path = tmp_path_factory.mktemp("legend") / "legend.json"
    classes = [
        {"id": i, "name": name, "color": "#{:02x}{:02x}{:02x}".format(*rgb)}
        for i, (name, rgb) in legend.items()
    ]
    path.write_text(json.dumps({"classes": classes}))
    loaded = load_legend(path)
    assert loaded.ids == tuple(sorted(legend))
    assert [(loaded.name_of(i), loaded.color_of(i)) for i in legend] == list(legend.values())


json_documents = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
legend_like = st.fixed_dictionaries(
    {
        "classes": st.lists(
            st.dictionaries(
                st.sampled_from(["id", "name", "color"]),
                json_documents | st.sampled_from(["#abc", "#a1b2c3", "7", [1, 2, 3], "x"]),
            ),
            max_size=4,
        )
    }
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(document=json_documents | legend_like)
def test_any_json_document_is_a_legend_or_one_line_naming_the_file(
    tmp_path_factory: pytest.TempPathFactory, document: Any
) -> None:
    path = tmp_path_factory.mktemp("legend") / "legend.json"
    path.write_text(json.dumps(document))
    try:
        legend = load_legend(path)
    except LabelError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
    else:
        assert len(legend.ids) == len(legend.names) == len(legend.colors)
        assert all(0 <= value <= 255 for rgb in legend.colors for value in rgb)

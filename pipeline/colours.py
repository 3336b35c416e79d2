"""Class colours: the one default palette, and the one way to make a GeoTIFF colour table.

The CLI (legends of label files) and the Python API (`SpectralFusionClassifier.to_model`)
colour the same classes the same way, and every class map written carries its model's colours
in the same table. It lives at the package root, beside `errors`, because both
`bandfusion.models` and `bandfusion.io` need it and neither may import the other; it imports
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]

# Tableau's 20-colour qualitative palette, strong colours first, so that up to 10 classes
# get clearly distinct colours and up to 20 get distinct ones.
PALETTE: tuple[RGB, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (199, 199, 199),
    (219, 219, 141),
    (158, 218, 229),
)

COLOUR_TABLE_IDS = range(65536)
"""The ids a GeoTIFF colour table can hold: those of a uint8 or uint16 band."""


def default_colours(count: int) -> list[RGB]:
    """Palette colours for `count` classes by position, repeating after 20."""
    return [PALETTE[k % len(PALETTE)] for k in range(count)]


def colour_table(ids: Iterable[int], colours: Sequence[RGB]) -> dict[int, RGBA] | None:
    """Opaque RGBA entries per id, as rasterio's `write_colormap` takes them; None where an
    id cannot index a GeoTIFF colour table (see COLOUR_TABLE_IDS)."""
    ids = list(ids)
    if not all(i in COLOUR_TABLE_IDS for i in ids):
        return None
    return {int(i): (*rgb, 255) for i, rgb in zip(ids, colours, strict=True)}


MASK_COLOURS: dict[str, RGB] = {
    "cloud": (255, 255, 255),
    "cirrus": (204, 236, 255),
    "shadow": (64, 64, 64),
    "dilated_cloud": (224, 224, 224),
    "snow": (178, 255, 255),
    "saturated": (255, 0, 255),
    "dark": (32, 32, 32),
}
"""Colours of masked pixels in a map, by reason: clouds white, shadows dark, the rest apart
from the class palette."""

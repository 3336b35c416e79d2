"""Class names where GDAL and QGIS look for them: category names and a raster attribute table in
the map's `.aux.xml` (GDAL's Persistent Auxiliary Metadata), written beside the map.

GDAL 3.10 (the one rasterio ships) keeps a GeoTIFF band's category names and attribute table
only in that side file: its GDAL_METADATA TIFF tag holds neither (GDAL 3.12 stores attribute
tables inside the TIFF), and rasterio has no call for either. So the writer writes the side
file itself, named after the final map and replaced atomically after it, and removes a stale
one when a map without classes takes the path. The CLASS_NAMES tag inside the map stays the
copy that travels with the file alone (see docs/engine.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from xml.etree import ElementTree

from bandfusion.atomic import replacing
from bandfusion.colours import RGBA

_INTEGER, _STRING = "0", "2"  # GDALRATFieldType
_RAT_COLUMNS = (  # (name, GDALRATFieldType, GDALRATFieldUsage)
    ("value", _INTEGER, "5"),  # GFU_MinMax: the pixel value of the row
    ("class", _STRING, "2"),  # GFU_Name
    ("red", _INTEGER, "6"),
    ("green", _INTEGER, "7"),
    ("blue", _INTEGER, "8"),
    ("alpha", _INTEGER, "9"),
)
_NO_COLOUR: RGBA = (0, 0, 0, 0)


def aux_path(path: str | Path) -> Path:
    """The side file GDAL reads for the map at `path`: PATH.aux.xml."""
    path = Path(path)
    return path.with_name(f"{path.name}.aux.xml")


def write_categories(
    path: str | Path, class_names: Mapping[int, str], colormap: Mapping[int, RGBA] | None
) -> Path:
    """Write the category names and attribute table of band 1 of the map at `path`, atomically.

    Category names are a list indexed by pixel value, so values without a class get "".
    """
    band = ElementTree.Element("PAMRasterBand", band="1")
    categories = ElementTree.SubElement(band, "CategoryNames")
    names = {int(value): name for value, name in class_names.items()}
    for value in range(max(names) + 1):
        ElementTree.SubElement(categories, "Category").text = names.get(value, "")
    table = ElementTree.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    for index, (name, kind, usage) in enumerate(_RAT_COLUMNS):
        field = ElementTree.SubElement(table, "FieldDefn", index=str(index))
        for tag, text in (("Name", name), ("Type", kind), ("Usage", usage)):
            ElementTree.SubElement(field, tag).text = text
    for row, (value, name) in enumerate(sorted(names.items())):
        colour = (colormap or {}).get(value, _NO_COLOUR)
        cells = ElementTree.SubElement(table, "Row", index=str(row))
        for cell in (value, name, *colour):
            ElementTree.SubElement(cells, "F").text = str(cell)
    document = ElementTree.Element("PAMDataset")
    document.append(band)
    ElementTree.indent(document)
    target = aux_path(path)
    with replacing(target) as tmp:
        ElementTree.ElementTree(document).write(tmp, encoding="utf-8", xml_declaration=False)
    return target


def remove_categories(path: str | Path) -> None:
    """Remove a side file left by an earlier map at `path`: it would name the wrong pixels."""
    aux_path(path).unlink(missing_ok=True)

"""Landsat Collection 2 Level-2 products: the product folder, or its MTL in any of its three
forms (ODL text `_MTL.txt`, `_MTL.json`, `_MTL.xml`), which all hold the same groups.

Bands are the surface-reflectance files the MTL names (SR_B1…SR_B7), with the MTL's
REFLECTANCE_MULT_BAND_n / REFLECTANCE_ADD_BAND_n as scale and offset, nodata 0 (the product's
fill), and QA_PIXEL as the mask layer; sensor and acquisition time come from the MTL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bandfusion.errors import SceneError
from bandfusion.io.products.files import (
    local_name,
    number,
    parse_json,
    parse_xml,
    present,
    read_bytes,
    sibling,
)
from bandfusion.io.products.model import BandAsset, MaskLayer, Product
from bandfusion.io.remote import is_remote

MTL_SUFFIXES = ("_MTL.txt", "_MTL.json", "_MTL.xml")
RESOLUTION = 30.0
"""Every reflectance band of Collection 2 Level-2 is on the 30 m grid."""
FILL = 0.0
_KEY = re.compile(r"[A-Za-z0-9_]+")
_MULT = re.compile(r"REFLECTANCE_MULT_BAND_(\d+)")

Groups = dict[str, dict[str, str]]


def mtl_file(path: str) -> str | None:
    """The MTL of the Landsat product at `path` (the MTL itself, or a folder holding one)."""
    local = Path(path)
    if local.name.endswith(MTL_SUFFIXES):
        return path
    if is_remote(path) or not local.is_dir():  # a folder URL: `folders` resolves it
        return None
    for suffix in MTL_SUFFIXES:
        found = sorted(local.glob(f"*{suffix}"))
        if len(found) == 1:
            return str(found[0])
    return None


def read_landsat(path: str, mtl: str) -> Product:
    """The product described by the MTL at `mtl` (what the user named is `path`)."""
    groups = _read_groups(mtl)
    contents = _group(groups, mtl, "PRODUCT_CONTENTS")
    attributes = _group(groups, mtl, "IMAGE_ATTRIBUTES")
    level = _field(contents, mtl, "PROCESSING_LEVEL")
    if not level.startswith("L2"):
        raise SceneError(f"{mtl}: processing level {level}; only Level-2 products are read")
    parameters = _group(groups, mtl, "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS")
    numbers = [m.group(1) for k in parameters if (m := _MULT.fullmatch(k))]
    files = {n: sibling(mtl, _file_name(contents, mtl, f"FILE_NAME_BAND_{n}")) for n in numbers}
    qa_name = contents.get("FILE_NAME_QUALITY_L1_PIXEL")
    qa = sibling(mtl, Path(qa_name).name) if qa_name else None
    held = present([*files.values(), *([qa] if qa else [])])  # each looked for once
    bands = []
    for n in sorted(numbers, key=int):
        if files[n] not in held:
            continue
        scale = _number(parameters, mtl, f"REFLECTANCE_MULT_BAND_{n}")
        offset = _number(parameters, mtl, f"REFLECTANCE_ADD_BAND_{n}")
        bands.append(BandAsset(f"SR_B{n}", files[n], RESOLUTION, scale, offset, FILL, "MTL"))
    if not bands:
        raise SceneError(f"{mtl}: none of the reflectance band files it names is present")
    masks = (MaskLayer("landsat_qa_pixel", qa, RESOLUTION),) if qa in held else ()
    return Product(
        path=path,
        sensor=_sensor(_field(attributes, mtl, "SPACECRAFT_ID")),
        datetime=_when(attributes),
        level=level,
        bands=tuple(bands),
        masks=masks,
    )


def _file_name(contents: dict[str, str], mtl: str, field: str) -> str:
    """The file a field names, without any folder: the files lie beside the MTL."""
    return Path(_field(contents, mtl, field)).name


def _sensor(spacecraft: str) -> str:
    """LANDSAT_8 → landsat-8."""
    return spacecraft.strip().lower().replace("_", "-")


def _when(attributes: dict[str, str]) -> str | None:
    date = attributes.get("DATE_ACQUIRED")
    time = attributes.get("SCENE_CENTER_TIME")
    return f"{date}T{time}" if date and time else date


def _group(groups: Groups, mtl: str, name: str) -> dict[str, str]:
    if name not in groups:
        raise SceneError(f"{mtl}: the MTL has no {name} group")
    return groups[name]


def _field(group: dict[str, str], mtl: str, name: str) -> str:
    value = group.get(name)
    if not value:
        raise SceneError(f"{mtl}: {name} is missing")
    return value


def _number(group: dict[str, str], mtl: str, name: str) -> float:
    return number(mtl, name, _field(group, mtl, name))


def _read_groups(mtl: str) -> Groups:
    """The MTL's groups (PRODUCT_CONTENTS, IMAGE_ATTRIBUTES, ...) as flat text fields."""
    if mtl.endswith(".xml"):
        return _xml_groups(mtl)
    if mtl.endswith(".json"):
        return _json_groups(mtl, parse_json(mtl))
    try:
        text = read_bytes(mtl).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SceneError(f"{mtl}: not UTF-8 text ({exc.reason})") from exc
    return _odl_groups(mtl, text)


def _odl_groups(mtl: str, text: str) -> Groups:
    """GROUP = X / KEY = value / END_GROUP = X lines; the innermost group holds its fields."""
    groups: Groups = {}
    open_groups: list[str] = []
    for row, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip() == "END":
            continue
        key, equals, value = (part.strip() for part in line.partition("="))
        if not equals or not _KEY.fullmatch(key):  # split, not one regex: linear on any line
            raise SceneError(f"{mtl}: line {row} is not KEY = value")
        if key == "GROUP":
            open_groups.append(value)
            groups.setdefault(value, {})
        elif key == "END_GROUP":
            if not open_groups or open_groups.pop() != value:
                raise SceneError(f"{mtl}: line {row} closes a group that is not open")
        elif open_groups:
            groups[open_groups[-1]][key] = value.strip('"')
    return groups


def _json_groups(mtl: str, doc: Any) -> Groups:
    root = doc.get("LANDSAT_METADATA_FILE") if isinstance(doc, dict) else None
    if not isinstance(root, dict):
        raise SceneError(f"{mtl}: no LANDSAT_METADATA_FILE object")
    return {
        name: {k: str(v) for k, v in group.items() if not isinstance(v, dict | list)}
        for name, group in root.items()
        if isinstance(group, dict)
    }


def _xml_groups(mtl: str) -> Groups:
    root = parse_xml(mtl)
    if local_name(root) != "LANDSAT_METADATA_FILE":
        raise SceneError(f"{mtl}: its root element is not LANDSAT_METADATA_FILE")
    return {
        local_name(group): {local_name(f): (f.text or "").strip() for f in group} for group in root
    }

"""Reading a product's metadata files safely, on disk or inside a zip, with one-line errors.

Metadata comes from whoever made the product, so it is read as hostile: a size cap before any
byte is parsed, XML through defusedxml (no entities, no DTDs, no external references), and
every failure one SceneError naming the file.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from bandfusion.errors import SceneError, first_line
from defusedxml import DefusedXmlException

MAX_METADATA_BYTES = 16 << 20
"""Larger metadata files are refused unread: the biggest real ones (MTD_TL.xml) are ~0.5 MB."""

VSIZIP = "/vsizip/"


def zip_href(archive: Path, member: str) -> str:
    """The GDAL path of `member` inside the local zip `archive`."""
    return f"{VSIZIP}{archive.resolve()}/{member}"


def split_zip_href(href: str) -> tuple[Path, str] | None:
    """(archive, member) of a /vsizip/ path; None for any other path."""
    if not href.startswith(VSIZIP):
        return None
    rest = href[len(VSIZIP) :]
    cut = rest.lower().find(".zip/")
    if cut < 0:
        return None
    return Path(rest[: cut + 4]), rest[cut + 5 :]


def zip_members(archive: Path) -> list[str]:
    """The names inside `archive`, or a SceneError naming it."""
    try:
        with zipfile.ZipFile(archive) as opened:
            return opened.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise SceneError(f"{archive}: not a readable zip archive ({exc})") from exc


def exists(href: str) -> bool:
    """Whether the file at `href` is there: on disk, or as a member of a local zip."""
    inside = split_zip_href(href)
    if inside is None:
        return Path(href).is_file()
    archive, member = inside
    return archive.is_file() and member in set(zip_members(archive))


def read_bytes(href: str) -> bytes:
    """The bytes of a metadata file (refused above MAX_METADATA_BYTES), on disk or in a zip."""
    inside = split_zip_href(href)
    try:
        if inside is None:
            size = Path(href).stat().st_size
            _check_size(href, size)
            return Path(href).read_bytes()
        archive, member = inside
        with zipfile.ZipFile(archive) as opened:
            _check_size(href, opened.getinfo(member).file_size)
            with opened.open(member) as stream:
                data = stream.read(MAX_METADATA_BYTES + 1)
            _check_size(href, len(data))  # a zip header may understate the size
            return data
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise SceneError(f"{href}: cannot read it ({exc})") from exc


def _check_size(href: str, size: int) -> None:
    if size > MAX_METADATA_BYTES:
        raise SceneError(
            f"{href}: {size} bytes, more than the {MAX_METADATA_BYTES} a metadata file may have"
        )


def parse_xml(href: str) -> Element:
    """The root element of the XML file at `href`, parsed with defusedxml."""
    data = read_bytes(href)
    try:
        root: Element = safe_et.fromstring(data)
    except DefusedXmlException as exc:
        raise SceneError(f"{href}: refused: the XML uses {type(exc).__name__}") from exc
    except (ParseError, ValueError) as exc:
        raise SceneError(f"{href}: not valid XML ({exc})") from exc
    return root


def parse_json(href: str) -> Any:
    """The JSON document at `href`; nesting too deep to parse is invalid JSON like any other."""
    data = read_bytes(href)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise SceneError(f"{href}: not valid JSON ({first_line(exc)})") from exc


def local_name(element: Element) -> str:
    """The element's tag without its namespace: `{ns}General_Info` → `General_Info`."""
    return element.tag.rpartition("}")[2] if isinstance(element.tag, str) else ""


def find_all(root: Element, name: str) -> list[Element]:
    """Every element called `name` (any namespace) under `root`, in document order."""
    return [e for e in root.iter() if local_name(e) == name]


def find_text(root: Element, name: str) -> str | None:
    """The stripped text of the first element called `name`, or None where there is none."""
    for element in find_all(root, name):
        return (element.text or "").strip()
    return None


def number(href: str, field: str, value: Any) -> float:
    """`value` as a finite float, or a SceneError naming the file and the field."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise SceneError(f"{href}: {field} is {value!r}, not a number") from None
    if not math.isfinite(result):
        raise SceneError(f"{href}: {field} is {value!r}, not a finite number")
    return result

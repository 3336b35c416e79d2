"""Reading a product's metadata files safely, on disk, by URL or inside a zip (local or
remote), with one-line errors.

Metadata comes from whoever made the product, so it is read as hostile: a size cap before any
byte is parsed, XML through defusedxml (no entities, no DTDs, no external references), and
every failure one SceneError naming the file.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_et
from bandfusion.errors import SceneError, first_line
from bandfusion.io.remote import gdal_path, is_remote, url_of
from bandfusion.io.remote_bytes import open_remote, read_object
from bandfusion.io.remote_bytes import present as remote_present
from defusedxml import DefusedXmlException

MAX_METADATA_BYTES = 16 << 20
"""Larger metadata files are refused unread: the biggest real ones (MTD_TL.xml) are ~0.5 MB."""

VSIZIP = "/vsizip/"


def zip_href(archive: str | Path, member: str) -> str:
    """The GDAL path of `member` inside the zip `archive` (a local file, or a URL)."""
    name = os.fspath(archive)
    if is_remote(name):
        return f"{VSIZIP}{gdal_path(name)}/{member}"
    return f"{VSIZIP}{Path(name).resolve()}/{member}"


def split_zip_href(href: str) -> tuple[str, str] | None:
    """(archive, member) of a /vsizip/ path, the archive a local path or a URL; None for any
    other path."""
    if not href.startswith(VSIZIP):
        return None
    rest = href[len(VSIZIP) :]
    cut = rest.lower().find(".zip/")
    if cut < 0:
        return None
    return url_of(rest[: cut + 4]), rest[cut + 5 :]


def _open_zip(archive: str | Path) -> zipfile.ZipFile:
    """The zip `archive`, local or read in place by range requests when it is a URL."""
    name = os.fspath(archive)
    return zipfile.ZipFile(open_remote(name) if is_remote(name) else name)


def zip_members(archive: str | Path) -> list[str]:
    """The names inside `archive` (a local zip or a URL), or a SceneError naming it."""
    try:
        with _open_zip(archive) as opened:
            return opened.namelist()
    except (OSError, zipfile.BadZipFile) as exc:
        raise SceneError(f"{archive}: not a readable zip archive ({exc})") from exc


def present(hrefs: Iterable[str]) -> set[str]:
    """Those of `hrefs` that are there: files on disk, members of a zip (each archive listed
    once, in place where it is remote), remote objects (HEAD requests, many at once)."""
    found: set[str] = set()
    remote: list[str] = []
    archives: dict[str, set[str]] = {}
    for href in hrefs:
        if (inside := split_zip_href(href)) is not None:
            archive, member = inside
            if archive not in archives:
                archives[archive] = _members_if_any(archive)
            if member in archives[archive]:
                found.add(href)
        elif is_remote(href):
            remote.append(href)
        elif Path(href).is_file():
            found.add(href)
    return found | remote_present(remote)


def sibling(href: str, name: str) -> str:
    """The file `name` (a relative path) beside `href`: in its folder, prefix or zip."""
    if href.startswith("/vsi") or is_remote(href):
        return f"{href.rsplit('/', 1)[0]}/{name}"
    return str(Path(href).parent / name)


def _members_if_any(archive: str) -> set[str]:
    """The members of `archive`; none where a local one is not there."""
    if not is_remote(archive) and not Path(archive).is_file():
        return set()
    return set(zip_members(archive))


def read_bytes(href: str) -> bytes:
    """The bytes of a metadata file (refused above MAX_METADATA_BYTES): on disk, an object
    at a URL, or a member of a zip (local or remote)."""
    inside = split_zip_href(href)
    if inside is None and is_remote(href):
        return read_object(href, MAX_METADATA_BYTES)
    try:
        if inside is None:
            size = Path(href).stat().st_size
            _check_size(href, size)
            return Path(href).read_bytes()
        archive, member = inside
        with _open_zip(archive) as opened:
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

"""Fuzzing every product metadata parser: Sentinel-2 MTD XML, Landsat MTL (txt, json, xml) and
STAC JSON, each mutated from a real, complete document (truncated, fields dropped, values made
non-numeric, non-finite or absurd, entities declared) and the hostile documents no mutation
reaches (billion laughs, external entities, over-sized, deeply nested, one endless line).

Reading one gives a product whose radiometry is finite, or one SceneError line naming the file,
in bounded time; never an internal error (see tests/fuzzing.py for the rules and the long pass).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from bandfusion.errors import BandfusionError, SceneError
from bandfusion.io.products import choose_bands, read_product
from bandfusion.io.products.files import MAX_METADATA_BYTES
from hypothesis import currently_in_test_context, event, given
from hypothesis import strategies as st

from tests.fuzzing import case_dir, check_ours, fuzz
from tests.io.products.builders import (
    LANDSAT_ID,
    MTD,
    SAFE,
    landsat_groups,
    landsat_product,
    mtl_text,
    stac_item,
)

SECONDS = 5.0
"""A parser's bound on any document: real ones take milliseconds, hostile ones must not hang."""

HOSTILE_NUMBERS = st.sampled_from(
    ["nan", "NaN", "inf", "-Infinity", "1e999", "-1e999", "", " ", "abc", "0", "-0", "1e-320",
     "0x10", "1,5", "10000 10000", "\u0661\u0660", "1_0", "-1000", "1e308", "true"]
) | st.text(max_size=12) | st.floats().map(repr)  # fmt: skip
S2_FIELDS = ["BOA_QUANTIFICATION_VALUE", "BOA_ADD_OFFSET", "SPECIAL_VALUE_INDEX",
             "SPECIAL_VALUE_TEXT", "PROCESSING_BASELINE", "IMAGE_FILE", "SPACECRAFT_NAME",
             "PRODUCT_START_TIME", "Spectral_Information", "BOA_ADD_OFFSET_VALUES_LIST",
             "Special_Values"]  # fmt: skip
S2_ATTRIBUTES = ["band_id", "bandId", "physicalBand"]

_cases = itertools.count()


def survives(path: Path) -> None:
    """read_product on `path`, in bounded time: a product with finite radiometry whose bands
    can be chosen, no product (a JSON mutated out of STAC: read as a raster file, as any other
    file is), or one of our one-line errors naming the file."""
    started = time.monotonic()
    try:
        product = read_product(path)
        if product is None:
            assert path.suffix == ".json"
            note_event("not a product")
            return
        assert product.bands
        for band in product.bands:
            assert math.isfinite(band.scale) and math.isfinite(band.offset), band
        choose_bands(product, None, None)
        note_event("product")
    except Exception as exc:
        ours(exc, path)
    assert time.monotonic() - started < SECONDS


def ours(exc: BaseException, path: Path) -> None:
    """check_ours inside a fuzz test; its rule alone in the tests of named documents."""
    if currently_in_test_context():
        check_ours(exc, path)
    elif not isinstance(exc, BandfusionError):
        raise exc
    assert "\n" not in str(exc) and str(path) in str(exc), str(exc)


def note_event(text: str) -> None:
    if currently_in_test_context():
        event(text)


# ---------------------------------------------------------------------------------------------
# mutations of text, XML, ODL and JSON documents


@st.composite
def text_mutation(draw: st.DrawFn, text: str) -> str:
    """The text truncated, or with a slice deleted, duplicated or overwritten."""
    at = draw(st.integers(0, len(text)))
    end = draw(st.integers(at, min(len(text), at + 200)))
    kind = draw(st.sampled_from(["truncate", "delete", "duplicate", "overwrite"]))
    if kind == "truncate":
        return text[:at]
    if kind == "delete":
        return text[:at] + text[end:]
    if kind == "duplicate":
        return text[:end] + text[at:end] + text[end:]
    return text[:at] + draw(st.text(max_size=20)) + text[end:]


ENTITY_PROLOGS = {
    "billion-laughs": '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
    + "".join(
        f'<!ENTITY {c} "{("&" + p + ";") * 10}">'
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "]>",
    "external-file": '<!DOCTYPE d [<!ENTITY i SYSTEM "file:///etc/passwd">]>',
    "external-url": '<!DOCTYPE d [<!ENTITY i SYSTEM "http://127.0.0.1:9/x">]>',
    "parameter": '<!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>',
}
ENTITY_OF = {kind: "" if kind == "parameter" else "&i;" for kind in ENTITY_PROLOGS}


def with_entities(xml: str, kind: str, field: str) -> str:
    """`xml` with a DOCTYPE declaring hostile entities, referenced in `field`'s text."""
    declaration, end, body = xml.partition("?>") if xml.startswith("<?xml") else ("", "", xml)
    prolog = declaration + end
    body = re.sub(rf"(<{field}\b[^>]*>)", rf"\g<1>{ENTITY_OF[kind]}", body, count=1)
    return prolog + ENTITY_PROLOGS[kind] + body


@st.composite
def xml_mutation(draw: st.DrawFn, xml: str, fields: list[str], attributes: list[str]) -> str:
    """`xml` with fields dropped, their values or attributes made hostile, entities declared,
    or its text mutated, one to three times."""
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["drop", "value", "attribute", "entities", "text"]))
        field = draw(st.sampled_from(fields))
        if kind == "drop":
            xml = re.sub(rf"<{field}\b[^>]*>.*?</{field}>", "", xml, flags=re.S)
        elif kind == "value":
            value = escape(draw(HOSTILE_NUMBERS))
            xml = re.sub(rf"(<{field}\b[^>]*>)[^<]*", rf"\g<1>{_literal(value)}", xml)
        elif kind == "attribute":
            name, value = draw(st.sampled_from(attributes)), draw(HOSTILE_NUMBERS)
            quoted = escape(value, {'"': "&quot;"})
            xml = re.sub(rf'({name}=")[^"]*', rf"\g<1>{_literal(quoted)}", xml)
        elif kind == "entities":
            xml = with_entities(xml, draw(st.sampled_from(sorted(ENTITY_PROLOGS))), field)
        else:
            xml = draw(text_mutation(xml))
    return xml


def _literal(text: str) -> str:
    """`text` as a re.sub replacement that inserts it as it is."""
    return text.replace("\\", "\\\\")


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a JSON document."""
    if isinstance(doc, dict):
        items: Any = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return []
    return [p for k, v in items for p in [(*prefix, k), *_paths(v, (*prefix, k))]]


JSON_VALUES = (
    HOSTILE_NUMBERS
    | st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.just([])
    | st.just({})
    | st.lists(st.text(max_size=4), max_size=3)
)


@st.composite
def json_mutation(draw: st.DrawFn, doc: Any) -> str:
    """`doc` with values deleted or replaced by hostile ones, serialised (NaN and Infinity
    included, as Python's json writes and reads them), sometimes then mutated as text."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(doc)
        if not paths:
            break
        *parents, key = draw(st.sampled_from(paths))
        parent = doc
        for step in parents:
            parent = parent[step]
        if draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(JSON_VALUES)
    text = json.dumps(doc)
    return draw(text_mutation(text)) if draw(st.booleans()) else text


@st.composite
def odl_mutation(draw: st.DrawFn, text: str) -> str:
    """MTL text with lines dropped, repeated or given hostile values, or its text mutated."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        row = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["drop", "repeat", "value", "text"]))
        if kind == "drop":
            del lines[row]
        elif kind == "repeat":
            lines.insert(row, lines[row])
        elif kind == "value":
            key = lines[row].partition("=")[0]
            lines[row] = f"{key}= {draw(HOSTILE_NUMBERS)}"
        else:
            lines[row] = draw(text_mutation(lines[row]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the documents: a real SAFE's MTD, a complete Landsat product's MTL, a pystac Item


@pytest.fixture(scope="module")
def landsat(scratch: Path) -> Path:
    return landsat_product(scratch / "landsat", forms=())


@pytest.fixture(scope="module")
def item(scratch: Path) -> Path:
    return stac_item(scratch / "stac")


def write_safe(directory: Path, text: str) -> Path:
    """A SAFE whose MTD is `text` over the real product's image files (linked, not copied)."""
    (directory / "GRANULE").symlink_to(SAFE / "GRANULE")
    (directory / "MTD_MSIL2A.xml").write_text(text)
    return directory


def write_mtl(directory: Path, landsat: Path, text: str, form: str) -> Path:
    """A Landsat product whose MTL (in `form`) is `text` over the built product's band files."""
    for band in landsat.iterdir():
        (directory / band.name).symlink_to(band)
    mtl = directory / f"{LANDSAT_ID}_MTL.{form}"
    mtl.write_text(text)
    return mtl


def write_item(item: Path, text: str) -> Path:
    """An Item beside the built one (its relative hrefs reach the band files)."""
    path = item.parent / f"case{next(_cases)}.json"
    path.write_text(text)
    return path


@fuzz(120)
@given(data=st.data())
def test_sentinel2_metadata_fuzz(data: st.DataObject, scratch: Path):
    text = data.draw(xml_mutation(MTD.read_text(), S2_FIELDS, S2_ATTRIBUTES))
    with case_dir(scratch) as directory:
        safe = write_safe(directory, text)
        survives(data.draw(st.sampled_from([safe, safe / "MTD_MSIL2A.xml"])))


@fuzz(120)
@given(data=st.data(), form=st.sampled_from(["txt", "json", "xml"]))
def test_landsat_mtl_fuzz(data: st.DataObject, form: str, scratch: Path, landsat: Path):
    groups = landsat_groups()
    if form == "json":
        text = data.draw(json_mutation({"LANDSAT_METADATA_FILE": groups}))
    elif form == "xml":
        fields = sorted({k for g in groups.values() for k in g} | set(groups))
        text = data.draw(xml_mutation(mtl_text(groups, "xml"), fields, ["x"]))
    else:
        text = data.draw(odl_mutation(mtl_text(groups, "txt")))
    with case_dir(scratch) as directory:
        survives(write_mtl(directory, landsat, text, form))


@fuzz(150)
@given(data=st.data())
def test_stac_item_fuzz(data: st.DataObject, item: Path):
    doc = json.loads(item.read_text())
    if data.draw(st.booleans()):
        doc = {"type": "FeatureCollection", "features": [doc]}
    survives(write_item(item, data.draw(json_mutation(doc))))


# ---------------------------------------------------------------------------------------------
# hostile documents every parser meets, by name

Writer = Callable[[Path, str], Path]


def _xml_writers(landsat: Path, item: Path) -> dict[str, tuple[Writer, str]]:
    return {
        "mtd": (write_safe, MTD.read_text()),
        "mtl.xml": (
            lambda d, t: write_mtl(d, landsat, t, "xml"),
            mtl_text(landsat_groups(), "xml"),
        ),
    }


def _writers(landsat: Path, item: Path) -> dict[str, tuple[Writer, str]]:
    return {
        **_xml_writers(landsat, item),
        "mtl.txt": (
            lambda d, t: write_mtl(d, landsat, t, "txt"),
            mtl_text(landsat_groups(), "txt"),
        ),
        "mtl.json": (
            lambda d, t: write_mtl(d, landsat, t, "json"),
            mtl_text(landsat_groups(), "json"),
        ),
        "stac": (lambda _d, t: write_item(item, t), item.read_text()),
    }


PARSERS = ["mtd", "mtl.xml", "mtl.txt", "mtl.json", "stac"]


def hostile_read(path: Path, match: str) -> None:
    started = time.monotonic()
    with pytest.raises(SceneError) as raised:
        read_product(path)
    assert time.monotonic() - started < SECONDS
    ours(raised.value, path)
    assert re.search(match, str(raised.value)), str(raised.value)


@pytest.mark.parametrize("kind", sorted(ENTITY_PROLOGS))
@pytest.mark.parametrize("parser", ["mtd", "mtl.xml"])
def test_entities_are_refused_unexpanded(
    parser: str, kind: str, scratch: Path, landsat: Path, item: Path
):
    write, text = _xml_writers(landsat, item)[parser]
    field = "PROCESSING_BASELINE" if parser == "mtd" else "PROCESSING_LEVEL"
    with case_dir(scratch) as directory:
        path = write(directory, with_entities(text, kind, field))
        hostile_read(path, r"refused: the XML uses (Entities|ExternalReference)Forbidden")


@pytest.mark.parametrize("parser", PARSERS)
def test_documents_over_the_size_cap_are_refused_unread(
    parser: str, scratch: Path, landsat: Path, item: Path
):
    write, text = _writers(landsat, item)[parser]
    with case_dir(scratch) as directory:
        path = write(directory, text + " " * MAX_METADATA_BYTES)
        hostile_read(path, r"bytes, more than the \d+ a metadata file may have")


@pytest.mark.parametrize("parser", PARSERS)
def test_deep_nesting_and_endless_lines_under_the_cap_end_in_time(
    parser: str, scratch: Path, landsat: Path, item: Path
):
    write, text = _writers(landsat, item)[parser]
    depth = 200_000
    nested = {
        "mtd": "<a>" * depth,
        "mtl.xml": "<a>" * depth,
        "mtl.txt": "GROUP = A\n" * depth,
        "mtl.json": "[" * depth,
        "stac": "[" * depth,
    }[parser]
    line = "A = x" + " " * 1_000_000 + "y\n"  # quadratic for a backtracking KEY = value regex
    for hostile in (nested, line + text, text.replace("\n", line, 1)):
        with case_dir(scratch) as directory:
            survives(write(directory, hostile))


@pytest.mark.parametrize("parser", PARSERS)
def test_every_truncation_of_a_document_is_one_line(
    parser: str, scratch: Path, landsat: Path, item: Path
):
    write, text = _writers(landsat, item)[parser]
    step = max(1, len(text) // 40)
    for at in range(0, len(text), step):
        with case_dir(scratch) as directory:
            survives(write(directory, text[:at]))

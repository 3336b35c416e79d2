"""Canonical band names: one name a sensor band, whatever a file, a product or a user calls it.

- Sentinel-2: `B01` … `B12` and `B8A` (zero-padded): `B1`, `b01`, `b8a`,
  `T29UNU_20221005T115411_B02_60m` and `..._B02_10m.jp2` are `B01`, `B01`, `B8A`, `B02`, `B02`.
- Landsat Collection 2 Level-2: `SR_B1` … `SR_B7` (surface reflectance) and `ST_B10` (`ST_B6`
  on Landsat 4–7; surface temperature): `LC08_L2SP_..._SR_B1.TIF` is `SR_B1`. Level-1 file
  names (`LC08_L1TP_..._B1.TIF`) name no canonical band and are left as they are.
- STAC common names (`coastal`, `blue`, `green`, `red`, `rededge1`…`rededge3`, `nir`,
  `nir08`, `nir09`, `cirrus`, `swir16`, `swir22`, `lwir11`, …) are lowercased, and match a
  sensor band through the sensor's table (`same_band("red", "B04")`). Plain `rededge` names
  three Sentinel-2 bands, so it matches none of them.

Anything else is left as it is, and `b1`, `b2`, … (bandfusion's names for bands a file does not
describe) are positions, not Sentinel-2 bands. Bands of different sensors never match each
other: Landsat's red is not Sentinel-2's red to a model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import xarray as xr

SENTINEL2 = "sentinel-2"
LANDSAT_OLI = "landsat-8/9"
LANDSAT_TM = "landsat-4/5/7"

COMMON_NAMES: dict[str, dict[str, str]] = {
    SENTINEL2: {
        "B01": "coastal",
        "B02": "blue",
        "B03": "green",
        "B04": "red",
        "B05": "rededge1",
        "B06": "rededge2",
        "B07": "rededge3",
        "B08": "nir",
        "B8A": "nir08",
        "B09": "nir09",
        "B10": "cirrus",
        "B11": "swir16",
        "B12": "swir22",
    },
    LANDSAT_OLI: {
        "SR_B1": "coastal",
        "SR_B2": "blue",
        "SR_B3": "green",
        "SR_B4": "red",
        "SR_B5": "nir08",
        "SR_B6": "swir16",
        "SR_B7": "swir22",
        "ST_B10": "lwir11",
    },
    LANDSAT_TM: {
        "SR_B1": "blue",
        "SR_B2": "green",
        "SR_B3": "red",
        "SR_B4": "nir08",
        "SR_B5": "swir16",
        "SR_B7": "swir22",
        "ST_B6": "lwir",
    },
}
"""Each sensor's bands and their STAC common names. Landsat bands are read as Landsat 8/9
unless the sensor is named: SR_B1 is coastal aerosol there and blue on Landsat 4–7."""

ALIASES = {
    "rededge071": "rededge1",
    "rededge075": "rededge2",
    "rededge078": "rededge3",
}
"""STAC 1.1 spellings of the same common names."""

COMMON = frozenset(
    {"rededge", "pan", "yellow", "lwir", "lwir12", *ALIASES}
    | {name for table in COMMON_NAMES.values() for name in table.values()}
)
"""Every common name understood (lowercased on the way in)."""

_EDGE = r"(?:^|(?<=[_\-.\s]))"
_END = r"(?=$|[_\-.\s])"
_LANDSAT = re.compile(_EDGE + r"(SR|ST)_B(\d{1,2})" + _END, re.IGNORECASE)
_LANDSAT_LOOSE = re.compile(r"(?:SR_)?B(\d{1,2})", re.IGNORECASE)
_LANDSAT_PRODUCT = re.compile(r"^L[CEOTM]0\d_", re.IGNORECASE)
_SENTINEL2 = re.compile(_EDGE + r"B(8A|\d{1,2})" + _END, re.IGNORECASE)
_LANDSAT_BANDS = frozenset(b for t in (LANDSAT_OLI, LANDSAT_TM) for b in COMMON_NAMES[t])


def canonical_band(name: str) -> str:
    """The canonical name of the band `name` denotes, or `name` itself where none is known.

    `name` may be a band name (`B1`, `b8a`, `sr_b4`, `Red`) or a file name or stem that holds
    one (`T29UNU_20221005T115411_B02_60m`, `LC08_L2SP_..._SR_B1.TIF`).
    """
    parsed = parse_band(name)
    return name if parsed is None else parsed


def parse_band(name: str) -> str | None:
    """The canonical band `name` denotes, or None where it names no known band (or several)."""
    stripped = name.strip()
    if stripped.lower() in COMMON:
        return stripped.lower()
    found = {_landsat(m) for m in _LANDSAT.finditer(stripped)} - {None}
    if not found and not _LANDSAT_PRODUCT.match(stripped):
        found = {_sentinel2(m) for m in _SENTINEL2.finditer(stripped)} - {None}
    return found.pop() if len(found) == 1 else None


def _landsat(match: re.Match[str]) -> str | None:
    band = f"{match[1].upper()}_B{int(match[2])}"
    return band if band in _LANDSAT_BANDS else None


def _sentinel2(match: re.Match[str]) -> str | None:
    code = match[1].upper()
    if match[0].startswith("b") and len(code) == 1:
        return None  # b1, b2, ...: bandfusion's positions, not Sentinel-2 bands
    band = "B" + (code if code == "8A" else f"{int(code):02d}")
    return band if band in COMMON_NAMES[SENTINEL2] else None


def common_name(band: str, sensor: str | None = None) -> str | None:
    """The STAC common name of a canonical sensor band (`B04` → `red`), or None.

    `sensor` picks the table (`sentinel-2`, `landsat-8/9`, `landsat-4/5/7`, or a STAC platform
    such as `landsat-7`); by default Sentinel-2 names are Sentinel-2's and Landsat names
    Landsat 8/9's.
    """
    for table in _tables(sensor):
        if band in COMMON_NAMES[table]:
            return COMMON_NAMES[table][band]
    return None


def sensor_band(name: str, sensor: str) -> str:
    """The band of `sensor` (a product's or a STAC platform's name, see `common_name`) that
    `name` denotes: a common name (`red`), or a band id spelled loosely in the sensor's own
    scheme (`B4` is `B04` on Sentinel-2 and `SR_B4` on Landsat); other names are canonicalised
    by `canonical_band`, or kept (all names are, for a sensor with no table here)."""
    if not sensor.lower().startswith(("sentinel-2", "landsat")):
        return canonical_band(name)
    tables = _tables(sensor)
    lowered = name.strip().lower()
    lowered = ALIASES.get(lowered, lowered)
    for table in tables:
        for band, common in COMMON_NAMES[table].items():
            if common == lowered:
                return band
    loose = _LANDSAT_LOOSE.fullmatch(name.strip())
    if loose and tables[0] != SENTINEL2:
        band = f"SR_B{int(loose[1])}"
        return band if band in COMMON_NAMES[tables[0]] else name
    return canonical_band(name)


def _tables(sensor: str | None) -> tuple[str, ...]:
    if sensor is None:
        return (SENTINEL2, LANDSAT_OLI)
    lowered = sensor.lower()
    if lowered.startswith("landsat"):
        return (LANDSAT_TM,) if lowered[-1:] in "457" else (LANDSAT_OLI,)
    return (SENTINEL2,) if lowered.startswith("sentinel") else (SENTINEL2, LANDSAT_OLI)


def same_band(a: str, b: str, sensor: str | None = None) -> bool:
    """Whether names `a` and `b` denote one band: equal canonical names, or a common name and
    the sensor band it names (`red` and `B04`; see `common_name` for `sensor`)."""
    first, second = canonical_band(a), canonical_band(b)
    if first == second:
        return True
    first = ALIASES.get(first, first)
    second = ALIASES.get(second, second)
    if first == second and first in COMMON:
        return True
    if second in COMMON:
        first, second = second, first
    return first in COMMON and common_name(second, sensor) == first


def match_bands(have: Sequence[str], want: Sequence[str]) -> list[int | None]:
    """For each name of `want`, the index of the one band of `have` it denotes, or None.

    An identical name wins; otherwise the band must be the only one `same_band` accepts.
    """
    found: list[int | None] = []
    for name in want:
        if name in have:
            found.append(list(have).index(name))
            continue
        hits = [k for k, band in enumerate(have) if same_band(band, name)]
        found.append(hits[0] if len(hits) == 1 else None)
    return found


def canonical_bands(names: Sequence[str]) -> list[str]:
    """`names` in canonical form, or `names` as they are where two would become one."""
    canonical = [canonical_band(n) for n in names]
    return canonical if len(set(canonical)) == len(canonical) else list(names)


def pick_bands(scene: xr.DataArray, want: Sequence[str]) -> tuple[xr.DataArray, list[str]]:
    """The scene's bands that `want` names, in its order and named as it names them (for
    `match_bands`), and the names of `want` the scene lacks (then the scene comes back as is)."""
    have = [str(b) for b in scene["band"].values]
    picks = match_bands(have, want)
    missing = [name for name, k in zip(want, picks, strict=True) if k is None]
    if missing:
        return scene, missing
    if have == list(want):
        return scene, []
    return scene.isel(band=[k for k in picks if k is not None]).assign_coords(band=list(want)), []

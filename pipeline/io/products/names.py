"""Band names inside products: Sentinel-2 ids (B01…B12, B8A), Landsat SR_Bn, common names.

A minimal stand-in for the canonical names of `bandfusion.io.bands`: the product readers name
their bands with `canonical`, and a band asked for by any of its names is found with `matches`.
"""

from __future__ import annotations

import re

_S2_ID = re.compile(r"^B0?(\d{1,2}|8A)$", re.IGNORECASE)
_LANDSAT_ID = re.compile(r"^(?:SR_)?B(\d{1,2})$", re.IGNORECASE)

COMMON_NAMES: dict[str, dict[str, str]] = {
    "sentinel-2": {
        "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
        "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
        "cirrus": "B10", "swir16": "B11", "swir22": "B12",
    },
    "landsat-oli": {
        "coastal": "SR_B1", "blue": "SR_B2", "green": "SR_B3", "red": "SR_B4",
        "nir08": "SR_B5", "swir16": "SR_B6", "swir22": "SR_B7",
    },
    "landsat-tm": {
        "blue": "SR_B1", "green": "SR_B2", "red": "SR_B3", "nir08": "SR_B4",
        "swir16": "SR_B5", "swir22": "SR_B7",
    },
}  # fmt: skip
"""Common names (STAC eo:common_name) of each sensor family's reflectance bands."""


def family(sensor: str) -> str | None:
    """The band-naming family of a sensor: sentinel-2, landsat-oli (8, 9) or landsat-tm (4–7)."""
    sensor = sensor.lower()
    if sensor.startswith("sentinel-2"):
        return "sentinel-2"
    if match := re.match(r"landsat-?(\d)", sensor):
        return "landsat-oli" if int(match.group(1)) >= 8 else "landsat-tm"
    return None


def canonical(name: str, sensor: str) -> str:
    """The product band name of `name` for `sensor`: "B4"/"red" → "B04" on Sentinel-2,
    "B4"/"red" → "SR_B4" on Landsat 8; names it does not know are kept as they are."""
    kind = family(sensor)
    if kind is None:
        return name
    if (band := COMMON_NAMES[kind].get(name.lower())) is not None:
        return band
    if kind == "sentinel-2" and (match := _S2_ID.match(name)):
        number = match.group(1).upper()
        return "B8A" if number == "8A" else f"B{int(number):02d}"
    if kind != "sentinel-2" and (match := _LANDSAT_ID.match(name)):
        return f"SR_B{int(match.group(1))}"
    return name

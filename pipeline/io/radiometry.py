"""A scene's radiometric domain, and a check of its pixels against the metadata that made it.

`open_scene` records the domain in `scene.attrs`:

- `attrs["radiometry"]`: `"dn"` where every band holds its files' values as stored,
  `"reflectance"` where every band was scaled (reflectance = value × scale + offset), `"mixed"`
  where some were and some were not;
- `attrs["radiometry_source"]`: where the scale and offset came from,
  `"scale/offset from GDAL tags"` (or a product's metadata file), empty for `"dn"`.

A model records the domain it was trained in and refuses scenes of another one. Metadata is
known to lie (an offset applied twice, or never), so `check_radiometry` looks at a small sample
of a reflectance scene's valid pixels and refuses values no surface reflectance takes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import xarray as xr
from bandfusion.errors import SceneError
from bandfusion.io.nodata import band_nodata, valid_mask

DN = "dn"
REFLECTANCE = "reflectance"
MIXED = "mixed"
GDAL_TAGS = "GDAL tags"
"""The origin of scale and offset read from a file's own tags."""

REFLECTANCE_RANGE = (-0.2, 2.5)
"""What valid surface reflectance spans between its 5th and 95th percentiles, bright cloud and
snow included: atmospheric correction takes thick cloud's coastal and blue bands well above 1
(docs/engine.md gives the real product's figures). Values left unscaled, or scaled by a
quantification value ten times too small, land far above the upper bound."""
RANGE_PERCENTILE = 5.0
DARK_PERCENTILE = 1.0
"""The percentile of each band taken as its dark targets (water, shadow, dense vegetation)."""
DARKEST_BELOW = 0.07
"""A scene's darkest band has dark targets below this; an offset of −0.1 never applied puts
every band's above it."""
NEGATIVE_BELOW = -0.05
"""Dark targets below this, in any band, mean an offset was applied once too often."""
SAMPLE_CHUNKS = 8
"""At most this many chunks, spread over the scene, are read for the check."""
SAMPLE_PIXELS = 200_000
"""Reading stops once this many valid pixels are in the sample."""
MIN_PIXELS = 1_000
"""Fewer valid pixels than this say nothing; the check then passes."""


def radiometry_attrs(scaled: Iterable[tuple[bool, str]]) -> dict[str, str]:
    """The scene attrs for its sources' (scaled?, origin of scale/offset) pairs."""
    pairs = list(scaled)
    origins = sorted({origin for is_scaled, origin in pairs if is_scaled})
    if not origins:
        return {"radiometry": DN, "radiometry_source": ""}
    domain = REFLECTANCE if all(is_scaled for is_scaled, _ in pairs) else MIXED
    return {"radiometry": domain, "radiometry_source": f"scale/offset from {', '.join(origins)}"}


def scene_radiometry(scene: xr.DataArray) -> dict[str, str]:
    """`{"domain": ..., "source": ...}` from the scene's attrs; empty where it records none."""
    if "radiometry" not in scene.attrs:
        return {}
    return {
        "domain": str(scene.attrs["radiometry"]),
        "source": str(scene.attrs.get("radiometry_source", "")),
    }


def check_radiometry(scene: xr.DataArray, name: str) -> None:
    """Refuse a reflectance scene whose sampled pixels no correct scale and offset give.

    Reads at most `SAMPLE_CHUNKS` chunks. Refused, with one line naming `name` and the band:
    values outside `REFLECTANCE_RANGE` at the 5th/95th percentiles (not scaled, or scaled
    wrongly), dark targets below `NEGATIVE_BELOW` (an offset applied twice), or no band with dark
    targets below `DARKEST_BELOW` (an offset not applied). A scene in another domain, or with
    too few valid pixels to judge, passes.
    """
    if scene.attrs.get("radiometry") != REFLECTANCE:
        return
    pixels = _sample(scene)
    if len(pixels) < MIN_PIXELS:
        return
    bands = [str(b) for b in scene["band"].values]
    low, dark, high = np.percentile(
        pixels,
        [RANGE_PERCENTILE, DARK_PERCENTILE, 100 - RANGE_PERCENTILE],
        axis=0,
        method="nearest",
    )
    source = scene.attrs.get("radiometry_source", "")
    for band, lo, hi in zip(bands, low, high, strict=True):
        if lo < REFLECTANCE_RANGE[0] or hi > REFLECTANCE_RANGE[1]:
            raise _refused(
                name,
                band,
                f"reflectance spans {lo:.4g} to {hi:.4g} (5th to 95th percentile), outside "
                f"{REFLECTANCE_RANGE[0]} to {REFLECTANCE_RANGE[1]}: not scaled, or scaled "
                f"wrongly",
                source,
            )
    k = int(np.argmin(dark))
    if dark[k] < NEGATIVE_BELOW:
        raise _refused(
            name,
            bands[k],
            f"dark pixels sit at {dark[k]:.3f}: the offset looks applied twice",
            source,
        )
    if dark[k] > DARKEST_BELOW:
        raise _refused(
            name,
            bands[k],
            f"even this darkest band has no pixel near 0 (1st percentile {dark[k]:.3f}): "
            "the offset looks not applied",
            source,
        )


def _refused(name: str, band: str, problem: str, source: str) -> SceneError:
    origin = f" ({source})" if source else ""
    return SceneError(
        f"{name}: band {band}: {problem}{origin}; if the metadata is right, trust it",
        setting="trust_metadata",
    )


def _sample(scene: xr.DataArray) -> np.ndarray:
    """(pixels, bands) float64 valid pixels from up to `SAMPLE_CHUNKS` chunks spread over it."""
    data = scene.data
    nodata = band_nodata(scene)
    rows, cols = len(data.chunks[1]), len(data.chunks[2])
    picks = np.unique(np.linspace(0, rows * cols - 1, min(SAMPLE_CHUNKS, rows * cols)).round())
    parts: list[np.ndarray] = []
    count = 0
    for pick in picks.astype(int):
        block = _block(data, int(pick) // cols, int(pick) % cols)
        valid = valid_mask(block, nodata)
        table = block[:, valid].T.astype(np.float64)
        parts.append(table)
        count += len(table)
        if count >= SAMPLE_PIXELS:
            break
    return np.concatenate(parts) if parts else np.empty((0, data.shape[0]))


def _block(data: Any, row: int, col: int) -> np.ndarray:
    """One chunk of the (band, y, x) array, all bands, computed in this thread."""
    return np.asarray(data.blocks[:, row, col].compute(scheduler="synchronous"))

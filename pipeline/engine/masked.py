"""Masked pixels in a class map: their own values, names and colours, never a class or nodata.

Where a scene has a `mask` coordinate (`bandfusion.io.cloudmask`), the map marks a pixel masked
for reason k with `masked_value(k)` = 255 - k: the values just below the map's usual nodata, 255
(254 cloud, 253 cirrus, 252 shadow, 251 dilated cloud, 250 snow, 249 saturated, 248 dark; see
docs/engine.md). They are named "masked: REASON" in the map's class names (CLASS_NAMES tag and
the `.aux.xml` categories) and coloured from `MASK_COLOURS`. Pixels the mask layer has no data
for are nodata. Fixed values, whatever the model, so maps of one area by different models can be
compared pixel for pixel; a model whose class ids take one of them is refused on masked scenes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from bandfusion.colours import MASK_COLOURS
from bandfusion.errors import BandfusionError
from bandfusion.io.cloudmask import CLEAR, MASK_NODATA, REASONS, mask_reasons

MASKED_PREFIX = "masked: "
"""How a map names its masked values: "masked: cloud"."""
MASKED_VALUES = tuple(MASK_NODATA - code for code in range(1, len(REASONS) + 1))
"""The map values of masked pixels, reason 1 (cloud) first."""


def masked_value(code: int) -> int:
    """The map value of pixels masked for reason `code`."""
    return MASK_NODATA - code


def refuse_clashes(class_ids: list[int]) -> None:
    """Refuse a model whose class ids are map values of masked pixels."""
    clashes = sorted(set(class_ids) & set(MASKED_VALUES))
    if clashes:
        raise BandfusionError(
            f"the model's class ids {clashes} are the map values of masked pixels "
            f"({min(MASKED_VALUES)}-{max(MASKED_VALUES)}); map this scene without a mask"
        )


def paint_masked(out: np.ndarray, mask: np.ndarray) -> None:
    """Write the masked values into a map block `out` where `mask` codes a reason."""
    masked = (mask != CLEAR) & (mask != MASK_NODATA)
    if masked.any():
        out[masked] = (MASK_NODATA - mask[masked]).astype(out.dtype)


def masked_map_attrs(mask: xr.DataArray, attrs: dict[str, Any]) -> dict[str, Any]:
    """A class map's `attrs` with the mask's reasons added: "masked" ({value: reason}), their
    class names ("masked: cloud") and, where the map has a colour table, their colours."""
    masked = {masked_value(code): reason for code, reason in mask_reasons(mask).items()}
    names = {value: f"{MASKED_PREFIX}{reason}" for value, reason in masked.items()}
    extra: dict[str, Any] = {"masked": masked, "class_names": {**attrs["class_names"], **names}}
    if "colormap" in attrs:
        colours = {value: (*MASK_COLOURS[reason], 255) for value, reason in masked.items()}
        extra["colormap"] = {**attrs["colormap"], **colours}
    return {**attrs, **extra}


def excluded_values(class_map: xr.DataArray) -> tuple[int, ...]:
    """The map values that are no class: its nodata and its masked values."""
    return (int(class_map.attrs["nodata"]), *class_map.attrs.get("masked", {}))

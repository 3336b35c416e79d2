"""A scene's files named in one string, for messages about the scene as a whole."""

from __future__ import annotations

import xarray as xr

MAX_LISTED = 3
"""More distinct files than this (a product's band files, a long list of bands) are named by
their common folder, their count and the first and last, so a message stays one readable line."""


def scene_sources(scene: xr.DataArray) -> str:
    """The scene's distinct source files in band order, comma-separated (one for a stack); more
    than MAX_LISTED as `FOLDER/ (N files: FIRST … LAST)`.

    A scene built by hand without a `source` coordinate is named "the scene".
    """
    if "source" not in scene.coords:
        return "the scene"
    files = list(dict.fromkeys(str(s) for s in scene["source"].values))
    if len(files) <= MAX_LISTED:
        return ", ".join(files)
    folder = _common_folder(files)
    cut = len(folder) + 1 if folder else 0
    first, last = (name[cut:] for name in (files[0], files[-1]))
    shown = f"{len(files)} files: {first} … {last}"
    return f"{folder}/ ({shown})" if folder else shown


def _common_folder(files: list[str]) -> str:
    """The longest folder every file is under, split on '/' (so URLs keep their '//'); "" if
    none."""
    common: list[str] = []
    for level in zip(*(name.split("/")[:-1] for name in files), strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return "/".join(common)

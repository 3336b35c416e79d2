"""A scene's files named in one string, for messages about the scene as a whole."""

from __future__ import annotations

import xarray as xr


def scene_sources(scene: xr.DataArray) -> str:
    """The scene's distinct source files in band order, comma-separated (one for a stack).

    A scene built by hand without a `source` coordinate is named "the scene".
    """
    if "source" not in scene.coords:
        return "the scene"
    return ", ".join(dict.fromkeys(str(s) for s in scene["source"].values))

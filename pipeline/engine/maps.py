"""Writing a model's maps: the class map with its colour map and class names, or probabilities.

One place, so `predict`, the batch job and notebooks write identical files.
"""

from __future__ import annotations

from pathlib import Path

import xarray as xr
from bandfusion.io.geotiff import write_geotiff
from bandfusion.models.checkpoint import TrainedModel
from bandfusion.progress import Count


def class_colormap(model: TrainedModel) -> dict[int, tuple[int, int, int, int]] | None:
    """The model's colours as a GeoTIFF colour table, or None where ids cannot index one."""
    ids = model.meta.class_ids
    if min(ids) < 0 or max(ids) > 65535:
        return None
    return {cid: (*rgb, 255) for cid, rgb in zip(ids, model.meta.class_colors, strict=True)}


def write_model_output(
    array: xr.DataArray,
    path: str | Path,
    model: TrainedModel,
    *,
    cog: bool = True,
    scheduler: str | None = None,
    progress: Count | None = None,
) -> Path:
    """Write a class map `(y, x)` or probabilities `(class, y, x)` from `predict_scene`.

    Class maps get the model's colour map, mode-resampled overviews and class names; probability
    bands are named after the classes and get average-resampled overviews.
    """
    meta = model.meta
    is_map = array.ndim == 2
    return write_geotiff(
        array,
        path,
        nodata=array.attrs["nodata"],
        colormap=class_colormap(model) if is_map else None,
        class_names=dict(zip(meta.class_ids, meta.class_names, strict=True)),
        band_names=None if is_map else meta.class_names,
        tags={"BANDFUSION_BANDS": ",".join(meta.bands)},
        cog=cog,
        overview_resampling="mode" if is_map else "average",
        scheduler=scheduler,
        progress=progress,
    )

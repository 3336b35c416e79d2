"""A model meets scenes of the radiometric domain it was trained in, and no other.

A model trained on digital numbers maps reflectance wrongly, and one trained on reflectance
maps digital numbers wrongly, without a sign of it in the map: the domains are compared before
a pixel is classified. A model or scene that records no domain (model.json before format 3, an
array built by hand) is not checked.
"""

from __future__ import annotations

import xarray as xr
from bandfusion.errors import SceneError
from bandfusion.io.radiometry import scene_radiometry
from bandfusion.io.sources import scene_sources
from bandfusion.models.checkpoint import TrainedModel


def check_domain(scene: xr.DataArray, model: TrainedModel) -> None:
    """SceneError, naming the scene and both domains, where they are known and differ."""
    trained = model.meta.radiometry
    here = scene_radiometry(scene)
    if not trained.get("domain") or not here or trained["domain"] == here["domain"]:
        return
    raise SceneError(
        f"{scene_sources(scene)}: the scene is in {_shown(here)}, the model was trained in "
        f"{_shown(trained)}; map it with a model trained in its domain"
    )


def _shown(radiometry: dict[str, str]) -> str:
    source = radiometry.get("source")
    return radiometry["domain"] + (f" ({source})" if source else "")

"""Which of a product's files a scene reads, and on which grid: the resampling policy.

The grid's resolution is the one asked for, else the finest resolution held by the bands asked
for. Each band is read from its file at that resolution where the product holds one (the
producer's own aggregation: Sentinel-2 L2A ships most bands at 10, 20 and 60 m), else from the
file nearest to it (the finer one on ties), which the scene resamples onto the grid with its
`resampling` method. Sentinel-2's grids nest exactly (a 60 m pixel is 6 x 6 pixels of 10 m,
with the same origin), so the default, nearest, repeats each coarse value over the fine pixels
it covers: no value is invented, and a pixel's reflectance is one the product measured.
Going the other way (a 10 m-only band such as L2A's B08 onto a 60 m grid), `average` is the
method that keeps the area's mean reflectance; nearest keeps one measured pixel of each 6 x 6.
"""

from __future__ import annotations

from collections.abc import Sequence

from bandfusion.errors import SettingError
from bandfusion.io.bands import sensor_band
from bandfusion.io.products.model import BandAsset, Product

GRIDS = {"sentinel-2": (10.0, 20.0, 60.0)}
"""The grids a sensor's products are made on, offered whether or not a cut-down product holds
files at each."""


def choose_bands(
    product: Product, bands: Sequence[str] | None, resolution: float | None
) -> tuple[list[BandAsset], float | None]:
    """The file of each band asked for (every band the product holds when None, in its order)
    and the grid's resolution in metres (None where the product does not say)."""
    grids = next((g for s, g in GRIDS.items() if product.sensor.lower().startswith(s)), ())
    held = sorted({*product.resolutions(), *grids})
    if resolution is not None and resolution not in held:
        have = ", ".join(f"{r:g}" for r in held) or "no stated resolution"
        raise SettingError("resolution", f"{resolution:g}", f"{product.path} holds {have} m")
    names = product.band_names() if bands is None else [_find(product, b) for b in bands]
    assets = {name: [a for a in product.bands if a.name == name] for name in names}
    if resolution is None:
        known = [a.resolution for n in names for a in assets[n] if a.resolution is not None]
        resolution = min(known, default=None)
    return [_nearest(assets[name], resolution) for name in names], resolution


def _find(product: Product, asked: str) -> str:
    name = sensor_band(asked.strip(), product.sensor)
    held = product.band_names()
    if name not in held:
        raise SettingError(
            "bands", asked, f"{product.path} holds no such band; it holds {', '.join(held)}"
        )
    return name


def _nearest(assets: list[BandAsset], resolution: float | None) -> BandAsset:
    if resolution is None:
        return assets[0]

    def distance(asset: BandAsset) -> tuple[float, float]:
        res = asset.resolution if asset.resolution is not None else float("inf")
        return (abs(res - resolution), res)

    return min(assets, key=distance)

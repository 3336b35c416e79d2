"""Clouds, shadows and other pixels not to classify, from a product's own quality layer.

A mask layer (Sentinel-2's scene classification `SCL`, Landsat Collection 2's `QA_PIXEL`) is
read window by window onto the scene's grid by the scene's own reader (nearest neighbour, so a
20 m SCL lands on a 10 m grid without inventing classes) and decoded, by a written policy, into
the scene's `mask` coordinate: (y, x) uint8, chunked like the scene, 0 where the pixel is clear,
k where it is masked for reason k (`REASONS[k - 1]`), `MASK_NODATA` where the layer itself says
there is no data (its fill, or outside its extent). The engine reads that coordinate wherever a
scene has one: maps mark masked pixels with their own values, sampling never draws them.

Policies (`MaskPolicy.parse`, the `--mask` values):

- `auto` (the default): the product's default reasons, `DEFAULT_REASONS[kind]`;
- `none`: no mask at all (no layer is read);
- a comma list of reasons, e.g. `cloud,shadow` or `auto,snow` (the defaults plus snow).

| reason | S2 SCL classes | Landsat QA_PIXEL bit | masked by default |
| --- | --- | --- | --- |
| cloud | 8 cloud medium, 9 cloud high probability | 3 cloud | yes |
| cirrus | 10 thin cirrus | 2 cirrus (high confidence) | yes |
| shadow | 3 cloud shadow | 4 cloud shadow | yes |
| dilated_cloud | — | 1 dilated cloud | yes |
| snow | 11 snow | 5 snow | no |
| saturated | 1 saturated or defective | — | yes |
| dark | 2 dark area / topographic shadow | — | no |

SCL 0 (no data) and QA_PIXEL bit 0 (fill) are no data, whatever the policy; SCL values above
11 are no data too. A QA_PIXEL pixel with several bits set takes the first reason of `REASONS`
that the policy masks. QA_PIXEL bits from USGS's Collection 2 Level-2 definition: 0 fill,
1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow, 5 snow, 6 clear, 7 water.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import dask.array as da
import numpy as np
import xarray as xr
from bandfusion.errors import SceneError, SettingError
from bandfusion.io.grid import Grid
from bandfusion.io.masks import covers
from bandfusion.io.reader import SceneReader, SourceFile
from bandfusion.io.remote import file_stamp
from bandfusion.io.scene import inspect_raster
from dask.base import tokenize

REASONS = ("cloud", "cirrus", "shadow", "dilated_cloud", "snow", "saturated", "dark")
"""Why a pixel is masked; reason k of the `mask` coordinate is REASONS[k - 1]. The order is the
precedence where a layer gives several reasons for one pixel."""
CLEAR = 0
MASK_NODATA = 255
"""The `mask` coordinate's value where the mask layer has no data: the pixel is nodata."""
S2_SCL, LANDSAT_QA_PIXEL = "s2_scl", "landsat_qa_pixel"
KINDS = (S2_SCL, LANDSAT_QA_PIXEL)
DEFAULT_REASONS = {
    S2_SCL: frozenset({"cloud", "cirrus", "shadow", "saturated"}),
    LANDSAT_QA_PIXEL: frozenset({"cloud", "cirrus", "shadow", "dilated_cloud"}),
}
_SCL_CLASSES = {
    1: "saturated",
    2: "dark",
    3: "shadow",
    8: "cloud",
    9: "cloud",
    10: "cirrus",
    11: "snow",
}
_SCL_NO_DATA, _SCL_LAST = 0, 11
_QA_FILL_BIT = 0
_QA_BITS = {"dilated_cloud": 1, "cirrus": 2, "cloud": 3, "shadow": 4, "snow": 5}
_FILL_VALUE = {S2_SCL: _SCL_NO_DATA, LANDSAT_QA_PIXEL: 1 << _QA_FILL_BIT}
"""What the layer's pixels outside its extent read as: its own no-data."""
_NAME_HINTS = {"_SCL": S2_SCL, "QA_PIXEL": LANDSAT_QA_PIXEL}


@dataclass(frozen=True)
class MaskPolicy:
    """Which reasons to mask: the product's defaults (`with_defaults`) and/or named ones."""

    reasons: frozenset[str] = frozenset()
    with_defaults: bool = True

    @classmethod
    def parse(cls, text: str) -> MaskPolicy:
        """`auto` (or `default`), `none`, or a comma list of REASONS, `auto` among them."""
        items = {item.strip().lower() for item in text.split(",") if item.strip()}
        if items == {"none"}:
            return cls(frozenset(), with_defaults=False)
        defaults = bool(items & {"auto", "default"})
        named = items - {"auto", "default"}
        unknown = sorted(named - set(REASONS))
        if unknown or not items:
            raise SettingError(
                "mask", text, f"use auto, none or a comma list of {', '.join(REASONS)}"
            )
        return cls(frozenset(named), with_defaults=defaults)

    @property
    def masks_nothing(self) -> bool:
        return not self.with_defaults and not self.reasons

    def reasons_for(self, kind: str) -> tuple[str, ...]:
        """The reasons masked in a `kind` layer, in REASONS order."""
        chosen = self.reasons | (
            DEFAULT_REASONS[_checked_kind(kind)] if self.with_defaults else set()
        )
        return tuple(reason for reason in REASONS if reason in chosen)


AUTO = MaskPolicy()


class MaskLayerLike(Protocol):
    """What `mask_scene` needs of a product's mask layer (`products.model.MaskLayer`)."""

    @property
    def kind(self) -> str: ...

    @property
    def href(self) -> str: ...


@dataclass(frozen=True)
class LayerRef:
    """A mask layer named by hand (`--mask-layer`) or listed in a scene's attrs."""

    kind: str
    href: str


def mask_scene(
    scene: xr.DataArray, policy: MaskPolicy = AUTO, layers: Iterable[MaskLayerLike] = ()
) -> xr.DataArray:
    """`scene` with the mask of the first of `layers` this module reads, by `policy`; without
    `layers`, of those the scene's product holds (attrs["mask_layers"], set by `open_scene`).

    Without such a layer the scene is returned as it is under `auto` or `none`; a policy that
    names reasons is refused, as nothing could honour it.
    """
    if policy.masks_nothing:
        return scene
    listed = list(layers) or [LayerRef(k, h) for k, h in scene.attrs.get("mask_layers", ())]
    layer = next((layer for layer in listed if layer.kind in KINDS), None)
    if layer is None:
        if policy.reasons:
            raise SettingError(
                "mask", ",".join(sorted(policy.reasons)), "the scene has no mask layer"
            )
        return scene
    return attach_mask(scene, layer.href, layer.kind, policy)


def kind_of(href: str | os.PathLike[str]) -> str | None:
    """The layer kind a file's name shows (`*_SCL_20m.jp2`, `*_QA_PIXEL.TIF`), or None."""
    name = Path(href).name.upper()
    return next((kind for hint, kind in _NAME_HINTS.items() if hint in name), None)


def attach_mask(
    scene: xr.DataArray, layer_href: str | os.PathLike[str], kind: str, policy: MaskPolicy
) -> xr.DataArray:
    """`scene` with a lazy `mask` coordinate (y, x) from the `kind` layer at `layer_href`.

    The layer is read on the scene's grid, chunk by chunk as the scene is, by the scene's
    reader with nearest-neighbour resampling. Its attrs: "reasons" ({code: reason} of the
    reasons `policy` masks), "kind", "source" and "nodata" (MASK_NODATA).
    """
    kind = _checked_kind(kind)
    grid = Grid.of(scene)
    dataset, name = inspect_raster(layer_href)
    with dataset:
        source = _layer_source(dataset, name, kind, grid)
    reasons = policy.reasons_for(kind)
    reader = SceneReader((source,), grid, "nearest", np.dtype(source.dtype))
    chunks = scene.chunks or tuple((n,) for n in scene.shape)
    raw = da.from_array(
        reader,
        chunks=((1,), *chunks[1:]),
        lock=False,
        asarray=False,
        fancy=False,
        name=f"mask-layer-{tokenize(reader, file_stamp(name), chunks[1:])}",
        meta=np.empty((0, 0, 0), dtype=source.dtype),
    )
    decoder = _Decoder(kind, reasons)
    codes = raw.map_blocks(
        decoder, drop_axis=0, dtype=np.uint8, meta=np.empty((0, 0), dtype=np.uint8)
    )
    attrs = {
        "reasons": {REASONS.index(r) + 1: r for r in reasons},
        "kind": kind,
        "source": name,
        "nodata": MASK_NODATA,
    }
    return scene.assign_coords(mask=xr.Variable(("y", "x"), codes, attrs=attrs))


def _checked_kind(kind: str) -> str:
    if kind not in KINDS:
        raise SettingError("mask_kind", kind, f"use one of {', '.join(KINDS)}")
    return kind


def _layer_source(dataset: Any, name: str, kind: str, grid: Grid) -> SourceFile:
    """The layer as the scene reader's one source file: its first band, read as it is."""
    layer = Grid(dataset.crs, dataset.transform, dataset.width, dataset.height)
    dtype = dataset.dtypes[0]
    if dtype[0] not in "iu":
        raise SceneError(f"{name}: a {kind} mask layer holds integers, not {dtype}")
    if (layer.crs is None) != (grid.crs is None) or (
        layer.crs is not None and layer.crs != grid.crs
    ):
        raise SceneError(f"{name}: CRS {layer.crs} differs from the scene's {grid.crs}")
    return SourceFile(
        path=name,
        indexes=(1,),
        first=0,
        grid=layer,
        nodata=_FILL_VALUE[kind],
        scale=1.0,
        offset=0.0,
        dtype=dtype,
        # Where the layer misses part of the grid, its warped alpha band marks those pixels,
        # which the reader fills with the layer's no-data.
        mask_bands=() if covers(layer, grid) else (1,),
    )


@dataclass(frozen=True)
class _Decoder:
    """Layer pixels (1, h, w) → mask codes (h, w); picklable for dask workers."""

    kind: str
    reasons: tuple[str, ...]

    def __call__(self, block: np.ndarray) -> np.ndarray:
        values = block[0]
        if self.kind == S2_SCL:
            return self._table()[np.clip(values, 0, _SCL_LAST + 1)]
        return self._bits(values)

    def _table(self) -> np.ndarray:
        table = np.full(_SCL_LAST + 2, CLEAR, dtype=np.uint8)
        for value, reason in _SCL_CLASSES.items():
            if reason in self.reasons:
                table[value] = REASONS.index(reason) + 1
        table[[_SCL_NO_DATA, _SCL_LAST + 1]] = MASK_NODATA
        return table

    def _bits(self, values: np.ndarray) -> np.ndarray:
        codes = np.zeros(values.shape, dtype=np.uint8)
        for reason in reversed(self.reasons):  # the first reason is written last: it wins
            if reason in _QA_BITS:
                codes[(values >> _QA_BITS[reason]) & 1 == 1] = REASONS.index(reason) + 1
        codes[(values >> _QA_FILL_BIT) & 1 == 1] = MASK_NODATA
        return codes


def mask_of(scene: xr.DataArray) -> xr.DataArray | None:
    """The scene's `mask` coordinate, or None where it has none."""
    return scene.coords.get("mask")


def mask_reasons(mask: xr.DataArray) -> dict[int, str]:
    """{code: reason} of a `mask` coordinate."""
    return {int(code): str(reason) for code, reason in mask.attrs["reasons"].items()}


def clear_in(scene: xr.DataArray, rows: slice, cols: slice) -> np.ndarray | bool:
    """Bool (y, x) of a window: True where the scene's mask says clear; True without a mask."""
    mask = mask_of(scene)
    if mask is None:
        return True
    return np.asarray(mask.data[rows, cols]) == CLEAR

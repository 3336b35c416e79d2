"""The labelled sets of the accuracy suite: where each comes from, how it is read, and the
protocol that splits it honestly.

Every set is real and public (see data/README.md and ../shared/data/README.md for sources and
licences). Pixels of one scene neighbour each other, so every set here is split by spatially
disjoint blocks with a buffer (`Protocol(name="block", buffer=...)`); none of them comes with a
benchmark-defined fixed split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from bandfusion import Grid, open_scene, read_labels
from bandfusion.engine.compare import Protocol
from bandfusion.io.labels import Labels
from bandfusion.io.legend import PartialLegend, resolve_legend
from bandfusion.io.nodata import nodata_coord

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data"
SHARED_PLACES = (REPO.parent / "shared" / "data", REPO.parents[1] / "shared" / "data")
"""Where the shared real data sits: beside the checkout, or beside its worktree folder."""
SAFE_ROOT = Path("s2_l2a_safe")

S2_60M_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12")
SCL_CLASSES: dict[int, tuple[str, tuple[int, ...]]] = {
    1: ("vegetation", (4,)),
    2: ("not vegetated", (5,)),
    3: ("water", (6,)),
    4: ("cloud", (8, 9)),
    5: ("cloud shadow", (3,)),
    6: ("thin cirrus", (10,)),
}
"""Classes of the SAFE set: id → (name, the SCL values it takes). SCL 0 (no data), 1
(saturated), 2 (dark area), 7 (unclassified) and 11 (snow, 10 pixels) are left unlabelled."""


@dataclass(frozen=True)
class Dataset:
    """One labelled set: its name, a loader for (scene, labels), and its protocol."""

    name: str
    load: Callable[[], tuple[xr.DataArray, Labels]]
    protocol: Protocol
    about: str


def sen1floods11(sensor: str) -> tuple[xr.DataArray, Labels]:
    """The Sen1Floods11 chip Spain_7370579: sensor "S2" (13 L1C bands) or "S1" (VV, VH dB)."""
    folder = DATA / "sen1floods11_spain"
    scene = open_scene(folder / f"Spain_7370579_{sensor}Hand.tif")
    labels = read_labels(
        folder / "Spain_7370579_LabelHand.tif",
        Grid.of(scene),
        unlabelled=-1,
        legend=folder / "legend.json",
    )
    return scene, labels


def slovenia(label_file: str, attribute: str | None = None) -> tuple[xr.DataArray, Labels]:
    """The eo-learn Slovenia NDVI stack (68 dates) with `label_file`: lulc.tif, or LULC.gpkg
    with its `attribute` LULC_ID (rasterized on the stack's grid)."""
    folder = DATA / "eolearn_slovenia"
    scene = open_scene(folder / "ndvi_stack.tif")
    labels = read_labels(
        folder / label_file, Grid.of(scene), attribute=attribute, legend=folder / "legend.json"
    )
    return scene, labels


def s2_safe_scl(safe: Path | None = None) -> tuple[xr.DataArray, Labels]:
    """The Sentinel-2 L2A SAFE sample at 60 m: 11 bands as reflectance, labels from its SCL.

    Read with rasterio (the product's JPEG 2000 files, one per band): reflectance is
    (DN − 1000) / 10000 (processing baseline 04.00); DN 0 is the product's fill, made NaN.
    The labels are SCL_CLASSES of the scene classification, which is Sen2Cor's own output
    from these bands: the set measures how well a method learns that classifier.
    """
    root = safe or _safe_product()
    images = next(root.glob("GRANULE/*/IMG_DATA/R60m"))
    with rasterio.open(next(images.glob("*_SCL_60m.jp2"))) as src:
        scl = src.read(1)
        grid = Grid(src.crs, src.transform, src.width, src.height)
    bands = [_reflectance(next(images.glob(f"*_{band}_60m.jp2"))) for band in S2_60M_BANDS]
    scene = xr.DataArray(
        np.stack(bands).astype(np.float32),
        dims=("band", "y", "x"),
        coords={
            "band": list(S2_60M_BANDS),
            "nodata": nodata_coord([None] * len(bands)),
            **grid.coords(),
        },
        attrs=grid.to_attrs(),
    )
    values = np.zeros(scl.shape, dtype=np.int64)
    for class_id, (_, scl_values) in SCL_CLASSES.items():
        values[np.isin(scl, scl_values)] = class_id
    names = PartialLegend(names={k: name for k, (name, _) in SCL_CLASSES.items()})
    legend = resolve_legend(sorted(SCL_CLASSES), names)
    return scene, Labels(values, values > 0, legend, str(root))


def _reflectance(path: Path) -> np.ndarray:
    """One band file of the product as float32 reflectance, NaN where it holds fill (DN 0)."""
    with rasterio.open(path) as src:
        dn = src.read(1)
    return np.where(dn == 0, np.nan, (dn.astype(np.float32) - 1000) / 10000).astype(np.float32)


def _safe_product() -> Path:
    """The SAFE product: the whole tile of the shared data where it is there (all six
    classes), else the 384² px cut bundled in data/ (no "not vegetated" pixels)."""
    places = [*SHARED_PLACES, DATA]
    for base in places:
        found = sorted((base / SAFE_ROOT).glob("*.SAFE"))
        if found:
            return found[0]
    raise FileNotFoundError(f"no Sentinel-2 SAFE product under {' or '.join(map(str, places))}")


WATER_BLOCKS = Protocol(name="block", block_size=64, test_fraction=0.3, buffer=4)
SLOVENIA_BLOCKS = Protocol(name="block", block_size=20, test_fraction=0.3, buffer=2)
SAFE_BLOCKS = Protocol(name="block", block_size=64, test_fraction=0.3, buffer=2)

DATASETS: tuple[Dataset, ...] = (
    Dataset(
        "sen1floods11-s2",
        lambda: sen1floods11("S2"),
        WATER_BLOCKS,
        "Sen1Floods11 Spain_7370579, Sentinel-2 L1C 13 bands, hand-labelled water (512² px, 10 m)",
    ),
    Dataset(
        "sen1floods11-s1",
        lambda: sen1floods11("S1"),
        WATER_BLOCKS,
        "the same chip and labels, Sentinel-1 VV and VH backscatter (dB) only: radar water",
    ),
    Dataset(
        "slovenia-raster",
        lambda: slovenia("lulc.tif"),
        SLOVENIA_BLOCKS,
        "eo-learn Slovenia, 68-date NDVI stack, land use / land cover from lulc.tif (100×101 px)",
    ),
    Dataset(
        "slovenia-vector",
        lambda: slovenia("LULC.gpkg", "LULC_ID"),
        SLOVENIA_BLOCKS,
        "the same stack, labels rasterized from the polygons of LULC.gpkg",
    ),
    Dataset(
        "s2-safe-scl",
        s2_safe_scl,
        SAFE_BLOCKS,
        "Sentinel-2 L2A SAFE T29UNU 2022-10-05, 11 bands at 60 m (1830² px), "
        "6 classes derived from its SCL",
    ),
)
"""Every set of the suite, in the order of docs/accuracy.md."""

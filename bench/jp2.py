"""The JPEG 2000 figure: a real Sentinel-2 product's JP2 bands against the same pixels as DEFLATE
GeoTIFFs, each with its floor (the engine's reader decoding the same windows, no model).

The JP2 bands are the 60 m band files of the L2A SAFE sample: in `data/` where the bundled cut
is, else in a `shared/data/s2_l2a_safe` folder beside the checkout (or above it). Their GeoTIFF
twins (512² tiles, DEFLATE, as the synthetic scene) and a random-weight model over their band
names are made once into bench/cache: speed does not depend on the weights.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import rasterio
import torch
from bandfusion.models.checkpoint import TrainedModel, save_model
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.metadata import ModelMetadata

from .report import Figure, Ratio, paired
from .synthetic import BLOCK, CACHE, HIDDEN, N_CLASSES

REPO = Path(__file__).resolve().parent.parent
BAND_GLOB = "**/IMG_DATA/R60m/*_B??_60m.jp2"
LABELS = {
    "e2e JP2": ("e2e", "jp2"),
    "e2e GeoTIFF": ("e2e", "tif"),
    "decode JP2": ("decode", "jp2"),
    "decode GeoTIFF": ("decode", "tif"),
    "decode JP2, GDAL threads ALL_CPUS": ("decode-all-cpus", "jp2"),
}
"""Each figure of the table: (bench.figures name, which copy of the pixels)."""


def jp2_bands() -> list[Path] | None:
    """The 60 m JP2 band files of the first L2A SAFE found (data/ first), or None."""
    roots = [REPO / "data", *(parent / "shared" / "data" for parent in REPO.parents)]
    for root in roots:
        for safe in sorted(root.glob("**/*.SAFE")) if root.is_dir() else []:
            bands = sorted(safe.glob(BAND_GLOB))
            if bands:
                return bands
    return None


def folders(bands: list[Path]) -> dict[str, Path]:
    """Two folders holding the same pixels: "jp2" (links to the JP2 band files) and "tif"
    (their DEFLATE GeoTIFF twins), made once into bench/cache."""
    key = hashlib.sha256("".join(str(b) for b in bands).encode()).hexdigest()[:12]
    root = CACHE / f"jp2-{key}"
    made = {"jp2": root / "jp2", "tif": root / "tif"}
    if not (root / "done").exists():
        for folder in made.values():
            folder.mkdir(parents=True, exist_ok=True)
        for band in bands:
            link = made["jp2"] / band.name
            if not link.exists():
                link.symlink_to(band)
            _geotiff_twin(band, made["tif"] / f"{band.stem}.tif")
        (root / "done").touch()
    return made


def _geotiff_twin(band: Path, path: Path) -> None:
    with rasterio.open(band) as src:
        profile = {
            **src.profile,
            "driver": "GTiff",
            "tiled": True,
            "blockxsize": BLOCK,
            "blockysize": BLOCK,
            "compress": "DEFLATE",
        }
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read())


def model(bands: list[Path]) -> Path:
    """A random-weight model over the bands' names (the files' stems), saved once."""
    path = CACHE / f"model-jp2-{len(bands)}"
    if (path / "model.json").exists():
        return path
    torch.manual_seed(0)
    net = SpectralFusionNet(len(bands), N_CLASSES, hidden=HIDDEN)
    sample = []
    for band in bands:
        with rasterio.open(band) as src:
            sample.append(src.read(1, out_shape=(256, 256)).ravel())
    pixels = torch.from_numpy(np.stack(sample, axis=1).astype(np.float32))
    net.set_standardisation(pixels.mean(0), pixels.std(0) + 1)
    meta = ModelMetadata(
        bands=[band.stem for band in bands],
        class_ids=list(range(N_CLASSES)),
        class_names=[f"class {c}" for c in range(N_CLASSES)],
        class_colors=[(25 * c, 255 - 25 * c, (80 * c) % 256) for c in range(N_CLASSES)],
        architecture=net.config(),
    )
    save_model(TrainedModel(net.eval(), meta), path)
    return path


def jp2_ratios(by: dict[str, Figure]) -> list[Ratio]:
    """What JPEG 2000 costs against DEFLATE GeoTIFF, and how near each path is to its floor."""
    pairs = [
        ("e2e JP2 / e2e GeoTIFF (same pixels)", "e2e JP2", "e2e GeoTIFF"),
        ("decode JP2 / decode GeoTIFF (the formats' floors)", "decode JP2", "decode GeoTIFF"),
        ("e2e JP2 / its floor (decode JP2)", "e2e JP2", "decode JP2"),
        ("e2e GeoTIFF / its floor (decode GeoTIFF)", "e2e GeoTIFF", "decode GeoTIFF"),
        (
            "decode JP2: GDAL threads ALL_CPUS / 1 a read",
            "decode JP2, GDAL threads ALL_CPUS",
            "decode JP2",
        ),
    ]
    found: list[Ratio] = []
    for name, first, second in pairs:
        found += paired(name, by[first], by[second], lambda a, b: a / b, _informative, 0)
    return found


def _informative(name: str, value: float, _limit: float) -> Ratio:
    return Ratio(name, value, None, None)

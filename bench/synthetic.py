"""A realistic synthetic scene and model for the benchmark, generated once and cached.

The scene mimics a Sentinel-2 tile: smooth fields of a few materials mixed with per-band
spectra, per-band offsets, sensor noise, a nodata swath edge; uint16, tiled 512, DEFLATE. The
model is a 12→64→64→10 fusion net trained briefly to name each pixel's dominant material.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import torch
from bandfusion.models.checkpoint import TrainedModel, save_model
from bandfusion.models.fusion import SpectralFusionNet
from bandfusion.models.metadata import ModelMetadata
from rasterio.transform import from_origin
from rasterio.windows import Window

CACHE = Path(__file__).resolve().parent / "cache"
BLOCK = 512
HIDDEN = (64, 64)
N_CLASSES = 10  # one class a material
TRAINING_PIXELS = 1 << 18
TRAINING_STEPS = 400


def scene_path(size: int, bands: int, nodata_fraction: float) -> Path:
    """The cached scene for these settings, generated on first use."""
    path = CACHE / f"scene-{size}x{size}x{bands}-nodata{round(nodata_fraction * 100)}.tif"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial.tif")
        _generate(tmp, size, bands, nodata_fraction)
        tmp.replace(path)
    return path


def mosaic_path(scene: Path, factor: int) -> Path:
    """`scene` repeated `factor` × `factor` times in one file, built once from its pixels.

    The memory-scaling figure's scene: copying pixels is far faster than generating them.
    """
    path = scene.with_name(f"{scene.stem}-mosaic{factor}.tif")
    if not path.exists():
        tmp = path.with_suffix(".partial.tif")
        _repeat(scene, tmp, factor)
        tmp.replace(path)
    return path


def _repeat(source: Path, path: Path, factor: int) -> None:
    """Write `source` tiled `factor` × `factor` times, strip by strip, with its profile."""
    with rasterio.open(source) as src:
        profile = {**src.profile, "width": src.width * factor, "height": src.height * factor}
        profile.update(bigtiff="YES", num_threads="ALL_CPUS")
        with rasterio.open(path, "w", **profile) as dst:
            dst.descriptions = src.descriptions
            for row in range(0, dst.height, BLOCK):
                rows = min(BLOCK, dst.height - row)
                strip = np.concatenate(list(_wrapped_rows(src, row, rows)), axis=1)
                dst.write(np.tile(strip, (1, 1, factor)), window=Window(0, row, dst.width, rows))


def _wrapped_rows(src: rasterio.DatasetReader, row: int, rows: int) -> Iterator[np.ndarray]:
    """Rows `row`..`row + rows` of `src` counted modulo its height, in at most two reads."""
    while rows > 0:
        start = row % src.height
        take = min(rows, src.height - start)
        yield src.read(window=Window(0, start, src.width, take))
        row, rows = row + take, rows - take


@dataclass(frozen=True)
class Materials:
    """The scene's materials: spectra, smooth abundance fields, per-band offsets; seeded."""

    spectra: np.ndarray  # (materials, bands)
    offsets: np.ndarray  # (bands,)
    freqs: np.ndarray  # (materials, 2) radians a pixel along x, y
    phases: np.ndarray  # (materials, 2)

    @classmethod
    def of(cls, size: int, bands: int) -> Materials:
        """The same materials for every scene of this size and band count."""
        rng = np.random.default_rng(0)
        return cls(
            spectra=rng.uniform(200, 3000, size=(N_CLASSES, bands)).astype(np.float32),
            offsets=rng.uniform(100, 800, size=bands).astype(np.float32),
            freqs=rng.uniform(2, 12, size=(N_CLASSES, 2)) * 2 * np.pi / size,
            phases=rng.uniform(0, 2 * np.pi, size=(N_CLASSES, 2)),
        )

    def abundances(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """(materials, *y.shape) mixing weights summing to 1: smooth, patchy fields."""
        fields = np.stack(
            [
                np.sin(x * fx + px) * np.cos(y * fy + py)
                for (fx, fy), (px, py) in zip(self.freqs, self.phases, strict=True)
            ]
        )
        weights = np.exp(4 * fields)
        return weights / weights.sum(axis=0)

    def radiance(self, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint16 (bands, ...) values of mixed pixels with offsets and sensor noise."""
        data = np.einsum("mb,m...->b...", self.spectra, weights)
        data += self.offsets.reshape(-1, *[1] * (weights.ndim - 1))
        data += rng.standard_normal(data.shape, dtype=np.float32) * 40
        return np.clip(data, 1, 65535).astype(np.uint16)


def _generate(path: Path, size: int, bands: int, nodata_fraction: float) -> None:
    """Write the scene strip by strip, strips computed on all cores; GDAL compresses tiles on
    all cores too. Each strip has its own seed, so the scene is the same however many cores."""
    materials = Materials.of(size, bands)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": bands,
        "dtype": "uint16",
        "nodata": 0,
        "crs": "EPSG:32630",
        "transform": from_origin(500000, 4500000, 10, 10),
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "DEFLATE",
        "bigtiff": "IF_SAFER",
        "num_threads": "ALL_CPUS",
    }

    def strip(row: int) -> np.ndarray:
        rows = min(BLOCK, size - row)
        y, x = np.mgrid[row : row + rows, 0:size].astype(np.float32)
        data = materials.radiance(materials.abundances(y, x), np.random.default_rng([1, row]))
        data[:, _nodata_mask(y, x, size, nodata_fraction)] = 0
        return data

    with rasterio.open(path, "w", **profile) as dst:
        dst.descriptions = tuple(f"B{b + 1:02d}" for b in range(bands))
        rows = range(0, size, BLOCK)
        for row, data in zip(rows, _in_order(strip, rows), strict=True):
            dst.write(data, window=Window(0, row, size, data.shape[1]))


def _in_order(work: Callable[[int], np.ndarray], items: range) -> Iterator[np.ndarray]:
    """`work` of each item, computed on all cores, yielded in order with at most one result a
    core waiting (a strip of a Sentinel-2 scene is about 0.5 GB while computed)."""
    workers = os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        pending: deque[Future[np.ndarray]] = deque()
        for item in items:
            pending.append(pool.submit(work, item))
            if len(pending) >= workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _nodata_mask(y: np.ndarray, x: np.ndarray, size: int, fraction: float) -> np.ndarray:
    """A diagonal swath edge covering `fraction` of the scene (the corner below x + y = t)."""
    if fraction >= 0.5:
        return x + y < size * (2 * fraction)
    return x + y < size * np.sqrt(2 * fraction)


def model_path(size: int, bands: int) -> Path:
    """The cached benchmark model for scenes of this size, trained on first use."""
    path = CACHE / f"model-{size}x{bands}"
    if not (path / "model.json").exists():
        save_model(_train_model(size, bands), path)
    return path


def _train_model(size: int, bands: int) -> TrainedModel:
    """A 12→64→64→10 net trained briefly to name each pixel's dominant material.

    Trained rather than random so that its logits have a trained model's margins: the bf16
    agreement figure means nothing on a model whose classes all tie.
    """
    materials = Materials.of(size, bands)
    rng = np.random.default_rng(2)
    y, x = rng.uniform(0, size, size=(2, TRAINING_PIXELS)).astype(np.float32)
    weights = materials.abundances(y, x)
    pixels = torch.from_numpy(materials.radiance(weights, rng).T.astype(np.float32))
    labels = torch.from_numpy(weights.argmax(axis=0))
    torch.manual_seed(0)
    net = SpectralFusionNet(bands, N_CLASSES, hidden=HIDDEN)
    net.set_standardisation(pixels.mean(0), pixels.std(0))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.train()
    for _ in range(TRAINING_STEPS):
        batch = torch.randint(0, TRAINING_PIXELS, (4096,))
        loss = torch.nn.functional.cross_entropy(net(pixels[batch]), labels[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    meta = ModelMetadata(
        bands=[f"B{b + 1:02d}" for b in range(bands)],
        class_ids=list(range(N_CLASSES)),
        class_names=[f"material {c}" for c in range(N_CLASSES)],
        class_colors=[(25 * c, 255 - 25 * c, (80 * c) % 256) for c in range(N_CLASSES)],
        architecture=net.config(),
    )
    return TrainedModel(net.eval(), meta)

"""The model mapped over a scene's chunks: lazy class maps and probabilities, chunk by chunk.

`predict_scene` is the one engine: the CLI streams its chunks to the GeoTIFF writer, notebooks
compute or plot it, the batch job runs the same graph on dask.distributed. A 1x1-conv model sees
one pixel at a time, so chunks need no overlap and any tiling gives the same map.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import dask.array as da
import numpy as np
import torch
import xarray as xr
from bandfusion.colours import colour_table
from bandfusion.engine.cuda import CudaRunner
from bandfusion.engine.domain import check_domain
from bandfusion.engine.guard import KernelGuard, probe_block
from bandfusion.engine.masked import MASKED_VALUES, masked_map_attrs, paint_masked, refuse_clashes
from bandfusion.errors import BandfusionError, SceneError, SettingError
from bandfusion.io.bands import pick_bands
from bandfusion.io.cloudmask import CLEAR, mask_of
from bandfusion.io.grid import Grid
from bandfusion.io.nodata import band_nodata, valid_mask
from bandfusion.io.sources import scene_sources
from bandfusion.models.checkpoint import TrainedModel
from bandfusion.models.devices import resolve_device
from bandfusion.models.indices import append_indices, resolve_roles
from bandfusion.models.inference import (
    CUDA_SUB_BATCH_PIXELS,
    PRECISIONS,
    Precision,
    TorchKernel,
    cpu_runs_bf16,
)

DEFAULT_BATCH_PIXELS = 1 << 20
"""Pixels per kernel call: a whole default chunk, in one host-to-device copy on a GPU.

The kernel cuts each call into fixed-size GEMMs, so this bounds memory and never changes a label.
"""


def class_map_encoding(class_ids: list[int]) -> tuple[np.dtype[Any], int]:
    """The smallest dtype holding every class id, and a nodata value no class uses (255 first)."""
    used = set(class_ids)
    for dtype in (np.uint8, np.uint16, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if min(used) < info.min or max(used) > info.max:
            continue
        preferred = [255] if dtype is np.uint8 else [info.max, info.min]
        candidates = [*preferred, *range(info.max, max(info.min, info.max - 512) - 1, -1)]
        free = next((v for v in candidates if v not in used), None)
        if free is not None:
            return np.dtype(dtype), free
    raise BandfusionError(f"class ids {sorted(used)[:5]}... leave no value free for nodata")


def align_bands(scene: xr.DataArray, model: TrainedModel) -> xr.DataArray:
    """The scene's bands in the model's order, under the model's names (`B1` serves a model's
    `B01`, `B04` its `red`: `bandfusion.io.bands`); extra bands are dropped, missing ones
    refused, and so is a scene in another radiometric domain than the model's."""
    check_domain(scene, model)
    want = list(model.meta.bands)
    aligned, missing = pick_bands(scene, want)
    if not missing:
        return aligned
    have = [str(b) for b in scene["band"].values]
    sources = scene_sources(scene)
    raise SceneError(
        f"{sources}: bands {have} do not match the model's {want} (missing {missing}); "
        "name the scene's bands or use a model trained on these bands",
        setting="band_names",
    )


class PixelClassifier:
    """Runs a trained model's kernel on the valid pixels of one (band, y, x) block,
    after computing the spectral indices the model declares from those pixels' bands.

    On a GPU the kernel runs behind the guard (`bandfusion.engine.guard`), which checks it
    against the CPU kernel on the first block's pixels and falls back when it fails.

    Picklable and tokenized by its weights, so dask ships one copy per graph and caches by model.
    """

    def __init__(
        self,
        model: TrainedModel,
        device: torch.device,
        batch_pixels: int = DEFAULT_BATCH_PIXELS,
        precision: str = "fp32",
        masked: bool = False,
    ) -> None:
        self.device = device
        self.precision = check_precision(precision, device)
        # Built on the CPU: a GPU runner moves it in its own thread, while the reads start.
        self.kernel = TorchKernel.from_net(
            model.net.eval(),
            precision=self.precision,
            sub_batch=CUDA_SUB_BATCH_PIXELS if device.type == "cuda" else None,
        )
        self.token = _weights_digest(model)
        self.cuda = None
        if device.type == "cuda":
            key = (self.token, str(device), self.precision)
            self.cuda = _guarded_runner(model, self.kernel, device, key)
        # Whole kernel sub-batches: the kernel pads each call's last one, so smaller calls
        # would compute mostly padding.
        self.batch_pixels = -(-batch_pixels // self.kernel.sub_batch) * self.kernel.sub_batch
        meta = model.meta
        self.bands, self.indices = meta.bands, meta.indices
        self.band_roles = resolve_roles(meta.indices, meta.bands, meta.band_roles)
        self.class_ids = np.asarray(model.meta.class_ids)
        self.dtype, self.nodata = _encoding(model.meta.class_ids, masked)

    def __dask_tokenize__(self) -> tuple[str, str, int, str]:
        return (self.token, str(self.device), self.batch_pixels, self.precision)

    def classify_block(
        self, block: np.ndarray, nodata: tuple[float | None, ...], mask: np.ndarray | None = None
    ) -> np.ndarray:
        """(C, h, w) block → (h, w) class ids; nodata where any band is nodata or NaN; where a
        (h, w) `mask` block is given, its masked pixels get their masked values."""
        valid, table = self._inputs(block, nodata, mask)
        out = np.full(valid.shape, self.nodata, dtype=self.dtype)
        if len(table):
            classify = _on_host(self.kernel.classify)
            if self.cuda:
                classify = partial(self.cuda.classify, probe=partial(self._probe, block, nodata))
            out[valid] = self.class_ids[self._batched(classify, table)]
        if mask is not None:
            paint_masked(out, mask)
        return out

    def proba_block(
        self, block: np.ndarray, nodata: tuple[float | None, ...], mask: np.ndarray | None = None
    ) -> np.ndarray:
        """(C, h, w) block → (K, h, w) float32 class probabilities; NaN on nodata and masked
        pixels."""
        valid, table = self._inputs(block, nodata, mask)
        out = np.full((len(self.class_ids), *valid.shape), np.nan, dtype=np.float32)
        if len(table):
            proba = _on_host(self.kernel.proba)
            if self.cuda:
                proba = partial(self.cuda.proba, probe=partial(self._probe, block, nodata))
            out[:, valid] = self._batched(proba, table).T
        return out

    def _inputs(
        self, block: np.ndarray, nodata: tuple[float | None, ...], mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, torch.Tensor]:
        """The valid mask and the (M, inputs) table of valid, clear pixels: bands, then
        indices."""
        valid, table = _valid_table(block, nodata, mask)
        if self.indices and len(table):
            derived = append_indices(table.numpy(), self.bands, self.indices, self.band_roles)
            table = torch.from_numpy(derived)
        return valid, table

    def _probe(
        self, block: np.ndarray, nodata: tuple[float | None, ...]
    ) -> tuple[torch.Tensor, int]:
        """The guard's probe from `block`, as the kernels read it, and its real pixels' count."""
        pixels, real = probe_block(block, nodata)
        with np.errstate(all="ignore"):  # extreme values overflow indices, as in any pixel
            _, table = self._inputs(pixels, nodata)
        return table, real

    def _batched(
        self, method: Callable[[torch.Tensor], np.ndarray], table: torch.Tensor
    ) -> np.ndarray:
        """`method` over the table, `batch_pixels` at a time, as one numpy array."""
        if len(table) <= self.batch_pixels:
            return method(table)
        parts = range(0, len(table), self.batch_pixels)
        return np.concatenate([method(table[i : i + self.batch_pixels]) for i in parts])


def _on_host(method: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor], Any]:
    """A CPU kernel method returning numpy."""
    return lambda table: method(table).numpy()


def _guarded_runner(
    model: TrainedModel, kernel: TorchKernel, device: torch.device, key: tuple[str, ...]
) -> KernelGuard:
    """The kernel's runner on `device` behind the guard; the CPU fp32 kernel is the guard's
    reference and, where the bound certifies labels, recomputes those in doubt."""
    # Not `kernel` itself: that one has the GPU's sub-batch, and only the CPU engine's
    # sub-batch (the default) reproduces the CPU map's rounding.
    reference = TorchKernel.from_net(model.net.eval(), precision="fp32", device="cpu")
    runner = CudaRunner(kernel, reference if kernel.bound is not None else None, device)
    return KernelGuard(runner, reference, key)


def _valid_table(
    block: np.ndarray, nodata: tuple[float | None, ...], mask: np.ndarray | None = None
) -> tuple[np.ndarray, torch.Tensor]:
    """The valid mask and a (M, C) view of the valid pixels, still in the block's dtype.

    Only valid pixels are gathered (nodata costs a mask and nothing more); the kernel casts
    the view sub-batch by sub-batch, in cache. Pixels a `mask` block marks are not valid.
    """
    valid = valid_mask(block, nodata)
    if mask is not None:
        valid &= mask == CLEAR
    table = block.reshape(block.shape[0], -1)
    if not valid.all():
        table = np.compress(valid.ravel(), table, axis=1)
    return valid, torch.from_numpy(table).T


def check_precision(precision: str, device: torch.device) -> Precision:
    """`precision` if the device runs it: fp32 anywhere, bf16 on CPU and CUDA, fp16 on CUDA."""
    if precision not in PRECISIONS:
        raise SettingError("precision", precision, f"use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise SettingError("precision", precision, "needs a CUDA device; on a CPU use bf16 or fp32")
    if precision == "bf16" and device.type == "cpu" and not cpu_runs_bf16():
        raise SettingError(
            "precision",
            precision,
            "this CPU has no native bfloat16 (AVX-512 or AMX), so bf16 would be emulated, many "
            "times slower than fp32; use fp32",
        )
    return cast(Precision, precision)


def _weights_digest(model: TrainedModel) -> str:
    digest = hashlib.sha256(repr(model.meta).encode())
    for name, tensor in sorted(model.net.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def predict_scene(
    scene: xr.DataArray,
    model: TrainedModel,
    *,
    device: str = "auto",
    batch_pixels: int = DEFAULT_BATCH_PIXELS,
    precision: str = "fp32",
) -> xr.DataArray:
    """A lazy class map `DataArray(y, x)` holding the model's class ids.

    Its attrs hold what a map file carries besides pixels (nodata, colour table, class names,
    the model's bands as tags, "mode" overviews), so `write_geotiff(map, path)` writes the same
    file as `bandfusion predict`. Nothing runs until the result is computed, plotted or
    written; each chunk of the scene becomes one chunk of the map. `batch_pixels` is the
    pixels per kernel call (it bounds memory and never changes a label); `precision` is "fp32"
    (default: bit-identical whatever the tiling), "bf16" (CPU or CUDA) or "fp16" (CUDA),
    faster at the cost of a few labels.
    """
    scene = align_bands(scene, model)
    mask = _mask_blocks(scene, model)
    classifier = PixelClassifier(
        model, resolve_device(device), batch_pixels, precision, masked=mask is not None
    )
    data = da.blockwise(
        partial(_only_block, classifier.classify_block),
        "yx",
        scene.data.rechunk({0: -1}),
        "byx",
        *(() if mask is None else (mask, "yx")),
        nodata=band_nodata(scene),
        concatenate=False,
        dtype=classifier.dtype,
        meta=np.empty((0, 0), dtype=classifier.dtype),
        token="predict-classes",
    )
    array = _map_array(data, scene, ("y", "x"), nodata=classifier.nodata, name="classes")
    array.attrs.update(map_file_attrs(model, class_map=True))
    if mask is not None:
        array.attrs = masked_map_attrs(scene.coords["mask"], array.attrs)
    return array


def predict_proba_scene(
    scene: xr.DataArray,
    model: TrainedModel,
    *,
    device: str = "auto",
    batch_pixels: int = DEFAULT_BATCH_PIXELS,
    precision: str = "fp32",
) -> xr.DataArray:
    """Lazy class probabilities `DataArray(class, y, x)` (float32, NaN on nodata pixels).

    Its attrs name each band after its class for `write_geotiff`, as `predict_scene`'s do.
    """
    scene = align_bands(scene, model)
    mask = _mask_blocks(scene, model)
    classifier = PixelClassifier(model, resolve_device(device), batch_pixels, precision)
    n_classes = len(model.meta.class_ids)
    data = da.map_blocks(
        partial(_with_mask, classifier.proba_block),
        scene.data,
        *(() if mask is None else (mask,)),
        nodata=band_nodata(scene),
        chunks=((n_classes,), *scene.data.chunks[1:]),
        dtype=np.float32,
        meta=np.empty((0, 0, 0), dtype=np.float32),
        token="predict-proba",
    )
    array = _map_array(data, scene, ("class", "y", "x"), nodata=float("nan"), name="probability")
    array.attrs.update(map_file_attrs(model, class_map=False))
    return array.assign_coords({"class": list(model.meta.class_ids)})


def _only_block(
    method: Callable[..., np.ndarray], blocks: list[np.ndarray], *mask: np.ndarray, **kwargs: Any
) -> np.ndarray:
    """`method` on the single (band, y, x) block that blockwise hands over for a dropped axis
    (and the (y, x) mask block, where the scene has a mask).

    `map_blocks(drop_axis=0)` would concatenate that one block into a fresh copy first: a
    chunk's worth of copying and page faults that a mostly-nodata chunk cannot save.
    """
    (block,) = blocks
    return _with_mask(method, block, *mask, **kwargs)


def _with_mask(
    method: Callable[..., np.ndarray], block: np.ndarray, *mask: np.ndarray, **kwargs: Any
) -> np.ndarray:
    """`method` on a scene block, with its mask block by name where there is one."""
    return method(block, **kwargs, **({"mask": mask[0]} if mask else {}))


def _mask_blocks(scene: xr.DataArray, model: TrainedModel) -> da.Array | None:
    """The scene's mask codes chunked as its pixels, or None; a model whose class ids are
    masked values is refused here."""
    mask = mask_of(scene)
    if mask is None:
        return None
    refuse_clashes(model.meta.class_ids)
    data = mask.data if isinstance(mask.data, da.Array) else da.from_array(mask.data)
    return data.rechunk(scene.data.chunks[1:])


def _encoding(class_ids: list[int], masked: bool) -> tuple[np.dtype[Any], int]:
    """The map's dtype and nodata: those of `class_map_encoding`, with room for the masked
    values in a map of a masked scene."""
    return class_map_encoding([*class_ids, *MASKED_VALUES] if masked else class_ids)


def _map_array(
    data: da.Array, scene: xr.DataArray, dims: tuple[str, ...], *, nodata: float, name: str
) -> xr.DataArray:
    grid = Grid.of(scene)
    return xr.DataArray(
        data,
        dims=dims,
        coords={"y": scene["y"], "x": scene["x"]},
        attrs={**grid.to_attrs(), "nodata": nodata, "source": scene_sources(scene)},
        name=name,
    )


def map_file_attrs(model: TrainedModel, *, class_map: bool) -> dict[str, Any]:
    """The attrs that make `write_geotiff` write a model's map as `bandfusion predict` does:
    class names and the model's bands always; for a
    class map its colour table (where the ids can index one) and "mode" overviews, for
    probabilities the class names as band names and "average" overviews."""
    meta = model.meta
    attrs: dict[str, Any] = {
        "class_names": dict(zip(meta.class_ids, meta.class_names, strict=True)),
        "tags": {"BANDFUSION_BANDS": ",".join(meta.bands)},
    }
    if not class_map:
        return {**attrs, "band_names": list(meta.class_names), "overview_resampling": "average"}
    table = colour_table(meta.class_ids, meta.class_colors)
    return {**attrs, **({"colormap": table} if table else {}), "overview_resampling": "mode"}

"""A batch's work as worker tasks: one scene into its file, or rows of a scene for the client.

Tasks carry names (paths or URLs) and the model's digest, never the model: the model's bytes
reach each worker once (bandfusion.batch.shipped_model), which loads them once and keeps the
model. A scene task runs `predict_scene`, the one engine, and writes through `write_geotiff`,
the writer `predict` uses, so the files are byte-identical to `bandfusion predict`'s; a map
bound for object storage is written locally and uploaded whole (bandfusion.batch.store). A
split scene's rows are cut into groups of whole chunks computed by separate tasks, and the
client streams them into one file with the same writer: the same chunks, the same bytes.
Every outcome is a SceneRecord; a failure is one with its one-line reason, never an exception.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field, replace

import dask
import dask.array as da
import numpy as np
import xarray as xr
from bandfusion.batch.manifest import SceneRecord
from bandfusion.batch.shipped_model import ModelRef, load_shipped, shipped_files
from bandfusion.batch.store import write_output
from bandfusion.batch.tally import PixelTally
from bandfusion.engine.predict import DEFAULT_BATCH_PIXELS, predict_scene
from bandfusion.errors import first_line
from bandfusion.io.cloudmask import AUTO, MaskPolicy, mask_scene
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.scene import SceneOptions
from bandfusion.models.checkpoint import TrainedModel
from bandfusion.progress import Count
from distributed import Client, get_worker


@dataclass(frozen=True)
class BatchOptions:
    """How every scene of a batch is read and classified (as `predict`'s options do)."""

    device: str = "auto"
    batch_pixels: int = DEFAULT_BATCH_PIXELS
    scene: SceneOptions = field(default_factory=SceneOptions)
    mask: MaskPolicy = AUTO


_model_lock = threading.Lock()
_models: dict[str, TrainedModel] = {}
MODELS_KEPT = 2
"""Models a worker keeps loaded, by digest: a batch's, and the one before it."""
loads = 0
"""How many times this process has loaded a shipped model (each worker does so once a model)."""


def worker_model(ref: ModelRef) -> TrainedModel:
    """The model `ref` names, loaded from its shipped bytes once per worker process and shared
    by its tasks."""
    global loads
    with _model_lock:
        model = _models.get(ref.sha256)
        if model is None:
            model = load_shipped(ref, shipped_files(ref))
            loads += 1
            while len(_models) >= MODELS_KEPT:
                del _models[next(iter(_models))]
            _models[ref.sha256] = model
        return model


@dataclass(frozen=True)
class SceneTask:
    """One scene's work as shipped to a worker: names and settings, never the model itself."""

    record: SceneRecord
    target: str
    model: ModelRef
    options: BatchOptions

    def classes(self, model: TrainedModel) -> xr.DataArray:
        """The scene's lazy class map from the one engine, `predict_scene`."""
        options = self.options
        scene = options.scene.open(self.record.input_paths)
        scene = mask_scene(scene, options.mask, layers=())  # the product's own layers, if any
        return predict_scene(scene, model, device=options.device, batch_pixels=options.batch_pixels)


def run_scene(task: SceneTask) -> SceneRecord:
    """Worker task: map one scene into its output file; a failure comes back as a record.

    The scene's chunks run one after another in this task's thread: the cluster runs one scene
    per worker thread, so a thread pool per task would only contend for the same cores.
    """
    start = time.perf_counter()
    worker = str(get_worker().address)
    try:
        model = worker_model(task.model)
        tally = PixelTally()
        classes = tally.counted(task.classes(model))
        digest = write_output(
            task.target, lambda path: write_geotiff(classes, path, scheduler="synchronous")
        )
        return finished(task, digest, start, worker, parts=1, pixels=tally.pixels())
    except Exception as exc:
        return failed(task.record, exc, start, worker)


def predict_rows(task: SceneTask, rows: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Worker task: rows [start, stop) of a scene's class map, whole chunks of the one graph."""
    model = worker_model(task.model)
    part = task.classes(model).data[slice(*rows)]
    return part.compute(scheduler="synchronous"), str(get_worker().address)


def finished(
    task: SceneTask, digest: str, start: float, worker: str, parts: int, pixels: dict[str, int]
) -> SceneRecord:
    """The task's record once its output is in place: digest, class counts, time, worker."""
    return replace(
        task.record,
        status="done",
        sha256=digest,
        pixels=pixels,
        duration_s=round(time.perf_counter() - start, 3),
        worker=worker,
        parts=parts,
        error=None,
    )


def failed(
    record: SceneRecord, exc: BaseException, start: float | None, worker: str | None
) -> SceneRecord:
    """`record` marked failed with the exception's one-line reason."""
    duration = None if start is None else round(time.perf_counter() - start, 3)
    return replace(
        record,
        status="failed",
        sha256=None,
        pixels=None,
        duration_s=duration,
        worker=worker,
        error=first_line(exc, typed=True),
    )


def row_groups(chunks: tuple[int, ...], parts: int) -> list[tuple[int, int]]:
    """A map's row chunks cut into at most `parts` runs of whole chunks, as (start, stop)."""
    bounds = np.cumsum((0, *chunks))
    cuts = np.linspace(0, len(chunks), min(parts, len(chunks)) + 1).round().astype(int)
    return [(int(bounds[a]), int(bounds[b])) for a, b in itertools.pairwise(cuts)]


class SplitScene:
    """A scene whose row groups run as separate tasks; the client writes them into one file."""

    def __init__(self, client: Client, task: SceneTask, model: TrainedModel, parts: int) -> None:
        self.task = task
        self.start = time.perf_counter()
        self.template = task.classes(model)
        self.rows = row_groups(self.template.data.chunks[0], parts)
        self.futures = [client.submit(predict_rows, task, rows, pure=False) for rows in self.rows]
        self.workers: set[str] = set()

    def fetch(self, index: int) -> np.ndarray:
        """The computed rows of group `index`, noting which worker made them."""
        block, worker = self.futures[index].result()
        self.workers.add(worker)
        return block

    def write(self, on_pixels: Count | None) -> SceneRecord:
        """Stream the groups into the output as they arrive, through `predict`'s writer."""
        try:
            tally = PixelTally()
            array = tally.counted(self.template.copy(data=self._assembled()))
            digest = write_output(
                self.task.target, lambda path: write_geotiff(array, path, progress=on_pixels)
            )
            workers, parts = self._worker_list(), len(self.rows)
            return finished(self.task, digest, self.start, workers, parts, tally.pixels())
        except Exception as exc:
            return failed(self.task.record, exc, self.start, self._worker_list() or None)
        finally:
            for future in self.futures:
                future.release()

    def _assembled(self) -> da.Array:
        width, dtype = self.template.sizes["x"], self.template.dtype
        blocks = [
            da.from_delayed(
                dask.delayed(self.fetch, pure=False)(i), shape=(stop - start, width), dtype=dtype
            )
            for i, (start, stop) in enumerate(self.rows)
        ]
        return da.concatenate(blocks, axis=0)

    def _worker_list(self) -> str:
        return ", ".join(sorted(self.workers))

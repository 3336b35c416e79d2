"""The many-scene job on dask.distributed: one task per scene, or a scene's rows across workers.

Tasks carry paths, never the model: each worker process loads the model once (keyed by its
directory and the digest of its files) and keeps it. A scene task runs `predict_scene`, the one
engine, and writes through `write_geotiff`, the writer `predict` uses, so the files are
byte-identical to `bandfusion predict`'s. When the cluster has more threads than scenes, a
scene's rows are split into groups of whole chunks computed by separate tasks, and the client
streams them into one file with the same writer: the same chunks, the same bytes.

The client records every finished scene in DIR/manifest.json (temp file, rename) as it arrives,
so a rerun after any interruption redoes only what is missing, partial or out of date. A
failing scene comes back as a record with its one-line reason; a task whose worker dies is
rerun by the scheduler elsewhere.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from uuid import uuid4

import dask
import dask.array as da
import numpy as np
import xarray as xr
from bandfusion.atomic import sweep_temporaries
from bandfusion.batch.manifest import (
    MANIFEST_NAME,
    InputStamp,
    Manifest,
    PathLike,
    SceneRecord,
    SceneSpec,
    collect_scenes,
    file_sha256,
    output_path,
)
from bandfusion.engine.predict import DEFAULT_BATCH_PIXELS, predict_scene
from bandfusion.errors import BandfusionError, ModelFileError, OutputError, first_line
from bandfusion.io.atomic import check_writable
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.scene import open_scene
from bandfusion.models.checkpoint import METADATA_FILE, WEIGHTS_FILE, TrainedModel, load_model
from distributed import Client, LocalCluster, as_completed, get_worker

PARTS_PER_THREAD = 2
"""Row groups per cluster thread when scenes are split: a little slack for uneven workers."""


_LOCAL_WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}


class BatchError(BandfusionError):
    """Some scenes of a batch failed; each one's reason is in the summary and the manifest."""


@dataclass(frozen=True)
class BatchOptions:
    """How every scene of a batch is read and classified (as `predict`'s options do)."""

    device: str = "auto"
    batch_pixels: int = DEFAULT_BATCH_PIXELS
    resampling: str = "nearest"
    band_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ModelRef:
    """What a task carries instead of the model: its directory and the digest of its files."""

    path: str
    sha256: str

    @classmethod
    def of(cls, path: PathLike) -> ModelRef:
        """Reference the model directory at `path` (absolute, so any worker can find it)."""
        absolute = Path(path).resolve()
        return cls(str(absolute), model_digest(absolute))


def model_digest(path: Path) -> str:
    """sha256 over the model's files, so a model retrained in the same place is noticed."""
    digest = hashlib.sha256()
    for name in (METADATA_FILE, WEIGHTS_FILE):
        digest.update(f"{name}:{file_sha256(path / name)}\n".encode())
    return digest.hexdigest()


_model_lock = threading.Lock()


def worker_model(ref: ModelRef) -> TrainedModel:
    """The model `ref` names, loaded once per worker process and shared by its tasks."""
    with _model_lock:
        return _load_model_once(ref)


@functools.lru_cache(maxsize=2)
def _load_model_once(ref: ModelRef) -> TrainedModel:
    model = load_model(ref.path)
    if model_digest(Path(ref.path)) != ref.sha256:
        raise ModelFileError(f"{ref.path}: model files changed after the batch started")
    return model


@dataclass(frozen=True)
class SceneTask:
    """One scene's work as shipped to a worker: paths and settings, never the model itself."""

    record: SceneRecord
    target: str
    model: ModelRef
    options: BatchOptions

    def classes(self, model: TrainedModel) -> xr.DataArray:
        """The scene's lazy class map from the one engine, `predict_scene`."""
        options = self.options
        scene = open_scene(
            self.record.input_paths, band_names=options.band_names, resampling=options.resampling
        )
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
        tally = _Tally()
        classes = tally.counted(task.classes(model))
        write_geotiff(classes, task.target, scheduler="synchronous")
        return finished(task, start, worker, parts=1, pixels=tally.pixels())
    except Exception as exc:
        return failed(task.record, exc, start, worker)


def predict_rows(task: SceneTask, rows: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Worker task: rows [start, stop) of a scene's class map, whole chunks of the one graph."""
    model = worker_model(task.model)
    part = task.classes(model).data[slice(*rows)]
    return part.compute(scheduler="synchronous"), str(get_worker().address)


def finished(
    task: SceneTask, start: float, worker: str, parts: int, pixels: dict[str, int]
) -> SceneRecord:
    """The task's record once its output is in place: digest, class counts, time, worker."""
    return replace(
        task.record,
        status="done",
        sha256=file_sha256(task.target),
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


class _Tally:
    """Pixels per class of a map's chunks, counted as the writer takes them: no second read."""

    def __init__(self) -> None:
        self._counts: Counter[float] = Counter()
        self._lock = threading.Lock()
        self._nodata: float | None = None

    def counted(self, classes: xr.DataArray) -> xr.DataArray:
        """`classes` with every chunk passing through this tally on its way to the file."""
        self._nodata = classes.attrs["nodata"]
        data = classes.data.map_blocks(
            self._add,
            dtype=classes.dtype,
            meta=np.empty((0, 0), dtype=classes.dtype),
            name=f"tally-{uuid4().hex}",
        )
        return classes.copy(data=data)

    def _add(self, block: np.ndarray) -> np.ndarray:
        counts = _value_counts(block)
        with self._lock:
            self._counts.update(counts)
        return block

    def pixels(self) -> dict[str, int]:
        """Counts by class id (as text, for JSON), nodata pixels under 'nodata'."""
        return {
            "nodata" if value == self._nodata else str(value): count
            for value, count in sorted(self._counts.items())
        }


def _value_counts(block: np.ndarray) -> dict[float, int]:
    """How often each value occurs; bincount for small unsigned types (sorting is slower)."""
    if block.dtype.kind == "u" and block.dtype.itemsize <= 2:
        sizes = np.bincount(block.ravel())
        values = np.flatnonzero(sizes)
        return dict(zip(values.tolist(), sizes[values].tolist(), strict=True))
    values, sizes = np.unique(block, return_counts=True)
    return dict(zip(values.tolist(), sizes.tolist(), strict=True))


def row_groups(chunks: tuple[int, ...], parts: int) -> list[tuple[int, int]]:
    """A map's row chunks cut into at most `parts` runs of whole chunks, as (start, stop)."""
    bounds = np.cumsum((0, *chunks))
    cuts = np.linspace(0, len(chunks), min(parts, len(chunks)) + 1).round().astype(int)
    return [(int(bounds[a]), int(bounds[b])) for a, b in itertools.pairwise(cuts)]


class _SplitScene:
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

    def write(self, on_pixels: Callable[[int], None]) -> SceneRecord:
        """Stream the groups into the output as they arrive, through `predict`'s writer."""
        try:
            tally = _Tally()
            array = tally.counted(self.template.copy(data=self._assembled()))
            write_geotiff(array, self.task.target, progress=on_pixels)
            workers, parts = self._worker_list(), len(self.rows)
            return finished(self.task, self.start, workers, parts, tally.pixels())
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


class BatchEvents:
    """Hooks to follow a run; the CLI overrides them to draw progress bars. Defaults: nothing."""

    def client_ready(self, client: Client) -> None:
        """Called once the cluster is reachable, before any scene is submitted."""

    def scene_done(self, record: SceneRecord) -> None:
        """Called for each scene as it is done, skipped or failed, once the manifest has it."""

    def pixels_written(self, count: int) -> None:
        """Called as map pixels reach their files (per chunk, or per scene)."""


@dataclass(frozen=True)
class BatchResult:
    """The records of one run's scenes, in input order, with the manifest path and wall time."""

    records: tuple[SceneRecord, ...]
    manifest: Path
    seconds: float

    def count(self, status: str) -> int:
        return sum(record.status == status for record in self.records)

    @property
    def failed(self) -> list[SceneRecord]:
        return [record for record in self.records if record.status == "failed"]

    def format_summary(self) -> str:
        """A human table (one row a scene) and a totals line, as `bandfusion batch` prints."""
        header = ("status", "output", "seconds", "pixels", "worker / error")
        lines = _table([header, *(_summary_row(record) for record in self.records)], {2, 3})
        rate = len(self.records) / self.seconds if self.seconds > 0 else 0.0
        counts = ", ".join(f"{self.count(s)} {s}" for s in ("done", "skipped", "failed"))
        lines.append(
            f"{len(self.records)} scenes in {self.seconds:.1f} s ({rate:.2f} scenes/s): "
            f"{counts}; manifest: {self.manifest}"
        )
        return "\n".join(lines)


def _table(rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    """Rows as aligned text columns (`right`: right-aligned ones); the last column is free."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row[:-1], widths, strict=True))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def _summary_row(record: SceneRecord) -> tuple[str, str, str, str, str]:
    seconds = "-" if record.duration_s is None else f"{record.duration_s:.2f}"
    pixels = "-" if record.pixels is None else f"{sum(record.pixels.values()):,}"
    note = record.error if record.status == "failed" else record.worker
    return record.status, record.output, seconds, pixels, note or "-"


@contextmanager
def local_client(
    workers: int | None = None, threads_per_worker: int | None = None
) -> Iterator[Client]:
    """A client of a new LocalCluster of worker processes on loopback, sized to the machine
    unless `workers` / `threads_per_worker` say otherwise; both close with the context.

    Two of distributed's defaults cost the engine CPU for nothing it needs. Its 64 KiB
    MALLOC_TRIM_THRESHOLD_ hands the megabytes each chunk allocates back to the system, to be
    faulted in again for the next chunk: 15 % more CPU a scene (chunks bound memory anyway).
    Its profiler samples every worker thread's stack every 10 ms: 2-3 % more.
    """
    with (
        dask.config.set(_LOCAL_WORKER_CONFIG),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@contextmanager
def connect(scheduler: str) -> Iterator[Client]:
    """A client of a running cluster, by address (tcp://host:port) or scheduler file."""
    where = {"scheduler_file": scheduler} if Path(scheduler).is_file() else {"address": scheduler}
    try:
        client = Client(**where, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = first_line(exc, typed=True)
        raise BandfusionError(f"scheduler {scheduler}: cannot connect ({reason})") from exc
    with client:
        yield client


def dashboard_link(client: Client) -> str | None:
    """The cluster's dashboard address, when its scheduler serves one."""
    services = client.scheduler_info(n_workers=0).get("services", {})
    return str(client.dashboard_link) if "dashboard" in services else None


def run_batch(
    scenes: PathLike | SceneSpec | Iterable[PathLike | SceneSpec],
    model: PathLike,
    out_dir: PathLike,
    client: Client | None = None,
    *,
    force: bool = False,
    options: BatchOptions | None = None,
    events: BatchEvents | None = None,
    start_client: Callable[[], AbstractContextManager[Client]] = local_client,
) -> BatchResult:
    """Map every scene into `out_dir` on a dask.distributed cluster; returns the run's records.

    `scenes`: files, globs, directories, CSV/JSON scene lists or SceneSpecs. `model`: a model
    directory, which workers load by path (once each), so it must be readable where they run,
    as must the inputs and `out_dir`. `client`: a cluster to use; None starts one with
    `start_client` (a LocalCluster sized to the machine) only if any scene needs work.
    Scenes whose outputs are complete and current per DIR/manifest.json are skipped unless
    `force`. Failed scenes are records with a reason, not exceptions; check `result.failed`.
    """
    start = time.perf_counter()
    events = events or BatchEvents()
    root = _prepare_out_dir(Path(out_dir))
    specs = collect_scenes(
        [scenes] if isinstance(scenes, str | os.PathLike | SceneSpec) else scenes
    )
    targets = _targets(specs, root)
    trained = load_model(Path(model))
    ref = ModelRef.of(model)
    manifest = Manifest.load(root)
    manifest.model = {"path": ref.path, "sha256": ref.sha256}
    planned = manifest.plan(_pending(specs, targets, root, ref), root, force)
    records = {record.output: record for record in planned}
    manifest.records.update(records)
    manifest.save()
    for record in planned:
        if record.status == "skipped":
            events.scene_done(record)
    tasks = [
        SceneTask(record, str(target), ref, options or BatchOptions())
        for record, target in zip(planned, targets, strict=True)
        if record.status != "skipped"
    ]
    if tasks:
        try:
            with _using(client, start_client) as active:
                events.client_ready(active)
                for record in _run(active, tasks, trained, events):
                    records[record.output] = record
                    manifest.update(record)
                    events.scene_done(record)
        finally:
            manifest.flush()
    sweep_temporaries([*targets, manifest.path])  # even when all was done before a crash
    return BatchResult(tuple(records.values()), manifest.path, time.perf_counter() - start)


def _prepare_out_dir(out_dir: Path) -> Path:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create output directory ({exc.strerror})") from exc
    check_writable(out_dir / MANIFEST_NAME)
    return out_dir.resolve()


def _targets(specs: Sequence[SceneSpec], root: Path) -> list[Path]:
    """Each scene's output path; names leaving the output dir, or used twice, are refused."""
    targets = [output_path(root, spec.output) for spec in specs]
    twice = sorted(str(t.relative_to(root)) for t, n in Counter(targets).items() if n > 1)
    if twice:
        raise BandfusionError(
            f"several scenes would write {', '.join(twice)}; give them distinct output names"
        )
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
    return targets


def _pending(
    specs: Sequence[SceneSpec], targets: Sequence[Path], root: Path, ref: ModelRef
) -> list[SceneRecord]:
    return [
        SceneRecord(
            output=target.relative_to(root).as_posix(),
            inputs=tuple(InputStamp.of(path) for path in spec.inputs),
            model_sha256=ref.sha256,
        )
        for spec, target in zip(specs, targets, strict=True)
    ]


@contextmanager
def _using(
    client: Client | None, start_client: Callable[[], AbstractContextManager[Client]]
) -> Iterator[Client]:
    if client is not None:
        yield client
        return
    with start_client() as started:
        yield started


def _run(
    client: Client, tasks: list[SceneTask], model: TrainedModel, events: BatchEvents
) -> Iterator[SceneRecord]:
    """One task per scene; or, when the cluster has more threads than scenes, split scenes."""
    threads = sum(client.nthreads().values())
    if len(tasks) < threads:
        return _run_split(client, tasks, model, PARTS_PER_THREAD * threads, events)
    return _run_each(client, tasks, events)


def _run_each(client: Client, tasks: list[SceneTask], events: BatchEvents) -> Iterator[SceneRecord]:
    futures = {client.submit(run_scene, task, pure=False): task for task in tasks}
    for future in as_completed(futures, loop=client.loop):
        task = futures.pop(future)
        try:
            record: SceneRecord = future.result()
        except Exception as exc:  # the task never returned, e.g. its workers kept dying
            record = failed(task.record, exc, None, None)
        future.release()
        if record.pixels:
            events.pixels_written(sum(record.pixels.values()))
        yield record


def _run_split(
    client: Client, tasks: list[SceneTask], model: TrainedModel, parts: int, events: BatchEvents
) -> Iterator[SceneRecord]:
    """Every scene's row groups are submitted first, so workers never wait on the writes."""
    split: list[_SplitScene] = []
    for task in tasks:
        start = time.perf_counter()
        try:
            split.append(_SplitScene(client, task, model, parts))
        except Exception as exc:  # the client could not open the scene
            yield failed(task.record, exc, start, None)
    for scene in split:
        yield scene.write(events.pixels_written)

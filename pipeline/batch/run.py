"""The many-scene job on dask.distributed: one task per scene, or a scene's rows across workers.

The client plans the run from DIR/manifest.json, submits the tasks (bandfusion.batch.tasks) and
records every finished scene in the manifest (temp file, rename) as it arrives, so a rerun
after any interruption redoes only what is missing, partial or out of date. A failing scene
comes back as a record with its one-line reason; a task whose worker dies is rerun by the
scheduler elsewhere. When the cluster has more threads than scenes, scenes are split by rows.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bandfusion.atomic import sweep_temporaries
from bandfusion.batch.cluster import describe_cluster, local_client
from bandfusion.batch.manifest import (
    MANIFEST_NAME,
    InputStamp,
    Manifest,
    PathLike,
    SceneRecord,
    SceneSpec,
    collect_scenes,
    output_path,
)
from bandfusion.batch.tasks import BatchOptions, ModelRef, SceneTask, SplitScene, failed, run_scene
from bandfusion.errors import BandfusionError, OutputError
from bandfusion.io.atomic import check_writable
from bandfusion.models.checkpoint import TrainedModel, load_model
from bandfusion.progress import Count, Progress, Step, counter, silent
from distributed import Client, as_completed

PARTS_PER_THREAD = 2
"""Row groups per cluster thread when scenes are split: a little slack for uneven workers."""


class BatchError(BandfusionError):
    """Some scenes of a batch failed; each one's reason is in the summary and the manifest."""


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


def run_batch(
    scenes: PathLike | SceneSpec | Iterable[PathLike | SceneSpec],
    model: PathLike,
    out_dir: PathLike,
    client: Client | None = None,
    *,
    force: bool = False,
    options: BatchOptions | None = None,
    progress: Progress | None = None,
    start_client: Callable[[], AbstractContextManager[Client]] = local_client,
) -> BatchResult:
    """Map every scene into `out_dir` on a dask.distributed cluster; returns the run's records.

    `scenes`: files, globs, directories, CSV/JSON scene lists or SceneSpecs. `model`: a model
    directory, which workers load by path (once each), so it must be readable where they run,
    as must the inputs and `out_dir`. `client`: a cluster to use; None starts one with
    `start_client` (a LocalCluster sized to the machine) only if any scene needs work.
    Scenes whose outputs are complete and current per DIR/manifest.json are skipped unless
    `force`. Failed scenes are records with a reason, not exceptions; check `result.failed`.
    `progress` is told of every scene as it is done, skipped or failed (stage "scenes", with
    the cluster's size and each failure as notes) and of map pixels as they are written
    (stage "pixels").
    """
    start = time.perf_counter()
    report = progress or silent
    root = _prepare_out_dir(Path(out_dir))
    specs = collect_scenes(
        [scenes] if isinstance(scenes, str | os.PathLike | SceneSpec) else scenes
    )
    targets = _targets(specs, root)
    report(Step("scenes", 0, len(specs), "scene"))
    pixels = counter(progress, "pixels", unit="px")
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
            report(_scene_step(record, len(specs)))
    tasks = [
        SceneTask(record, str(target), ref, options or BatchOptions())
        for record, target in zip(planned, targets, strict=True)
        if record.status != "skipped"
    ]
    if tasks:
        try:
            with _using(client, start_client) as active:
                report(Step("scenes", 0, len(specs), "scene", note=describe_cluster(active)))
                for record in _run(active, tasks, trained, pixels):
                    records[record.output] = record
                    manifest.update(record)
                    report(_scene_step(record, len(specs)))
        finally:
            manifest.flush()
    sweep_temporaries([*targets, manifest.path])  # even when all was done before a crash
    return BatchResult(tuple(records.values()), manifest.path, time.perf_counter() - start)


def _scene_step(record: SceneRecord, total: int) -> Step:
    """One more scene of `total` done, skipped or failed; a failure's reason as the note."""
    note = f"failed: {record.output}: {record.error}" if record.status == "failed" else ""
    return Step("scenes", 1, total, "scene", note=note)


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
    client: Client, tasks: list[SceneTask], model: TrainedModel, pixels: Count | None
) -> Iterator[SceneRecord]:
    """One task per scene; or, when the cluster has more threads than scenes, split scenes."""
    threads = sum(client.nthreads().values())
    if len(tasks) < threads:
        return _run_split(client, tasks, model, PARTS_PER_THREAD * threads, pixels)
    return _run_each(client, tasks, pixels)


def _run_each(
    client: Client, tasks: list[SceneTask], pixels: Count | None
) -> Iterator[SceneRecord]:
    futures = {client.submit(run_scene, task, pure=False): task for task in tasks}
    for future in as_completed(futures, loop=client.loop):
        task = futures.pop(future)
        try:
            record: SceneRecord = future.result()
        except Exception as exc:  # the task never returned, e.g. its workers kept dying
            record = failed(task.record, exc, None, None)
        future.release()
        if record.pixels and pixels is not None:
            pixels(sum(record.pixels.values()))
        yield record


def _run_split(
    client: Client, tasks: list[SceneTask], model: TrainedModel, parts: int, pixels: Count | None
) -> Iterator[SceneRecord]:
    """Every scene's row groups are submitted first, so workers never wait on the writes."""
    split: list[SplitScene] = []
    for task in tasks:
        start = time.perf_counter()
        try:
            split.append(SplitScene(client, task, model, parts))
        except Exception as exc:  # the client could not open the scene
            yield failed(task.record, exc, start, None)
    for scene in split:
        yield scene.write(pixels)

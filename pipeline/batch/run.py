"""The many-scene job on dask.distributed: one task per scene, or a scene's rows across workers.

The client checks that every input is there (bandfusion.batch.checks) before any cluster
starts, plans the run from the manifest beside the outputs (a local folder or an s3:// prefix,
bandfusion.batch.outputs), ships the model's bytes to the workers once, submits the tasks
(bandfusion.batch.tasks) and records every finished scene in the manifest as it arrives, so a
rerun after any interruption redoes only what is missing, partial or out of date. A failing scene
comes back as a record with its one-line reason; a task whose worker dies is rerun by the
scheduler elsewhere. When the cluster has more threads than scenes, scenes are split by rows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

from bandfusion.batch.checks import check_inputs
from bandfusion.batch.cluster import describe_cluster, local_client
from bandfusion.batch.manifest import (
    InputStamp,
    Manifest,
    PathLike,
    SceneRecord,
    SceneSpec,
    collect_scenes,
)
from bandfusion.batch.outputs import Outputs
from bandfusion.batch.shipped_model import ModelRef, ShippedModel, read_model
from bandfusion.batch.store import exists, stored_digest
from bandfusion.batch.tasks import BatchOptions, SceneTask, SplitScene, failed, run_scene
from bandfusion.errors import BandfusionError, OutputError
from bandfusion.io.inputs import refuse_clashes
from bandfusion.io.products.folders import is_folder_url
from bandfusion.io.remote import is_remote
from bandfusion.io.remote_bytes import probe_all
from bandfusion.models.checkpoint import METADATA_FILE, WEIGHTS_FILE, TrainedModel
from bandfusion.progress import Count, Progress, Step, counter, silent
from distributed import Client, Future, as_completed, wait

PARTS_PER_THREAD = 2
"""Row groups per cluster thread when scenes are split: a little slack for uneven workers."""
_COLLECT_TIMEOUT_S = 10
"""How long, after an interrupt, the client waits for a finished scene's record."""
_RETURN_GRACE_S = 5
"""How long, after an interrupt, tasks whose maps are in place get to return their records."""


class BatchError(BandfusionError):
    """Some scenes of a batch failed; each one's reason is in the summary and the manifest."""


@dataclass(frozen=True)
class BatchResult:
    """The records of one run's scenes, in input order, with the manifest (a path, or a URL in
    object storage) and wall time."""

    records: tuple[SceneRecord, ...]
    manifest: Path | str
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
    overwrite: bool = False,
    options: BatchOptions | None = None,
    progress: Progress | None = None,
    start_client: Callable[[], AbstractContextManager[Client]] = local_client,
) -> BatchResult:
    """Map every scene into `out_dir` on a dask.distributed cluster; returns the run's records.

    `scenes`: files, globs, directories, CSV/JSON scene lists or SceneSpecs, each input a local
    path or an https:// or s3:// URL; every input must be there (MissingInputs, naming each one
    that is not, before any cluster starts). `model`: a model directory, local or an s3://
    prefix or an https:// URL, read here once; its bytes reach each worker once. `out_dir`: a
    local folder or an s3:// prefix; workers write maps there, so a local one must be readable
    and writable where they run. `client`: a cluster to use; None starts one with
    `start_client` (a LocalCluster sized to the machine) only if any scene needs work. Scenes
    whose outputs are complete and current per the manifest beside them are skipped unless
    `force`; a file at an output path that the manifest does not record is refused unless
    `overwrite`; an output that is one of the inputs (a scene's file, a scene list, the model's
    files; links count) is refused (OutputError) before any map is written. One batch at a time
    writes into `out_dir`: a second is refused (OutputError) while the first holds
    DIR/.bandfusion.lock, or PREFIX/.bandfusion.lock in object storage (a leased lock object;
    a run whose lock another run took over ends with OutputError at its next manifest save).
    Failed scenes are records with a reason, not exceptions; check `result.failed`.
    `progress` is told of every scene as it is done, skipped or failed (stage "scenes", with
    the cluster's size and each failure as notes) and of map pixels as they are written
    (stage "pixels").
    """
    start = time.perf_counter()
    specs = collect_scenes(
        [scenes] if isinstance(scenes, str | os.PathLike | SceneSpec) else scenes
    )
    _refuse_writing_into_products(specs, out_dir)
    outputs = Outputs(out_dir)
    targets = outputs.targets(specs)
    _refuse_inputs_as_outputs(scenes, specs, model, outputs, targets)
    stamps = check_inputs(specs)
    with outputs.owned() as manifest:
        records = _run_owned(
            specs, stamps, targets, model, outputs, manifest, client, start_client, force,
            overwrite, options, progress,
        )  # fmt: skip
    where = outputs.manifest_path
    return BatchResult(
        records, where if outputs.remote else Path(where), time.perf_counter() - start
    )


def _run_owned(
    specs: list[SceneSpec],
    stamps: dict[str, InputStamp],
    targets: list[str],
    model: PathLike,
    outputs: Outputs,
    manifest: Manifest,
    client: Client | None,
    start_client: Callable[[], AbstractContextManager[Client]],
    force: bool,
    overwrite: bool,
    options: BatchOptions | None,
    progress: Progress | None,
) -> tuple[SceneRecord, ...]:
    """`run_batch`'s work, while this process alone writes into `outputs`."""
    report = progress or silent
    outputs.sweep(targets)  # what killed runs left
    report(Step("scenes", 0, len(specs), "scene"))
    pixels = counter(progress, "pixels", unit="px")
    ref, files, trained = read_model(model)
    if not (overwrite or manifest.damaged):
        _refuse_strays(targets, outputs, manifest)
    manifest.model = {"path": ref.path, "sha256": ref.sha256}
    pending = _pending(specs, stamps, targets, outputs, ref)
    planned = manifest.plan(pending, outputs.root, force)
    records = {record.output: record for record in planned}
    tasks = [
        SceneTask(record, target, ref, options or BatchOptions())
        for record, target in zip(planned, targets, strict=True)
        if record.status != "skipped"
    ]
    # the cluster first: one that cannot be reached ends the run before the manifest is written
    with _using(client, start_client) if tasks else nullcontext(None) as active:
        manifest.records.update(records)
        manifest.save()
        for record in planned:
            if record.status == "skipped":
                report(_scene_step(record, len(specs)))
        if active is not None:
            try:
                report(Step("scenes", 0, len(specs), "scene", note=describe_cluster(active)))
                running = _Running(active, tasks, trained, pixels)
                shipped = ShippedModel(ref, files)
                active.register_plugin(shipped)
                try:
                    for record in running:
                        records[record.output] = record
                        manifest.update(record)
                        report(_scene_step(record, len(specs)))
                except KeyboardInterrupt:
                    for record in running.finished():
                        manifest.update(record)
                    raise
                finally:
                    _unregister(active, shipped.name)
            finally:
                manifest.flush()
    outputs.sweep(targets)  # even when all was done before a crash
    return tuple(records.values())


def _refuse_inputs_as_outputs(
    scenes: PathLike | SceneSpec | Iterable[PathLike | SceneSpec],
    specs: Sequence[SceneSpec],
    model: PathLike,
    outputs: Outputs,
    targets: Sequence[str],
) -> None:
    """OutputError where a map or the manifest would be written onto an input: a scene's file,
    a scene list or folder named in `scenes`, or a file of the model directory (links count);
    in object storage, an input object under the output prefix."""
    items = [scenes] if isinstance(scenes, str | os.PathLike | SceneSpec) else list(scenes)
    named = [os.fspath(item) for item in items if not isinstance(item, SceneSpec)]
    inputs = [*named, *(os.fspath(file) for spec in specs for file in spec.inputs)]
    if outputs.remote:
        prefix = f"{outputs.root}/"
        for name in inputs:
            if name.startswith(prefix):
                raise OutputError(f"{name}: an input under the output prefix; never replacing one")
        return
    local = [Path(name) for name in inputs if not is_remote(name)]
    if not is_remote(model):
        local += [Path(model), Path(model) / METADATA_FILE, Path(model) / WEIGHTS_FILE]
    # each path once: two scenes naming one output are `Outputs.targets`' to refuse
    refuse_clashes(local, dict.fromkeys([*map(Path, targets), Path(outputs.manifest_path)]))


def _refuse_writing_into_products(specs: Sequence[SceneSpec], out_dir: PathLike) -> None:
    """OutputError, before anything is created, where `out_dir` is a scene's product folder (a
    SAFE, a Landsat product; on disk, or an s3:// prefix named by its folder URL) or lies inside
    one: a product is an input as a whole, so nothing is added to it."""
    remote = is_remote(out_dir)
    where = os.fspath(out_dir).rstrip("/") if remote else str(Path(out_dir).resolve())
    for spec in specs:
        for name in spec.inputs:
            if remote and is_folder_url(name):
                folder = name.rstrip("/")
            elif not remote and not is_remote(name) and Path(name).is_dir():
                folder = str(Path(name).resolve())
            else:
                continue
            if where == folder or where.startswith(f"{folder}/"):
                raise OutputError(
                    f"{out_dir}: is inside the input product {name}; never writing into one"
                )


def _refuse_strays(targets: Sequence[str], outputs: Outputs, manifest: Manifest) -> None:
    """OutputError for the first output path holding a file the manifest does not record:
    someone else's file, which a batch never replaces unless told to. A map's side file
    (`MAP.tif.aux.xml`, its class names) counts: the writer replaces it with the map."""
    unrecorded = [
        path
        for target in targets
        if outputs.name(target) not in manifest.records
        for path in (target, f"{target}.aux.xml")
    ]
    for path, present in zip(unrecorded, probe_all(exists, unrecorded), strict=True):
        if present:
            raise OutputError(
                f"{path}: exists and {manifest.path.name} does not record it; not replacing it",
                setting="overwrite",
            )


def _scene_step(record: SceneRecord, total: int) -> Step:
    """One more scene of `total` done, skipped or failed; a failure's reason as the note."""
    note = f"failed: {record.output}: {record.error}" if record.status == "failed" else ""
    return Step("scenes", 1, total, "scene", note=note)


def _pending(
    specs: Sequence[SceneSpec],
    stamps: dict[str, InputStamp],
    targets: Sequence[str],
    outputs: Outputs,
    ref: ModelRef,
) -> list[SceneRecord]:
    return [
        SceneRecord(
            output=outputs.name(target),
            inputs=tuple(stamps[name] for name in spec.inputs),
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


class _Running:
    """The tasks of a run on the cluster: iterating yields each scene's record as it ends; one
    task per scene, or, when the cluster has more threads than scenes, split scenes.

    After an interrupt, `finished` still gives the records of scene tasks that completed but
    were not collected yet, so that the manifest records their maps as done.
    """

    def __init__(
        self, client: Client, tasks: list[SceneTask], model: TrainedModel, pixels: Count | None
    ) -> None:
        self.client, self.tasks, self.model, self.pixels = client, tasks, model, pixels
        self.futures: dict[Future, SceneTask] = {}

    def __iter__(self) -> Iterator[SceneRecord]:
        threads = sum(self.client.nthreads().values())
        if len(self.tasks) < threads:
            return self._split(PARTS_PER_THREAD * threads)
        return self._each()

    def _each(self) -> Iterator[SceneRecord]:
        self.futures = {
            self.client.submit(run_scene, task, pure=False): task for task in self.tasks
        }
        for future in as_completed(list(self.futures), loop=self.client.loop):
            task = self.futures[future]
            try:
                record: SceneRecord = future.result()
            except Exception as exc:  # the task never returned, e.g. its workers kept dying
                record = failed(task.record, exc, None, None)
            if record.pixels and self.pixels is not None:
                self.pixels(sum(record.pixels.values()))
            yield record
            del self.futures[future]  # only once recorded: an interrupt before leaves it here
            future.release()

    def _split(self, parts: int) -> Iterator[SceneRecord]:
        """Every scene's row groups are submitted first, so workers never wait on the writes."""
        split: list[SplitScene] = []
        for task in self.tasks:
            start = time.perf_counter()
            try:
                split.append(SplitScene(self.client, task, self.model, parts))
            except Exception as exc:  # the client could not open the scene
                yield failed(task.record, exc, start, None)
        for scene in split:
            yield scene.write(self.pixels)

    def finished(self) -> list[SceneRecord]:
        """Records of scene tasks complete but not yet collected whose maps are in place and
        match the digest their task took (a split scene is written here, so never pending).

        A task whose map is already at its target has only its return left, so it is given a
        short grace to report: the interrupt may fall between the rename and the record, or
        between the task's end and the client hearing of it (under load, a while).
        """
        unfinished = [(f, task) for f, task in self.futures.items() if f.status != "finished"]
        targets = probe_all(exists, [task.target for _, task in unfinished])
        returning = [
            future for (future, _), there in zip(unfinished, targets, strict=True) if there
        ]
        if returning:
            with suppress(Exception):  # the grace ran out, or the cluster is going
                wait(returning, timeout=_RETURN_GRACE_S)
        records = []
        for future, task in list(self.futures.items()):
            if future.status != "finished":
                continue
            try:
                record: SceneRecord = future.result(timeout=_COLLECT_TIMEOUT_S)
            except Exception:  # its worker is gone: the scene stays pending
                continue
            if record.status == "done" and stored_digest(task.target) == record.sha256:
                records.append(record)
        return records


def _unregister(client: Client, name: str) -> None:
    """Drop the batch's model from the workers; a cluster already gone has nothing to drop."""
    with suppress(Exception):  # closed, or the plugin never reached it
        client.unregister_worker_plugin(name)

"""The many-scene job on dask.distributed: one task per scene, or a scene's rows across workers.

The client plans the run from DIR/manifest.json, submits the tasks (bandfusion.batch.tasks) and
records every finished scene in the manifest (temp file, rename) as it arrives, so a rerun
after any interruption redoes only what is missing, partial or out of date. A failing scene
comes back as a record with its one-line reason; a task whose worker dies is rerun by the
scheduler elsewhere. When the cluster has more threads than scenes, scenes are split by rows.
"""

from __future__ import annotations

import fcntl
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
    file_sha256,
    output_path,
)
from bandfusion.batch.tasks import BatchOptions, ModelRef, SceneTask, SplitScene, failed, run_scene
from bandfusion.errors import BandfusionError, OutputError
from bandfusion.io.atomic import check_writable
from bandfusion.io.inputs import refuse_clashes
from bandfusion.io.pam import aux_path
from bandfusion.models.checkpoint import METADATA_FILE, WEIGHTS_FILE, TrainedModel, load_model
from bandfusion.progress import Count, Progress, Step, counter, silent
from distributed import Client, Future, as_completed

PARTS_PER_THREAD = 2
"""Row groups per cluster thread when scenes are split: a little slack for uneven workers."""
_COLLECT_TIMEOUT_S = 10
"""How long, after an interrupt, the client waits for a finished scene's record."""
LOCK_NAME = ".bandfusion.lock"
"""The file in the output directory that a running batch holds locked (flock)."""


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
    overwrite: bool = False,
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
    `force`; a file at an output path that the manifest does not record is refused unless
    `overwrite`; an output path that is one of the inputs (a scene's file, a scene list, the
    model's files; links count) is refused (OutputError) before anything is written. One batch
    at a time writes into `out_dir`: a second is refused (OutputError)
    while the first holds DIR/.bandfusion.lock. Failed scenes are records with a reason, not
    exceptions; check `result.failed`.
    `progress` is told of every scene as it is done, skipped or failed (stage "scenes", with
    the cluster's size and each failure as notes) and of map pixels as they are written
    (stage "pixels").
    """
    start = time.perf_counter()
    items = [scenes] if isinstance(scenes, str | os.PathLike | SceneSpec) else list(scenes)
    specs = collect_scenes(items)
    _refuse_inputs_as_outputs(items, specs, Path(model), Path(out_dir))
    root = _prepare_out_dir(Path(out_dir))
    with _owning(root):
        records = _run_owned(
            specs, Path(model), root, client, start_client, force, overwrite, options, progress
        )
    return BatchResult(records, root / MANIFEST_NAME, time.perf_counter() - start)


def _run_owned(
    specs: list[SceneSpec],
    model: Path,
    root: Path,
    client: Client | None,
    start_client: Callable[[], AbstractContextManager[Client]],
    force: bool,
    overwrite: bool,
    options: BatchOptions | None,
    progress: Progress | None,
) -> tuple[SceneRecord, ...]:
    """`run_batch`'s work, while this process alone writes into `root`."""
    report = progress or silent
    targets = _targets(specs, root)
    sweep_temporaries([*targets, root / MANIFEST_NAME])  # what killed runs left
    report(Step("scenes", 0, len(specs), "scene"))
    pixels = counter(progress, "pixels", unit="px")
    trained = load_model(model)
    ref = ModelRef.of(model)
    manifest = Manifest.load(root)
    if not (overwrite or manifest.damaged):
        _refuse_strays(targets, root, manifest)
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
                running = _Running(active, tasks, trained, pixels)
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
            manifest.flush()
    sweep_temporaries([*targets, manifest.path])  # even when all was done before a crash
    return tuple(records.values())


@contextmanager
def _owning(root: Path) -> Iterator[None]:
    """Hold root/.bandfusion.lock (flock) while the body runs; OutputError if another process
    holds it. The file is removed at the end, so each holder checks it locked the file that
    is still at that name, not one a finishing holder had just removed."""
    path = root / LOCK_NAME
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise OutputError(
                f"{root}: another bandfusion batch is writing into it (it holds {path}); "
                "wait for it to end or choose another output dir"
            ) from None
        if _same_file(descriptor, path):
            break
        os.close(descriptor)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(descriptor)


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(descriptor), path.stat())
    except FileNotFoundError:
        return False


def _refuse_inputs_as_outputs(
    items: Sequence[PathLike | SceneSpec], specs: Sequence[SceneSpec], model: Path, out_dir: Path
) -> None:
    """OutputError where a map or the manifest would be written onto an input: a scene's file,
    a scene list or folder named in `items`, or a file of the model directory."""
    named = [Path(item) for item in items if not isinstance(item, SceneSpec)]
    scene_files = [Path(file) for spec in specs for file in spec.inputs]
    refuse_clashes(
        [*named, *scene_files, model, model / METADATA_FILE, model / WEIGHTS_FILE],
        # each path once: two scenes naming one output are `_targets`' to refuse, in its words
        dict.fromkeys(
            [*(output_path(out_dir, spec.output) for spec in specs), out_dir / MANIFEST_NAME]
        ),
    )


def _refuse_strays(targets: Sequence[Path], root: Path, manifest: Manifest) -> None:
    """OutputError for the first output path holding a file the manifest does not record:
    someone else's file, which a batch never replaces unless told to. A map's side file
    (`MAP.tif.aux.xml`, its class names) counts: the writer replaces it with the map."""
    for target in targets:
        if target.relative_to(root).as_posix() in manifest.records:
            continue
        for path in (target, aux_path(target)):
            if os.path.lexists(path):
                raise OutputError(
                    f"{path}: exists and {manifest.path.name} does not record it; not replacing it",
                    setting="overwrite",
                )


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
            task = self.futures.pop(future)
            try:
                record: SceneRecord = future.result()
            except Exception as exc:  # the task never returned, e.g. its workers kept dying
                record = failed(task.record, exc, None, None)
            future.release()
            if record.pixels and self.pixels is not None:
                self.pixels(sum(record.pixels.values()))
            yield record

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
        match the digest their task took (a split scene is written here, so never pending)."""
        records = []
        for future, task in list(self.futures.items()):
            if future.status != "finished":
                continue
            try:
                record: SceneRecord = future.result(timeout=_COLLECT_TIMEOUT_S)
            except Exception:  # its worker is gone: the scene stays pending
                continue
            target = Path(task.target)
            intact = target.is_file() and file_sha256(target) == record.sha256
            if record.status == "done" and intact:
                records.append(record)
        return records

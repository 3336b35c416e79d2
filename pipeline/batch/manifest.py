"""The batch job's two manifests: the scene list it is given, and the record it keeps in DIR.

Inputs are files, globs, directories or scene lists (CSV or JSON); each scene is one multi-band
raster or several band files, with an output name under the output directory. The record,
`DIR/manifest.json`, holds for each output its inputs (with size and mtime), the model's digest,
status, the output's sha256 and class pixel counts: enough to tell on a rerun which outputs are
complete and current, so that only the others are redone.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from bandfusion.batch.store import PathLike as PathLike  # re-exported, as is file_sha256
from bandfusion.batch.store import file_sha256 as file_sha256
from bandfusion.batch.store import is_object_store, join, stored_digest
from bandfusion.errors import BandfusionError, BandfusionWarning, OutputError, first_line
from bandfusion.io.atomic import atomic_output
from bandfusion.io.inputs import refuse_special
from bandfusion.io.products import is_product
from bandfusion.io.remote import is_remote
from bandfusion.io.remote_bytes import probe_all

RASTER_SUFFIXES = frozenset({".tif", ".tiff", ".jp2", ".vrt", ".img"})
SCENE_LIST_SUFFIXES = frozenset({".csv", ".json"})
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
STATUSES = ("pending", "done", "skipped", "failed")


@dataclass(frozen=True)
class SceneSpec:
    """One scene of a batch: its raster file(s) and the output's name under the output dir."""

    inputs: tuple[str, ...]
    output: str

    @classmethod
    def of(cls, inputs: PathLike | Sequence[PathLike], output: str | None = None) -> SceneSpec:
        """A scene from one raster or a list of band files; the output name defaults to the
        file's stem, or for band files the name of the folder holding them, plus `.tif`."""
        files = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
        if not files:
            raise BandfusionError("a scene needs at least one input file")
        paths = tuple(os.fspath(f) for f in files)
        return cls(paths, output if output is not None else _default_output(paths))


def _default_output(paths: tuple[str, ...]) -> str:
    if len(paths) == 1:
        return f"{Path(paths[0]).stem}.tif"
    folder = Path(os.path.commonpath([Path(p).absolute() for p in paths]))
    return f"{folder.name or Path(paths[0]).stem}.tif"


def collect_scenes(items: Iterable[PathLike | SceneSpec]) -> list[SceneSpec]:
    """Scenes from files, globs, directories (their rasters) and scene lists, in order."""
    scenes: list[SceneSpec] = []
    for item in items:
        scenes.extend([item] if isinstance(item, SceneSpec) else _expand(os.fspath(item)))
    if not scenes:
        raise BandfusionError("no scenes to process")
    return scenes


def _expand(item: str) -> list[SceneSpec]:
    if glob.has_magic(item):
        matches = _glob(item)
        if not matches:
            raise BandfusionError(f"{item}: no files match")
        return [scene for match in matches for scene in _expand(match)]
    path = Path(item)
    if is_product(path):
        return [SceneSpec.of(item)]
    if path.is_dir():
        rasters = sorted(p for p in path.iterdir() if _is_scene(p))
        if not rasters:
            raise BandfusionError(f"{item}: directory holds no raster files or products")
        return [SceneSpec.of(p) for p in rasters]
    if path.suffix.lower() in SCENE_LIST_SUFFIXES:
        return read_scene_list(path)
    return [SceneSpec.of(item)]


def _is_scene(path: Path) -> bool:
    """A raster file, or a product (a SAFE folder or zip, a Landsat folder) in a folder."""
    if path.suffix.lower() in RASTER_SUFFIXES:
        return True
    return (path.is_dir() or path.suffix.lower() == ".zip") and is_product(path)


def _glob(pattern: str) -> list[str]:
    """Sorted matches of a glob pattern, relative or absolute; `**` spans folders."""
    path = Path(pattern)
    relative = path.relative_to(path.anchor) if path.anchor else path
    return sorted(str(match) for match in Path(path.anchor or ".").glob(str(relative)))


def read_scene_list(path: PathLike) -> list[SceneSpec]:
    """Scenes from a CSV or JSON scene list; relative paths are relative to the list's folder
    (not the working directory), absolute paths and https:// or s3:// URLs are kept.

    CSV: a header with an `inputs` column (one file, or band files joined by `;`) and an
    optional `output` column. JSON: a list (or {"scenes": [...]}) of file names, lists of band
    files, or objects {"inputs": file or [files], "output": name}.
    """
    path = Path(path)
    refuse_special(path, BandfusionError)  # a FIFO would never end the read
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BandfusionError(f"{path}: cannot read scene list ({exc})") from exc
    entries = (
        _csv_entries(path, text) if path.suffix.lower() == ".csv" else _json_entries(path, text)
    )
    scenes = [_scene_of(path, n, inputs, output) for n, (inputs, output) in enumerate(entries, 1)]
    if not scenes:
        raise BandfusionError(f"{path}: scene list is empty")
    return scenes


Entry = tuple[object, object]


def _csv_entries(path: Path, text: str) -> Iterator[Entry]:
    reader = csv.DictReader(text.splitlines())
    if "inputs" not in (reader.fieldnames or []):
        raise BandfusionError(f"{path}: CSV scene list needs an 'inputs' column")
    for row in reader:
        if any(isinstance(value, str) and value.strip() for value in row.values()):
            files = [f.strip() for f in (row["inputs"] or "").split(";") if f.strip()]
            yield files, (row.get("output") or "").strip() or None


def _json_entries(path: Path, text: str) -> Iterator[Entry]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BandfusionError(f"{path}: not valid JSON ({exc})") from exc
    items = doc.get("scenes") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise BandfusionError(f"{path}: expected a list of scenes or {{'scenes': [...]}}")
    for item in items:
        yield (item.get("inputs"), item.get("output")) if isinstance(item, dict) else (item, None)


def _scene_of(path: Path, number: int, inputs: object, output: object) -> SceneSpec:
    files = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(files, list) or not files or not all(isinstance(f, str) for f in files):
        raise BandfusionError(f"{path}: scene {number}: inputs must be a file or a list of files")
    if output is not None and not (isinstance(output, str) and output):
        raise BandfusionError(f"{path}: scene {number}: output must be a file name")
    return SceneSpec.of([f if is_remote(f) else str(path.parent / f) for f in files], output)


def output_path(out_dir: Path, name: str) -> Path:
    """`out_dir / name`, refusing names that leave `out_dir` (absolute, `..`, links out)."""
    root = out_dir.resolve()
    target = (root / name).resolve()
    if root not in target.parents or target == root / MANIFEST_NAME:
        raise BandfusionError(f"output name {name!r} is not a file inside the output dir {out_dir}")
    return target


def output_target(out_dir: PathLike, name: str) -> str:
    """Where output `name` goes: `output_path` in a local dir, a key under an s3:// prefix."""
    if is_object_store(out_dir):
        return join(os.fspath(out_dir), name)
    return str(output_path(Path(out_dir), name))


@dataclass(frozen=True)
class InputStamp:
    """An input file's identity when the batch read it: a changed file means a redo."""

    path: str
    size: int | None
    mtime_ns: int | None

    @classmethod
    def of(cls, path: PathLike) -> InputStamp:
        """Stamp the file as it is now; a missing file gets no size (its scene will fail); a
        URL is kept as written (its stamp comes from `bandfusion.batch.checks`)."""
        if is_remote(path):
            return cls(os.fspath(path), None, None)
        absolute = Path(path).absolute()
        try:
            stat = absolute.stat()
        except OSError:
            return cls(str(absolute), None, None)
        return cls(str(absolute), stat.st_size, stat.st_mtime_ns)


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "output": (str,),
    "model_sha256": (str,),
    "sha256": (str, type(None)),
    "pixels": (dict, type(None)),
}
"""Fields whose type the rest of the batch relies on, checked as a manifest is read."""


@dataclass(frozen=True)
class SceneRecord:
    """What the batch knows about one output: manifest.json holds one of these per scene."""

    output: str
    inputs: tuple[InputStamp, ...]
    model_sha256: str
    status: str = "pending"
    sha256: str | None = None
    pixels: dict[str, int] | None = None
    duration_s: float | None = None
    worker: str | None = None
    parts: int | None = None
    error: str | None = None

    @property
    def input_paths(self) -> list[str]:
        return [stamp.path for stamp in self.inputs]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (inputs as a list of {path, size, mtime_ns})."""
        doc = {field.name: getattr(self, field.name) for field in fields(self)}
        return {**doc, "inputs": [dict(vars(stamp)) for stamp in self.inputs]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> SceneRecord:
        """Inverse of to_json; raises KeyError, TypeError or ValueError on a malformed entry."""
        record = cls(**{**doc, "inputs": tuple(InputStamp(**stamp) for stamp in doc["inputs"])})
        if record.status not in STATUSES:
            raise ValueError(f"unknown status {record.status!r}")
        for name, kinds in _FIELD_TYPES.items():
            if not isinstance(getattr(record, name), kinds):
                raise TypeError(f"{record.output!r}: {name} is not {kinds[0].__name__}")
        if record.pixels is not None and not all(
            isinstance(count, int) for count in record.pixels.values()
        ):
            raise TypeError(f"{record.output!r}: pixel counts are not integers")
        return record

    def same_work(self, previous: SceneRecord) -> bool:
        """Whether `previous` finished this same work: its output, if intact, is this one's."""
        return (
            previous.status in ("done", "skipped")
            and previous.inputs == self.inputs
            and previous.model_sha256 == self.model_sha256
            and previous.sha256 is not None
        )


class Manifest:
    """DIR/manifest.json: records by output name, saved whole (temp file, rename) as they change.

    One scene a line, each line encoded once per record. Records of outputs that a run does not
    touch are kept, so one directory can collect the results of several runs. `update` saves at
    once unless the last save was very recent: saving takes at most a tenth of the caller's
    time, however many scenes the manifest holds.
    """

    def __init__(
        self,
        path: Path,
        records: dict[str, SceneRecord],
        model: dict[str, str],
        *,
        damaged: bool = False,
    ):
        self.path = path
        self.records = records
        self.model = model
        self.damaged = damaged
        """Whether a manifest was there but unreadable: its records are lost, not absent."""
        self._lines: dict[str, tuple[SceneRecord, str]] = {}
        self._next_save = 0.0
        self._unsaved = False

    @classmethod
    def load(cls, out_dir: Path) -> Manifest:
        """The manifest in `out_dir`; empty when absent, and (with a warning) when unreadable."""
        path = out_dir / MANIFEST_NAME
        if not path.exists():
            return cls(path, {}, {})
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            records = {r.output: r for r in map(SceneRecord.from_json, doc["scenes"])}
            model = dict(doc.get("model") or {})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            reason = first_line(exc, typed=True)
            warnings.warn(
                BandfusionWarning(f"{path}: unreadable manifest ({reason}); redoing every scene"),
                stacklevel=2,
            )
            return cls(path, {}, {}, damaged=True)
        return cls(path, records, model)

    def update(self, record: SceneRecord) -> None:
        """Replace the record for `record.output`; save unless the last save was just now."""
        self.records[record.output] = record
        self._unsaved = True
        if time.monotonic() >= self._next_save:
            self.save()

    def flush(self) -> None:
        """Save whatever `update` has not saved yet."""
        if self._unsaved:
            self.save()

    def save(self) -> None:
        """Write the manifest atomically: readers see the old file or the new one, never half."""
        start = time.monotonic()
        head = f'{{"version": {MANIFEST_VERSION}, "model": {json.dumps(self.model)}, "scenes": [\n'
        scenes = ",\n".join(self._line(record) for record in self.records.values())
        try:
            with atomic_output(self.path) as tmp:
                tmp.write_text(f"{head}{scenes}\n]}}\n", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write manifest ({exc.strerror})") from exc
        self._unsaved = False
        self._next_save = time.monotonic() + 9 * (time.monotonic() - start)

    def _line(self, record: SceneRecord) -> str:
        """`record` as one line of JSON, encoded again only when the record changed."""
        cached = self._lines.get(record.output)
        if cached is None or cached[0] is not record:
            cached = (record, json.dumps(record.to_json()))
            self._lines[record.output] = cached
        return cached[1]

    def plan(self, pending: list[SceneRecord], out_dir: PathLike, force: bool) -> list[SceneRecord]:
        """Each pending record, or its earlier record marked skipped where that is current.

        The outputs that may be current are probed together (`probe_all`), not one by one.
        """
        earlier = {} if force else {
            record.output: previous
            for record in pending
            if (previous := self.records.get(record.output)) and record.same_work(previous)
        }  # fmt: skip
        names = list(earlier)
        digests = probe_all(stored_digest, [output_target(out_dir, name) for name in names])
        intact = {
            name for name, digest in zip(names, digests, strict=True)
            if digest == earlier[name].sha256
        }  # fmt: skip
        return [
            replace(earlier[record.output], status="skipped") if record.output in intact else record
            for record in pending
        ]

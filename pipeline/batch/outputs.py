"""Where a batch writes: a local folder, or a prefix in object storage (`s3://bucket/prefix`).

Either way the maps go under their output names and `manifest.json` beside them, and only the
client writes the manifest, while it holds the location's lock: a local folder's lock file
(flock), or a prefix's leased lock object (`bandfusion.batch.object_lock`). A local folder is
swept of what killed runs left; object storage needs no sweep: a map appears under its key only
once uploaded whole, and the manifest is put whole each time it is saved, from a copy in the
client's temporary space.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bandfusion.atomic import sweep_temporaries
from bandfusion.batch.manifest import MANIFEST_NAME, Manifest, SceneSpec, output_target
from bandfusion.batch.object_lock import LOCK_NAME, ObjectLock, holding
from bandfusion.batch.store import PathLike, is_object_store, read_bytes, write_text
from bandfusion.errors import BandfusionError, OutputError, first_line
from bandfusion.io.atomic import check_writable
from bandfusion.io.remote import as_url, url_scheme


class Outputs:
    """A batch's output location, while one run writes into it (a context manager)."""

    def __init__(self, where: PathLike) -> None:
        """OutputError for a URL that is not an s3:// prefix: https:// has no atomic upload."""
        self.remote = is_object_store(where)
        url = as_url(where)
        if url and not self.remote:
            raise OutputError(
                f"{url}: maps are written to a local folder or an s3:// prefix, not to"
                f" {url_scheme(url)}:// (an S3-compatible store over https is s3:// with its"
                " endpoint in AWS_ENDPOINT_URL)",
                setting="out_dir",
            )
        self.root = os.fspath(where).rstrip("/") if self.remote else _prepare_dir(Path(where))
        self.manifest_path = f"{self.root}/{MANIFEST_NAME}"

    def targets(self, specs: Sequence[SceneSpec]) -> list[str]:
        """Each scene's output; names leaving the output location, or used twice, are refused."""
        targets = [output_target(self.root, spec.output) for spec in specs]
        twice = sorted(self.name(t) for t, n in Counter(targets).items() if n > 1)
        if twice:
            raise BandfusionError(
                f"several scenes would write {', '.join(twice)}; give them distinct output names"
                " (a scene list's 'output' column). Each raster of a folder is a scene; band"
                " files of one scene are one row of a scene list, joined by ';'"
            )
        if not self.remote:
            for target in targets:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
        return targets

    def name(self, target: str) -> str:
        """The output name of `target`, as the manifest records it."""
        return target[len(self.root) + 1 :]

    def sweep(self, targets: Sequence[str]) -> None:
        """Remove what killed runs left beside the outputs (object storage holds no such)."""
        if not self.remote:
            sweep_temporaries([*map(Path, targets), Path(self.manifest_path)])

    @contextmanager
    def owned(self) -> Iterator[Manifest]:
        """The location's manifest, while this run alone writes there: holding
        DIR/.bandfusion.lock (flock), or PREFIX/.bandfusion.lock (a leased lock object);
        OutputError when another run holds it."""
        if not self.remote:
            with _owning(Path(self.root)):
                yield Manifest.load(Path(self.root))
            return
        with holding(self.root) as lock, \
                tempfile.TemporaryDirectory(prefix="bandfusion-manifest-") as scratch:  # fmt: skip
            manifest = ObjectManifest.fetch(self.manifest_path, Path(scratch))
            manifest.lock = lock
            yield manifest


class ObjectManifest(Manifest):
    """A manifest in object storage: kept in a local file, and put whole at each save, only
    while the run still holds the prefix's lock (where the store can hold one)."""

    url = ""
    lock: ObjectLock | None = None

    @classmethod
    def fetch(cls, url: str, scratch: Path) -> ObjectManifest:
        """The manifest at `url` (empty when there is none), copied into `scratch`."""
        try:
            (scratch / MANIFEST_NAME).write_bytes(read_bytes(url))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(f"{url}: cannot read manifest ({first_line(exc)})") from exc
        loaded = cls.load(scratch)
        manifest = cls(loaded.path, loaded.records, loaded.model, damaged=loaded.damaged)
        manifest.url = url
        return manifest

    def save(self) -> None:
        if self.lock is not None:
            self.lock.check()
        super().save()
        try:
            write_text(self.url, self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise OutputError(f"{self.url}: cannot write manifest ({first_line(exc)})") from exc


def _prepare_dir(out_dir: Path) -> str:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot create output directory ({exc.strerror})") from exc
    check_writable(out_dir / MANIFEST_NAME)
    return str(out_dir.resolve())


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

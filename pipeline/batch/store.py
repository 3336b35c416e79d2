"""Where a batch's files live: local paths, or objects under `s3://bucket/prefix`.

A map bound for object storage is written to the worker's local temporary folder and uploaded
to its final key only once complete (boto3's transfer manager: one PUT, or a multipart upload
for a large map, which S3 makes visible only when it completes), so no partial object is ever
under a final key. Each upload carries the map's sha256 as object metadata: a rerun tells a
complete, current map by a HEAD request instead of reading it back. The store is configured by
the standard AWS environment, as GDAL reads the scenes (`bandfusion.io.s3`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bandfusion.errors import BandfusionError, OutputError, first_line
from bandfusion.io.s3 import S3, head, not_found, s3_client, split_url

PathLike = str | os.PathLike[str]
DIGEST_KEY = "sha256"
"""The object metadata entry (x-amz-meta-sha256) that holds an uploaded map's sha256."""
MULTIPART_BYTES = 64 * 2**20
"""Maps larger than this are uploaded in parts of this size (S3's minimum part is 5 MiB)."""
_HASH_BLOCK = 1 << 20


def is_object_store(where: PathLike) -> bool:
    """Whether `where` names objects in S3 or an S3-compatible store."""
    return os.fspath(where).startswith(S3)


def join(root: str, name: str) -> str:
    """The URL of `name` under the prefix `root`, refusing names that leave it."""
    parts = name.split("/")
    if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise BandfusionError(f"output name {name!r} is not a plain key under {root}")
    return f"{root.rstrip('/')}/{name}"


def file_sha256(path: PathLike) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def stored_digest(target: PathLike) -> str | None:
    """The sha256 of the complete output at `target`: a local file's, hashed; an object's, as
    its upload recorded it. None when there is none (an object without the record is not a
    map this batch wrote)."""
    if is_object_store(target):
        answer = head(os.fspath(target))
        return None if answer is None else answer.get("Metadata", {}).get(DIGEST_KEY)
    path = Path(target)
    return file_sha256(path) if path.is_file() else None


def exists(target: PathLike) -> bool:
    """Whether anything is at `target` (a file, a link, an object)."""
    if is_object_store(target):
        return head(os.fspath(target)) is not None
    return os.path.lexists(target)


def upload(local: Path, url: str, digest: str) -> None:
    """Put `local` under `url` with its digest; visible there only once complete."""
    from boto3.s3.transfer import TransferConfig

    bucket, key = split_url(url)
    config = TransferConfig(
        multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES
    )
    extra = {"Metadata": {DIGEST_KEY: digest}, "ContentType": _content_type(url)}
    s3_client().upload_file(str(local), bucket, key, ExtraArgs=extra, Config=config)


def _content_type(url: str) -> str:
    return "application/json" if url.endswith(".json") else "image/tiff"


def write_output(target: str, write: Callable[[Path], object]) -> str:
    """Have `write` make the output `target` and return its sha256.

    A local target is written in place (the writers replace files atomically); an object is
    written into a local temporary folder, then uploaded whole, and the folder removed. Side
    files the writer put beside it (the map's .aux.xml) go up first, so that a map under its
    final key always has them.
    """
    if not is_object_store(target):
        write(Path(target))
        return file_sha256(target)
    with local_copy(target) as local:
        write(local)
        digest = file_sha256(local)
        sides = sorted(p for p in local.parent.iterdir() if p.name.startswith(f"{local.name}."))
        try:
            for file in [*sides, local]:
                upload(file, f"{target}{file.name[len(local.name) :]}", file_sha256(file))
        except Exception as exc:  # botocore's errors, once its retries are spent
            cause = exc.__cause__ or exc.__context__ or exc  # boto3 wraps the S3 answer
            reason = first_line(cause, typed=True)
            raise OutputError(f"{target}: cannot upload ({reason})") from exc
    return digest


@contextmanager
def local_copy(url: str) -> Iterator[Path]:
    """A path for `url`'s file in a new temporary folder of this machine, removed on exit."""
    folder = tempfile.mkdtemp(prefix="bandfusion-")
    try:
        yield Path(folder) / url.rsplit("/", 1)[-1]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_bytes(where: PathLike, limit: int | None = None) -> bytes:
    """A file's or an object's bytes; OSError when absent, over `limit` or unreadable."""
    if not is_object_store(where):
        path = Path(where)
        if limit is not None and path.stat().st_size > limit:
            raise OSError(f"{path.name} is over the {limit}-byte limit")
        return path.read_bytes()
    url = os.fspath(where)
    answer = _wrapped(head, url)
    if answer is None:
        raise FileNotFoundError(f"{url}: no such object")
    if limit is not None and int(answer["ContentLength"]) > limit:
        raise OSError(f"{url}: over the {limit}-byte limit")
    bucket, key = split_url(url)
    body = _wrapped(lambda: s3_client().get_object(Bucket=bucket, Key=key))["Body"]
    return bytes(body.read())


def write_text(url: str, text: str) -> None:
    """Put `text` under the object `url` in one request (an object appears whole)."""
    bucket, key = split_url(url)
    data = text.encode("utf-8")
    extra = {"Metadata": {DIGEST_KEY: hashlib.sha256(data).hexdigest()}}
    _wrapped(
        lambda: s3_client().put_object(
            Bucket=bucket, Key=key, Body=data, ContentType=_content_type(url), **extra
        )
    )


def _wrapped(call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)`, with botocore's failures as OSError (a file-system-like failure)."""
    try:
        return call(*args)
    except OSError:
        raise
    except Exception as exc:
        if not_found(exc):
            raise FileNotFoundError(first_line(exc)) from exc
        raise OSError(first_line(exc, typed=True)) from exc

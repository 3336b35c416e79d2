"""A batch's inputs checked before any cluster starts: each one is there and readable.

A missing input is the user's mistake, found in the time a `stat` or a HEAD request takes (a
product named by its folder URL: a HEAD for each metadata name it may have), not
after a cluster's start-up and a failed task per scene. Every input is looked at (many at once:
remote ones are a request each) and every missing one named, one line each. An input that is
there but corrupt inside is not refused here: its scene fails with its reason and the others
finish. The same look gives each input its stamp for the manifest.
"""

from __future__ import annotations

import email.utils
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from bandfusion.batch.manifest import InputStamp, SceneSpec
from bandfusion.batch.store import is_object_store
from bandfusion.errors import BandfusionError, SceneError, first_line
from bandfusion.io.products import is_product
from bandfusion.io.products.folders import folder_metadata, is_folder_url
from bandfusion.io.remote import is_remote
from bandfusion.io.remote_bytes import probe_all
from bandfusion.io.s3 import head


class MissingInputs(BandfusionError):
    """Some inputs of a batch are missing or unreadable; one line names each."""


def check_inputs(specs: Iterable[SceneSpec]) -> dict[str, InputStamp]:
    """Each input's stamp, by name; MissingInputs naming every input that is absent or
    unreadable, before any work starts."""
    names = list(dict.fromkeys(name for spec in specs for name in spec.inputs))
    looks = probe_all(_look, names)
    problems = [
        f"  {name}: {problem}" for name, (_, problem) in zip(names, looks, strict=True) if problem
    ]
    if problems:
        raise MissingInputs(
            f"{len(problems)} of {len(names)} inputs cannot be read; nothing was started:\n"
            + "\n".join(problems)
        )
    return {name: stamp for name, (stamp, _) in zip(names, looks, strict=True)}


def _look(name: str) -> tuple[InputStamp, str | None]:
    """The input's stamp, and what is wrong with it (None when nothing is)."""
    try:
        if is_folder_url(name):
            return _folder_stamp(name)
        if is_object_store(name):
            return _object_stamp(name)
        if is_remote(name):
            return _http_stamp(name)
        return _local_stamp(name)
    except Exception as exc:  # a network failure: named, as each other problem is
        return InputStamp(name, None, None), f"cannot reach it ({first_line(exc, typed=True)})"


def _local_stamp(name: str) -> tuple[InputStamp, str | None]:
    stamp = InputStamp.of(name)
    path = Path(stamp.path)
    if stamp.size is None:
        return stamp, "no such file"
    if not os.access(path, os.R_OK):
        return stamp, "not readable (permission denied)"
    if path.is_dir() and not is_product(path):
        return stamp, "is a directory, not a raster or a sensor product"
    return stamp, None


def _folder_stamp(url: str) -> tuple[InputStamp, str | None]:
    """A product named by its folder URL, stamped by its metadata file (found by its name)."""
    try:
        metadata = folder_metadata(url)
    except SceneError as exc:
        return InputStamp(url, None, None), str(exc).removeprefix(f"{url}: ")
    stamp, problem = _object_stamp(metadata)
    return InputStamp(url, stamp.size, stamp.mtime_ns), problem


def _object_stamp(url: str) -> tuple[InputStamp, str | None]:
    answer = head(url)
    if answer is None:
        return InputStamp(url, None, None), "no such object"
    modified = answer.get("LastModified")
    mtime = None if modified is None else int(modified.timestamp() * 1e9)
    return InputStamp(url, int(answer["ContentLength"]), mtime), None


def _http_stamp(url: str) -> tuple[InputStamp, str | None]:
    request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "bandfusion"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            size = response.headers.get("Content-Length")
            modified = response.headers.get("Last-Modified")
    except urllib.error.HTTPError as exc:
        return InputStamp(url, None, None), f"HTTP {exc.code}: {exc.reason}"
    mtime = None
    if modified:
        mtime = int(email.utils.parsedate_to_datetime(modified).timestamp() * 1e9)
    return InputStamp(url, None if size is None else int(size), mtime), None

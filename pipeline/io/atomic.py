"""Output files written atomically: maps, JSON, PNG and manifests, with one-line errors.

The temporary names, the rename and the removal of leftovers are `bandfusion.atomic`'s (one
rule for files and model directories); this module adds what output files need on top: a
check before any compute that the path can be written, and a full disk reported as such,
whether Python or GDAL noticed it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bandfusion.atomic import replacing
from bandfusion.errors import OutputError
from rasterio._err import CPLE_BaseError

_FULL_ERRNOS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded"}
# GDAL reports a full disk as a bare write error (no errno); with less free space than a few
# tiles, that error is the full disk.
_NEARLY_FULL_BYTES = 16 * 2**20


def check_writable(path: str | Path) -> Path:
    """Raise OutputError unless a file can be created at `path`; called before any compute."""
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise OutputError(f"{target}: output directory {parent} does not exist")
    if target.is_dir():
        raise OutputError(f"{target}: is a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{target}: directory {parent} is not writable")
    return target


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`, renamed onto `path` only if the block succeeds.

    Every file whose name starts with the temporary path's stem (the yielded path, scratch files
    derived from it, GDAL's side files) is removed afterwards, whatever happened. A failure
    caused by a full disk becomes an OutputError saying so.
    """
    target = check_writable(path)
    with replacing(target) as tmp:
        try:
            yield tmp
        except Exception as exc:
            problem = _disk_problem(exc, target.parent)
            if problem:
                raise OutputError(f"{target}: {problem}") from exc
            raise


def write_json(path: str | Path, document: object, **options: Any) -> Path:
    """Write `document` as the JSON file `path`, atomically; `options` go to `json.dump`."""
    with atomic_output(path) as tmp, tmp.open("w", encoding="utf-8") as file:
        json.dump(document, file, **options)
    return Path(path)


def _disk_problem(exc: Exception, directory: Path) -> str | None:
    """'disk full' (or quota) when `exc` is an I/O failure caused by a full disk, else None."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return _FULL_ERRNOS[exc.errno]
    # rasterio raises SystemError ("Unknown GDAL Error") when GDAL fails without a message.
    io_failure = isinstance(exc, OSError | CPLE_BaseError | SystemError)
    if io_failure and shutil.disk_usage(directory).free < _NEARLY_FULL_BYTES:
        return _FULL_ERRNOS[errno.ENOSPC]
    return None

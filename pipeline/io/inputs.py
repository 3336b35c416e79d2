"""What an input path must be before it is opened, and what an output may never be.

Opening a FIFO for reading waits for a writer, and reading a terminal or a socket waits for
input: either would hang a command forever. Such paths are refused from their `stat`, before
anything opens them. Inputs are never replaced: an output that is one of its command's inputs
(the same file by device and inode, so a symlink or a hard link counts), or two outputs that are
one file, are refused before any work, by the CLI and by the Python API's `run_batch` alike.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from bandfusion.errors import BandfusionError, OutputError

_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def refuse_special(path: str | os.PathLike[str], error: type[BandfusionError]) -> None:
    """Raise `error` naming `path` when it is (or links to) a FIFO, device or socket.

    Paths that do not exist pass: the caller says so in its own words.
    """
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return
    for test, kind in _SPECIAL:
        if test(mode):
            raise error(
                f"{os.fspath(path)}: is {kind}, not a regular file; refused, as reading it "
                "could wait forever"
            )


def file_identity(path: Path | str) -> tuple[int, int] | str:
    """What makes two paths one file: device and inode where it exists (links count), else
    the path with every link of its folders resolved (a URL input is never a local output)."""
    try:
        info = Path(path).stat()
    except OSError:
        return os.path.realpath(path)
    return (info.st_dev, info.st_ino)


def refuse_clashes(
    inputs: Iterable[Path | str | None], outputs: Iterable[Path | None]
) -> list[Path]:
    """Raise OutputError, naming the output, if an output is one of the inputs or two outputs
    are one file; returns the outputs given (None entries, options not given, left out)."""
    known = {file_identity(path): path for path in inputs if path is not None}
    seen: dict[tuple[int, int] | str, Path] = {}
    for output in (path for path in outputs if path is not None):
        identity = file_identity(output)
        if identity in known:
            raise OutputError(f"{output}: is the input {known[identity]}; never replacing an input")
        if identity in seen:
            raise OutputError(f"{output}: is also the output {seen[identity]}; name another file")
        seen[identity] = output
    return list(seen.values())

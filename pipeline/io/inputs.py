"""What an input path must be before it is opened: never a FIFO, device or socket.

Opening a FIFO for reading waits for a writer, and reading a terminal or a socket waits for
input: either would hang a command forever. Such paths are refused from their `stat`, before
anything opens them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bandfusion.errors import BandfusionError

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


def file_stamp(path: str) -> tuple[int, int]:
    """(mtime_ns, size) of the file holding `path`: the archive of a /vsizip/ path, (0, 0) for
    other GDAL virtual paths (nothing local to stat). A changed file gets a new stamp."""
    if path.startswith("/vsizip/") and (cut := path.lower().find(".zip/")) > 0:
        path = path[len("/vsizip/") : cut + 4]
    elif path.startswith("/vsi"):
        return (0, 0)
    stat = Path(path).stat()
    return (stat.st_mtime_ns, stat.st_size)

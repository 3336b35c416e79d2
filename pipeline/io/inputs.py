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

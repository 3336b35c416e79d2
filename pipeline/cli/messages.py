"""What reaches the terminal besides bandfusion's own lines: nothing, unless `--debug`.

GDAL, libtiff and PROJ speak in two ways. Through GDAL's error handler, which rasterio turns
into records of the `rasterio` loggers; a failure among them already comes back to us as the
exception our one-line error quotes. And straight to the process's standard error (file
descriptor 2), where C code prints without asking Python: PROJ's database complaints, GDAL's
default handler on a thread rasterio never set up, worker processes' logs. Both are kept off
the terminal, and shown with `--debug`. bandfusion's own warnings are shown whatever Python's
warning filters say (`PYTHONWARNINGS=ignore`, `-W error`): they tell of a map with no data, a
scene without CRS, and must not be lost or become errors.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from bandfusion.errors import BandfusionWarning

LIBRARY_LOGGERS = ("rasterio",)
"""The loggers that carry GDAL's messages (rasterio._env, rasterio._err, ...)."""


def show_our_warnings() -> None:
    """Show every BandfusionWarning once per place, whatever filters Python was started with.

    Call inside `warnings.catch_warnings()`: the filter is put before those of the environment.
    """
    warnings.filterwarnings("default", category=BandfusionWarning)


@contextmanager
def library_messages(debug: bool) -> Iterator[None]:
    """Keep GDAL's logged and printed messages off the terminal in the block; with `debug`,
    show them: its warnings and errors as `bandfusion: gdal: ...` lines, what C code printed
    after the run."""
    with _native_stderr_captured(replay=debug):
        handler: logging.Handler = logging.NullHandler()
        if debug:  # sys.stderr is now the real standard error
            handler = logging.StreamHandler(sys.stderr)
            handler.setLevel(logging.WARNING)
            handler.setFormatter(logging.Formatter("bandfusion: gdal: %(message)s"))
        loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
        propagates = [logger.propagate for logger in loggers]
        for logger in loggers:
            logger.addHandler(handler)
            logger.propagate = False
        try:
            yield
        finally:
            for logger, propagate in zip(loggers, propagates, strict=True):
                logger.removeHandler(handler)
                logger.propagate = propagate


@contextmanager
def _native_stderr_captured(*, replay: bool) -> Iterator[None]:
    """Point file descriptor 2 at a temporary file for the block, Python's `sys.stderr` at the
    real standard error; with `replay`, copy what C code printed there afterwards.

    Nothing is done when `sys.stderr` is not file descriptor 2 (the CLI run inside a test or a
    notebook, whose stderr is already someone's capture).
    """
    try:
        ours = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        ours = False
    if not ours:
        yield
        return
    sys.stderr.flush()
    real = os.dup(2)
    previous = sys.stderr
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        sys.stderr = os.fdopen(
            os.dup(real), "w", buffering=1, encoding=previous.encoding, errors="backslashreplace"
        )
        try:
            yield
        finally:
            sys.stderr.flush()
            sys.stderr.close()
            os.dup2(real, 2)
            os.close(real)
            sys.stderr = previous
            if replay:
                captured.seek(0)
                sys.stderr.flush()
                shutil.copyfileobj(captured, sys.stderr.buffer)
                sys.stderr.flush()

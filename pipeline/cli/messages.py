"""What reaches the terminal besides bandfusion's own lines: GDAL's, only with `--debug`.

GDAL, libtiff and PROJ report through GDAL's error handler, which rasterio turns into records
of the `rasterio` loggers; a failure among them already comes back to us as the exception our
one-line error quotes, so the records are kept off the terminal (Python's last-resort handler
would print them beside our line) and shown with `--debug`. What C code writes straight to the
process's standard error is left alone: a crash's last words must never be hidden.
bandfusion's own warnings are shown whatever Python's warning filters say (`PYTHONWARNINGS=
ignore`, `-W error`): they tell of a map with no data, a scene without CRS, and must not be lost
or become errors.
"""

from __future__ import annotations

import logging
import sys
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
    """Keep GDAL's logged messages off the terminal in the block; with `debug`, show its
    warnings and errors as `bandfusion: gdal: ...` lines."""
    handler: logging.Handler = logging.NullHandler()
    if debug:
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

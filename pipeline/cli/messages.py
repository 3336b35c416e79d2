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
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from bandfusion.errors import BandfusionWarning

LIBRARY_LOGGERS = ("rasterio",)
"""The loggers that carry GDAL's messages (rasterio._env, rasterio._err, ...)."""


@contextmanager
def terminal_messages(debug: bool) -> Iterator[None]:
    """For a command's run: our warnings as `bandfusion: warning: ...` lines whatever Python's
    filters say, GDAL's log records and undecodable log lines off the terminal unless `debug`."""
    hook = sys.unraisablehook
    with warnings.catch_warnings(), library_messages(debug):
        warnings.showwarning = _show_warning
        warnings.filterwarnings("default", category=BandfusionWarning)
        if not debug:
            sys.unraisablehook = _without_decode_errors(hook)
        try:
            yield
        finally:
            sys.unraisablehook = hook


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """Our warnings as one line, `bandfusion: warning: ...`; others as Python shows them."""
    if issubclass(category, BandfusionWarning):
        click.echo(f"bandfusion: warning: {message}", err=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _without_decode_errors(
    previous: Callable[[sys.UnraisableHookArgs], object],
) -> Callable[[sys.UnraisableHookArgs], None]:
    """An unraisable hook dropping UnicodeDecodeErrors and passing others to `previous`.

    Those come from rasterio's GDAL log callback failing to decode a message that quotes a
    corrupt file's bytes: the real error, if any, follows as bandfusion's one line.
    """

    def hook(unraisable: sys.UnraisableHookArgs) -> None:
        if not issubclass(unraisable.exc_type, UnicodeDecodeError):
            previous(unraisable)

    return hook


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

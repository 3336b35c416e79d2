"""Outputs never replace inputs: the one check every command that writes files makes first.

Before any work, a command's outputs are refused when one of them is one of its inputs (the same
file by device and inode, so a symlink or a hard link to an input counts), when two of them are
one file, when one exists already and --overwrite was not given (rasterio's `rio` convention),
and when one cannot be written (`check_writable`). A map's side file (`MAP.tif.aux.xml`, see
`bandfusion.io.pam`) is part of the map: one there counts as an existing output. Map outputs
are GeoTIFFs, so their names must say so: the format follows the suffix, and a suffix of
another format is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from bandfusion.errors import OutputError
from bandfusion.io.atomic import check_writable
from bandfusion.io.inputs import refuse_clashes
from bandfusion.io.pam import aux_path
from bandfusion.io.remote import as_url
from bandfusion.models.checkpoint import METADATA_FILE, WEIGHTS_FILE

GEOTIFF_SUFFIXES = (".tif", ".tiff")

overwrite_option = click.option(
    "--overwrite", is_flag=True, help="Replace outputs that exist already (never an input)."
)


def model_files(model_path: Path) -> list[Path]:
    """The two files of the model directory `model_path`."""
    return [model_path / METADATA_FILE, model_path / WEIGHTS_FILE]


def refuse_remote(path: Path) -> None:
    """Raise OutputError for an output named by URL (s3://, https://): outputs are local files
    (object storage as an output is yet to come), and click would make `s3://b/k` a local
    folder `s3:`."""
    url = as_url(path)
    if url:
        raise OutputError(f"{url}: outputs are local files; write it here, then upload it")


def check_outputs(
    inputs: Iterable[Path | str | None],
    outputs: Iterable[Path | None],
    *,
    overwrite: bool,
    writable: bool = True,
) -> None:
    """Raise OutputError, naming the output, unless every output may be written: none is an
    input or another output, none exists unless `overwrite`, and (where `writable`: not for
    the files of a model directory, which `check_model_path` checks) each can be created."""
    outputs = list(outputs)
    for output in outputs:
        if output is not None:
            refuse_remote(output)
    for output in refuse_clashes(inputs, outputs):
        for existing in [output, *_side_files(output)]:
            if os.path.lexists(existing) and not overwrite and not existing.is_dir():
                raise OutputError(f"{existing}: exists; use --overwrite")
        if writable:
            check_writable(output)


def _side_files(output: Path) -> list[Path]:
    """Files written beside `output` as part of it: a GeoTIFF map's `.aux.xml` (its class
    names), which the writer replaces or removes with the map."""
    return [aux_path(output)] if output.suffix.lower() in GEOTIFF_SUFFIXES else []


@contextmanager
def output_dir(
    directory: Path, names: Iterable[str], inputs: Iterable[Path | str | None], *, overwrite: bool
) -> Iterator[Path]:
    """Check the files `names` a command writes into `directory` as `check_outputs` does, then
    create the directory (its parent must exist), before any long work. A directory made here
    is removed again if the command ends by an error or an interrupt with nothing in it, so a
    failed run leaves no trace."""
    refuse_remote(directory)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"{directory}: exists and is not a directory")
    if not directory.parent.is_dir():
        raise OutputError(f"{directory}: parent directory {directory.parent} does not exist")
    if directory.is_dir():  # files in a folder still to be made can be no input, nor exist
        check_outputs(inputs, [directory / name for name in names], overwrite=overwrite)
    made = not directory.exists()
    directory.mkdir(exist_ok=True)
    try:
        yield directory
    except BaseException:
        if made and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
        raise


def geotiff_callback(
    _ctx: click.Context, _param: click.Parameter, value: Path | None
) -> Path | None:
    """click callback: a map's path must end in .tif or .tiff, the one format it is written in."""
    if value is not None and value.suffix.lower() not in GEOTIFF_SUFFIXES:
        kind = value.suffix.lstrip(".").upper() or "a name without a suffix"
        raise click.BadParameter(
            f"{value}: {kind} is not a GeoTIFF; name it .tif (use --preview for a quicklook)"
        )
    return value

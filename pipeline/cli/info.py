"""`bandfusion info`: describe a raster or a model."""

from __future__ import annotations

from pathlib import Path

import click
from bandfusion.cli.options import quiet_option
from bandfusion.display.model_info import describe_model
from bandfusion.display.raster_info import describe_raster
from bandfusion.models.checkpoint import load_model


@click.command("info")
@click.argument("path", type=click.Path(path_type=Path))
@quiet_option
def info_command(path: Path, quiet: bool) -> None:
    """Describe a raster (bands, dtype, grid, CRS, nodata, blocks) or a model directory.

    It reads only metadata, so it never shows progress (--quiet is accepted for symmetry).

    \b
    Example:
      bandfusion info data/sen1floods11_spain/Spain_7370579_S2Hand.tif
      bandfusion info water-model
    """
    click.echo(describe_model(load_model(path)) if path.is_dir() else describe_raster(path))

"""`bandfusion info`: describe a raster or a model, and which kernel the model would run."""

from __future__ import annotations

from pathlib import Path

import click
from bandfusion.cli.options import FiniteRange, SceneInput, device_callback, quiet_option
from bandfusion.display.model_info import describe_model
from bandfusion.display.product_info import describe_product
from bandfusion.display.raster_info import describe_raster
from bandfusion.engine.guard import KERNEL_NAMES
from bandfusion.engine.kernels import kernel_plan
from bandfusion.errors import BandfusionError
from bandfusion.io.products import read_product
from bandfusion.models.checkpoint import load_model


@click.command("info")
@click.argument("path", type=SceneInput())
@click.option(
    "--device",
    callback=device_callback,
    help="Also say which kernel the model would run on this device here (auto, cpu, cuda).",
)
@click.option(
    "--nodata",
    type=FiniteRange(),
    help="No-data value of every band, in place of what the file declares.",
)
@quiet_option
def info_command(path: Path | str, device: str | None, nodata: float | None, quiet: bool) -> None:
    """Describe a raster (bands, dtype, grid, CRS, nodata, blocks), a sensor product (sensor,
    date, bands with resolution, nodata, scale/offset and their origin, mask layers) or a model
    directory.

    It reads only metadata, so it never shows progress (--quiet is accepted for symmetry).

    \b
    Example:
      bandfusion info data/sen1floods11_spain/Spain_7370579_S2Hand.tif
      bandfusion info data/s2_l2a_safe/S2A_MSIL2A_*.SAFE
      bandfusion info water-model --device auto
    """
    product = read_product(path)
    if product is not None:
        if device is not None:
            raise BandfusionError(f"{path}: --device tells a model's kernel; this is a product")
        click.echo(describe_product(product))
        return
    if isinstance(path, str) or not path.is_dir():  # a str is a URL
        if device is not None:
            raise BandfusionError(f"{path}: --device tells a model's kernel; this is no model")
        click.echo(describe_raster(path, nodata))
        return
    model = load_model(path)
    click.echo(describe_model(model))
    if device is not None:
        plan = kernel_plan(model, device)
        click.echo(f"kernel: {plan.device}: {KERNEL_NAMES[plan.kernel]} ({plan.reason})")

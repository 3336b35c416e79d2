"""`bandfusion predict`: classify a scene and stream the map to a GeoTIFF."""

from __future__ import annotations

from pathlib import Path

import click
import xarray as xr
from bandfusion.batch.tally import PixelTally
from bandfusion.cli.options import (
    MaskArguments,
    SceneArguments,
    device_option,
    mask_options,
    model_option,
    quiet_option,
    scene_options,
)
from bandfusion.cli.outputs import (
    check_outputs,
    geotiff_callback,
    model_files,
    overwrite_option,
)
from bandfusion.colours import MASK_COLOURS
from bandfusion.display.progress import ProgressDisplay
from bandfusion.display.tables import masked_summary
from bandfusion.engine.predict import DEFAULT_BATCH_PIXELS, predict_proba_scene, predict_scene
from bandfusion.io.geotiff import write_geotiff
from bandfusion.io.probabilities import PROBABILITY_DTYPES, with_dtype
from bandfusion.models.checkpoint import load_model
from bandfusion.models.inference import PRECISIONS
from bandfusion.progress import Progress, counter


@click.command("predict")
@scene_options
@mask_options
@model_option
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path),
    callback=geotiff_callback,
    help="Map .tif.",
)
@click.option(
    "--probabilities",
    type=click.Path(path_type=Path),
    callback=geotiff_callback,
    help="Also write per-class probabilities (one band a class) here.",
)
@click.option(
    "--probabilities-dtype",
    type=click.Choice(PROBABILITY_DTYPES),
    default="float32",
    show_default=True,
    help="uint8: round(p * 250), 255 nodata, band scale 1/250 (a quarter of the size).",
)
@click.option("--preview", type=click.Path(path_type=Path), help="Write a PNG quicklook here.")
@click.option("--cog/--no-cog", default=True, show_default=True, help="Cloud-Optimized GeoTIFF.")
@click.option("--stac", is_flag=True, help="Also write a STAC Item beside the map (MAP.stac.json).")
@click.option(
    "--batch-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_PIXELS,
    show_default=True,
    help="Pixels per model call (bounds memory; never changes a label).",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="fp32 is exact whatever the tiling; bf16 (CUDA, or a CPU with AVX-512/AMX) and fp16 "
    "(CUDA) are faster.",
)
@overwrite_option
@device_option
@quiet_option
def predict_command(
    images: tuple[Path | str, ...],
    scene_args: SceneArguments,
    mask_args: MaskArguments,
    model_path: Path,
    output: Path,
    probabilities: Path | None,
    probabilities_dtype: str,
    preview: Path | None,
    cog: bool,
    stac: bool,
    batch_pixels: int,
    precision: str,
    overwrite: bool,
    device: str,
    quiet: bool,
) -> None:
    """Classify IMAGE(s) with MODEL and write the class map as a GeoTIFF.

    The map keeps the input's CRS, transform and size, holds the model's class ids, and marks
    pixels where any band is nodata with the map's nodata value (255 unless a class uses it).

    \b
    Example:
      bandfusion predict S2.tif -m water-model -o water.tif --preview water.png
    """
    stac_item = None
    if stac:
        from bandfusion.io.stac import item_path, write_item  # pystac: loaded only when asked

        stac_item = item_path(output)
    check_outputs(
        [*images, model_path, *model_files(model_path), mask_args.mask_layer],
        [output, probabilities, preview, stac_item],
        overwrite=overwrite,
    )
    model = load_model(model_path)
    scene = mask_args.apply(scene_args.open(images))
    classes = predict_scene(
        scene, model, device=device, batch_pixels=batch_pixels, precision=precision
    )
    tally = PixelTally()
    if "masked" in classes.attrs:
        classes = tally.counted(classes)
    with ProgressDisplay(quiet=quiet) as progress:
        _write(classes, output, cog=cog, progress=progress)
        if probabilities is not None:
            proba = predict_proba_scene(
                scene, model, device=device, batch_pixels=batch_pixels, precision=precision
            )
            _write(
                with_dtype(proba, probabilities_dtype), probabilities, cog=cog, progress=progress
            )
    if stac:
        write_item(output)
    if preview is not None:
        from bandfusion.display.preview import (
            write_preview,  # matplotlib: loaded only when a preview is asked
        )

        write_preview(
            output,
            preview,
            legend_names=classes.attrs["class_names"],
            colors={
                **dict(zip(model.meta.class_ids, model.meta.class_colors, strict=True)),
                **{v: MASK_COLOURS[r] for v, r in classes.attrs.get("masked", {}).items()},
            },
            nodata=int(classes.attrs["nodata"]),
            title=f"{output.name}: {model_path.name}",
        )
    masked = masked_summary([tally.pixels()])
    if masked:
        click.echo(masked)
    outputs = (("map", output), ("probabilities", probabilities), ("preview", preview))
    for label, path in (*outputs, ("stac item", stac_item)):
        if path is not None:
            click.echo(f"{label}: {path}")


def _write(array: xr.DataArray, path: Path, *, cog: bool, progress: Progress) -> None:
    pixels = int(array.sizes["y"] * array.sizes["x"])
    count = counter(progress, str(array.name), total=pixels, unit="px")
    write_geotiff(array, path, cog=cog, progress=count)

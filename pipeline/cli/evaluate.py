"""`bandfusion evaluate`: accuracy of a model's map against labels."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
from bandfusion.cli.options import (
    MaskArguments,
    SceneArguments,
    device_option,
    label_options,
    load_labels,
    mask_options,
    model_option,
    quiet_option,
    scene_options,
)
from bandfusion.cli.outputs import check_outputs, model_files, overwrite_option
from bandfusion.display.progress import ProgressDisplay
from bandfusion.display.tables import evaluation_table
from bandfusion.engine.evaluate import evaluate
from bandfusion.engine.train import held_out_blocks
from bandfusion.errors import ModelFileError
from bandfusion.io.atomic import write_json
from bandfusion.io.labels import Labels
from bandfusion.models.checkpoint import TrainedModel, load_model


@click.command("evaluate")
@model_option
@scene_options
@mask_options
@label_options
@click.option(
    "--split",
    type=click.Choice(["all", "validation"]),
    default="all",
    show_default=True,
    help="'validation': only the blocks `train` held out (same labels and options needed).",
)
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Write JSON here.")
@overwrite_option
@device_option
@quiet_option
def evaluate_command(
    model_path: Path,
    images: tuple[Path | str, ...],
    scene_args: SceneArguments,
    mask_args: MaskArguments,
    labels_path: Path,
    attribute: str | None,
    unlabelled: str,
    legend: Path | None,
    split: str,
    json_path: Path | None,
    overwrite: bool,
    device: str,
    quiet: bool,
) -> None:
    """Score MODEL's map of IMAGE(s) against LABELS: OA, kappa, per-class P/R/F1/IoU, confusion.

    \b
    Example:
      bandfusion evaluate -m water-model S2.tif --labels water.tif --unlabelled -1 --json m.json
    """
    check_outputs(
        [model_path, *model_files(model_path), *images, labels_path, legend],
        [json_path],
        overwrite=overwrite,
    )
    model = load_model(model_path)
    scene = mask_args.apply(scene_args.open(images))
    labels = load_labels(scene, labels_path, attribute, unlabelled, legend)
    where = held_out(model, labels, model_path) if split == "validation" else None
    with ProgressDisplay(quiet=quiet) as progress:
        report = evaluate(model, scene, labels, where=where, device=device, progress=progress)
    click.echo(f"{split} pixels of {labels_path}:")
    click.echo(evaluation_table(report))
    click.echo("confusion matrix (rows: reference, columns: predicted):")
    click.echo(np.array2string(report.confusion))
    if json_path is not None:
        write_json(json_path, report.to_dict(), indent=2)
        click.echo(f"json: {json_path}")


def held_out(model: TrainedModel, labels: Labels, model_path: Path) -> np.ndarray:
    """`held_out_blocks`, with the model's path in the error a user sees."""
    try:
        return held_out_blocks(model, labels)
    except ModelFileError as exc:
        raise ModelFileError(f"{model_path}: {exc}") from exc

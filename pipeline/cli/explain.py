"""`bandfusion explain`: band importance, learned band mixing and class spectral signatures."""

from __future__ import annotations

from pathlib import Path

import click
from bandfusion.cli.evaluate import held_out
from bandfusion.cli.options import (
    CAP,
    POSITIVE,
    MaskArguments,
    SceneArguments,
    label_options,
    load_labels,
    mask_options,
    model_option,
    quiet_option,
    scene_options,
    seed_option,
)
from bandfusion.cli.outputs import model_files, output_dir, overwrite_option
from bandfusion.display.files import EXPLANATION_FILES, write_explanation
from bandfusion.display.progress import ProgressDisplay
from bandfusion.display.tables import importance_table
from bandfusion.engine.explain import explain
from bandfusion.models.checkpoint import load_model
from sklearn.metrics import get_scorer


@click.command("explain")
@model_option
@scene_options
@mask_options
@label_options
@click.option(
    "--split",
    type=click.Choice(["validation", "all"]),
    default="validation",
    show_default=True,
    help="'validation': the blocks `train` held out (same labels and options needed).",
)
@click.option(
    "--per-class-cap",
    type=CAP,
    default=5000,
    show_default=True,
    help="At most this many pixels per class (0: no cap).",
)
@click.option("--repeats", type=POSITIVE, default=5, show_default=True, help="Shuffles per band.")
@click.option(
    "--scoring",
    default="f1_macro",
    show_default=True,
    help="scikit-learn scorer whose loss measures importance (f1_macro, accuracy, ...).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("explain"),
    show_default=True,
    help="Directory for explanation.json and the PNG plots (created if absent).",
)
@seed_option
@overwrite_option
@quiet_option
def explain_command(
    model_path: Path,
    images: tuple[Path | str, ...],
    scene_args: SceneArguments,
    mask_args: MaskArguments,
    labels_path: Path,
    attribute: str | None,
    unlabelled: str,
    legend: Path | None,
    split: str,
    per_class_cap: int,
    repeats: int,
    scoring: str,
    output: Path,
    seed: int,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Explain MODEL on IMAGE(s) and LABELS: permutation importance per band on held-out
    pixels, the first layer's band-mixing weights as a heat map, and per-class spectral
    signatures (mean ± std per band), as PNG plots and JSON in --output.

    \b
    Example:
      bandfusion explain -m water-model S2.tif --labels water.tif --unlabelled -1 -o why
    """
    try:
        get_scorer(scoring)
    except ValueError:
        raise click.BadParameter(f"{scoring!r} is not a scikit-learn scorer name") from None
    inputs = [model_path, *model_files(model_path), *images, labels_path, legend]
    with output_dir(output, EXPLANATION_FILES, inputs, overwrite=overwrite):
        model = load_model(model_path)
        scene = mask_args.apply(scene_args.open(images))
        labels = load_labels(scene, labels_path, attribute, unlabelled, legend)
        where = held_out(model, labels, model_path) if split == "validation" else None
        with ProgressDisplay(quiet=quiet) as progress:
            explanation = explain(
                model,
                scene,
                labels,
                where=where,
                per_class_cap=per_class_cap or None,
                n_repeats=repeats,
                scoring=scoring,
                seed=seed,
                progress=progress,
            )
        click.echo(f"{split} pixels of {labels_path}:")
        click.echo(importance_table(explanation))
        for path in write_explanation(explanation, output):
            click.echo(f"wrote {path}")

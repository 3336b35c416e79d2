"""`bandfusion train`: fit a fusion model on labelled pixels and save it."""

from __future__ import annotations

from pathlib import Path

import click
from bandfusion.cli.options import (
    CAP,
    CLIP,
    POSITIVE,
    RATE,
    SHARE,
    MaskArguments,
    SceneArguments,
    device_option,
    label_options,
    load_labels,
    mask_options,
    quiet_option,
    scene_options,
    seed_option,
    widths_callback,
)
from bandfusion.cli.outputs import check_outputs, model_files, overwrite_option
from bandfusion.display.progress import ProgressDisplay
from bandfusion.display.tables import evaluation_table, selection_text
from bandfusion.engine.train import TrainingSettings, train
from bandfusion.models.checkpoint import check_model_path, save_model
from bandfusion.models.indices import INDICES

DEFAULTS = TrainingSettings()


def indices_callback(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[str, ...]:
    """click callback: '--indices ndwi,MNDWI' → ("NDWI", "MNDWI"), known indices only."""
    names = tuple(name.strip().upper() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in INDICES]
    if unknown:
        raise click.BadParameter(f"unknown index {unknown[0]}; known: {', '.join(INDICES)}")
    return names


def roles_callback(
    _ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]
) -> dict[str, str] | None:
    """click callback: '--band-role nir=B8 --band-role red=B4' → {"nir": "B8", "red": "B4"}."""
    roles = {}
    for item in value:
        role, sep, band = item.partition("=")
        if not sep or not role.strip() or not band.strip():
            raise click.BadParameter(f"expected ROLE=BAND such as nir=B8, got {item!r}")
        roles[role.strip().lower()] = band.strip()
    return roles or None


@click.command("train")
@scene_options
@mask_options
@label_options
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="Model dir.")
@click.option(
    "--hidden",
    default=",".join(map(str, DEFAULTS.hidden)),
    show_default=True,
    callback=widths_callback,
    help="Hidden widths, e.g. 128,32,128 for a bottleneck; 'none' for a linear model.",
)
@click.option(
    "--norm",
    type=click.Choice(["batch", "layer", "none"]),
    default=DEFAULTS.norm,
    show_default=True,
)
@click.option(
    "--activation",
    type=click.Choice(["relu", "gelu"]),
    default=DEFAULTS.activation,
    show_default=True,
)
@click.option("--dropout", type=SHARE, default=DEFAULTS.dropout, show_default=True)
@click.option(
    "--bins",
    type=CAP,
    default=DEFAULTS.bins,
    show_default=True,
    help="Encode each band piecewise-linearly in this many quantile bins before the first "
    "layer: sharp per-band thresholds, as a tree draws them (0: the bands as they are).",
)
@click.option(
    "--clip",
    type=CLIP,
    default=DEFAULTS.clip,
    show_default=True,
    help="Saturate each band beyond this share of its training pixels at either end, so that "
    "outliers (clouds in one date, bad pixels) cannot drive the map (0: none).",
)
@click.option("--epochs", type=POSITIVE, default=DEFAULTS.epochs, show_default=True)
@click.option("--batch-size", type=POSITIVE, default=DEFAULTS.batch_size, show_default=True)
@click.option("--lr", type=RATE, default=DEFAULTS.learning_rate, show_default=True)
@click.option("--patience", type=POSITIVE, default=DEFAULTS.patience, show_default=True)
@click.option(
    "--per-class-cap",
    type=CAP,
    default=DEFAULTS.per_class_cap,
    show_default=True,
    help="At most this many sampled pixels per class (0: no cap).",
)
@click.option(
    "--val-fraction",
    type=SHARE,
    default=DEFAULTS.val_fraction,
    show_default=True,
    help="Share of labelled pixels held out, as whole spatial blocks (0: none).",
)
@click.option(
    "--block-size",
    type=POSITIVE,
    default=DEFAULTS.block_size,
    show_default=True,
    help="Edge in pixels of the spatial blocks of the validation split.",
)
@click.option(
    "--class-weight/--no-class-weight",
    default=True,
    show_default=True,
    help="Weight the loss by inverse class frequency, so rare classes count as much as common "
    "ones in the map (SpectralFusionClassifier defaults to no weighting, as scikit-learn does). "
    "Without it every labelled pixel counts the same: classes thinned by --per-class-cap are "
    "weighted back to their share of the labels.",
)
@click.option(
    "--blend",
    type=POSITIVE,
    default=DEFAULTS.blend,
    show_default=True,
    help="Average the networks of the search's best N candidates, saved as one network (1: the "
    "best alone). Blends gained on small pixel tables, not on the maps measured, and a blend "
    "of N predicts several times slower than one network.",
)
@click.option(
    "--quick",
    is_flag=True,
    help="One fit with exactly these settings; by default a few candidate settings are "
    "scored first by cross-validation over spatial blocks of the training pixels.",
)
@click.option(
    "--indices",
    default="",
    callback=indices_callback,
    help=f"Spectral indices added as inputs, e.g. NDWI,MNDWI (of {', '.join(INDICES)}); "
    "prediction recomputes them from the bands.",
)
@click.option(
    "--band-role",
    "band_roles",
    multiple=True,
    callback=roles_callback,
    metavar="ROLE=BAND",
    help="The band an index role reads (green, red, nir, swir1), e.g. nir=B8; repeatable. "
    "Default: Sentinel-2 band names (B3, B4, B8, B11).",
)
@seed_option
@overwrite_option
@device_option
@quiet_option
def train_command(
    images: tuple[Path | str, ...],
    scene_args: SceneArguments,
    mask_args: MaskArguments,
    labels_path: Path,
    attribute: str | None,
    unlabelled: str,
    legend: Path | None,
    output: Path,
    hidden: tuple[int, ...],
    norm: str,
    activation: str,
    dropout: float,
    bins: int,
    clip: float,
    epochs: int,
    batch_size: int,
    lr: float,
    patience: int,
    per_class_cap: int,
    val_fraction: float,
    block_size: int,
    class_weight: bool,
    blend: int,
    quick: bool,
    indices: tuple[str, ...],
    band_roles: dict[str, str] | None,
    seed: int,
    overwrite: bool,
    device: str,
    quiet: bool,
) -> None:
    """Train a spectral-fusion model on IMAGE(s) and LABELS; write it to a model directory.

    Validation pixels are whole blocks the model never trains on; the report printed at the end
    is measured on them.

    \b
    Example:
      bandfusion train S2.tif --labels water.tif --unlabelled -1 --hidden 64,64 -o water-model
    """
    check_model_path(output)
    check_outputs(
        [*images, labels_path, legend], model_files(output), overwrite=overwrite, writable=False
    )
    scene = mask_args.apply(scene_args.open(images))
    labels = load_labels(scene, labels_path, attribute, unlabelled, legend)
    with ProgressDisplay(quiet=quiet) as progress:
        result = train(
            scene,
            labels,
            device=device,
            progress=progress,
            hidden=hidden,
            norm=norm,
            activation=activation,
            dropout=dropout,
            bins=bins,
            clip=clip,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=lr,
            patience=patience,
            per_class_cap=per_class_cap or None,
            val_fraction=val_fraction,
            block_size=block_size,
            class_weight=class_weight,
            search=not quick,
            blend=blend,
            indices=indices,
            band_roles=band_roles,
            seed=seed,
        )
    path = save_model(result.model, output)
    if result.selection is not None:
        click.echo(selection_text(result.selection.to_dict()))
    if result.validation is not None:
        click.echo("validation (spatially disjoint blocks):")
        click.echo(evaluation_table(result.validation))
    click.echo(f"epochs: {len(result.history)}   model: {path}")

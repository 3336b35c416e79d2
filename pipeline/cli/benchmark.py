"""`bandfusion benchmark`: the fusion net against scikit-learn baselines under a protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import xarray as xr
from bandfusion.cli.options import (
    CAP,
    OPEN_SHARE,
    POSITIVE,
    RATE,
    SHARE,
    MaskArguments,
    SceneArguments,
    device_option,
    label_options,
    load_labels,
    mask_options,
    names_callback,
    quiet_option,
    scene_options,
    seed_option,
    widths_callback,
)
from bandfusion.cli.outputs import output_dir, overwrite_option
from bandfusion.display.files import BENCHMARK_FILES, write_benchmark
from bandfusion.display.progress import ProgressDisplay
from bandfusion.display.tables import benchmark_report
from bandfusion.engine.compare import PROTOCOLS, Protocol, available_methods, run_benchmark
from bandfusion.io.hyperspectral import is_mat_file, read_mat_scene
from bandfusion.io.labels import Labels

DEFAULT_PROTOCOL = Protocol()


@click.command("benchmark")
@scene_options
@mask_options
@label_options
@click.option(
    "--protocol",
    type=click.Choice(PROTOCOLS),
    default=DEFAULT_PROTOCOL.name,
    show_default=True,
    help="block: spatially disjoint test blocks; fixed-per-class / fraction: random pixels "
    "(optimistic, for comparison with the literature).",
)
@click.option("--block-size", type=POSITIVE, default=DEFAULT_PROTOCOL.block_size, show_default=True)
@click.option(
    "--test-fraction",
    type=OPEN_SHARE,
    default=DEFAULT_PROTOCOL.test_fraction,
    show_default=True,
    help="block: share of labelled pixels in the test blocks.",
)
@click.option(
    "--per-class",
    type=POSITIVE,
    default=DEFAULT_PROTOCOL.per_class,
    show_default=True,
    help="fixed-per-class: training pixels per class (at most half of a class).",
)
@click.option(
    "--fraction",
    type=OPEN_SHARE,
    default=DEFAULT_PROTOCOL.fraction,
    show_default=True,
    help="fraction: share of each class's pixels drawn for training.",
)
@click.option(
    "--methods",
    callback=names_callback,
    help="Comma-separated methods [default: fusion, fusion+indices (Sentinel-2 band names), "
    "random-forest, svm, logistic, hist-gb].",
)
@click.option(
    "--runs", type=POSITIVE, default=5, show_default=True, help="Seeds SEED..SEED+RUNS-1."
)
@click.option(
    "--per-class-cap",
    type=CAP,
    default=20000,
    show_default=True,
    help="At most this many training pixels per class (0: no cap).",
)
@click.option("--hidden", callback=widths_callback, help="Fusion net hidden widths, e.g. 64,64.")
@click.option("--epochs", type=POSITIVE, help="Fusion net epochs.")
@click.option("--dropout", type=SHARE, help="Fusion net dropout.")
@click.option("--lr", type=RATE, help="Fusion net learning rate.")
@click.option(
    "--validation-fraction",
    type=SHARE,
    help="Fusion net: share of each class held out at random for early stopping "
    "[default: 0, score the training pixels].",
)
@click.option(
    "--class-weight/--no-class-weight",
    default=None,
    help="Fusion net: balanced class weights or none [default: balanced].",
)
@click.option(
    "--threads",
    type=POSITIVE,
    default=1,
    show_default=True,
    help="CPU threads per method (OpenMP, BLAS, n_jobs, torch inference; fusion training "
    "always uses one): comparable, repeatable runs.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("benchmark"),
    show_default=True,
    help="Directory for benchmark.json, benchmark.md and benchmark.png (created if absent).",
)
@seed_option
@overwrite_option
@device_option
@quiet_option
def benchmark_command(
    images: tuple[Path | str, ...],
    scene_args: SceneArguments,
    mask_args: MaskArguments,
    labels_path: Path,
    attribute: str | None,
    unlabelled: str,
    legend: Path | None,
    protocol: str,
    block_size: int,
    test_fraction: float,
    per_class: int,
    fraction: float,
    methods: list[str] | None,
    runs: int,
    per_class_cap: int,
    hidden: tuple[int, ...] | None,
    epochs: int | None,
    dropout: float | None,
    lr: float | None,
    validation_fraction: float | None,
    class_weight: bool | None,
    threads: int,
    output: Path,
    seed: int,
    overwrite: bool,
    device: str,
    quiet: bool,
) -> None:
    """Fit the fusion net and scikit-learn baselines on the same training pixels of IMAGE(s),
    score them on the test pixels for RUNS seeds, and print OA, AA, kappa, macro-F1, per-class
    IoU and fit/predict times as mean ± std; JSON, Markdown and a PNG chart go to --output.

    IMAGE may also be a hyperspectral cube in a .mat file (Indian Pines, Pavia University,
    Salinas) with --labels its ground-truth .mat file (0: unlabelled).

    \b
    Example:
      bandfusion benchmark S2.tif --labels water.tif --unlabelled -1 --runs 5 -o bench-water
      bandfusion benchmark Indian_pines_corrected.mat --labels Indian_pines_gt.mat \\
          --protocol fixed-per-class --per-class 200
    """
    try:
        chosen = Protocol(protocol, block_size, test_fraction, per_class, fraction)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    scene, labels = _dataset(
        images,
        scene_args,
        mask_args,
        labels_path,
        attribute,
        unlabelled,
        legend,
    )
    known = available_methods([str(b) for b in scene["band"].values])
    unknown = [m for m in methods or [] if m not in known]
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)} (available here: {', '.join(known)})")
    with output_dir(output, BENCHMARK_FILES, [*images, labels_path, legend], overwrite=overwrite):
        given = {
            "hidden": hidden,
            "epochs": epochs,
            "dropout": dropout,
            "learning_rate": lr,
            "validation_fraction": validation_fraction,
        }
        fusion: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if class_weight is not None:
            fusion["class_weight"] = "balanced" if class_weight else None
        with ProgressDisplay(quiet=quiet) as progress:
            bench = run_benchmark(
                scene,
                labels,
                dataset=", ".join(Path(p).name for p in images),
                protocol=chosen,
                methods=methods,
                seeds=range(seed, seed + runs),
                per_class_cap=per_class_cap or None,
                fusion_params={**fusion, "device": device},
                threads=threads,
                progress=progress,
            )
        click.echo(benchmark_report(bench))
        for path in write_benchmark(bench, output):
            click.echo(f"wrote {path}")


def _dataset(
    images: tuple[Path | str, ...],
    scene_args: SceneArguments,
    mask_args: MaskArguments,
    labels_path: Path,
    attribute: str | None,
    unlabelled: str,
    legend: Path | None,
) -> tuple[xr.DataArray, Labels]:
    """A .mat cube with its .mat ground truth, or any scene and labels the other commands take
    (masked as they mask it: a product's clouds are neither trained on nor scored)."""
    if len(images) == 1 and is_mat_file(images[0]):
        return read_mat_scene(images[0], labels_path, legend=legend)
    scene = mask_args.apply(scene_args.open(images))
    return scene, load_labels(scene, labels_path, attribute, unlabelled, legend)

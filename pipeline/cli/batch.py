"""`bandfusion batch`: map many scenes on dask.distributed, resumably."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import click
from bandfusion.batch.cluster import CONNECT_TIMEOUT_S, connect, local_client
from bandfusion.batch.run import BatchError, run_batch
from bandfusion.batch.tasks import BatchOptions
from bandfusion.cli.options import (
    SceneArguments,
    device_option,
    mask_policy_option,
    parse_names,
    quiet_option,
    scene_options,
)
from bandfusion.cli.outputs import overwrite_option, refuse_remote
from bandfusion.display.progress import ProgressDisplay
from bandfusion.display.tables import batch_summary
from bandfusion.engine.predict import DEFAULT_BATCH_PIXELS
from bandfusion.io.cloudmask import MaskPolicy


@click.command("batch")
@scene_options
@mask_policy_option
@click.option(
    "-m",
    "--model",
    "model_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Model directory; workers load it by path, so they must see it too.",
)
@click.option(
    "--out-dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder for the maps and manifest.json (created if missing).",
)
@click.option(
    "--scheduler",
    help="Address (tcp://host:port) or scheduler file of a running dask.distributed cluster, "
    f"connected to first (giving up after {CONNECT_TIMEOUT_S} s). "
    "Default: a local cluster of worker processes.",
)
@click.option(
    "--workers", type=click.IntRange(min=1), help="Local cluster: worker processes [machine]."
)
@click.option(
    "--threads-per-worker",
    type=click.IntRange(min=1),
    help="Local cluster: threads per worker process [machine].",
)
@click.option("--force", is_flag=True, help="Redo every scene, even those already complete.")
@click.option(
    "--stac",
    is_flag=True,
    help="Also write a STAC Item beside each map and OUT_DIR/collection.json of them.",
)
@click.option(
    "--batch-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_PIXELS,
    show_default=True,
    help="Pixels per model call.",
)
@overwrite_option
@device_option
@quiet_option
def batch_command(
    images: tuple[Path | str, ...],
    scene_args: SceneArguments,
    mask_policy: MaskPolicy,
    model_path: Path,
    out_dir: Path,
    scheduler: str | None,
    workers: int | None,
    threads_per_worker: int | None,
    force: bool,
    stac: bool,
    batch_pixels: int,
    overwrite: bool,
    device: str,
    quiet: bool,
) -> None:
    """Classify many scenes with MODEL into class-map GeoTIFFs in --out-dir.

    IMAGES are raster files, globs, folders (each raster in it is a scene) or scene lists: CSV
    with an 'inputs' column (a file, or band files joined by ';') and an optional 'output'
    column, or JSON: [{"inputs": [...], "output": "name.tif"}, ...]. Each map is written as
    `predict` writes it; with more worker threads than scenes, a scene's rows are split across
    workers. OUT_DIR/manifest.json records every scene; rerunning the command skips the scenes
    that are complete and redoes the rest. Exit code 2 when any scene failed.

    \b
    Example:
      bandfusion batch 'tiles/*.tif' scenes.csv -m water-model --out-dir maps
      bandfusion batch tiles/ -m water-model --out-dir maps --scheduler tcp://10.0.0.5:8786
    """
    if scheduler and (workers or threads_per_worker):
        raise click.UsageError("--workers and --threads-per-worker size the local cluster only")
    refuse_remote(out_dir)
    cluster = connect(scheduler) if scheduler else contextlib.nullcontext(None)
    options = BatchOptions(
        device=device,
        batch_pixels=batch_pixels,
        resampling=scene_args.resampling,
        mask=mask_policy,
        nodata=scene_args.nodata,
        trust_metadata=scene_args.trust_metadata,
        band_names=tuple(names) if (names := parse_names(scene_args.band_names)) else None,
        bands=tuple(picked) if (picked := parse_names(scene_args.bands)) else None,
        resolution=scene_args.resolution,
    )
    with cluster as client, ProgressDisplay(quiet=quiet) as progress:
        result = run_batch(
            images,
            model_path,
            out_dir,
            client,
            force=force,
            overwrite=overwrite,
            options=options,
            progress=progress,
            start_client=functools.partial(local_client, workers, threads_per_worker),
        )
    click.echo(batch_summary(result))
    if stac:
        from bandfusion.io.stac import write_collection  # pystac: loaded only when asked

        done = [out_dir / r.output for r in result.records if r.status in ("done", "skipped")]
        about = f"Class maps made by bandfusion with the model {model_path.name}"
        collection = write_collection(
            done, out_dir, collection_id=out_dir.resolve().name, description=about
        )
        click.echo(f"stac collection: {collection}")
    if result.failed:
        raise BatchError(
            f"{len(result.failed)} of {len(result.records)} scenes failed; "
            f"reasons in {result.manifest}"
        )

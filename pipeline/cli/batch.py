"""`bandfusion batch`: map many scenes on dask.distributed, resumably."""

from __future__ import annotations

import functools
from pathlib import Path

import click
from bandfusion.batch.cluster import CONNECT_TIMEOUT_S, connect, local_client
from bandfusion.batch.manifest import collect_scenes
from bandfusion.batch.run import BatchError, run_batch
from bandfusion.batch.store import is_object_store
from bandfusion.batch.tasks import BatchOptions
from bandfusion.cli.options import (
    SceneArguments,
    SceneInput,
    device_option,
    mask_policy_option,
    quiet_option,
    scene_options,
)
from bandfusion.cli.outputs import overwrite_option
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
    type=SceneInput(),
    help="Model directory, its s3:// prefix or https:// URL; read once, its bytes sent to workers.",
)
@click.option(
    "--out-dir",
    required=True,
    type=SceneInput(),
    help="Folder, or s3:// prefix, for the maps and manifest.json (a folder is created if "
    "missing).",
)
@click.option(
    "--scheduler",
    help="Address (tcp://host:port) or scheduler file of a running dask.distributed cluster, "
    f"connected to once the inputs are checked (giving up after {CONNECT_TIMEOUT_S} s). "
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
    model_path: Path | str,
    out_dir: Path | str,
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

    IMAGES are raster files or https:// / s3:// URLs, globs, folders (each raster in it is a
    scene) or scene lists: CSV with an 'inputs' column (a file, or band files joined by ';') and
    an optional 'output' column, or JSON: [{"inputs": [...], "output": "name.tif"}, ...]. A
    scene list's relative paths are relative to the list file's folder, not the working
    directory. Every input is checked before any cluster starts: each missing one is named on
    its own line, and nothing runs (exit code 2). Each map is written as `predict` writes it;
    with more worker threads than scenes, a scene's rows are split across workers. Workers
    need no shared disk when the inputs, model and --out-dir are in object storage (the
    standard AWS_* environment, AWS_ENDPOINT_URL for compatibles). The manifest.json beside
    the maps records every scene; rerunning the command skips the scenes that are complete and
    redoes the rest. Exit code 2 when any scene failed.

    \b
    Example:
      bandfusion batch 'tiles/*.tif' scenes.csv -m water-model --out-dir maps
      bandfusion batch tiles/ -m water-model --out-dir maps --scheduler tcp://10.0.0.5:8786
      bandfusion batch scenes.csv -m s3://models/water --out-dir s3://maps/run1 --scheduler f.json
    """
    if scheduler and (workers or threads_per_worker):
        raise click.UsageError("--workers and --threads-per-worker size the local cluster only")
    if is_object_store(out_dir) and stac:
        raise click.UsageError("--stac writes local files: give a local --out-dir with it")
    scenes = collect_scenes(images)
    start_client = (
        functools.partial(connect, scheduler)
        if scheduler
        else functools.partial(local_client, workers, threads_per_worker)
    )
    options = BatchOptions(
        device=device,
        batch_pixels=batch_pixels,
        scene=scene_args.options(),
        mask=mask_policy,
    )
    with ProgressDisplay(quiet=quiet) as progress:
        result = run_batch(
            scenes,
            model_path,
            out_dir,
            force=force,
            overwrite=overwrite,
            options=options,
            progress=progress,
            start_client=start_client,
        )
    click.echo(batch_summary(result))
    if stac:
        from bandfusion.io.stac import write_collection  # pystac: loaded only when asked

        out_dir = Path(out_dir)
        done = [out_dir / r.output for r in result.records if r.status in ("done", "skipped")]
        about = f"Class maps made by bandfusion with the model {Path(model_path).name}"
        collection = write_collection(
            done, out_dir, collection_id=out_dir.resolve().name, description=about
        )
        click.echo(f"stac collection: {collection}")
    if result.failed:
        raise BatchError(
            f"{len(result.failed)} of {len(result.records)} scenes failed; "
            f"reasons in {result.manifest}"
        )
